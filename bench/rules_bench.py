"""Precision and recall of the text rules (and the golden-30-s opening) on labelled dialogues.

A rule "detects" a violation when it fails. Five labelled sets, all read from the repo:

- `own`: `tests/data/dialogues.toml`, written with the rulebook (a dialogue's `fails` lists the rules
  a reviewer fails; every other rule should pass);
- `dev-tuning` and `dev-held-aside`: `fixtures/text-dev/`, 51 sidecar transcripts labelled from the
  norms by someone who had not seen the rulebook, split once (see `split_dev`); since round 2 of
  issue 15 all 51 are tuned on, the split is kept so the figures stay comparable;
- `eval`: `fixtures/text-eval/`, written the same way by another person; independent in round 1,
  looked at then, so tuning data since round 2;
- `eval2`: `fixtures/text-eval2/`, written the same way by someone who has seen no rule: the
  independent figure of round 3, tuned on since round 4;
- `eval3-tuning` and `eval3-held-aside`: `fixtures/text-eval3/`, 60 dialogues written the same way
  by someone who had seen no rule nor any earlier set, measured once untouched (round 4: precision
  0.715, recall 0.831) and then split (`split_every`: every second dialogue held aside); the
  held-aside half was the independent figure of round 4 (0.859 / 0.846) and is tuned on since
  round 5;
- `eval4-tuning` and `eval4-held-aside`: `fixtures/text-eval4/`, 60 more written the same way in
  round 5 by someone who had seen no rule nor any earlier set, split the same way: the held-aside
  half was the independent figure of round 5 (0.889 / 0.865) and is tuned on since round 6;
- `eval5-tuning` and `eval5-held-aside`: `fixtures/text-eval5/`, 60 more written the same way in
  round 6 by someone who had seen no rule nor any earlier set, measured once whole and untouched,
  then split the same way: the held-aside half was the independent figure of round 6 (0.933 /
  0.933) and is tuned on since round 7;
- `eval6-tuning` and `eval6-held-aside`: `fixtures/text-eval6/`, 60 more written the same way in
  round 7 by someone who had seen no rule nor any earlier set, measured once whole and untouched,
  then split the same way: the held-aside half is the independent figure, run only to report
  (never `--show` it while tuning);
- `eval7-tuning` and `eval7-held-aside`: `fixtures/text-eval7/`, 60 more written the same way at
  the end of round 7 by someone who had seen no rule nor any earlier set but text-eval6's README
  and one dialogue, measured once whole and untouched; round 8 tunes on the tuning half and holds
  the other aside (never `--show` it);
- `eval8`: `fixtures/text-eval8/`, 60 more written in round 8 by someone who had seen no rule nor
  any earlier set but text-dev (for the format and how each rule is judged): held aside whole, run
  only to report;
- `eval9`: `fixtures/text-eval9/`, 60 more written in round 9 the same way (text-eval8's README and
  one dialogue seen for the format): held aside whole, run only to report;
- `eval10`: `fixtures/text-eval10/`, 60 more written in round 10 the same way (text-eval9's README
  and one dialogue seen for the format): held aside whole, run only to report;
- `eval11`: `fixtures/text-eval11/`, 60 more written in round 11 the same way (text-eval10's README
  and four of its dialogues seen for the format): held aside whole, run only to report;
- `eval12`: `fixtures/text-eval12/`, 60 more written at the end of round 11 the same way
  (text-eval11's README and four of its dialogues seen), after the intent models: held aside
  whole, run only to report;
- `bank-tuning` and `bank-held-aside`: `fixtures/intent-bank/`, 320 short exchanges written in
  round 11 without the rules, each labelling one forbidden family or empathy (half fail, half
  pass, the passes the hard look-alikes), measured once whole and untouched, then split by id:
  every second item is held aside, run only to report.

Transcripts are read as the pipeline reads them: key terms said by sound are written as the terms
first (`audit.measure.terms`, `[text] key_terms` and the company names).

A sidecar set labels each rule `fail`, `pass` or `na` (the rule does not apply). `na` counts as
"should not fail": a rule that fails where it does not apply accuses the agent falsely, while its
`pass` and `not_measurable` are both "no violation found". The table gives precision, recall,
TP/FP/FN/TN per rule and overall for each set; disagreements are listed only for the sets one tunes on
(`--show` lists others). The exit status is 1 when a rule of the `own` set falls below the target
(0.95) by category, as before.

    .venv/bin/python bench/rules_bench.py [--rulebook FILE] [--sets SET ...] [--show SET ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from audit.judge.checks import CHECKS, CallContext
from audit.config import Config
from audit.configload import load_config
from audit.records import CallMeta, RecordingInfo
from audit.judge.rules import Rulebook, check_rulebook, dialogue_context
from audit.measure.sidecar import read_transcript
from audit.measure.terms import correct_terms

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULEBOOK = ROOT / "configs" / "rulebook.toml"
DEFAULT_DIALOGUES = ROOT / "tests" / "data" / "dialogues.toml"
DEV_DIR = ROOT / "fixtures" / "text-dev"
EVAL_DIR = ROOT / "fixtures" / "text-eval"
EVAL2_DIR = ROOT / "fixtures" / "text-eval2"
EVAL3_DIR = ROOT / "fixtures" / "text-eval3"
EVAL4_DIR = ROOT / "fixtures" / "text-eval4"
EVAL5_DIR = ROOT / "fixtures" / "text-eval5"
EVAL6_DIR = ROOT / "fixtures" / "text-eval6"
EVAL7_DIR = ROOT / "fixtures" / "text-eval7"
EVAL8_DIR = ROOT / "fixtures" / "text-eval8"
EVAL9_DIR = ROOT / "fixtures" / "text-eval9"
EVAL10_DIR = ROOT / "fixtures" / "text-eval10"
EVAL11_DIR = ROOT / "fixtures" / "text-eval11"
EVAL12_DIR = ROOT / "fixtures" / "text-eval12"
BANK = ROOT / "fixtures" / "intent-bank" / "bank.json"
OPENING = "opening.golden_30s"
TARGET = 0.95
HELD_ASIDE_EVERY = 3  # the split of text-dev: every third dialogue (by name) is held aside
TUNING_SETS = ("own", "dev-tuning", "dev-held-aside", "eval", "eval2", "eval3-tuning", "eval3-held-aside",
               "eval4-tuning", "eval4-held-aside", "eval5-tuning", "eval5-held-aside",
               "eval6-tuning", "eval6-held-aside", "eval7-tuning", "bank-tuning")
# never eval7-held-aside, eval8 ... eval12 nor bank-held-aside
# what each set is, printed with its table
ROLES = {"own": "written with the rulebook", "dev-tuning": "tuning",
         "dev-held-aside": "held aside in round 1, tuned on since round 2",
         "eval": "independent in round 1, tuned on since round 2",
         "eval2": "independent in round 3, tuned on since round 4",
         "eval3-tuning": "independent until round 4, tuned on since",
         "eval3-held-aside": "independent until round 5, tuned on since",
         "eval4-tuning": "independent until round 5, tuned on since",
         "eval4-held-aside": "independent until round 6, tuned on since",
         "eval5-tuning": "independent until round 6, tuned on since",
         "eval5-held-aside": "independent until round 7, tuned on since",
         "eval6-tuning": "independent until round 7, tuned on since",
         "eval6-held-aside": "independent until round 8, tuned on since",
         "eval7-tuning": "independent until round 8, tuned on since",
         "eval7-held-aside": "INDEPENDENT: written without the rules or any earlier set, never tuned on",
         "eval8": "INDEPENDENT: written in round 8 without the rules or any earlier set, never tuned on",
         "eval9": "INDEPENDENT: written in round 9 without the rules or any earlier set, never tuned on",
         "eval10": "INDEPENDENT: written in round 10 without the rules or any earlier set, never tuned on",
         "eval11": "INDEPENDENT: written in round 11 without the rules or any earlier set, never tuned on",
         "eval12": "INDEPENDENT: written at the end of round 11 without the rules or any earlier set, never tuned on",
         "bank-tuning": "one-rule exchanges written in round 11 without the rules, tuned on since",
         "bank-held-aside": "INDEPENDENT: one-rule exchanges written in round 11 without the rules, never tuned on"}


@dataclass(frozen=True)
class Labelled:
    id: str
    noise: tuple[str, ...]
    call: CallContext
    fails: frozenset[str]  # the rules a reviewer fails on this dialogue
    judged: frozenset[str] | None = None  # the rules labelled; None: every rule (own set)


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


def load_dialogues(path: Path, rulebook: Rulebook,
                   company_names: tuple[str, ...] = ()) -> list[Labelled]:
    """Read the own labelled set; a label naming a rule the rulebook lacks is an error, not a miss."""
    known = {rule.id for rule in rulebook.rules}
    dialogues, seen = [], set()
    for item in tomllib.loads(path.read_text(encoding="utf-8"))["dialogue"]:
        unknown = set(item["fails"]) - known
        if unknown:
            raise ValueError(f"{path}: dialogue {item['id']} names unknown rules {sorted(unknown)}")
        if item["id"] in seen:
            raise ValueError(f"{path}: dialogue id {item['id']} is used twice")
        seen.add(item["id"])
        call = dialogue_context(list(item["turns"]), company_names)
        dialogues.append(Labelled(item["id"], tuple(item["noise"]), call, frozenset(item["fails"])))
    return dialogues


def load_sidecar_set(folder: Path, company_names: tuple[str, ...],
                     key_terms: tuple[str, ...] = (), numbered: tuple[str, ...] = ()) -> list[Labelled]:
    """Read `NAME.transcript.json` + `NAME.labels.json` pairs: a two-channel call answered at 0 s,
    its key terms read by sound as the pipeline does."""
    dialogues = []
    for labels_path in sorted(folder.glob("*.labels.json")):
        name = labels_path.name.removesuffix(".labels.json")
        document = json.loads(labels_path.read_text(encoding="utf-8"))
        transcript = read_transcript(folder / f"{name}.wav")
        if transcript is None:
            raise ValueError(f"{labels_path}: no {name}.transcript.json beside it")
        transcript = correct_terms(transcript, key_terms, numbered)
        labels = document["labels"]
        bad = {rule: value for rule, value in labels.items() if value not in ("pass", "fail", "na")}
        if bad:
            raise ValueError(f"{labels_path}: labels must be pass, fail or na: {bad}")
        duration = max(u.end for u in transcript.utterances) + 0.5
        info = RecordingInfo(path=folder / f"{name}.wav", duration_s=duration, sample_rate=8000,
                             channels=2, sha256="", format="sidecar")
        call = CallContext(recording=info, meta=CallMeta(), speech=(), transcript=transcript,
                           answer_s=0.0, answer_source="recording_start", company_names=company_names)
        noise = () if document.get("style", "punctuated") == "punctuated" else (document["style"],)
        dialogues.append(Labelled(name, noise, call,
                                  frozenset(r for r, v in labels.items() if v == "fail"),
                                  frozenset(labels)))
    return dialogues


def load_bank(path: Path, rulebook: Rulebook, company_names: tuple[str, ...]) -> list[Labelled]:
    """Read the intent bank: short exchanges, each labelling one rule only (`judged`)."""
    known = {rule.id for rule in rulebook.rules}
    items = json.loads(path.read_text(encoding="utf-8"))
    unknown = {item["rule"] for item in items} - known
    if unknown:
        raise ValueError(f"{path}: items name unknown rules {sorted(unknown)}")
    return [Labelled(item["id"], (), dialogue_context(item["dialogue"], company_names),
                     frozenset({item["rule"]}) if item["expected"] == "fail" else frozenset(),
                     frozenset({item["rule"]}))
            for item in items]


def split_every(dialogues: list[Labelled], every: int) -> tuple[list[Labelled], list[Labelled]]:
    """(tuned on, held aside): every `every`-th dialogue by name (the `every`-th, 2 x `every`-th,
    ...) is held aside. Fixed by position, so it needs no seed and mixes topics and styles the way
    the names do."""
    ordered = sorted(dialogues, key=lambda d: d.id)
    held = [d for i, d in enumerate(ordered) if i % every == every - 1]
    return [d for d in ordered if d not in held], held


def split_dev(dialogues: list[Labelled]) -> tuple[list[Labelled], list[Labelled]]:
    """The one split of text-dev, made before any tuning: every third dialogue held aside."""
    return split_every(dialogues, HELD_ASIDE_EVERY)


def judge(rulebook: Rulebook, dialogues: list[Labelled], company_names: tuple[str, ...] = (),
          config: Config | None = None) -> list[Judgement]:
    """Every enabled rule on every dialogue, next to its label; with `config`, the opening too.

    A dialogue labels some rules only (`judged`); the others are not counted. `company_names` is
    kept for callers of the older signature: each dialogue's call already carries them.
    """
    judgements = []
    for dialogue in dialogues:
        results = [(r.rule_id, r.status, r.message) for r in rulebook.evaluate(dialogue.call)]
        if config is not None and OPENING in config.rules:
            opening = CHECKS[OPENING].run(dialogue.call, config.rules[OPENING].params)
            results.append((OPENING, opening.status, opening.message))
        for rule_id, status, message in results:
            if dialogue.judged is not None and rule_id not in dialogue.judged:
                continue
            category = rulebook.rule(rule_id).category if rule_id != OPENING else "opening"
            judgements.append(Judgement(dialogue, rule_id, category, rule_id in dialogue.fails,
                                        status == "fail", message))
    return judgements


def tally(judgements: list[Judgement], key) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for judgement in judgements:
        tallies[key(judgement)].add(judgement)
    return dict(sorted(tallies.items()))


def _ratio(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.3f}"


def _table(title: str, tallies: dict[str, Tally]) -> None:
    print(f"\n{title:<28} {'prec':>5} {'recall':>6}   tp  fp  fn   tn")
    for name, t in tallies.items():
        print(f"{name:<28} {_ratio(t.precision)} {_ratio(t.recall):>6}  {t.tp:3d} {t.fp:3d} {t.fn:3d} {t.tn:4d}")


def report(name: str, judgements: list[Judgement], show: bool) -> dict[str, Tally]:
    """Print one set's tables (and its disagreements when `show`); the per-category tallies."""
    dialogues = {j.dialogue.id for j in judgements}
    print(f"\n=== {name} ({ROLES[name]}): {len(dialogues)} dialogues, {len(judgements)} judgements, "
          f"{sum(j.expected_fail for j in judgements)} labelled violations")
    _table("rule", tally(judgements, lambda j: j.rule_id))
    by_category = tally(judgements, lambda j: j.category)
    _table("all rules", tally(judgements, lambda j: "all"))
    noisy = [j for j in judgements if j.dialogue.noise]
    agree = sum(j.expected_fail == j.got_fail for j in noisy)
    print(f"noisy dialogues: {agree}/{len(noisy)} judgements agree with the labels")
    wrong = [j for j in judgements if j.expected_fail != j.got_fail]
    print(f"disagreements: {len(wrong)}" + ("" if show else " (not listed: pass --show " + name + ")"))
    if show:
        for j in wrong:
            kind = "missed" if j.expected_fail else "false alarm"
            print(f"  {kind:<11} {j.rule_id:<28} {j.dialogue.id}: {j.message}")
    return by_category


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rulebook", type=Path, default=DEFAULT_RULEBOOK)
    parser.add_argument("--dialogues", type=Path, default=DEFAULT_DIALOGUES)
    parser.add_argument("--show", nargs="*", default=list(TUNING_SETS),
                        help="sets whose disagreements are listed (default: the tuning sets)")
    parser.add_argument("--sets", nargs="*", default=None,
                        help="sets to run (default: all present); tune with: "
                             "--sets own dev-tuning dev-held-aside eval")
    args = parser.parse_args(argv)
    config = load_config()
    rulebook = check_rulebook(args.rulebook)
    rulebook.load_dictionary()
    names = config.company_names
    terms = (config.key_terms, config.text.numbered_terms)
    tuning, held = split_dev(load_sidecar_set(DEV_DIR, names, *terms))
    sets = {"own": load_dialogues(args.dialogues, rulebook, names), "dev-tuning": tuning,
            "dev-held-aside": held}
    for name, folder in (("eval", EVAL_DIR), ("eval2", EVAL2_DIR)):
        if folder.is_dir() and any(folder.glob("*.labels.json")):
            sets[name] = load_sidecar_set(folder, names, *terms)
    for name, folder in (("eval3", EVAL3_DIR), ("eval4", EVAL4_DIR), ("eval5", EVAL5_DIR), ("eval6", EVAL6_DIR),
                           ("eval7", EVAL7_DIR)):
        if folder.is_dir():
            sets[f"{name}-tuning"], sets[f"{name}-held-aside"] = split_every(
                load_sidecar_set(folder, names, *terms), 2)
    for name, folder in (("eval8", EVAL8_DIR), ("eval9", EVAL9_DIR), ("eval10", EVAL10_DIR), ("eval11", EVAL11_DIR),
                         ("eval12", EVAL12_DIR)):
        if folder.is_dir():
            sets[name] = load_sidecar_set(folder, names, *terms)
    if BANK.is_file():
        sets["bank-tuning"], sets["bank-held-aside"] = split_every(load_bank(BANK, rulebook, names), 2)
    below = []
    for name, dialogues in sets.items():
        if args.sets is not None and name not in args.sets:
            continue
        started = time.perf_counter()
        judgements = judge(rulebook, dialogues, names, None if name == "own" else config)
        elapsed = time.perf_counter() - started
        by_category = report(name, judgements, name in args.show)
        print(f"text stage: {1000 * elapsed / max(len(dialogues), 1):.1f} ms per call")
        if name == "own":
            below = [c for c, t in by_category.items()
                     if (t.precision if t.precision is not None else 1.0) < TARGET
                     or (t.recall if t.recall is not None else 1.0) < TARGET]
    if below:
        print(f"\nown dialogues below the {TARGET} target: {below}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
