"""The acoustic measures of one channel, on a 10 ms frame grid, only where the VAD found speech.

Vectorised numpy (no per-frame Python, nothing quadratic in call length), read by `audit.measure.prosody`,
which turns them into each utterance's and speaker's rate, level and pitch:

- Power: the mean square of the full-band samples per frame (level in dBFS: a full-scale square
  wave is 0 dBFS), and the speaking frames: speech frames above a floor set by the loudest speech
  and the noise around it (`[prosody] speaking_*`).
- Pitch: YIN (de Cheveigne & Kawahara 2002) on speech frames only, at 8 kHz, every frame's
  difference function computed at once with an FFT. pyin over whole channels is ~17x real time on
  one core; this is what keeps the stage hundreds of times faster than real time. Octave errors
  are moved back against the speaker's own median F0 and then against the neighbouring frames.
- Syllable nuclei after De Jong & Wempe (2009): intensity peaks that stand out from the dips on
  both sides by a minimum dip, above a floor under the loudest speech, and voiced.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.signal import find_peaks, resample_poly

from audit.config import ProsodyConfig
from audit.frames import SAMPLE_RATE, power_db, true_runs

FRAME_S = 0.01
FRAME = int(SAMPLE_RATE * FRAME_S)
PITCH_RATE = 8000  # the telephone band holds all of F0 and the vowels; half the work of 16 kHz
PITCH_HOP = int(PITCH_RATE * FRAME_S)
PITCH_CHUNK = 4096  # frames per FFT batch: bounds memory on long calls
# YIN takes the shortest period whose dip is within this of the deepest one. The first dip under
# the threshold (plain YIN) is often half the period on telephone speech, which lacks the
# fundamental; the deepest dip alone is often twice the period.
OCTAVE_TOLERANCE = 0.1
OCTAVE_CONTEXT = 9  # voiced frames around each frame whose median tells an octave error
# A frame further than this from its speaker's median F0 (where the shortest and deepest YIN dips
# agree) is moved back by whole octaves. Measured on fixtures/real-dev through a 300-3400 Hz phone
# band (tuning part): without it the 5-95 % pitch range of some voices reached 23 st and their
# median an octave too high; 0.75 octave (9 st) is beyond half the widest 5-95 % range of a real
# clip as recorded (11 st)
SPEAKER_OCTAVE_LIMIT = 0.75
DIGITAL_SILENCE_DB = -100.0  # a line not yet connected, or zero padding: no noise floor


@dataclass(frozen=True)
class ChannelFrames:
    """10 ms frames of one channel: full-band power, speech, intensity contour, F0, nuclei."""

    power: np.ndarray  # mean square per frame
    speech: np.ndarray  # bool: inside a VAD interval
    f0_hz: np.ndarray  # NaN where unvoiced or not speech
    f0_deepest_hz: np.ndarray  # from the deepest YIN dip: where it agrees, the octave is sure
    nuclei: np.ndarray  # bool: a syllable nucleus peaks in this frame
    sounding: np.ndarray  # bool: speech frames above the quiet floor (speaking time is made of these)


def frame_index(seconds: float, frames: int) -> int:
    """The 10 ms frame a time (s) falls in, clipped to [0, frames]."""
    return min(max(round(seconds / FRAME_S), 0), frames)


def interval_mask(spans, first: int, count: int) -> np.ndarray:
    """Which of the frames first .. first+count-1 the (start, end) spans in seconds cover."""
    edges = np.zeros(count + 1, dtype=np.int32)
    for start, end in spans:
        a = min(max(round(start / FRAME_S) - first, 0), count)
        b = min(max(round(end / FRAME_S) - first, 0), count)
        if b > a:
            edges[a] += 1
            edges[b] -= 1
    return np.cumsum(edges[:-1]) > 0


def bridge(mask: np.ndarray, max_gap_frames: int) -> np.ndarray:
    """Fill gaps shorter than `max_gap_frames` between runs of True."""
    starts, ends = true_runs(mask)
    bridged = mask.copy()
    short = np.flatnonzero(starts[1:] - ends[:-1] < max_gap_frames)
    if short.size:
        fill = np.zeros(mask.size + 1, dtype=np.int32)
        np.add.at(fill, ends[short], 1)
        np.add.at(fill, starts[short + 1], -1)
        bridged |= np.cumsum(fill[:-1]) > 0
    return bridged


def moving_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving sum over `width` frames (edges see a shorter window)."""
    total = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    half = width // 2
    index = np.arange(values.size)
    upper = np.minimum(index + width - half, values.size)
    lower = np.maximum(index - half, 0)
    return total[upper] - total[lower]


def analyse_channel(samples: np.ndarray, intervals, settings: ProsodyConfig) -> ChannelFrames:
    """Every frame measure of one 16 kHz channel, given its VAD intervals (s) and `[prosody]`."""
    frames = math.ceil(samples.size / FRAME)
    whole = samples.size // FRAME * FRAME
    framed = samples[:whole].reshape(-1, FRAME)  # a view: no copy of an hour-long channel
    power = np.zeros(frames)
    power[: framed.shape[0]] = np.einsum("fs,fs->f", framed, framed) / FRAME
    if whole < samples.size:  # the last, partial frame (zero-padded)
        power[-1] = np.sum(np.square(samples[whole:], dtype=np.float64)) / FRAME
    speech = interval_mask(((i.start, i.end) for i in intervals), 0, frames)
    narrow = _telephone_band(samples, speech)
    f0, deepest = _pitch(narrow, np.flatnonzero(speech), frames, settings)
    nuclei = _syllable_nuclei(narrow, speech, f0, settings)
    return ChannelFrames(power, speech, f0, deepest, nuclei, _sounding(power, speech, settings))


def _sounding(power: np.ndarray, speech: np.ndarray, settings: ProsodyConfig) -> np.ndarray:
    """Speech frames loud enough to be speaking: the VAD's intervals less their quiet edges and pauses.

    Silero pads its intervals and holds on through breaths and trailing noise; on real read speech
    that made the speaking time 7 % too long. A frame counts when its level (full band, smoothed
    like the intensity of the nuclei) is within `speaking_floor_db` of the loudest speech (0.99
    quantile) and above the noise floor (the `speaking_noise_percentile` of the frames outside
    speech) by `speaking_noise_share` of the way from there to the loudest speech. Digital silence
    (under -100 dBFS) is no noise floor; without any, only `speaking_floor_db` applies.
    """
    if not speech.any():
        return speech
    sigma = settings.intensity_window_s / FRAME_S / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    level = power_db(gaussian_filter1d(power, sigma, mode="nearest"))
    loudest = np.quantile(level[speech], 0.99)
    floor = loudest - settings.speaking_floor_db
    outside = level[~speech & (level > DIGITAL_SILENCE_DB)]
    if outside.size:
        noise = np.percentile(outside, settings.speaking_noise_percentile)
        floor = max(floor, noise + settings.speaking_noise_share * (loudest - noise))
    return speech & (level > floor)


def _telephone_band(samples: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """The speech at 8 kHz (zeros elsewhere): resampling only the speech halves the cost."""
    narrow = np.zeros(speech.size * PITCH_HOP, dtype=np.float32)
    margin = 5  # frames of context around each run, for the filter and the pitch window
    starts, ends = true_runs(speech)
    for start, end in zip(np.maximum(starts - margin, 0), np.minimum(ends + margin, speech.size)):
        piece = resample_poly(samples[start * FRAME: end * FRAME], 1, SAMPLE_RATE // PITCH_RATE)
        narrow[start * PITCH_HOP: start * PITCH_HOP + piece.size] = piece
    return narrow


def _pitch(narrow: np.ndarray, frames: np.ndarray, total: int,
           settings: ProsodyConfig) -> tuple[np.ndarray, np.ndarray]:
    """F0 per frame by YIN on the given frames only, and F0 from the deepest dip; NaN where unvoiced.

    The difference function d(tau) = e(0) + e(tau) - 2 r(tau) comes from running energies and an
    FFT cross-correlation for a whole batch of frames at once. The period is the shortest dip of
    its cumulative mean normalised form that is under the voicing threshold and within
    OCTAVE_TOLERANCE of the deepest dip, refined by a parabola.
    """
    f0 = np.full(total, np.nan)
    f0_deepest = np.full(total, np.nan)
    tau_min = max(2, int(PITCH_RATE / settings.pitch_max_hz))
    tau_max = math.ceil(PITCH_RATE / settings.pitch_min_hz)
    window = math.ceil(1.5 * PITCH_RATE / settings.pitch_min_hz)  # 1.5 periods of the lowest voice
    length = window + tau_max + 2
    size = scipy.fft.next_fast_len(length, real=True)
    source = np.concatenate((np.zeros(window, np.float32), narrow, np.zeros(length, np.float32)))
    offsets = np.arange(length)
    lags = np.arange(1, tau_max + 2)
    for batch in np.array_split(frames, max(1, math.ceil(frames.size / PITCH_CHUNK))):
        if batch.size == 0:
            continue
        centres = batch * PITCH_HOP + PITCH_HOP // 2 + window  # `window` of leading zeros
        segments = source[(centres - window // 2)[:, None] + offsets]
        spectrum = scipy.fft.rfft(segments, size, axis=1)
        head = scipy.fft.rfft(segments[:, :window], size, axis=1)
        correlation = scipy.fft.irfft(spectrum * np.conj(head), size, axis=1)[:, : tau_max + 2]
        energy = np.concatenate((np.zeros((batch.size, 1), np.float32),
                                 np.cumsum(np.square(segments), axis=1)), axis=1)
        e0 = energy[:, window][:, None]
        e_tau = energy[:, lags + window] - energy[:, lags]
        diff = np.maximum(e0 + e_tau - 2.0 * correlation[:, lags], 0.0)
        running = np.cumsum(diff, axis=1) / lags
        cmnd = np.where(running > 0, diff / np.maximum(running, 1e-20), 1.0)
        # cmnd[:, k] belongs to tau = k + 1; look for dips inside [tau_min, tau_max]
        inner = cmnd[:, tau_min - 1: tau_max]
        before = cmnd[:, tau_min - 2: tau_max - 1]
        after = cmnd[:, tau_min: tau_max + 1]
        dips = (inner < before) & (inner <= after) & (inner < settings.pitch_voicing_threshold)
        voiced = dips.any(axis=1)
        candidates = np.where(dips, inner, np.inf)
        deepest_k = np.argmin(candidates, axis=1)
        deepest = candidates[np.arange(batch.size), deepest_k]
        near = dips & (inner <= deepest[:, None] + OCTAVE_TOLERANCE)
        first = np.argmax(near, axis=1)
        rows = np.flatnonzero(voiced)
        k = first[rows]
        left, mid, right = before[rows, k], inner[rows, k], after[rows, k]
        curvature = left - 2.0 * mid + right
        shift = np.where(curvature > 0, 0.5 * (left - right) / np.maximum(curvature, 1e-12), 0.0)
        period = tau_min + k + np.clip(shift, -0.5, 0.5)
        f0[batch[rows]] = PITCH_RATE / period
        f0_deepest[batch[rows]] = PITCH_RATE / (tau_min + deepest_k[rows])
    return f0, f0_deepest


def speaker_pitch(f0: np.ndarray, deepest: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One speaker's F0 (NaN outside `mask`), octave errors moved back by as many octaves.

    First against the speaker's own median F0 over the frames where YIN's shortest dip (our period)
    and its deepest dip agree within a semitone: telephone speech lacks its fundamental, and on some
    voices the shortest dip is half the period for seconds on end, which the 9 neighbouring frames
    of `_fix_octaves` cannot outvote; the deepest dip alone is sometimes twice the period. Then
    against the neighbouring frames, for the occasional single error.
    """
    own = np.where(mask, f0, np.nan)
    voiced = np.flatnonzero(~np.isnan(own))
    if voiced.size == 0:
        return own
    octaves = np.log2(own[voiced])
    agreed = np.abs(octaves - np.log2(deepest[voiced])) < 1.0 / 12.0  # both rules, one semitone
    offset = octaves - np.median(octaves[agreed] if agreed.any() else octaves)
    own[voiced] = 2.0 ** (octaves - np.where(np.abs(offset) > SPEAKER_OCTAVE_LIMIT, np.round(offset), 0.0))
    return _fix_octaves(own)


def _fix_octaves(f0: np.ndarray) -> np.ndarray:
    """Move frames an octave or more away from their voiced neighbours' median back by as much.

    Low voices through the phone band still give YIN an occasional doubled or halved period, and a
    few such frames widen the 5-95 % pitch range by an octave.
    """
    voiced = np.flatnonzero(~np.isnan(f0))
    if voiced.size < OCTAVE_CONTEXT:
        return f0
    octaves = np.log2(f0[voiced])
    jumps = np.round(octaves - median_filter(octaves, OCTAVE_CONTEXT, mode="nearest"))
    fixed = f0.copy()
    fixed[voiced] = 2.0 ** (octaves - jumps)
    return fixed


def _syllable_nuclei(narrow: np.ndarray, speech: np.ndarray, f0: np.ndarray,
                     settings: ProsodyConfig) -> np.ndarray:
    """Frames where a syllable nucleus peaks (De Jong & Wempe 2009, reimplemented from the paper).

    Intensity (dB) of the 8 kHz speech, smoothed by a Gaussian of `intensity_window_s` full width
    at half maximum. A nucleus is a peak inside speech that rises at least `nuclei_min_dip_db`
    above the dips on both sides (its prominence), is no more than `nuclei_floor_db` under the
    loudest speech (0.99 quantile), and is voiced.
    """
    nuclei = np.zeros(speech.size, dtype=bool)
    if not speech.any():
        return nuclei
    framed = narrow.reshape(speech.size, PITCH_HOP)
    power = np.einsum("fs,fs->f", framed, framed).astype(np.float64) / PITCH_HOP
    sigma = settings.intensity_window_s / FRAME_S / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    intensity = power_db(gaussian_filter1d(power, sigma, mode="constant"))
    floor = np.quantile(intensity[speech], 0.99) - settings.nuclei_floor_db
    contour = np.where(speech, intensity, floor - settings.nuclei_min_dip_db)
    with warnings.catch_warnings():  # plateaus inside the 1 s window have no prominence: not peaks
        warnings.filterwarnings("ignore", "some peaks have a prominence of 0", RuntimeWarning)
        peaks, _ = find_peaks(contour, height=floor, prominence=settings.nuclei_min_dip_db,
                              wlen=int(1.0 / FRAME_S))
    reach = round(settings.nuclei_voicing_reach_s / FRAME_S)
    voiced = np.concatenate(([0], np.cumsum(~np.isnan(f0))))
    near = voiced[np.minimum(peaks + reach + 1, f0.size)] - voiced[np.maximum(peaks - reach, 0)] > 0
    nuclei[peaks[near]] = True
    return nuclei
