"""Precision and recall of the text rulebook on the labelled dialogues.

A rule "detects" a violation when it fails. `tests/data/dialogues.toml` says, per dialogue, which
rules a QA reviewer would fail; every other rule should pass. This prints precision and recall per
rule, per category and overall, every disagreement, and accuracy on the dialogues with ASR-like
noise. The exit status is 1 when a category falls below the target (0.95), so CI can run it.

    .venv/bin/python bench/rules_bench.py [--rulebook FILE] [--dialogues FILE]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from audit.config import load_config
from audit.rules import Rulebook, check_rulebook, dialogue_context

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULEBOOK = ROOT / "configs" / "rulebook.toml"
DEFAULT_DIALOGUES = ROOT / "tests" / "data" / "dialogues.toml"
TARGET = 0.95


@dataclass(frozen=True)
class Labelled:
    id: str
    noise: tuple[str, ...]
    turns: tuple[str, ...]
    fails: frozenset[str]  # the rules a reviewer fails on this dialogue


@dataclass(frozen=True)
class Judgement:
    dialogue: Labelled
    rule_id: str
    category: str
    expected_fail: bool
    got_fail: bool
    message: str


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, judgement: Judgement) -> None:
        if judgement.got_fail:
            if judgement.expected_fail:
                self.tp += 1
            else:
                self.fp += 1
        elif judgement.expected_fail:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float | None:  # None: the rule never fired
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:  # None: no dialogue breaks the rule
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def load_dialogues(path: Path, rulebook: Rulebook) -> list[Labelled]:
    """Read the labelled set; a label naming a rule the rulebook lacks is an error, not a miss."""
    known = {rule.id for rule in rulebook.rules}
    dialogues, seen = [], set()
    for item in tomllib.loads(path.read_text(encoding="utf-8"))["dialogue"]:
        unknown = set(item["fails"]) - known
        if unknown:
            raise ValueError(f"{path}: dialogue {item['id']} names unknown rules {sorted(unknown)}")
        if item["id"] in seen:
            raise ValueError(f"{path}: dialogue id {item['id']} is used twice")
        seen.add(item["id"])
        dialogues.append(Labelled(item["id"], tuple(item["noise"]), tuple(item["turns"]),
                                  frozenset(item["fails"])))
    return dialogues


def judge(rulebook: Rulebook, dialogues: list[Labelled],
          company_names: tuple[str, ...]) -> list[Judgement]:
    """Every enabled rule on every dialogue, next to its label."""
    judgements = []
    for dialogue in dialogues:
        call = dialogue_context(list(dialogue.turns), company_names)
        for result in rulebook.evaluate(call):
            rule = rulebook.rule(result.rule_id)
            judgements.append(Judgement(dialogue, rule.id, rule.category, rule.id in dialogue.fails,
                                        result.status == "fail", result.message))
    return judgements


def tally(judgements: list[Judgement], key) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for judgement in judgements:
        tallies[key(judgement)].add(judgement)
    return dict(tallies)


def _ratio(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.3f}"


def _table(title: str, tallies: dict[str, Tally]) -> None:
    print(f"\n{title:<28} {'prec':>5} {'recall':>6}   tp  fp  fn   tn")
    for name, t in tallies.items():
        print(f"{name:<28} {_ratio(t.precision)} {_ratio(t.recall):>6}  {t.tp:3d} {t.fp:3d} {t.fn:3d} {t.tn:4d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rulebook", type=Path, default=DEFAULT_RULEBOOK)
    parser.add_argument("--dialogues", type=Path, default=DEFAULT_DIALOGUES)
    args = parser.parse_args(argv)
    rulebook = check_rulebook(args.rulebook)
    dialogues = load_dialogues(args.dialogues, rulebook)
    judgements = judge(rulebook, dialogues, load_config().company_names)
    noisy = [j for j in judgements if j.dialogue.noise]
    print(f"{len(dialogues)} dialogues ({len({j.dialogue.id for j in noisy})} with ASR-like noise), "
          f"{len(rulebook.rules)} rules, {len(judgements)} judgements, "
          f"{sum(len(d.fails) for d in dialogues)} labelled violations")
    _table("rule", tally(judgements, lambda j: j.rule_id))
    by_category = tally(judgements, lambda j: j.category)
    _table("category", by_category)
    _table("all rules", tally(judgements, lambda j: "all"))
    agree = sum(j.expected_fail == j.got_fail for j in noisy)
    print(f"\nnoisy dialogues: {agree}/{len(noisy)} judgements agree with the labels")
    wrong = [j for j in judgements if j.expected_fail != j.got_fail]
    print(f"\ndisagreements: {len(wrong)}")
    for j in wrong:
        kind = "missed" if j.expected_fail else "false alarm"
        print(f"  {kind:<11} {j.rule_id:<28} {j.dialogue.id}: {j.message}")
    below = [name for name, t in by_category.items()
             if (t.precision if t.precision is not None else 1.0) < TARGET
             or (t.recall if t.recall is not None else 1.0) < TARGET]
    if below:
        print(f"\nbelow the {TARGET} target: {below}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
