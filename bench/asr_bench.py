"""ASR accuracy and cost: this tool against plain Whisper: `make bench` (or run this file).

Accuracy, on real weights (the Whisper base `make install` puts in models/): the real Mandarin
clips of fixtures/real-dev (read speech, transcripts in its manifest.tsv) laid as the turns of
two-channel 8 kHz G.711 mu-law calls (four turns a call, agent and customer in turn, each at -20
dBFS, line noise 30 dB under the speech) and audited from the audio by `audit run` with each engine, against plain
openai-whisper on the 16 kHz original clips with beam 5 (`whisper.transcribe`, no prompt; its text
in simplified characters, as the tool's is): CER (character edits over reference characters,
punctuation ignored) and wall time of each, each in its own process, for all clips and for the
tuning and held-aside parts of fixtures/real-dev/split.tsv; then a table of decoding variants
(`DECODING_VARIANTS`: beam, hotwords, merge gap, prompt) with faster-whisper on the same calls.

Cost, on generated calls (below):

The calls are two-channel 8 kHz mu-law recordings of several minutes with the structure of a real
service call: ringback, the agent's opening, turns of one to three sentences with 0.3-1.5 s between
turns, the agent going quiet for 3-10 s after a quarter of the customer's turns (looking something
up), one hold of 30-90 s (music or silence) and the closing; line noise 30 dB under the speech.

Side by side, each in its own fresh process, one after the other on the same machine:
- this tool: `audit run` with the Whisper backend (run in-process through `run_batch`, with light
  timers wrapped around each pipeline stage from here, so no timing code lives in the pipeline);
- the plain baseline: the `whisper` command line over each channel of the same recordings (the CLI
  mixes stereo down to mono, which loses who spoke, so the channels are first written out as mono
  files; one process, the model loaded once; same model, device and decoding options as the tool:
  language, prompt on every window, greedy, the fallback thresholds, word timestamps, no
  conditioning on previous text), then librosa prosody over whole channels (pyin + rms at the
  native rate).

Real Whisper weights cannot be downloaded here, so by default the benchmark builds a checkpoint
with the real dimensions (`--dims`) and random weights. A random model never ends a window by
itself and fails every temperature of the fallback, so decoding length is capped in the checkpoint
(its text context is twice `--max-tokens`; whisper decodes at most half the text context), which
caps both sides the same way with no change to either program. `--model` takes a real model name
or checkpoint instead. Audio given to the model and the number of 30-s windows are exact and do
not depend on the weights; wall time and memory do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from synthcalls import RATE, SPEECH_DBFS, _ringback, hold_music, speech_clips  # noqa: E402

WHISPER_CLI = Path(sys.executable).parent / "whisper"
REAL_DEV = ROOT / "fixtures" / "real-dev"
NATURAL = ROOT / "fixtures" / "natural"
MODELS = ROOT / "models"
ENGINES = ("openai-whisper", "faster-whisper")
TURNS_PER_CALL = 4
DIMS = {  # the published model dimensions (the `dims` of the official checkpoints)
    "tiny": {"n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
             "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4},
    "base": {"n_audio_state": 512, "n_audio_head": 8, "n_audio_layer": 6,
             "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6},
    "small": {"n_audio_state": 768, "n_audio_head": 12, "n_audio_layer": 12,
              "n_text_state": 768, "n_text_head": 12, "n_text_layer": 12},
}
PIPELINE_STAGES = ("read + decode file", "resample to 16 kHz", "voice activity", "ASR", "timing",
                   "prosody", "checks", "scoring")
ASR_PARTS = ("log-mel", "encode", "decode", "word alignment")  # of the openai-whisper engine


# --- inputs --------------------------------------------------------------------------------------


def build_checkpoint(dims: str, max_tokens: int, path: Path) -> Path:
    """Random weights in the real `dims`; the text context caps decoding at `max_tokens`."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    shape = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_vocab=51865, n_text_ctx=2 * max_tokens, **DIMS[dims])
    model = Whisper(shape)
    model.decoder.positional_embedding.data.normal_(0, 0.02)  # whisper leaves it torch.empty
    torch.save({"dims": shape.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


def realistic_call(seed: int, minutes: float) -> tuple[np.ndarray, dict[str, float]]:
    """A (frames, 2) call of about `minutes`, agent on channel 0, and each side's talk seconds."""
    rng = np.random.default_rng(seed)
    clips = speech_clips()
    ring, _ = _ringback("cn", int(rng.integers(2, 6)), float(rng.uniform(0.3, 4.8)))
    answer = 0.5 + len(ring) / RATE
    tracks: dict[str, list[tuple[float, np.ndarray]]] = {"agent": [], "customer": []}
    hold_at, hold = minutes * 60 * rng.uniform(0.3, 0.6), None
    t, speaker = answer + rng.uniform(0.5, 2.0), "agent"
    while t < minutes * 60 - 10 or speaker == "customer":
        for _ in range(int(rng.integers(1, 4 if speaker == "agent" else 5))):
            clip = clips[speaker][int(rng.integers(len(clips[speaker])))]
            tracks[speaker].append((t, clip))
            t += len(clip) / RATE + rng.uniform(0.2, 0.8)
        if speaker == "agent" and hold is None and t > hold_at:
            hold = (t, t + rng.uniform(30.0, 90.0), rng.random() < 0.5)
            t = hold[1] + 0.5  # the agent comes back and goes on
            continue
        pause = rng.uniform(3.0, 10.0) if speaker == "customer" and rng.random() < 0.25 else rng.uniform(0.3, 1.5)
        t, speaker = t + pause, "customer" if speaker == "agent" else "agent"
    audio = np.zeros((int((t + 1.0) * RATE), 2), np.float32)
    audio[int(0.5 * RATE): int(0.5 * RATE) + len(ring), 1] += ring
    for channel, name in enumerate(tracks):
        for onset, clip in tracks[name]:
            audio[int(onset * RATE): int(onset * RATE) + len(clip), channel] += clip
    if hold[2]:
        tune = hold_music(hold[1] - hold[0] - 1.0, rng)
        audio[int((hold[0] + 0.5) * RATE): int((hold[0] + 0.5) * RATE) + len(tune), 0] += tune
    audio += rng.standard_normal(audio.shape).astype(np.float32) * 10 ** ((SPEECH_DBFS - 30) / 20)
    audio[: int(answer * RATE), 0] = 0.0  # the agent's line opens at the answer
    talk = {name: sum(len(c) for _, c in track) / RATE for name, track in tracks.items()}
    return np.clip(audio, -1, 1), talk


# --- the two sides, each run as a child process --------------------------------------------------


def run_child(command: list[str], log: Path) -> dict:
    """Run a process to its end: wall seconds, its peak resident memory and its stdout."""
    started = time.perf_counter()
    with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed:\n{log.with_suffix('.err').read_text()[-3000:]}")
    return {"wall_s": wall, "peak_mb": usage.ru_maxrss / 1024, "stdout": log.read_text()}


def tool_side(model: str, out: Path, files: list[Path]) -> None:
    """(child) `audit run --asr whisper` in this process, with a timer around every stage."""
    import whisper.model
    import whisper.timing

    from audit.measure import decode
    from audit.run import batch, pipeline
    from audit.measure.asr import FasterWhisperTranscriber, WhisperTranscriber
    from audit.configload import load_config

    seconds: Counter = Counter()
    windows: list = []
    for owner, name, stage in (
        (decode, "decode", "read + decode file"), (decode, "resample", "resample to 16 kHz"),
        (pipeline, "find_speech", "voice activity"), (pipeline.AsrChoice, "transcript", "ASR"),
        (pipeline, "measure_timing", "timing"), (pipeline, "measure_prosody", "prosody"),
        (pipeline, "run_checks", "checks"), (pipeline, "score_call", "scoring"),
        (WhisperTranscriber, "__init__", "model load"), (FasterWhisperTranscriber, "__init__", "model load"),
        (batch, "load_models", "model load"),
        (WhisperTranscriber, "_mel", "log-mel"),
        (whisper.model.Whisper, "embed_audio", "encode"),
        (WhisperTranscriber, "_decode", "decode"),
        (whisper.timing, "add_word_timestamps", "word alignment"),
    ):
        setattr(owner, name, _timed(getattr(owner, name), stage, seconds))
    for engine in (WhisperTranscriber, FasterWhisperTranscriber):  # every window of every round
        engine._decode_windows = _counting(engine._decode_windows, windows)
    per_call: list[dict] = []
    audit_one = batch.audit_job
    batch.audit_job = lambda *args: _counted(audit_one, args, seconds, per_call)
    started = time.perf_counter()
    report = batch.run_batch(files, out, load_config(), batch.BatchOptions("whisper", model, "cpu"))
    seconds["run"] = time.perf_counter() - started
    if report.document["errors"]:
        raise SystemExit(f"audit errors: {report.document['errors']}")
    print(json.dumps({"seconds": seconds, "per_call": per_call, "windows": len(windows),
                      "model_audio_s": sum(w.samples for w in windows) / 16000}))


def _counting(decode_windows, into: list):
    def counted(self, audio, batch):
        into.extend(batch)
        yield from decode_windows(self, audio, batch)
    return counted


def _timed(real, stage: str, seconds: Counter):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds[stage] += time.perf_counter() - started
    return timed


def _counted(audit_one, args: tuple, seconds: Counter, per_call: list[dict]):
    """Audit one call, keeping its own stage times (the first call also pays one-time costs)."""
    before = Counter(seconds)
    started = time.perf_counter()
    outcome = audit_one(*args)
    per_call.append({**{stage: seconds[stage] - before[stage] for stage in seconds},
                     "call": time.perf_counter() - started})
    return outcome


def baseline_prosody(files: list[Path]) -> None:
    """(child) What a team writes first for prosody: librosa pyin and rms over each whole channel."""
    import librosa

    seconds: Counter = Counter()
    for path in files:
        started = time.perf_counter()
        channels, rate = librosa.load(path, sr=None, mono=False)
        seconds["load"] += time.perf_counter() - started
        for samples in channels:
            started = time.perf_counter()
            librosa.pyin(samples, fmin=60.0, fmax=500.0, sr=rate)
            seconds["pyin"] += time.perf_counter() - started
            started = time.perf_counter()
            librosa.feature.rms(y=samples)
            seconds["rms"] += time.perf_counter() - started
    print(json.dumps({"seconds": seconds}))


def whisper_command(model: str, files: list[Path], out: Path) -> list[str]:
    """The whisper CLI with the tool's decoding options, so only what is decoded differs."""
    from audit.configload import load_config

    asr = load_config().asr
    return [str(WHISPER_CLI), *map(str, files), "--model", model, "--device", "cpu",
            "--output_dir", str(out), "--output_format", "json", "--verbose", "False", "--fp16", "False",
            "--language", asr.language, "--initial_prompt", asr.initial_prompt,
            "--carry_initial_prompt", "True", "--condition_on_previous_text", "False",
            "--word_timestamps", "True", "--best_of", "None",
            "--beam_size", str(asr.beam_size) if asr.beam_size > 1 else "None",
            "--no_speech_threshold", str(asr.no_speech_threshold),
            "--logprob_threshold", str(asr.logprob_threshold),
            "--compression_ratio_threshold", str(asr.compression_ratio_threshold)]


def child(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


# --- the comparison ------------------------------------------------------------------------------


def split_channels(files: list[Path], folder: Path) -> list[Path]:
    """One mono file per channel: the whisper CLI mixes a stereo file down to mono, which loses
    who said what, so the baseline transcribes each side on its own."""
    folder.mkdir()
    sides = []
    for path in files:
        audio, rate = soundfile.read(path, dtype="float32")
        for channel, side in enumerate(("agent", "customer")):
            sides.append(folder / f"{path.stem}-{side}.wav")
            soundfile.write(sides[-1], audio[:, channel], rate, subtype="ULAW")
    return sides


def compare(model: str, files: list[Path], work: Path) -> dict:
    tool = run_child(child("tool", model, str(work / "tool-out"), *map(str, files)), work / "tool.log")
    sides = split_channels(files, work / "sides")
    cli = run_child(whisper_command(model, sides, work / "cli-out"), work / "cli.log")
    prosody = run_child(child("prosody", *map(str, files)), work / "prosody.log")
    decoded = [json.loads((work / "cli-out" / f"{f.stem}.json").read_text()) for f in sides]
    return {
        "tool": tool | json.loads(tool["stdout"]),
        "cli": cli | {"windows_run": sum(len({s["seek"] for s in d["segments"]}) for d in decoded)},
        "prosody": prosody | json.loads(prosody["stdout"]),
    }


def report(found: dict, durations: list[float], talk: dict[str, float], label: str) -> None:
    tool, cli, prosody = found["tool"], found["cli"], found["prosody"]
    length = sum(durations)
    baseline_wall = cli["wall_s"] + prosody["wall_s"]
    baseline_peak = max(cli["peak_mb"], prosody["peak_mb"])
    nominal = sum(2 * math.ceil(d / 30.0) for d in durations)  # both channels, whole
    print(f"\n{label}")
    print(f"{len(durations)} calls, {length / 60:.1f} min of two-channel 8 kHz audio; the agent talks "
          f"{talk['agent'] / length:.0%} and the customer {talk['customer'] / length:.0%} of the time")
    print(f"{'':<34}{'this tool':>12}{'baseline':>12}{'ratio':>8}")
    rows = [("wall time (s)", tool["wall_s"], baseline_wall),
            ("peak memory (MB)", tool["peak_mb"], baseline_peak),
            ("audio given to the model (s/s)", tool["model_audio_s"] / length, 2.0),
            ("30-s windows decoded", tool["windows"], nominal)]
    for name, mine, theirs in rows:
        print(f"{name:<34}{mine:>12.2f}{theirs:>12.2f}{mine / theirs:>8.2f}")
    print(f"  (the baseline's {nominal} windows are the fewest whisper can decode its audio in; "
          f"this run it decoded {cli['windows_run']}, going back over each window's tail. Against one "
          f"pass over the mono mix, which loses who spoke, the tool's audio is "
          f"{tool['model_audio_s'] / length:.2f}x)")
    seconds = tool["seconds"]
    total = tool["wall_s"]
    print(f"\nthis tool, share of its {total:.1f} s:")
    shares = {"process start + imports": total - seconds["run"],
              "model load (Whisper, VAD, dictionary)": seconds["model load"]}
    for stage in PIPELINE_STAGES:
        shares[stage] = seconds[stage]
    shares["batch (hashing, records, database)"] = seconds["run"] - sum(seconds[s] for s in PIPELINE_STAGES) \
        - seconds["model load"]
    for stage, value in shares.items():
        print(f"  {stage:<38}{value:>8.1f} s {value / total:>6.1%}")
        if stage == "ASR":
            for part in ASR_PARTS:
                print(f"    {part:<36}{seconds[part]:>8.1f} s {seconds[part] / total:>6.1%}")
    non_asr = sum(seconds[s] for s in PIPELINE_STAGES if s != "ASR")
    print(f"  non-ASR pipeline stages together: {non_asr / total:.1%} of the total, "
          f"{non_asr / seconds['ASR']:.1%} of the ASR time")
    for number, call in enumerate(tool["per_call"], 1):
        own = sum(call.get(s, 0.0) for s in PIPELINE_STAGES if s != "ASR")
        print(f"    call {number}: non-ASR {own:.1f} s of its {call['call']:.1f} s ({own / call['call']:.1%}): "
              + ", ".join(f"{s} {call.get(s, 0.0):.1f}" for s in PIPELINE_STAGES if s != "ASR"))
    print(f"baseline, share of its {baseline_wall:.1f} s:")
    print(f"  {'whisper CLI (start, load, mel, decode)':<38}{cli['wall_s']:>8.1f} s {cli['wall_s'] / baseline_wall:>6.1%}")
    print(f"  {'librosa prosody process':<38}{prosody['wall_s']:>8.1f} s {prosody['wall_s'] / baseline_wall:>6.1%}")
    for part, value in prosody["seconds"].items():
        print(f"    {part:<36}{value:>8.1f} s {value / baseline_wall:>6.1%}")


def long_call_memory(model: str, minutes: float, work: Path) -> None:
    audio, _ = realistic_call(60, minutes)
    path = work / "long" / "long.wav"
    path.parent.mkdir()
    soundfile.write(path, audio, RATE, subtype="ULAW")
    del audio
    found = run_child(child("tool", model, str(work / "long-out"), str(path)), work / "long.log")
    found |= json.loads(found["stdout"])
    print(f"\n{minutes:.0f}-minute two-channel call, this tool: peak memory {found['peak_mb']:.0f} MB, "
          f"wall {found['wall_s']:.0f} s, {found['windows']} windows, "
          f"{found['model_audio_s'] / (minutes * 60):.2f} s of audio to the model per s")


# --- accuracy on real weights --------------------------------------------------------------------


def real_clips() -> list[tuple[Path, str]]:
    rows = [line.split("\t") for line in (REAL_DEV / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    return [(REAL_DEV / row[0], row[4]) for row in rows]


def split_part() -> dict[str, str]:
    """clip file name -> "tuning" or "held aside" (fixtures/real-dev/split.tsv, fixed in issue 13)."""
    lines = [line.split("\t") for line in (REAL_DEV / "split.tsv").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    return {row[0]: row[3].replace("held-aside", "held aside") for row in lines[1:]}


def clip_calls(folder: Path) -> list[tuple[Path, list[dict]]]:
    """The real clips as two-channel 8 kHz mu-law calls of TURNS_PER_CALL turns, with each turn's
    speaker, span and reference text."""
    import soxr

    clips = real_clips()
    rng = np.random.default_rng(19)
    calls = []
    folder.mkdir(parents=True)
    for first in range(0, len(clips), TURNS_PER_CALL):
        tracks = np.zeros((2, 120 * RATE), np.float32)
        turns, at = [], 1.0
        for number, (path, text) in enumerate(clips[first: first + TURNS_PER_CALL]):
            samples, rate = soundfile.read(path, dtype="float32")
            samples = soxr.resample(samples, rate, RATE)
            samples *= 10 ** (SPEECH_DBFS / 20) / np.sqrt(np.mean(samples ** 2))
            start = round(at * RATE)
            tracks[number % 2, start: start + len(samples)] += samples
            turns.append({"speaker": ("agent", "customer")[number % 2], "start": at,
                          "end": at + len(samples) / RATE, "text": text, "clip": path.name})
            at += len(samples) / RATE + 0.8
        tracks = tracks[:, : round((at + 1.0) * RATE)]
        tracks += rng.standard_normal(tracks.shape).astype(np.float32) * 10 ** ((SPEECH_DBFS - 30) / 20)
        path = folder / f"clips{first // TURNS_PER_CALL:02d}.wav"
        soundfile.write(path, np.clip(tracks.T, -1, 1), RATE, subtype="ULAW")
        calls.append((path, turns))
    return calls


def edits(hypothesis: str, reference: str) -> tuple[int, int]:
    """(character edits, reference characters), punctuation and spaces ignored."""
    from rapidfuzz.distance import Levenshtein

    strip = lambda text: re.sub(r"[\W_]+", "", text)  # noqa: E731
    return Levenshtein.distance(strip(hypothesis), strip(reference)), len(strip(reference))


def plain_whisper_side(model: str) -> None:
    """(child) Plain openai-whisper on each 16 kHz original clip: beam 5, no prompt. Its text is
    compared in simplified characters, as the tool's is (base writes about half these clips in
    traditional ones, which are no mishearing); `clips_raw` counts them as errors."""
    import whisper

    from audit.textnorm import to_simplified

    network = whisper.load_model(model, device="cpu")
    clips, raw = {}, {}
    started = time.perf_counter()
    for path, text in real_clips():
        audio, rate = soundfile.read(path, dtype="float32")  # 16 kHz mono: whisper's own input
        assert rate == 16000, path
        heard = whisper.transcribe(network, audio, language="zh", beam_size=5, best_of=5, fp16=False)["text"]
        clips[path.name] = edits(to_simplified(heard), text)
        raw[path.name] = edits(heard, text)
    print(json.dumps({"clips": clips, "clips_raw": raw, "asr_s": time.perf_counter() - started}))


def engine_side(engine: str, out: Path, calls: Path, asr_changes: str = "{}") -> None:
    """(child) `audit run --asr whisper --engine ENGINE` over the clip calls, with the `[asr]`
    settings `asr_changes` (JSON) changed from the defaults; CER per turn."""
    import dataclasses

    from audit.run import batch, pipeline
    from audit.configload import load_config

    turns = json.loads((calls / "turns.json").read_text(encoding="utf-8"))
    seconds: Counter = Counter()
    pipeline.AsrChoice.transcript = _timed(pipeline.AsrChoice.transcript, "ASR", seconds)
    files = sorted(calls.glob("*.wav"))
    config = load_config()
    changes = {key: tuple(value) if isinstance(value, list) else value for key, value in json.loads(asr_changes).items()}
    config = dataclasses.replace(config, asr=dataclasses.replace(config.asr, **changes))
    report = batch.run_batch(files, out, config, batch.BatchOptions("whisper", f"{engine}:base", "cpu"))
    if report.document["errors"]:
        raise SystemExit(f"audit errors: {report.document['errors']}")
    clips = {}
    for path in files:
        record = json.loads((out / "calls" / f"{path.stem}.json").read_text(encoding="utf-8"))
        own = turns[path.stem]
        heard = ["" for _ in own]
        for utterance in record["utterances"]:
            middle = (utterance["start"] + utterance["end"]) / 2
            nearest = min(range(len(heard)), key=lambda i: abs(middle - (own[i]["start"] + own[i]["end"]) / 2))
            heard[nearest] += utterance["text"]
        for turn, text in zip(own, heard):
            clips[turn["clip"]] = edits(text, turn["text"])
    print(json.dumps({"clips": clips, "asr_s": seconds["ASR"]}))


def real_accuracy(work: Path) -> None:
    """CER and time of plain whisper and of each engine on the real clips (real base weights)."""
    calls = clip_calls(work / "clip-calls")
    (work / "clip-calls" / "turns.json").write_text(
        json.dumps({path.stem: turns for path, turns in calls}, ensure_ascii=False), encoding="utf-8")
    speech_s = sum(t["end"] - t["start"] for _, turns in calls for t in turns)
    rows = [("plain openai-whisper: 16 kHz clips, beam 5",
             run_child(child("plain", str(MODELS / "base.pt")), work / "plain.log"))]
    for engine in ENGINES:
        rows.append((f"audit run, {engine}: 8 kHz mu-law calls",
                     run_child(child("engine", engine, str(work / f"{engine}-out"), str(work / "clip-calls")),
                               work / f"{engine}.log")))
    print(f"\nreal Whisper base ({MODELS}): {len(real_clips())} real Mandarin clips, {speech_s:.0f} s of "
          f"speech, as {len(calls)} two-channel calls; cpu, greedy with the prompt unless said")
    for found in (found for _, found in rows):
        found |= json.loads(found["stdout"])
    plain = rows[0][1]
    rows.insert(1, ("  the same, traditional characters as errors", plain | {"clips": plain["clips_raw"]}))
    cer_table(rows)
    print("  (CER over all clips, the 17 clips of fixtures/real-dev/split.tsv the settings may be tuned on, "
          "and the 6 held aside; the bar is plain whisper's text in simplified characters, as the tool's is)")
    variants = []
    for label, changes in DECODING_VARIANTS:
        found = run_child(child("engine", "faster-whisper", str(work / f"variant{len(variants)}-out"),
                                str(work / "clip-calls"), json.dumps(changes, ensure_ascii=False)),
                          work / f"variant{len(variants)}.log")
        variants.append((label, found | json.loads(found["stdout"])))
    print("\ndecoding variants, faster-whisper on the same calls (each against the defaults above):")
    cer_table(variants)


DECODING_VARIANTS = (  # [asr] changes tried against the defaults, faster-whisper on the real-dev calls
    ("beam 5", {"beam_size": 5}),
    ("hotwords 星河通信 工号", {"hotwords": ["星河通信", "工号"]}),
    ("merge gap 1.0 s (before issue 19 part 5)", {"clip_merge_gap_s": 1.0}),
    ("no prompt", {"initial_prompt": ""}),
)


def cer_table(rows: list[tuple[str, dict]]) -> None:
    part = split_part()
    print(f"{'':<48}{'CER':>6}{'tuning':>7}{'held':>6}{'ASR s':>8}{'wall s':>8}{'peak MB':>9}")
    for label, found in rows:
        def cer(wanted: set[str]) -> float:
            chosen = [found["clips"][clip] for clip in found["clips"] if part.get(clip) in wanted]
            return sum(e for e, _ in chosen) / max(sum(n for _, n in chosen), 1)

        print(f"{label:<48}{cer({'tuning', 'held aside'}):>6.3f}{cer({'tuning'}):>7.3f}{cer({'held aside'}):>6.3f}"
              f"{found['asr_s']:>8.1f}{found['wall_s']:>8.1f}{found['peak_mb']:>9.0f}")


def natural_calls(count: int) -> list[Path]:
    return sorted(NATURAL.glob("*.wav"))[:count]


def joined(pieces: list[tuple[float, str]]) -> str:
    return "".join(text for _, text in sorted(pieces))


def real_speed(work: Path, count: int) -> None:
    """Wall time, audio given to the model, CER and peak memory on natural-voice calls with the
    real base weights: the tool with each engine against the plain whisper CLI (same weights and
    decoding options, each channel as its own file)."""
    files = natural_calls(count)
    truth = json.loads((NATURAL / "truth.json").read_text(encoding="utf-8"))["calls"]
    length = sum(truth[f.stem]["duration_s"] for f in files)
    speech = sum(u["end"] - u["start"] for f in files for u in truth[f.stem]["utterances"])
    reference = {f.stem: joined([(u["start"], u["text"]) for u in truth[f.stem]["utterances"]]) for f in files}

    def cer_of(heard: dict[str, str]) -> float:
        found = [edits(heard.get(stem, ""), text) for stem, text in reference.items()]
        return sum(e for e, _ in found) / sum(n for _, n in found)

    rows = {}
    for engine, model in (("openai-whisper", str(MODELS / "base.pt")), ("faster-whisper", f"faster-whisper:{MODELS / 'base'}")):
        out = work / f"speed-{engine}"
        found = run_child(child("tool", model, str(out), *map(str, files)), work / f"speed-{engine}.log")
        found |= json.loads(found["stdout"])
        heard = {}
        for path in files:
            record = json.loads((out / "calls" / f"{path.stem}.json").read_text(encoding="utf-8"))
            heard[path.stem] = joined([(u["start"], u["text"]) for u in record["utterances"]])
        rows[engine] = found | {"cer": cer_of(heard), "asr_s": found["seconds"]["ASR"]}
    sides = split_channels(files, work / "speed-sides")
    cli = run_child(whisper_command(str(MODELS / "base.pt"), sides, work / "speed-cli"), work / "speed-cli.log")
    heard = {}
    for path in files:
        pieces = []
        for side in ("agent", "customer"):
            decoded = json.loads((work / "speed-cli" / f"{path.stem}-{side}.json").read_text(encoding="utf-8"))
            pieces += [(segment["start"], segment["text"]) for segment in decoded["segments"]]
        heard[path.stem] = joined(pieces)
    from audit.textnorm import to_simplified

    heard = {stem: to_simplified(text) for stem, text in heard.items()}
    rows["cli"] = cli | {"cer": cer_of(heard), "model_audio_s": 2 * length,
                         "windows": sum(2 * math.ceil(truth[f.stem]["duration_s"] / 30.0) for f in files)}
    print(f"\nreal Whisper base on {len(files)} natural-voice calls of fixtures/natural ({length / 60:.1f} min, "
          f"two channels, 8 kHz mu-law; {speech:.0f} s of speech, each channel's once); cpu, "
          f"greedy with the prompt, word timestamps")
    print(f"{'':<40}{'wall s':>8}{'x CLI':>7}{'audio s/s':>10}{'x speech':>9}{'CER':>7}{'peak MB':>9}")
    labels = {"cli": "plain whisper CLI, each channel whole", "openai-whisper": "audit run, openai-whisper engine",
              "faster-whisper": "audit run, faster-whisper engine"}
    for key in ("cli", "openai-whisper", "faster-whisper"):
        row = rows[key]
        print(f"{labels[key]:<40}{row['wall_s']:>8.1f}{row['wall_s'] / rows['cli']['wall_s']:>7.2f}"
              f"{row['model_audio_s'] / length:>10.2f}{row['model_audio_s'] / speech:>9.2f}{row['cer']:>7.3f}"
              f"{row['peak_mb']:>9.0f}")
    print(f"faster-whisper against openai-whisper: {rows['faster-whisper']['wall_s'] / rows['openai-whisper']['wall_s']:.2f}x "
          f"the wall time ({rows['faster-whisper']['asr_s']:.0f} s of ASR against {rows['openai-whisper']['asr_s']:.0f} s); "
          f"windows decoded: {rows['openai-whisper']['windows']} and {rows['faster-whisper']['windows']} "
          f"(all rounds), the CLI at least {rows['cli']['windows']}")
    seconds = rows["openai-whisper"]["seconds"]
    print("  openai-whisper engine, its ASR time: " + ", ".join(f"{p} {seconds.get(p, 0.0):.1f} s" for p in ASR_PARTS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", choices=sorted(DIMS), default="tiny")
    parser.add_argument("--model", help="a real Whisper model name or checkpoint (default: random weights)")
    parser.add_argument("--max-tokens", type=int, default=48, help="decoding cap of the random checkpoint")
    parser.add_argument("--minutes", type=float, nargs="+", default=[4.0, 5.0, 6.0], help="one call each")
    parser.add_argument("--long-minutes", type=float, default=60.0, help="the memory run; 0 skips it")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the real-weights runs")
    parser.add_argument("--natural", type=int, default=4,
                        help="natural-voice calls in the real-weights speed run (default 4)")
    parser.add_argument("--no-random", action="store_true",
                        help="skip the random-weight cost table (generated calls)")
    args = parser.parse_args()
    import torch

    from audit.measure.models import installed

    missing = [] if shutil.which("ffmpeg") else ["ffmpeg (the whisper CLI decodes its input with it): "
                                                 "apt-get install ffmpeg"]
    if not args.no_accuracy and not installed("base", MODELS):
        missing.append(f"the real Whisper base in {MODELS}: make install (or --no-accuracy)")
    if missing:
        raise SystemExit("asr_bench: missing " + "; ".join(missing))
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        if not args.no_accuracy:
            real_accuracy(work)
            real_speed(work, args.natural)
        if args.no_random:
            return
        model = args.model or str(build_checkpoint(args.dims, args.max_tokens, work / f"{args.dims}-random.pt"))
        label = (f"model {args.model}" if args.model else
                 f"model: random weights in the {args.dims} dimensions, decoding capped at "
                 f"{args.max_tokens} tokens per window") + f"; cpu, {torch.get_num_threads()} torch threads"
        (work / "calls").mkdir()
        files, durations, talk = [], [], Counter()
        for seed, minutes in enumerate(args.minutes):
            audio, spoken = realistic_call(seed, minutes)
            files.append(work / "calls" / f"call{seed}.wav")
            soundfile.write(files[-1], audio, RATE, subtype="ULAW")
            durations.append(len(audio) / RATE)
            talk.update(spoken)
        report(compare(model, files, work), durations, talk, label)
        if args.long_minutes:
            long_call_memory(model, args.long_minutes, work)


if __name__ == "__main__":
    if sys.argv[1:2] == ["tool"]:
        tool_side(sys.argv[2], Path(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
    elif sys.argv[1:2] == ["prosody"]:
        baseline_prosody([Path(p) for p in sys.argv[2:]])
    elif sys.argv[1:2] == ["plain"]:
        plain_whisper_side(sys.argv[2])
    elif sys.argv[1:2] == ["engine"]:
        engine_side(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), *sys.argv[5:6])
    else:
        main()
