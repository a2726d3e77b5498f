#!/usr/bin/env python3
"""How accurate and how fast the prosody stage is (issue 4). Prints; asserts nothing.

    .venv/bin/python bench/prosody_bench.py

Accuracy: the audio-only rate (syllable nuclei) against characters per minute over the VAD speech
time on the real Mandarin clips in fixtures/real, as recorded and through a phone line; both
rate estimates on the espeak-ng passage at three speeds (fixtures/prosody); and the agents of the
sample calls against their ground truth.

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
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr
from scipy.signal import butter, sosfiltfilt

from audit import decode as decoding
from audit import sidecar
from audit.checks import CallContext
from audit.checks import prosody as rules
from audit.config import ChannelsConfig, VadConfig
from audit.prosody import Prosody, ProsodyConfig, measure_prosody
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
from audit.speech import assign_channels, detect_speech, find_speech

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "fixtures" / "real"
CALLS = ROOT / "fixtures" / "calls"
ESPEAK = ROOT / "fixtures" / "prosody"
RATE = 16000
SETTINGS = ProsodyConfig()
CALL_S = 300.0
PYIN_S = 20.0


def telephone(speech: np.ndarray) -> np.ndarray:
    narrow = soxr.resample(speech, RATE, 8000)
    narrow = sosfiltfilt(butter(4, (300, 3400), btype="bandpass", fs=8000, output="sos"), narrow)
    return soxr.resample(narrow, 8000, RATE).astype(np.float32)


def real_speech() -> None:
    print("Audio-only rate on real Mandarin (fixtures/real), against characters over VAD speech time")
    print(f"  {'clip':24} {'band':12} {'chars':>5} {'speech s':>8} {'truth':>7} {'audio':>7} {'error':>7}")
    with open(REAL / "manifest.tsv", encoding="utf-8") as manifest:
        clips = [(row["file"], row["transcript"]) for row in csv.DictReader(manifest, delimiter="\t")]
    for name, text in clips:
        recorded, _ = soundfile.read(REAL / name, dtype="float32")
        for band, speech in (("as recorded", recorded), ("telephone", telephone(recorded))):
            found = detect_speech(speech, VadConfig())
            speech_s = sum(i.duration for i in found)
            truth = len(text) / speech_s * 60
            measured = measure_prosody(speech[None, :], (ChannelSpeech(Channel(0, "unknown"), found),),
                                       Transcript("none", ()), SETTINGS).speaker("unknown")
            error = measured.rate_audio_cpm / truth - 1
            print(f"  {name:24} {band:12} {len(text):5d} {speech_s:8.2f} {truth:7.1f} "
                  f"{measured.rate_audio_cpm:7.1f} {error:+7.1%}")


def espeak_rates() -> None:
    print("\nespeak-ng at three speeds (fixtures/prosody): both estimates, 字/分")
    print(f"  {'file':15} {'truth':>7} {'transcript':>11} {'error':>7} {'audio':>7} {'error':>7}")
    document = json.loads((ESPEAK / "rates.json").read_text(encoding="utf-8"))
    for entry in document["recordings"]:
        narrow, rate = soundfile.read(ESPEAK / entry["file"], dtype="float32")
        samples = soxr.resample(narrow, rate, RATE).astype(np.float32)
        speech = (ChannelSpeech(Channel(0, "agent"), detect_speech(samples, VadConfig())),)
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
        recording = decoding.decode(path)
        audio = decoding.resample(recording, RATE)
        speech = find_speech(audio, assign_channels(recording.info.channels, ChannelsConfig()), VadConfig())
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
            recording = decoding.decode(CALLS / facts["file"])
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
    rules.rate(call, rules.RateParams())
    rules.rate_vs_customer(call, rules.RateVsCustomerParams())
    rules.raised_voice(call, rules.RaisedVoiceParams())
    rules.harsh_jump(call, rules.HarshJumpParams())
    rules.monotone(call, rules.MonotoneParams())


def speed() -> None:
    import librosa

    recording, transcript = long_call()
    audio = decoding.resample(recording, RATE)
    speech = find_speech(audio, assign_channels(2, ChannelsConfig()), VadConfig())
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
    real_speech()
    espeak_rates()
    sample_calls()
    speed()
