"""A night's folder of sample calls for the batch tests, local and on Ray: hard links of the
fixtures under new names, spread over team folders, and the CLI run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURE_CALLS, ROOT

NAMES = ["compliant", "late_answer", "missing_agent_id", "fast_agent", "raised_voice",
         "unannounced_hold", "customer_cut_off"]


def copy_call(name: str, folder: Path, as_name: str) -> None:
    """Sample call `name` (audio and sidecars) linked into `folder` as `as_name`."""
    folder.mkdir(parents=True, exist_ok=True)
    source = next(FIXTURE_CALLS.glob(f"{name}.*[!n]"))  # the audio (.wav or .flac)
    os.link(source, folder / f"{as_name}{source.suffix}")
    for suffix in (".transcript.json", ".meta.json"):
        os.link(FIXTURE_CALLS / f"{name}{suffix}", folder / f"{as_name}{suffix}")


def night_folder(root: Path, copies: int) -> Path:
    """`copies` sample calls in turn, over three team folders under `root`."""
    for index in range(copies):
        name = NAMES[index % len(NAMES)]
        copy_call(name, root / f"team{index % 3}", f"{name}-{index:03d}")
    return root


def audit(*args):
    """`python -m audit ARGS` from the repository root, output captured."""
    return subprocess.run([sys.executable, "-m", "audit", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)
