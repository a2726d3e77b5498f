#!/usr/bin/env python3
"""End-to-end benchmark on the natural-voice calls in fixtures/natural/ (prints figures, asserts
nothing).

    .venv/bin/python bench/e2e_bench.py [--set natural|natural-eval|...|natural-eval9] [--model models/base.pt]
                                        [--out /tmp/e2e-bench] [--workers 1] [--fresh]

Seven sets of calls: `natural` (fixtures/natural, 12 calls the pipeline was tuned on),
`natural-eval` (fixtures/natural-eval, 12 more with other topics, wording and agent ids, held aside
until it was studied and tuned on, so now a development set too), `natural-eval2`
(fixtures/natural-eval2, written later by someone who saw neither the rules nor the tool's output:
held aside in its first round, studied and tuned on since), `natural-eval3` (fixtures/natural-eval3,
14 more written the same way, studied and tuned on since its first run), `natural-eval4` (12 more,
the same: held aside for one run, studied since), `natural-eval5` ... `natural-eval11` (12 more
each, the same), `natural-eval12` (12 more: run once untouched at the end of round 10, studied in
round 11) and `natural-eval13` (12 more, written in round 11: held aside). It audits a set twice through the project's CLI (`audit run`):

1. with the TRUE transcript (`--asr sidecar`): timing, prosody and text rules on perfect text;
2. from the audio with a real Whisper checkpoint (`--asr whisper --model ...`), when one is
   installed (default: models/base.pt, written by `audit models install base`). Without it the
   benchmark says so and stops after the sidecar run.

Per call it prints the verdict (from truth.json's expected outcomes scored with the configured
weights / from the sidecar run / from the Whisper run) and the character error rate of the Whisper
transcript against the true text (both sides normalised by audit.textnorm, speakers joined in time
order). Over all calls it prints, for both runs, the rule outcomes that disagree with truth, split
into false accusations (the tool says fail where truth says pass or na) and misses (the tool says
pass or not_measurable where truth says fail), and lists every disagreement. Calls the tool
refused to audit (listed in the run's summary.json errors) are printed with their reason and
counted apart.

The Whisper run is slow on a CPU (base: about 1-2 minutes per call on 2 busy cores); the audits
are kept in --out and reused by the next run (use --fresh to redo them). To iterate on judgement
(rules, key terms, confidence) without transcribing again, `--rejudge` audits the last Whisper
run's transcripts (text, times and word probabilities, as its records hold them) as sidecars with
the current code and config. Its figures approximate a full run (utterance times come from the
record instead of the VAD); the figures of record come from a full run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit.configload import load_config  # noqa: E402
from audit.records import Transcript, Utterance, Word  # noqa: E402
from audit.textnorm import normalize  # noqa: E402
from audit.measure.turns import join_continuations  # noqa: E402

SETS = {name: ROOT / "fixtures" / name for name in ("natural", "natural-eval", "natural-eval2", "natural-eval3",
                                                            "natural-eval4", "natural-eval5", "natural-eval6",
                                                            "natural-eval7", "natural-eval8",
                                                            "natural-eval9", "natural-eval10", "natural-eval11",
                                                            "natural-eval12", "natural-eval13")}
AUDIT = ROOT / ".venv" / "bin" / "audit"


def run_audit(fixtures: Path, out: Path, asr: str, model: str | None, workers: int,
              fresh: bool) -> tuple[dict[str, dict], float]:
    """Audit the fixtures into `out`; the call records keyed by recording stem. The CLI skips calls
    `out` already holds with the same audio, sidecars, config and model (so a rerun after a
    Whisper run costs nothing); `fresh` starts from an empty folder."""
    if fresh and out.exists():
        shutil.rmtree(out)
    command = [str(AUDIT) if AUDIT.exists() else "audit", "run", str(fixtures), "--out", str(out),
               "--asr", asr, "--workers", str(workers)]
    if model:
        command += ["--model", model]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
        raise SystemExit(f"audit run --asr {asr} exited with {done.returncode}")
    return read_records(out), seconds


def read_records(out: Path) -> dict[str, dict]:
    """The call records of an output folder keyed by recording stem; a call the run refused holds
    {"error": reason}."""
    records = {}
    # oldest first, so that of two records of one recording (audited from two checkouts, under two
    # call ids) the latest is kept
    for path in sorted((out / "calls").glob("*.json"), key=lambda p: p.stat().st_mtime):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[Path(record["recording"]["path"]).stem] = record
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for error in summary.get("errors", []):
        stem = Path(error["path"]).stem
        records.pop(stem, None)  # an older record of a call that now fails is not this run's
        records[stem] = {"error": error["reason"]}
    return records


def rejudge_input(fixtures: Path, records: dict[str, dict], folder: Path, join_gap_s: float) -> Path:
    """A folder of the recordings (linked), their metadata and, as sidecars, the transcripts the
    Whisper run wrote, words and their probabilities included, its pieces joined into sentences
    as the pipeline joins a Whisper transcript now (`[text] join_gap_s`)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for stem, record in records.items():
        if "error" in record:
            continue
        (folder / f"{stem}.wav").symlink_to((fixtures / f"{stem}.wav").resolve())
        shutil.copy(fixtures / f"{stem}.meta.json", folder / f"{stem}.meta.json")
        heard = Transcript("whisper", tuple(
            Utterance(u["speaker"], u["start"], u["end"], u["text"],
                      tuple(Word(w["start"], w["end"], w["text"], w["probability"]) for w in u.get("words", [])))
            for u in record["utterances"]))
        utterances = []
        for u in join_continuations(heard, join_gap_s).utterances:
            said = {"speaker": u.speaker, "start": u.start, "end": u.end, "text": u.text}
            words = [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
                     for w in u.words]
            utterances.append({**said, "words": words} if words else said)
        (folder / f"{stem}.transcript.json").write_text(
            json.dumps({"utterances": utterances}, ensure_ascii=False), encoding="utf-8")
    return folder


def statuses(record: dict) -> dict[str, str]:
    return {r["rule_id"]: r["status"] for r in record["results"]}


def truth_verdict(expected: dict[str, str], config) -> str:
    """The verdict the tool's scoring gives to truth's outcomes (na deducts nothing)."""
    severity = {**{r.id: r.severity for r in config.rulebook.rules},
                **{k: v.severity for k, v in config.rules.items()}}
    weights = config.weights
    failed = [rule for rule, status in expected.items() if status == "fail"]
    score = max(0.0, 100.0 - sum(weights.get(rule, 0.0) for rule in failed))
    if any(severity.get(rule) == "critical" for rule in failed) or score < config.scoring.fail_below:
        return f"fail {score:g}"
    return f"{'review' if failed else 'pass'} {score:g}"


def _verdict(record: dict | None) -> str:
    if record is None or "error" in record:
        return "not audited"
    return f"{record['verdict']} {record['score']:g}"


def cer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance, reference length) over normalised characters."""
    ref, hyp = list(reference), list(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1], len(ref)


def joined_text(utterances: list[dict]) -> str:
    ordered = sorted(utterances, key=lambda u: u["start"])
    return "".join(normalize(u["text"]).text for u in ordered)


def compare(truth: dict, records: dict[str, dict]) -> tuple[list, list, list, int, list]:
    """(false accusations, misses, findings sent to a reviewer as unsure, outcomes compared, calls
    not audited with the reason). An `unsure` finding (resting on words the ASR doubted) accuses
    nobody and lets nothing through unseen: it is counted apart."""
    accusations, misses, unsure, compared, refused = [], [], [], 0, []
    for name, call in truth.items():
        record = records.get(name)
        if record is None or "error" in record:
            refused.append((name, record["error"] if record else "no record"))
            continue
        got = statuses(record)
        messages = {r["rule_id"]: r["message"] for r in record["results"]}
        for rule, want in call["expected"].items():
            status = got.get(rule, "missing")
            compared += 1
            row = (name, rule, want, status, messages.get(rule, ""))
            if status == "unsure":
                unsure.append(row)
            elif status == "fail" and want in ("pass", "na"):
                accusations.append(row)
            elif want == "fail" and status != "fail":
                misses.append(row)
    return accusations, misses, unsure, compared, refused


def report(label: str, truth: dict, records: dict[str, dict]) -> None:
    accusations, misses, unsure, compared, refused = compare(truth, records)
    agree = compared - len(accusations) - len(misses) - len(unsure)
    print(f"\n{label}: {agree}/{compared} rule outcomes agree with truth; "
          f"{len(accusations)} false accusations, {len(misses)} misses, "
          f"{len(unsure)} sent to review as unsure ({sum(r[2] == 'fail' for r in unsure)} of them true "
          f"violations); {len(refused)} of {len(truth)} calls not audited")
    for name, reason in refused:
        print(f"  {'not audited':16} {name:24} {reason[:140]}")
    for kind, rows in (("false accusation", accusations), ("miss", misses), ("unsure", unsure)):
        for name, rule, want, status, message in rows:
            print(f"  {kind:16} {name:24} {rule:28} truth {want:4} tool {status:14} {message[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="natural",
                        help="the calls: natural, natural-eval ... natural-eval13 (each run once "
                             "untouched, then studied)")
    parser.add_argument("--model", default="models/base.pt",
                        help="Whisper checkpoint or CTranslate2 folder, relative to the repository "
                             "root (default models/base.pt)")
    parser.add_argument("--out", default="/tmp/e2e-bench", help="scratch folder for the two runs")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fresh", action="store_true",
                        help="re-audit everything (default: keep what --out already holds)")
    parser.add_argument("--rejudge", action="store_true",
                        help="judge the last Whisper run's transcripts again with the current code and "
                             "config, without transcribing (for iterating; approximate figures)")
    args = parser.parse_args()

    fixtures = SETS[args.set]
    truth = json.loads((fixtures / "truth.json").read_text(encoding="utf-8"))["calls"]
    config = load_config()
    out = Path(args.out) / args.set
    print(f"fixtures/{fixtures.name}: {len(truth)} calls, "
          f"{sum(c['duration_s'] for c in truth.values()):.0f} s of audio")

    sidecar, sidecar_s = run_audit(fixtures, out / "sidecar", "sidecar", None, args.workers, args.fresh)
    print(f"sidecar run: {sidecar_s:.1f} s")
    whisper = None
    model = Path(args.model)
    if args.rejudge:
        if not (out / "whisper" / "calls").is_dir():
            raise SystemExit(f"--rejudge: no Whisper run in {out / 'whisper'} yet (run once without it)")
        heard = read_records(out / "whisper")
        whisper, whisper_s = run_audit(rejudge_input(fixtures, heard, out / "rejudge-in", config.text.join_gap_s), out / "rejudged",
                                       "sidecar", None, args.workers, True)
        print(f"whisper transcripts of {out / 'whisper'} judged again: {whisper_s:.1f} s")
    elif (ROOT / model).exists():
        whisper, whisper_s = run_audit(fixtures, out / "whisper", "whisper", str(model), args.workers,
                                         args.fresh)
        print(f"whisper run ({model.name}): {whisper_s:.1f} s")
    else:
        print(f"no Whisper model at {model} (install one: audit models install base); "
              "the Whisper run is skipped")

    print(f"\n{'call':24} {'truth':12} {'sidecar':12} {'whisper':12} {'CER':>6}")
    errors = chars = 0
    same = {"sidecar": 0, "whisper": 0}  # verdicts (pass / review / fail) as truth's
    for name, call in truth.items():
        side = sidecar.get(name)
        row = [truth_verdict(call["expected"], config), _verdict(side)]
        same["sidecar"] += row[1].split()[0] == row[0].split()[0]
        rate = ""
        if whisper is not None:
            rec = whisper.get(name)
            row.append(_verdict(rec))
            same["whisper"] += row[2].split()[0] == row[0].split()[0]
            if rec and "error" not in rec:
                e, n = cer(joined_text(call["utterances"]), joined_text(rec["utterances"]))
                errors, chars = errors + e, chars + n
                rate = f"{e / max(n, 1):.1%}"
        else:
            row.append("-")
        print(f"{name:24} {row[0]:12} {row[1]:12} {row[2]:12} {rate:>6}")
    if whisper is not None and chars:
        print(f"{'all':24} {'':12} {'':12} {'':12} {errors / chars:.1%}")
    print(f"verdicts as truth's: sidecar {same['sidecar']}/{len(truth)}"
          + (f", whisper {same['whisper']}/{len(truth)}" if whisper is not None else ""))

    report("sidecar (true transcript)", truth, sidecar)
    if whisper is not None:
        report(f"whisper ({model.name}{', judged again' if args.rejudge else ''})", truth, whisper)


if __name__ == "__main__":
    main()
