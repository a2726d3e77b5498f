"""Synthetic two-channel 8 kHz calls with exactly known timing, for the timing tests and benchmark.

Each call is assembled from speech cut out of the bundled sample calls (whose utterance extents are
known to the millisecond) and laid on a timeline drawn at random: ringback of a given cadence, the
answer (the agent's line opens: call recorders write digital silence on the agent channel until the
agent picks up), the agent's first words, a dialogue with a hold (silence or hold music) and an
interruption, line noise at a given SNR, and optionally a G.711 mu-law round trip.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile

RATE = 8000
FIXTURE_CALLS = Path(__file__).resolve().parent.parent / "fixtures" / "calls"
SPEECH_DBFS = -20.0
AUDIBLE_BURST_S = 0.15  # a ring cut off sooner than this is not heard as one (audit.measure.timing counts from 0.15 s)


@lru_cache(maxsize=1)
def speech_clips() -> dict[str, list[np.ndarray]]:
    """Agent and customer utterances cut from the sample calls (espeak-ng and real AISHELL speech)."""
    truth = json.loads((FIXTURE_CALLS / "truth.json").read_text(encoding="utf-8"))["calls"]
    clips: dict[str, list[np.ndarray]] = {"agent": [], "customer": []}
    for facts in truth.values():
        audio, rate = soundfile.read(FIXTURE_CALLS / facts["file"], dtype="float32")
        assert rate == RATE
        for utterance in facts["utterances"]:
            channel = 0 if utterance["speaker"] == "agent" else 1
            clip = _trim(audio[round(utterance["start"] * RATE): round(utterance["end"] * RATE), channel])
            level = 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) + 1e-12)
            clips[utterance["speaker"]].append(clip * 10 ** ((SPEECH_DBFS - level) / 20))
    return clips


def _trim(clip: np.ndarray) -> np.ndarray:
    """Cut a clip to its first and last 10 ms frame within 30 dB of its loudest: where a listener
    would mark the speech as starting and ending (the real AISHELL clips carry room noise at the edges)."""
    frames = clip[: len(clip) // 80 * 80].reshape(-1, 80).astype(np.float64)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 30)
    return clip[loud[0] * 80: (loud[-1] + 1) * 80]


def hold_music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A simple tune: quarter-second notes with harmonics, some of them near ringback tones."""
    notes = np.array([392.0, 440.0, 494.0, 523.0, 587.0, 450.0, 425.0])
    t = np.arange(int(0.25 * RATE)) / RATE
    envelope = np.exp(-t * 6)
    pieces = []
    while sum(len(p) for p in pieces) < seconds * RATE:
        f = rng.choice(notes)
        note = sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3, 4))
        pieces.append(note * envelope)
    music = np.concatenate(pieces)[: int(seconds * RATE)]
    return (music / np.sqrt(np.mean(music ** 2)) * 10 ** (-26 / 20)).astype(np.float32)


@dataclass
class SyntheticCall:
    audio: np.ndarray  # (frames, 2) float32, agent on channel 0
    cadence: str
    ring_count: int
    ring_start_s: float | None
    answer_s: float
    answer_window: tuple[float, float]  # what the recording can show of the answer (earliest, latest)
    first_words_s: float
    hold: tuple[float, float] | None
    hold_music: bool
    overlap: tuple[float, float] | None  # the agent talking over the customer
    snr_db: float
    mulaw: bool
    utterances: list[dict] = field(default_factory=list)

    def write(self, path: Path) -> Path:
        soundfile.write(path, self.audio, RATE, subtype="ULAW" if self.mulaw else "PCM_16")
        return path


CADENCES = {  # (tone frequencies, on/off pattern), as in configs/default.toml
    "cn": ((450.0,), (1.0, 4.0)),
    "us": ((440.0, 480.0), (2.0, 4.0)),
    "uk": ((400.0, 450.0), (0.4, 0.2, 0.4, 2.0)),
    "eu": ((425.0,), (1.0, 4.0)),
}


def _ringback(cadence: str, rings: int, answer_in_cycle: float) -> tuple[np.ndarray, list]:
    """Ringback for `rings` cycles, cut off `answer_in_cycle` seconds into the last cycle."""
    freqs, pattern = CADENCES[cadence]
    cycle = sum(pattern)
    length = (rings - 1) * cycle + answer_in_cycle
    t = np.arange(int(length * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    gate = np.zeros_like(t, dtype=bool)
    bursts = []
    for ring in range(rings):
        offset = ring * cycle
        for on, off_start in zip(pattern[0::2], np.cumsum(pattern)[0::2]):
            start = offset + off_start - on
            end = min(offset + off_start, length)
            if start < length:
                gate |= (t >= start) & (t < end)
                bursts.append((start, end))
    return (tone * gate * 10 ** (-15 / 20)).astype(np.float32), bursts


def make_call(seed: int, cadence: str = "cn", snr_db: float = 30.0, mulaw: bool = False,
              rings: int | None = None, hold_kind: str | None = None, line_opens: bool = True,
              answer_in_cycle: float | None = None, first_words_delay: float | None = None) -> SyntheticCall:
    """A call drawn at random from `seed`; the keywords fix what a test needs fixed.

    `line_opens=False` leaves line noise on the agent channel from the start, as many recorders
    write it: the answer is then not audible, only the ringback stopping. `answer_in_cycle` is
    the answer's offset into the last ring cycle (s), `first_words_delay` the agent's wait (s).
    """
    rng = np.random.default_rng(seed)
    clips = speech_clips()
    freqs, pattern = CADENCES[cadence]
    rings = int(rng.integers(0, 6)) if rings is None else rings
    lead = float(rng.uniform(0.2, 1.0)) if rings else 0.0
    drawn_in_cycle = float(rng.uniform(0.3, sum(pattern) - 0.2))
    answer_in_cycle = drawn_in_cycle if answer_in_cycle is None else answer_in_cycle
    if rings:
        ring_audio, bursts = _ringback(cadence, rings, answer_in_cycle)
        answer = lead + len(ring_audio) / RATE
    else:
        ring_audio, bursts, answer = np.zeros(0, np.float32), [], 0.0
    drawn_delay = float(rng.uniform(0.3, 6.0))
    first_words = answer + (drawn_delay if first_words_delay is None else first_words_delay)

    agent_track: list[tuple[float, np.ndarray]] = []
    customer_track: list[tuple[float, np.ndarray]] = []
    utterances = []
    t = first_words
    turns = int(rng.integers(6, 9))
    hold_after = int(rng.integers(1, turns - 2))
    hold_kind = hold_kind or rng.choice(["silence", "music", "none"])
    overlap_turn = int(rng.choice([t for t in range(1, turns - 1, 2) if t != hold_after]))
    hold = overlap = None
    busy_until = first_words
    for turn in range(turns):
        speaker = "agent" if turn % 2 == 0 else "customer"
        pool = clips[speaker]
        clip = pool[int(rng.integers(len(pool)))]
        if speaker == "customer" and turn == overlap_turn:
            clip = max(pool, key=len)  # long enough to be talked over
        track = agent_track if speaker == "agent" else customer_track
        track.append((t, clip))
        end = t + len(clip) / RATE
        utterances.append({"speaker": speaker, "start": round(t, 3), "end": round(end, 3)})
        if overlap is not None and overlap[1] is None:  # this agent turn talks over the customer
            overlap = (overlap[0], min(end, busy_until))
        busy_until = max(busy_until, end)
        if speaker == "customer" and turn == overlap_turn and turn + 1 < turns:
            t = t + float(rng.uniform(0.6, len(clip) / RATE - 2.4))
            overlap = (t, None)
            continue
        if turn == hold_after and hold_kind != "none":
            length = float(rng.uniform(6.0, 25.0))
            hold = (busy_until, busy_until + length)
            t = busy_until + length
        else:
            t = busy_until + float(rng.uniform(0.4, 1.4))
    t = busy_until
    duration = t + 1.0
    frames = int(duration * RATE)
    audio = np.zeros((frames, 2), np.float32)
    start = int(lead * RATE)
    audio[start: start + len(ring_audio), 1] += ring_audio
    for channel, track in ((0, agent_track), (1, customer_track)):
        for onset, clip in track:
            first = int(round(onset * RATE))
            audio[first: first + len(clip), channel] += clip[: frames - first]
    music = hold is not None and hold_kind == "music"
    if music:
        tune = hold_music(hold[1] - hold[0] - 0.6, rng)
        first = int((hold[0] + 0.3) * RATE)
        audio[first: first + len(tune), 0] += tune
    noise = rng.standard_normal((frames, 2)).astype(np.float32) * 10 ** ((SPEECH_DBFS - snr_db) / 20)
    audio += noise
    if line_opens:
        audio[: int(answer * RATE), 0] = 0.0  # the agent's line opens at the answer
    if mulaw:
        buffer = io.BytesIO()
        soundfile.write(buffer, audio, RATE, format="WAV", subtype="ULAW")
        buffer.seek(0)
        audio = soundfile.read(buffer, dtype="float32")[0]
    return SyntheticCall(audio=np.clip(audio, -1, 1), cadence=cadence, ring_count=rings,
                         ring_start_s=lead if rings else None, answer_s=answer,
                         answer_window=_answer_window(bursts, lead, answer, pattern, first_words, line_opens),
                         first_words_s=first_words, hold=hold, hold_music=music, overlap=overlap,
                         snr_db=snr_db, mulaw=mulaw, utterances=utterances)


def _answer_window(bursts: list, lead: float, answer: float, pattern: tuple, first_words: float,
                   line_opens: bool) -> tuple[float, float]:
    """The truth of what the recording shows: the exact answer when the agent's line opens or the
    last ring is cut off by it; otherwise the silence after the last burst, up to where the next
    burst would have started or the agent's first words, whichever comes first (the measured
    window may be wider by the shortest burst the detector counts, 0.15 s)."""
    if line_opens or not bursts:
        return answer, answer
    start, end = bursts[-1]
    if answer - lead <= end:  # the answer fell inside the burst and cut it short ...
        if end - start >= AUDIBLE_BURST_S:
            return answer, answer
        bursts = bursts[:-1]  # ... so soon that no ring can be heard: the one before was the last
        start, end = bursts[-1]
    offs = pattern[1::2]
    position = len(bursts) % (len(pattern) // 2)  # which burst of the cycle comes next
    next_start = end + offs[position - 1]
    return lead + end, min(lead + next_start, first_words)


def measure(call: SyntheticCall, config) -> "Timing":  # noqa: F821
    """Run the real speech and timing stages on a synthetic call, configured for its cadence."""
    return measure_with_speech(call, config)[1]


def measure_with_speech(call: SyntheticCall, config) -> tuple:
    """The voice activity per channel and the timing of a synthetic call."""
    import dataclasses

    import librosa

    from audit.records import CallMeta, Transcript
    from audit.measure.speech import assign_channels, find_speech
    from audit.measure.timing import measure_timing

    audio_16k = librosa.resample(call.audio.T, orig_sr=RATE, target_sr=16000, axis=-1).astype(np.float32)
    speech = find_speech(audio_16k, assign_channels(2, config.channels), config.vad)
    settings = dataclasses.replace(config.timing, ringback=call.cadence)
    return speech, measure_timing(audio_16k, speech, Transcript("none", ()), CallMeta(), settings)


def errors(call: SyntheticCall, timing) -> dict:
    """How far each measured event is from the truth (seconds; None where there is nothing to compare)."""
    holds = [s for s in timing.silences if s.duration >= 5.0]
    overlaps = [o for o in timing.overlaps if o.interrupter == "agent"]
    result = {
        "ring_count_exact": (timing.ring_count or 0) == call.ring_count,
        "answer": abs(timing.answer_s - call.answer_s),
        "first_words": abs(timing.agent_first_words_s - call.first_words_s)
        if timing.agent_first_words_s is not None else float("inf"),
        "hold": None,
        "overlap": None,
    }
    if call.hold:
        result["hold"] = max(abs(holds[0].start - call.hold[0]), abs(holds[0].end - call.hold[1])) \
            if len(holds) == 1 else float("inf")
    elif holds:
        result["hold"] = float("inf")  # a silence that is not there
    if call.overlap:
        result["overlap"] = max(abs(overlaps[0].start - call.overlap[0]), abs(overlaps[0].end - call.overlap[1])) \
            if len(overlaps) == 1 else float("inf")
    return result


def first_words_outcome(timing, speech, config):
    """`timing.first_words` as the pipeline runs it, on a synthetic call's measured timing."""
    from audit.judge.checks import CHECKS, CallContext
    from audit.records import CallMeta, RecordingInfo, Transcript

    info = RecordingInfo(Path("synthetic.wav"), timing.duration_s, RATE, 2, "", "WAV/PCM_16")
    context = CallContext(info, CallMeta(), speech, Transcript("none", ()), timing.answer_s,
                          timing.answer_source, (), timing=timing, answer_latest_s=timing.answer_latest_s)
    return CHECKS["timing.first_words"].run(context, config.rules["timing.first_words"].params)
