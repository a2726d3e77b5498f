"""Unbounded work (issue 16, item 10): a call whose sidecar holds 50,000 one-character utterances.

The compliant sample call is laid end to end into a 10-minute two-channel call, and its transcript
is cut into 50,000 one-character utterances, each on the time (and speaker) of the character it
came from, with 你 in place of every fourth character (a polite-address finding each) and 喂 on
every seventh (a call ending with 喂喂 is no closing). The call is audited with `audit run --asr
sidecar`, then `audit report` rebuilds its page. Printed: the wall time of both commands, the
time of each stage (measured in this process, the same code run in-process), the evidence items
kept and found per finding ([report] max_evidence caps them) and the size of the report's audio.
`--profile` also prints the 25 functions taking the most cumulative time in the in-process run.

Asserts nothing: it prints what happened.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CALLS = ROOT / "fixtures" / "calls"


def tiny_call(folder: Path, utterances: int, minutes: float, name: str = "tiny") -> Path:
    """`name.wav` (the compliant call laid end to end for `minutes`) with a sidecar of
    `utterances` one-character utterances on the call's own speech; returns the recording."""
    samples, rate = soundfile.read(CALLS / "compliant.wav", dtype="float32", always_2d=True)
    source = json.loads((CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))["utterances"]
    tile_s = len(samples) / rate
    tiles = max(1, round(minutes * 60 / tile_s))
    # each character of the transcript, with the time it takes in its utterance
    chars = [(u["speaker"], u["start"] + i * (u["end"] - u["start"]) / len(u["text"]),
              (u["end"] - u["start"]) / len(u["text"]), c)
             for u in source for i, c in enumerate(u["text"])]
    per_tile = -(-utterances // tiles)
    made = []
    for n in range(utterances):
        tile, k = divmod(n, per_tile)
        speaker, start, length, char = chars[k * len(chars) // per_tile]
        share = length * len(chars) / per_tile  # time left to each of the utterances on this character
        offset = (k * len(chars) / per_tile) % 1 * length
        char = "你" if n % 4 == 0 else "喂" if n % 7 == 0 else char
        begin = tile * tile_s + start + offset
        made.append({"speaker": speaker, "start": round(begin, 4),
                     "end": round(begin + max(share, 0.002), 4), "text": char})
    folder.mkdir(parents=True, exist_ok=True)
    soundfile.write(folder / f"{name}.wav", np.tile(samples, (tiles, 1)), rate, subtype="PCM_16")
    (folder / f"{name}.transcript.json").write_text(json.dumps({"utterances": made}, ensure_ascii=False),
                                                   encoding="utf-8")
    meta = json.loads((CALLS / "compliant.meta.json").read_text(encoding="utf-8"))
    (folder / f"{name}.meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder / f"{name}.wav"


# --- stage times --------------------------------------------------------------------------------


class Stages:
    """Wall time spent in named functions, by wrapping them where the pipeline looks them up."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def wrap(self, owner, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        setattr(owner, attribute, timed)
        self._undo.append((owner, attribute, original))

    @contextmanager
    def wrapped(self):
        from audit.measure import decode, sidecar
        from audit.present import store
        from audit.run import batch, pipeline, work
        from audit.present.report import build as report

        for owner, attribute, label in (
                (decode, "decode", "decode (run and report)"), (decode, "resample", "resample"),
                (pipeline, "find_speech", "speech (VAD)"), (sidecar, "read_transcript", "sidecar transcript"),
                (pipeline, "disagreements", "agreement"), (pipeline, "measure_timing", "timing"),
                (pipeline, "measure_prosody", "prosody"), (pipeline, "run_checks", "checks"),
                (pipeline, "score_call", "scoring"), (work, "call_record", "record"),
                (batch, "write_json", "JSON files"), (store.ResultsDB, "save_call", "database"),
                (batch, "_summary", "summary"), (report, "load_recording", "report: decode"), (report, "write_call_audio", "report: encode audio"),
                (report, "plan_pages", "report: plan"), (report, "CallContent", "report: content"),
                (report, "write_index", "report: index")):
            self.wrap(owner, attribute, label)
        try:
            yield self
        finally:
            for owner, attribute, original in reversed(self._undo):
                setattr(owner, attribute, original)
            self._undo.clear()


def in_process(folder: Path, out: Path, profile: bool) -> tuple[dict[str, float], dict[str, float]]:
    from audit.run.batch import BatchOptions, run_batch
    from audit.configload import load_config
    from audit.present.report import write_report

    config = load_config()
    stages, totals = Stages(), {}
    profiler = cProfile.Profile() if profile else None
    with stages.wrapped():
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        run_batch([folder], out, config, BatchOptions(asr_mode="sidecar", workers=1))
        totals["run"] = time.perf_counter() - started
        started = time.perf_counter()
        write_report(out, config, workers=1)
        totals["report"] = time.perf_counter() - started
        if profiler:
            profiler.disable()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return dict(stages.seconds), totals


def findings(out: Path) -> list[tuple[str, int, int]]:
    (record_file,) = (out / "calls").glob("*.json")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    return [(r["rule_id"], len(r["evidence"]), r["details"].get("evidence_total", len(r["evidence"])))
            for r in record["results"] if r["evidence"]]


def audio_mb(out: Path) -> float:
    """The report's audio: the flagged call's Ogg Opus file."""
    return sum(p.stat().st_size for p in (out / "report" / "audio").glob("*")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=50_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top 25 (in-process run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as temporary:
        root = Path(temporary)
        recording = tiny_call(root / "night", args.utterances, args.minutes)
        duration = soundfile.info(recording).duration
        print(f"{args.utterances} one-character utterances on a {duration / 60:.1f}-minute two-channel call\n")
        command = [sys.executable, "-m", "audit"]
        started = time.perf_counter()
        done = subprocess.run([*command, "run", str(root / "night"), "--out", str(root / "cli"),
                               "--asr", "sidecar", "--workers", "1"], capture_output=True, text=True, cwd=ROOT)
        run_s = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"audit run exit {done.returncode}: {done.stderr[-2000:]}")
        (root / "cli" / "report" / "build.json").unlink()  # `audit report` builds the page again
        started = time.perf_counter()
        built = subprocess.run([*command, "report", str(root / "cli")], capture_output=True, text=True, cwd=ROOT)
        report_s = time.perf_counter() - started
        if built.returncode != 0:
            raise SystemExit(f"audit report exit {built.returncode}: {built.stderr[-2000:]}")
        print(f"audit run (with its report): {run_s:6.1f} s wall")
        print(f"audit report (page rebuilt): {report_s:6.1f} s wall\n")
        seconds, totals = in_process(root / "night", root / "inproc", args.profile)
        print(f"in process: run {totals['run']:.1f} s, report {totals['report']:.1f} s; by stage:")
        for label, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
            print(f"  {label:22} {value:7.2f} s")
        found = findings(root / "cli")
        print(f"\nevidence per finding (kept / found): "
              + ", ".join(f"{rule} {kept}/{total}" for rule, kept, total in found))
        print(f"evidence items kept: {sum(k for _, k, _ in found)} (found: {sum(t for _, _, t in found)}); "
              f"audio in the report: {audio_mb(root / 'cli'):.2f} MB")


if __name__ == "__main__":
    main()
