"""Would the tests notice a wrong verdict? Each mutation below was once found surviving the whole
suite (issue 14); this script applies each, alone, to a copy of the checkout, runs the tests that
judge that code, and prints whether they caught it (a test failed) or not.

    .venv/bin/python bench/mutation_check.py          # every mutation (about 2-4 minutes)

It asserts nothing and exits 1 when a mutation survives, so it can gate a change by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the checkout
    before: str  # the code as it is (must occur exactly once)
    after: str  # the code as mutated
    tests: tuple[str, ...]  # the test files that judge it


MUTATIONS = (
    Mutation("a failed critical rule no longer fails the call", "audit/judge/scoring.py",
             'if any(r.severity == "critical" for r in failed) or score < scoring.fail_below:',
             "if score < scoring.fail_below:", ("tests/test_scoring.py", "tests/test_run.py")),
    Mutation("`<` turned into `<=` on fail_below", "audit/judge/scoring.py",
             "or score < scoring.fail_below:", "or score <= scoring.fail_below:",
             ("tests/test_scoring.py", "tests/test_run.py")),
    Mutation("all subscores collapsed into one category", "audit/judge/scoring.py",
             "if category_of(r.rule_id) == category))", "))",
             ("tests/test_scoring.py", "tests/test_run.py")),
    Mutation("the 0.06 s burst merge in ringback detection dropped", "audit/measure/ringback.py",
             "BURST_DROPOUT_S = 0.06", "BURST_DROPOUT_S = 0.0", ("tests/test_timing.py",)),
    Mutation("the hold-thanks evidence window changed", "audit/judge/checks/timing.py",
             "THANKS_DUE_S = 5.0", "THANKS_DUE_S = 8.0", ("tests/test_timing.py", "tests/test_report.py")),
)


def run(mutation: Mutation, copy: Path) -> tuple[bool, float, str]:
    """(caught, seconds, the first failing test) for one mutation applied to `copy`."""
    target = copy / mutation.path
    original = target.read_text(encoding="utf-8")
    if original.count(mutation.before) != 1:
        raise SystemExit(f"{mutation.path}: the code to mutate is not there once: {mutation.before!r}")
    target.write_text(original.replace(mutation.before, mutation.after), encoding="utf-8")
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutation.tests],
                              cwd=copy, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(copy)})
    finally:
        target.write_text(original, encoding="utf-8")
    failing = next((line.split(" ")[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")), "")
    return done.returncode != 0, time.perf_counter() - started, failing


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "checkout"
        shutil.copytree(ROOT, copy, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".venv", "out", ".pytest_cache", "__pycache__"))
        if (ROOT / "models").exists() and not (copy / "models").exists():
            (copy / "models").symlink_to(ROOT / "models")
        print(f"{'mutation':58} {'caught':>7} {'s':>6}  first failing test")
        survived = 0
        for mutation in MUTATIONS:
            caught, seconds, failing = run(mutation, copy)
            survived += not caught
            print(f"{mutation.name:58} {'yes' if caught else 'NO':>7} {seconds:6.1f}  {failing}")
        print(f"{len(MUTATIONS) - survived} of {len(MUTATIONS)} mutations caught")
        return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
