"""Ringback: the tone the caller hears before the answer, found on whichever channel carries it.

Tone runs are 10 ms steps where the configured cadence's frequencies dominate the 100-4000 Hz
spectrum (`[timing] tone_min_ratio`, `tone_min_level_dbfs`); runs that follow the cadence's on/off
pattern (`[timing.presets]`) are the rings. From them: how many rings the caller heard, and the
window the answer lies in when the ring itself shows it (a last ring cut short) or only bounds it
(a last ring that rang out).
"""

from __future__ import annotations

import numpy as np

from audit.config import RingbackCadence, TimingConfig
from audit.frames import SAMPLE_RATE, frame_db, true_runs
from audit.records import Interval

TONE_FRAME = 1024  # 64 ms: 15.6 Hz bins, enough to tell 440 from 480 Hz
BURST_DROPOUT_S = 0.06  # a gap this short inside a tone is a lost packet or frame: one burst, not two
TONE_HOP = 160  # 10 ms
TONE_CHUNK_FRAMES = 4096  # frames analysed at once, bounding memory on long ringing
CUT_OFF_S = 0.1  # a ring cut off by the answer stops within this of the agent's line opening


def find_ringback(audio_16k: np.ndarray, until_s: float, settings: TimingConfig,
                  line_open: float | None = None) -> list[Interval]:
    """The ringback bursts before `until_s` (the first speech), on whichever channel carries them.

    `line_open`, when the agent's leg is known to have opened, lets a lone short burst that stops
    right there count: the call was answered during the first ring.
    """
    return ringback_and_last_tone(audio_16k, until_s, settings, line_open)[0]


def ringback_and_last_tone(audio_16k: np.ndarray, until_s: float, settings: TimingConfig,
                            line_open: float | None) -> tuple[list[Interval], float | None]:
    """`find_ringback`, and the end (s) of the last tone of the cadence's frequencies heard before
    `until_s`, chained or not (None when there was none)."""
    stop = int(min(until_s, audio_16k.shape[1] / SAMPLE_RATE) * SAMPLE_RATE)
    best: list[Interval] = []
    last_tone = None
    for channel in audio_16k:
        runs = _tone_runs(channel[:stop], settings)
        chain = _cadence_chain(runs, settings.cadence, line_open)
        if len(chain) > len(best):
            best = chain
        if runs:
            last_tone = max(runs[-1].end, last_tone or 0.0)
    return best, last_tone


def _tone_runs(samples: np.ndarray, settings: TimingConfig) -> list[Interval]:
    """Runs of 10 ms steps where the cadence's tone(s) dominate the spectrum."""
    if samples.size < TONE_FRAME:
        return []
    freqs = np.fft.rfftfreq(TONE_FRAME, 1 / SAMPLE_RATE)
    band = (freqs >= 100) & (freqs <= 4000)
    tone_bins = [np.abs(freqs - f) <= 20 for f in settings.cadence.freqs_hz]
    window = np.hanning(TONE_FRAME).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(samples, TONE_FRAME)[::TONE_HOP]
    flags = []
    for first in range(0, len(frames), TONE_CHUNK_FRAMES):
        chunk = frames[first: first + TONE_CHUNK_FRAMES]
        power = np.abs(np.fft.rfft(chunk * window, axis=1)) ** 2
        total = power[:, band].sum(axis=1) + 1e-20
        parts = np.stack([power[:, bins].sum(axis=1) for bins in tone_bins]) / total
        level = frame_db(chunk)
        each = parts.min(axis=0) >= settings.tone_min_ratio / (2 * len(tone_bins))
        flags.append((parts.sum(axis=0) >= settings.tone_min_ratio) & each
                     & (level >= settings.tone_min_level_dbfs))
    tonal = np.concatenate(flags)
    centre = (np.arange(tonal.size) * TONE_HOP + TONE_FRAME / 2) / SAMPLE_RATE
    half_hop = TONE_HOP / SAMPLE_RATE / 2
    runs: list[Interval] = []
    for start, end in zip(*true_runs(tonal)):
        interval = Interval(centre[start] - half_hop, centre[end - 1] + half_hop)
        if runs and interval.start - runs[-1].end < BURST_DROPOUT_S:
            interval = Interval(runs[-1].start, interval.end)
            runs.pop()
        runs.append(interval)
    return [r for r in runs if r.duration >= _shortest_burst_s(settings.cadence)]


def _shortest_burst_s(cadence: RingbackCadence) -> float:
    """Tone runs shorter than this are not counted as ringback (s): 0.15, or half the shortest on-time."""
    return min(0.15, 0.5 * min(cadence.cadence_s[0::2]))


def _close(value: float, target: float) -> bool:
    return abs(value - target) <= max(0.3, 0.35 * target)


def _cadence_chain(runs: list[Interval], cadence: RingbackCadence,
                   line_open: float | None) -> list[Interval]:
    """The last chain of bursts whose lengths and gaps follow the cadence.

    Bursts longer than the cadence's on-time are some other sound (a dial tone, a held note); the
    final burst may be shorter, cut off by the answer. A lone burst shorter than half a ring is a
    blip unless the agent's line opened as it stopped.
    """
    ons, offs = cadence.cadence_s[0::2], cadence.cadence_s[1::2]
    chains: list[list[Interval]] = []
    for run in runs:
        if run.duration > max(ons) * 1.3 + 0.1:
            chains.append([])
            continue
        chain = chains[-1] if chains else []
        if chain and any(_close(run.start - chain[-1].end, off) for off in offs) \
                and chain[-1].duration >= 0.6 * min(ons):
            chain.append(run)
        else:
            chains.append([run])
    chains = [c for c in chains if c]
    if not chains:
        return []
    chain = chains[-1]
    cut_off = line_open is not None and abs(chain[0].end - line_open) <= CUT_OFF_S
    if len(chain) == 1 and chain[0].duration < 0.5 * min(ons) and not cut_off:
        return []
    return chain


def ringback_answer_window(bursts: list[Interval], settings: TimingConfig,
                           first_speech_s: float) -> tuple[float, float]:
    """When the call was answered, from the ringback alone: (earliest, latest) in seconds.

    A last burst cut short of its on-time (by more than `ring_cut_short_s`) stopped because the
    call was answered: the answer is its end. A last burst that rang out tells only that the
    answer came in the silence after it, before the next burst would have been heard (none was;
    one cut off sooner than the shortest burst counted would not be) and before anyone spoke: the
    window can be a whole off-time long (4 s in China), and a delay measured from its start is no
    proof that the agent was slow.
    """
    cadence = settings.cadence
    ons, offs = cadence.cadence_s[0::2], cadence.cadence_s[1::2]
    last = bursts[-1]
    if last.duration < min(ons) - settings.ring_cut_short_s:
        return last.end, last.end
    next_heard = last.end + _off_after(bursts, offs) + _shortest_burst_s(cadence)
    return last.end, max(last.end, min(next_heard, first_speech_s))


def _off_after(bursts: list[Interval], offs: tuple[float, ...]) -> float:
    """The silence the cadence plays after the last burst: the off-time following the one that
    came before it (UK double ring: 0.2 s after the first burst of a pair, 2 s after the second);
    the longest off-time when there is no gap to place the burst by."""
    if len(offs) == 1:
        return offs[0]
    if len(bursts) < 2:
        return max(offs)
    gap = bursts[-1].start - bursts[-2].end
    before = min(range(len(offs)), key=lambda k: abs(offs[k] - gap))
    return offs[(before + 1) % len(offs)]


def count_rings(bursts: list[Interval], cadence: RingbackCadence) -> int:
    """Ring cycles: a double-ring cadence (UK) sounds two bursts per ring."""
    offs = cadence.cadence_s[1::2]
    if len(offs) == 1:
        return len(bursts)
    split = (max(offs[:-1]) + offs[-1]) / 2
    return 1 + sum(1 for a, b in zip(bursts, bursts[1:]) if b.start - a.end >= split)
