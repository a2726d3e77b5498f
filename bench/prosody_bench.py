#!/usr/bin/env python3
"""How accurate and how fast the prosody stage is (issues 4 and 13). Prints; asserts nothing.

    .venv/bin/python bench/prosody_bench.py

Accuracy: both rate estimates on the real read Mandarin clips of fixtures/real-dev against their
reference speaking time (characters over `talk_s`), on the tuning part and on the part held aside
(fixtures/real-dev/split.tsv), as recorded and in four conditions made from them: a phone line
(8 kHz, 300-3400 Hz, G.711 mu-law), white noise at 15 dB SNR, a far-field room (RT60 0.6 s,
direct-to-reverberant 0 dB, 3 kHz low-pass) and 1.3x tempo (sox's WSOLA `tempo -s`, when sox is
installed); pitch and monotone judgements of the same clips; level measures (raised voice, jumps)
on each voice's clips joined into one track; both rate estimates on the espeak-ng passage at three
speeds (fixtures/prosody); and the agents of the sample calls against their ground truth.

Speed, on one core: `measure_prosody` plus the five prosody rules on a 5-minute two-channel 8 kHz
call built from the sample calls (decoding, resampling and VAD happen before the clock starts;
they belong to other stages), and librosa's pyin over whole channels of a shorter piece of the
same call, for comparison.
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before numpy starts any threads

import csv
import hashlib
import io
import json
import math
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr
from scipy.signal import butter, fftconvolve, sosfiltfilt

from audit.measure import decode as decoding
from audit.measure import sidecar
from audit.judge.checks import CallContext
from audit.judge.checks import prosody as rules
from audit.configload import load_config
from audit.measure.prosody import Prosody, SpeakerProsody, UtteranceProsody, measure_prosody
from audit.records import (
    CallMeta,
    Channel,
    ChannelSpeech,
    Recording,
    RecordingInfo,
    Transcript,
    Utterance,
    Word,
)
from audit.measure.speech import assign_channels, detect_speech, find_speech

ROOT = Path(__file__).resolve().parent.parent
REAL_DEV = ROOT / "fixtures" / "real-dev"
CALLS = ROOT / "fixtures" / "calls"
ESPEAK = ROOT / "fixtures" / "prosody"
RATE = 16000
CONFIG = load_config()
SETTINGS = CONFIG.prosody
CALL_S = 300.0
PYIN_S = 20.0
TEMPO = 1.3  # the fast condition: 1.3x is 290 字/分 for a read clip at 225, fast for an agent


def telephone(speech: np.ndarray) -> np.ndarray:
    """A phone line: 8 kHz, 300-3400 Hz, G.711 mu-law (libsndfile's), back to 16 kHz."""
    narrow = soxr.resample(speech, RATE, 8000)
    narrow = sosfiltfilt(butter(4, (300, 3400), btype="bandpass", fs=8000, output="sos"), narrow)
    encoded = io.BytesIO()
    soundfile.write(encoded, np.clip(narrow, -1, 1), 8000, format="WAV", subtype="ULAW")
    encoded.seek(0)
    return soxr.resample(soundfile.read(encoded, dtype="float32")[0], 8000, RATE).astype(np.float32)


def noisy(speech: np.ndarray, speech_power: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at 15 dB under the speech's mean power over its VAD speech."""
    noise = rng.standard_normal(speech.size) * np.sqrt(speech_power / 10 ** 1.5)
    return (speech + noise).astype(np.float32)


def far_field(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A room: direct sound plus an exponential noise tail (RT60 0.6 s) of equal energy, highs lost
    to distance (3 kHz low-pass); the level set back to the original's, as a phone's AGC would."""
    t = np.arange(int(0.8 * RATE)) / RATE
    tail = rng.standard_normal(t.size) * 10 ** (-3 * t / 0.6)
    tail[: int(0.005 * RATE)] = 0.0
    room = np.concatenate(([1.0], np.zeros(t.size - 1))) + tail / np.sqrt(np.sum(tail**2))
    heard = sosfiltfilt(butter(4, 3000, fs=RATE, output="sos"), fftconvolve(speech, room)[: speech.size])
    return (heard * np.sqrt(np.mean(speech**2) / np.mean(heard**2))).astype(np.float32)


def faster(speech: np.ndarray) -> np.ndarray:
    """TEMPO times faster at the same pitch: sox's WSOLA time stretch tuned for speech."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.wav", Path(folder) / "out.wav"
        soundfile.write(source, speech, RATE, subtype="PCM_16")
        subprocess.run(["sox", "-V1", str(source), str(target), "tempo", "-s", str(TEMPO)], check=True)
        return soundfile.read(target, dtype="float32")[0]


def conditions(speech: np.ndarray, name: str):
    """(condition, audio, how much faster than recorded) for one clip; noise and room seeded by name."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))
    found = detect_speech(speech, CONFIG.vad)
    in_speech = np.concatenate([speech[int(i.start * RATE): int(i.end * RATE)] for i in found])
    power = float(np.mean(in_speech**2))
    yield "as recorded", speech, 1.0
    yield "phone, mu-law", telephone(speech), 1.0
    yield "noise 15 dB", noisy(speech, power, rng), 1.0
    yield "far field", far_field(speech, rng), 1.0
    if shutil.which("sox"):
        yield f"tempo {TEMPO}x", faster(speech), TEMPO


@dataclass(frozen=True)
class Clip:
    file: str
    voice: str  # the speaker, or the source when the speaker is not known
    part: str  # "tuning" or "held-aside"
    text: str
    talk_s: float  # reference speaking time


@dataclass(frozen=True)
class Measured:
    clip: Clip
    condition: str
    truth_cpm: float
    prosody: UtteranceProsody
    summary: SpeakerProsody

    @property
    def transcript_error(self) -> float:
        return _relative(self.summary.rate_cpm, self.truth_cpm)

    @property
    def audio_error(self) -> float:
        return _relative(self.summary.rate_audio_cpm, self.truth_cpm)


def _relative(value: float | None, truth: float) -> float:
    return math.inf if value is None else value / truth - 1  # no rate at all: as bad as it gets


def real_dev_clips() -> list[Clip]:
    with open(REAL_DEV / "manifest.tsv", encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    with open(REAL_DEV / "split.tsv", encoding="utf-8") as split_file:
        split = {row["file"]: row for row in csv.DictReader(
            (line for line in split_file if not line.startswith("#")), delimiter="\t")}
    return [Clip(row["file"], split[row["file"]]["voice"], split[row["file"]]["part"], row["transcript"],
                 float(row["talk_s"])) for row in rows]


def measure_clips(clips: list[Clip]) -> list[Measured]:
    """Each clip in each condition as one agent utterance over the whole clip, VAD speech only."""
    measured = []
    for clip in clips:
        recorded, rate = soundfile.read(REAL_DEV / clip.file, dtype="float32")
        assert rate == RATE
        for condition, speech, speed_up in conditions(recorded, clip.file):
            channel = (ChannelSpeech(Channel(0, "agent"), detect_speech(speech, CONFIG.vad)),)
            transcript = Transcript("sidecar", (Utterance("agent", 0.0, speech.size / RATE, clip.text),))
            prosody = measure_prosody(speech[None, :], channel, transcript, SETTINGS)
            truth = len(clip.text) / (clip.talk_s / speed_up) * 60
            measured.append(Measured(clip, condition, truth, prosody.utterances[0], prosody.speaker("agent")))
    return measured


def rate_errors(measured: list[Measured]) -> None:
    print("Speech rate on real read Mandarin (fixtures/real-dev) against characters over the reference")
    print("speaking time: median and worst |error|, signed median in brackets; n clips")
    print(f"  {'part':11} {'condition':14} {'n':>2}  {'transcript: median':>18} {'worst':>6}"
          f"  {'audio only: median':>18} {'worst':>6}")
    for part in ("tuning", "held-aside"):
        for condition in dict.fromkeys(m.condition for m in measured):
            rows = [m for m in measured if m.clip.part == part and m.condition == condition]
            cells = []
            for errors in ([m.transcript_error for m in rows], [m.audio_error for m in rows]):
                errors = np.array(errors)
                cells.append(f"{np.median(np.abs(errors)):7.1%} ({np.median(errors):+6.1%}) "
                             f"{np.max(np.abs(errors)):6.0%}")
            print(f"  {part:11} {condition:14} {len(rows):2d}  {cells[0]:>25}  {cells[1]:>25}")
    if not shutil.which("sox"):
        print("  (sox is not installed: no tempo condition)")
    print("  per clip, as recorded: reference, transcript, audio only (字/分)")
    for m in measured:
        if m.condition == "as recorded":
            print(f"    {m.clip.file:34} {m.clip.part:10} {m.truth_cpm:6.1f} "
                  f"{m.summary.rate_cpm or math.nan:6.1f} {m.transcript_error:+7.1%} "
                  f"{m.summary.rate_audio_cpm or math.nan:6.1f} {m.audio_error:+7.1%}")


def pitch_findings(measured: list[Measured]) -> None:
    print("\nPitch of the same clips (all 23): median F0 against the clip as recorded, 5-95 % range,")
    print(f"clips judged monotone (range <= {SETTINGS.monotone_max_range_st:g} st over >= "
          f"{SETTINGS.monotone_min_voiced_s:g} s voiced), clips with too little voiced speech to judge")
    recorded = {m.clip.file: m.prosody for m in measured if m.condition == "as recorded"}
    for condition in dict.fromkeys(m.condition for m in measured):
        rows = [m for m in measured if m.condition == condition and m.prosody.pitch_median_hz]
        shifts = np.abs([12 * math.log2(m.prosody.pitch_median_hz / recorded[m.clip.file].pitch_median_hz)
                         for m in rows if recorded[m.clip.file].pitch_median_hz])
        ranges = [m.prosody.pitch_range_st for m in rows]
        flat = [m.clip.file for m in measured if m.condition == condition and m.prosody.monotone]
        unjudged = sum(m.prosody.monotone is None for m in measured if m.condition == condition)
        print(f"  {condition:14} median shift: median {np.median(shifts):4.2f} st, "
              f"worst {np.max(shifts):4.1f} st;"
              f" range {min(ranges):4.1f}-{max(ranges):4.1f} st; monotone {len(flat)} {flat or ''};"
              f" not judged {unjudged}")


def level_findings(clips: list[Clip]) -> None:
    print("\nLevel on real speech: each voice with several clips, its clips joined (0.5 s apart) as one")
    print("speaker's utterances at their recorded levels; raised voice and harsh jumps should be none")
    voices: dict[str, list[Clip]] = {}
    for clip in clips:
        voices.setdefault(clip.voice, []).append(clip)
    gap = np.zeros(RATE // 2, dtype=np.float32)
    for voice, members in voices.items():
        if len(members) < 2:
            continue
        pieces, utterances, cursor = [gap], [], gap.size / RATE
        for clip in members:
            speech, _ = soundfile.read(REAL_DEV / clip.file, dtype="float32")
            found = detect_speech(speech, CONFIG.vad)
            piece = speech[int(found[0].start * RATE): int(found[-1].end * RATE)]
            utterances.append(Utterance("agent", cursor, cursor + piece.size / RATE, clip.text))
            pieces += [piece, gap]
            cursor += (piece.size + gap.size) / RATE
        for condition, audio in (("as recorded", np.concatenate(pieces)),
                                 ("phone, mu-law", telephone(np.concatenate(pieces)))):
            channel = (ChannelSpeech(Channel(0, "agent"), detect_speech(audio, CONFIG.vad)),)
            prosody = measure_prosody(audio[None, :], channel, Transcript("sidecar", tuple(utterances)),
                                      SETTINGS)
            agent = prosody.speaker("agent")
            levels = [u.level_dbfs for u in prosody.utterances if u.level_dbfs is not None]
            baseline = "none" if agent.level_baseline_dbfs is None else f"{agent.level_baseline_dbfs:5.1f}"
            spread = ("" if agent.level_spread_db is None
                      else f", 10-90 % spread {agent.level_spread_db:4.1f} dB")
            print(f"  {voice:29} {condition:14} {len(members)} clips, {agent.speech_s:4.1f} s: baseline "
                  f"{baseline} dBFS{spread}, utterances {min(levels):5.1f} to {max(levels):5.1f} dBFS; "
                  f"raised {len(prosody.raised)}, jumps {len(prosody.jumps)}, "
                  f"pitch range {agent.pitch_range_st:4.1f} st")


def espeak_rates() -> None:
    print("\nespeak-ng at three speeds (fixtures/prosody): both estimates, 字/分")
    print(f"  {'file':15} {'truth':>7} {'transcript':>11} {'error':>7} {'audio':>7} {'error':>7}")
    document = json.loads((ESPEAK / "rates.json").read_text(encoding="utf-8"))
    for entry in document["recordings"]:
        narrow, rate = soundfile.read(ESPEAK / entry["file"], dtype="float32")
        samples = soxr.resample(narrow, rate, RATE).astype(np.float32)
        speech = (ChannelSpeech(Channel(0, "agent"), detect_speech(samples, CONFIG.vad)),)
        transcript = Transcript("sidecar", tuple(Utterance("agent", u["start"], u["end"], u["text"])
                                                 for u in entry["utterances"]))
        agent = measure_prosody(samples[None, :], speech, transcript, SETTINGS).speaker("agent")
        truth = entry["rate_cpm"]
        print(f"  {entry['file']:15} {truth:7.1f} {agent.rate_cpm:11.1f} {agent.rate_cpm / truth - 1:+7.1%} "
              f"{agent.rate_audio_cpm:7.1f} {agent.rate_audio_cpm / truth - 1:+7.1%}")


def sample_calls() -> None:
    print("\nAgents of the sample calls against fixtures/calls/truth.json, 字/分")
    print(f"  {'call':18} {'truth':>7} {'transcript':>11} {'error':>7} {'audio':>7} {'error':>7}")
    truth = json.loads((CALLS / "truth.json").read_text(encoding="utf-8"))["calls"]
    for name, facts in truth.items():
        path = CALLS / facts["file"]
        recording = decoding.decode(path, CONFIG.decode)
        audio = decoding.resample(recording, RATE)
        speech = find_speech(audio, assign_channels(recording.info.channels, CONFIG.channels), CONFIG.vad)
        agent = measure_prosody(audio, speech, sidecar.read_transcript(path), SETTINGS).speaker("agent")
        expected = facts["agent"]["rate_cpm"]
        print(f"  {name:18} {expected:7.1f} {agent.rate_cpm:11.1f} {agent.rate_cpm / expected - 1:+7.1%} "
              f"{agent.rate_audio_cpm:7.1f} {agent.rate_audio_cpm / expected - 1:+7.1%}")


def long_call() -> tuple[Recording, Transcript]:
    """The sample calls end to end, repeated, cut at CALL_S: two channels at 8 kHz."""
    truth = json.loads((CALLS / "truth.json").read_text(encoding="utf-8"))["calls"]
    pieces, utterances, offset = [], [], 0.0
    while offset < CALL_S:
        for facts in truth.values():
            recording = decoding.decode(CALLS / facts["file"], CONFIG.decode)
            pieces.append(recording.samples)
            for u in sidecar.read_transcript(CALLS / facts["file"]).utterances:
                if u.end + offset <= CALL_S:
                    words = tuple(Word(w.start + offset, w.end + offset, w.text) for w in u.words)
                    utterances.append(Utterance(u.speaker, u.start + offset, u.end + offset, u.text, words))
            offset += recording.info.duration_s
    samples = np.concatenate(pieces, axis=1)[:, : int(CALL_S * 8000)]
    info = RecordingInfo(Path("bench.wav"), CALL_S, 8000, 2, "0" * 64, "WAV/PCM_16")
    return Recording(info, samples), Transcript("sidecar", tuple(utterances))


@dataclass(frozen=True)
class ProsodyContext(CallContext):
    """The call context with the prosody the pipeline hands the checks."""

    prosody: Prosody | None = None


def audit_prosody(recording: Recording, audio: np.ndarray, speech, transcript: Transcript) -> None:
    """What this issue adds to a call's audit: the measures and the five rules."""
    call = ProsodyContext(recording=recording.info, meta=CallMeta(), speech=speech, transcript=transcript,
                          answer_s=0.0, answer_source="recording_start", company_names=("星河通信",),
                          prosody=measure_prosody(audio, speech, transcript, SETTINGS))
    for rule_id, judge in (("prosody.rate", rules.rate), ("prosody.rate_vs_customer", rules.rate_vs_customer),
                           ("prosody.raised_voice", rules.raised_voice), ("prosody.harsh_jump", rules.harsh_jump),
                           ("prosody.monotone", rules.monotone)):
        judge(call, CONFIG.rules[rule_id].params)


def speed() -> None:
    import librosa

    recording, transcript = long_call()
    audio = decoding.resample(recording, RATE)
    speech = find_speech(audio, assign_channels(2, CONFIG.channels), CONFIG.vad)
    audit_prosody(recording, audio[:, : RATE * 5], speech, transcript)  # warm up imports and caches
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        audit_prosody(recording, audio, speech, transcript)
        runs.append(time.perf_counter() - started)
    best, median = min(runs), float(np.median(runs))
    talk = {s.channel.speaker: s.speech_s for s in speech}
    print(f"\nSpeed on one core: a {CALL_S / 60:.0f}-minute two-channel 8 kHz call "
          f"({len(transcript.utterances)} utterances; speech {talk['agent']:.0f} s agent, "
          f"{talk['customer']:.0f} s customer)")
    print(f"  measure_prosody + 5 rules: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms "
          f"-> {CALL_S / best:.0f}x real time (median {CALL_S / median:.0f}x)")
    piece = audio[:, : int(PYIN_S * RATE)].astype(np.float64)
    started = time.perf_counter()
    for channel in piece:  # the frame grid used here: 16 kHz, 10 ms hop
        librosa.pyin(channel, fmin=SETTINGS.pitch_min_hz, fmax=SETTINGS.pitch_max_hz, sr=RATE,
                     frame_length=1024, hop_length=160)
    elapsed = time.perf_counter() - started
    print(f"  librosa.pyin, whole channels at 16 kHz, 10 ms hop (first {PYIN_S:.0f} s, both channels): "
          f"{elapsed:.1f} s -> {PYIN_S / elapsed:.1f}x real time")
    narrow = recording.samples[:, : int(PYIN_S * 8000)].astype(np.float64)
    started = time.perf_counter()
    for channel in narrow:  # librosa's defaults on the 8 kHz recording: 256 ms frames, 64 ms hop
        librosa.pyin(channel, fmin=SETTINGS.pitch_min_hz, fmax=SETTINGS.pitch_max_hz, sr=8000)
    elapsed = time.perf_counter() - started
    print(f"  librosa.pyin, whole channels at 8 kHz, librosa's defaults (64 ms hop): "
          f"{elapsed:.1f} s -> {PYIN_S / elapsed:.1f}x real time")

if __name__ == "__main__":
    clips = real_dev_clips()
    measured = measure_clips(clips)
    rate_errors(measured)
    pitch_findings(measured)
    level_findings(clips)
    espeak_rates()
    sample_calls()
    speed()
