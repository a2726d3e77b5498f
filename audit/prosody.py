"""Prosody: speech rate, level, pitch and pauses per utterance and per speaker.

Everything is measured on a 10 ms frame grid per channel, only where the VAD found speech, with
vectorised numpy (no per-frame Python, nothing quadratic in call length):

- Level: RMS of the full-band samples in dBFS (a full-scale square wave is 0 dBFS), over speech
  frames. A 1 s moving level over speech frames gives the speaker's baseline (its median), the
  spread and the raised-voice episodes.
- Pitch: YIN (de Cheveigne & Kawahara 2002) on speech frames only, at 8 kHz, every frame's
  difference function computed at once with an FFT. pyin over whole channels is ~17x real time on
  one core; this is what keeps the stage hundreds of times faster than real time. Octave errors
  are moved back against the speaker's own median F0 and then against the neighbouring frames.
- Speech rate: characters of the transcript (punctuation stripped) over speaking time, and,
  independently, syllable nuclei counted in the audio after De Jong & Wempe (2009): intensity peaks
  that stand out from the dips on both sides by a minimum dip, above a floor under the loudest
  speech, and voiced. In Mandarin one character is one syllable, so both are 字/分. Speaking time
  is the utterance's timing inside the speaker's voice activity, less its quiet edges and leaving
  out pauses of `rate_pause_min_s` or longer (quiet: under a floor set by the loudest speech and
  the noise around it).

Speakers come from the channels (two-channel recordings), or on a mono recording from the
transcript's speaker labels when it has them; otherwise everything is the "unknown" speaker's.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.signal import find_peaks, resample_poly

from audit.config import ProsodyConfig
from audit.frames import SAMPLE_RATE, power_db, true_runs
from audit.records import CallEvent, ChannelSpeech, Speaker, Transcript, Utterance
from audit.textnorm import normalize

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


# --- the record ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UtteranceProsody:
    """Measures of one transcript utterance (same index as in `transcript.utterances`)."""

    index: int
    speaker: Speaker
    start: float
    end: float
    chars: int  # punctuation and spaces stripped
    spoken_s: float  # timing inside speaking time (see SpeakerProsody.speech_s)
    rate_cpm: float | None  # characters per minute; None under rate_min_chars or rate_min_speech_s
    rate_audio_cpm: float | None  # syllable nuclei per minute over the same time
    level_dbfs: float | None  # None when the VAD found no speech in it
    pitch_median_hz: float | None
    pitch_range_st: float | None  # 5th to 95th percentile of F0, in semitones
    voiced_s: float
    quiet: bool  # level under quiet_level_dbfs
    monotone: bool | None  # flat pitch; None when too little voiced speech to tell

    def metrics(self) -> dict:
        """The per-utterance metrics the call record carries beside each utterance."""
        def rounded(value, digits=1):
            return None if value is None else round(float(value), digits)

        return {"rate_cpm": rounded(self.rate_cpm), "rate_audio_cpm": rounded(self.rate_audio_cpm),
                "level_dbfs": rounded(self.level_dbfs), "pitch_median_hz": rounded(self.pitch_median_hz),
                "pitch_range_st": rounded(self.pitch_range_st, 2), "quiet": self.quiet,
                "monotone": self.monotone}


@dataclass(frozen=True)
class SpeakerProsody:
    """One speaker over the whole call."""

    speaker: Speaker
    speech_s: float  # voice activity less quiet edges, pauses >= rate_pause_min_s left out
    rate_cpm: float | None  # from the transcript: utterances of at least rate_min_chars
    rate_audio_cpm: float | None  # syllable nuclei over all the speaker's speech
    level_dbfs: float | None
    level_baseline_dbfs: float | None  # median 1 s level; None with too little speech
    level_spread_db: float | None  # 10th to 90th percentile of the 1 s level
    quiet_share: float | None  # share of speech time whose 1 s level is under quiet_level_dbfs
    pitch_median_hz: float | None
    pitch_range_st: float | None  # 5th to 95th percentile
    pitch_spread_st: float | None  # standard deviation


@dataclass(frozen=True)
class RaisedEpisode:
    """Sustained speech well above the speaker's own median level in this call."""

    speaker: Speaker
    start: float
    end: float
    rise_db: float  # median 1 s level in the episode minus the speaker's baseline
    utterances: tuple[int, ...]  # utterances at least half inside the episode


@dataclass(frozen=True)
class HarshJump:
    """A speaker's utterance much louder (or louder and higher) than their previous one."""

    speaker: Speaker
    before: int  # utterance indices
    after: int
    start: float  # of the louder utterance
    end: float
    level_rise_db: float
    pitch_rise_st: float | None


@dataclass(frozen=True)
class Pause:
    """Silence inside a speaker's turn: nobody else spoke in it."""

    speaker: Speaker
    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ResponseGap:
    """From the customer's last speech to the agent's next words."""

    customer_end: float
    agent_start: float

    @property
    def gap_s(self) -> float:
        return self.agent_start - self.customer_end


@dataclass(frozen=True)
class Agitation:
    """A customer utterance well louder or faster than the customer's calm baseline."""

    utterance: int
    start: float
    end: float
    level_rise_db: float
    rate_ratio: float | None


@dataclass(frozen=True)
class Prosody:
    utterances: tuple[UtteranceProsody, ...]  # aligned with transcript.utterances
    speakers: tuple[SpeakerProsody, ...]
    raised: tuple[RaisedEpisode, ...]
    jumps: tuple[HarshJump, ...]
    pauses: tuple[Pause, ...]  # inside the agent's turns, at least long_pause_s
    response_gaps: tuple[ResponseGap, ...]
    agitation: tuple[Agitation, ...] | None  # None: too few customer utterances to know a baseline

    @property
    def monotone(self) -> tuple[UtteranceProsody, ...]:
        """The monotone stretches: long utterances whose pitch hardly moves."""
        return tuple(u for u in self.utterances if u.monotone)

    def speaker(self, name: Speaker) -> SpeakerProsody | None:
        return next((s for s in self.speakers if s.speaker == name), None)

    def metrics(self) -> dict:
        """The call-level metrics under the names of the call record; None when not measurable."""
        agent, customer = self.speaker("agent"), self.speaker("customer")

        def of(summary: SpeakerProsody | None, name: str, digits: int = 1):
            value = getattr(summary, name) if summary is not None else None
            return None if value is None else round(value, digits)

        measured_raise = agent is not None and agent.level_baseline_dbfs is not None
        gaps = [g.gap_s for g in self.response_gaps]
        return {
            "agent_rate_cpm": of(agent, "rate_cpm"),
            "agent_rate_audio_cpm": of(agent, "rate_audio_cpm"),
            "customer_rate_cpm": of(customer, "rate_cpm"),
            "customer_rate_audio_cpm": of(customer, "rate_audio_cpm"),
            "agent_level_dbfs": of(agent, "level_dbfs"),
            "agent_level_spread_db": of(agent, "level_spread_db"),
            "agent_pitch_median_hz": of(agent, "pitch_median_hz"),
            "agent_pitch_range_st": of(agent, "pitch_range_st", 2),
            "agent_pitch_spread_st": of(agent, "pitch_spread_st", 2),
            "agent_quiet_share": of(agent, "quiet_share", 2),
            # hesitation and response latency: silences of long_pause_s or more inside the agent's
            # turns, and the time from the customer's last words to the agent's reply
            "agent_long_pauses": len(self.pauses) if agent is not None else None,
            "agent_long_pause_s": (round(sum(p.duration_s for p in self.pauses), 1) if agent is not None
                                   else None),
            "agent_response_median_s": (round(float(np.median(gaps)), 2) if gaps else None),
            "agent_response_max_s": (round(max(gaps), 2) if gaps else None),
            "raised_voice_count": (sum(e.speaker == "agent" for e in self.raised)
                                   if measured_raise else None),
            "agitation_moments": (None if self.agitation is None
                                  else [round(a.start, 2) for a in self.agitation]),
        }

    def events(self) -> tuple[CallEvent, ...]:
        """Raised voice, customer agitation and monotone stretches, for rules to anchor on."""
        found = [CallEvent("raised_voice", e.start, e.end, e.speaker,
                           {"rise_db": round(e.rise_db, 1), "utterances": list(e.utterances)})
                 for e in self.raised]
        found += [CallEvent("agitation", a.start, a.end, "customer",
                            {"utterance": a.utterance, "level_rise_db": round(a.level_rise_db, 1),
                             "rate_ratio": None if a.rate_ratio is None else round(a.rate_ratio, 2)})
                  for a in self.agitation or ()]
        found += [CallEvent("monotone", u.start, u.end, u.speaker,
                            {"utterance": u.index, "pitch_range_st": round(u.pitch_range_st, 2)})
                  for u in self.monotone]
        return tuple(sorted(found, key=lambda e: (e.start, e.kind)))


# --- frame analysis per channel -----------------------------------------------------------------


@dataclass(frozen=True)
class _ChannelFrames:
    """10 ms frames of one channel: full-band power, speech, intensity contour, F0, nuclei."""

    power: np.ndarray  # mean square per frame
    speech: np.ndarray  # bool: inside a VAD interval
    f0_hz: np.ndarray  # NaN where unvoiced or not speech
    f0_deepest_hz: np.ndarray  # from the deepest YIN dip: where it agrees, the octave is sure
    nuclei: np.ndarray  # bool: a syllable nucleus peaks in this frame
    sounding: np.ndarray  # bool: speech frames above the quiet floor (speaking time is made of these)


def _frame_index(seconds: float, frames: int) -> int:
    return min(max(round(seconds / FRAME_S), 0), frames)


def _interval_mask(spans, first: int, count: int) -> np.ndarray:
    """Which of the frames first .. first+count-1 the (start, end) spans in seconds cover."""
    edges = np.zeros(count + 1, dtype=np.int32)
    for start, end in spans:
        a = min(max(round(start / FRAME_S) - first, 0), count)
        b = min(max(round(end / FRAME_S) - first, 0), count)
        if b > a:
            edges[a] += 1
            edges[b] -= 1
    return np.cumsum(edges[:-1]) > 0


def _bridge(mask: np.ndarray, max_gap_frames: int) -> np.ndarray:
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


def _moving_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving sum over `width` frames (edges see a shorter window)."""
    total = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    half = width // 2
    index = np.arange(values.size)
    upper = np.minimum(index + width - half, values.size)
    lower = np.maximum(index - half, 0)
    return total[upper] - total[lower]


def _analyse_channel(samples: np.ndarray, intervals, settings: ProsodyConfig) -> _ChannelFrames:
    frames = math.ceil(samples.size / FRAME)
    whole = samples.size // FRAME * FRAME
    framed = samples[:whole].reshape(-1, FRAME)  # a view: no copy of an hour-long channel
    power = np.zeros(frames)
    power[: framed.shape[0]] = np.einsum("fs,fs->f", framed, framed) / FRAME
    if whole < samples.size:  # the last, partial frame (zero-padded)
        power[-1] = np.sum(np.square(samples[whole:], dtype=np.float64)) / FRAME
    speech = _interval_mask(((i.start, i.end) for i in intervals), 0, frames)
    narrow = _telephone_band(samples, speech)
    f0, deepest = _pitch(narrow, np.flatnonzero(speech), frames, settings)
    nuclei = _syllable_nuclei(narrow, speech, f0, settings)
    return _ChannelFrames(power, speech, f0, deepest, nuclei, _sounding(power, speech, settings))


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


def _speaker_pitch(f0: np.ndarray, deepest: np.ndarray, mask: np.ndarray) -> np.ndarray:
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


# --- speakers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Track:
    """Where one speaker speaks: a channel's frames, the mask of this speaker's speech, their F0."""

    speaker: Speaker
    channel: _ChannelFrames
    mask: np.ndarray
    f0_hz: np.ndarray  # NaN outside the mask and where unvoiced; octave errors moved back

    @classmethod
    def of(cls, speaker: Speaker, channel: _ChannelFrames, mask: np.ndarray) -> _Track:
        return cls(speaker, channel, mask, _speaker_pitch(channel.f0_hz, channel.f0_deepest_hz, mask))


def _tracks(speech: tuple[ChannelSpeech, ...], channels: list[_ChannelFrames],
            utterances: tuple[Utterance, ...], frames: int) -> dict[Speaker, _Track]:
    tracks: dict[Speaker, _Track] = {}
    for channel_speech, analysed in zip(speech, channels):
        own = channel_speech.channel.speaker
        if own != "unknown":
            tracks[own] = _Track.of(own, analysed, analysed.speech)
            continue
        # a mono channel: the transcript's speaker labels, where it has them, say who speaks
        rest = analysed.speech.copy()
        for name in ("agent", "customer"):
            spans = [(u.start, u.end) for u in utterances if u.speaker == name]
            if spans:
                mask = analysed.speech & _interval_mask(spans, 0, frames)
                tracks[name] = _Track.of(name, analysed, mask)
                rest &= ~mask
        if rest.any():
            tracks["unknown"] = _Track.of("unknown", analysed, rest)
    return tracks


def _smoothed_level(track: _Track, settings: ProsodyConfig) -> np.ndarray:
    """The speaker's level (dB) over a moving window of their own speech frames."""
    width = max(1, round(settings.level_window_s / FRAME_S))
    weight = track.mask.astype(np.float64)
    energy = _moving_sum(track.channel.power * weight, width)
    count = _moving_sum(weight, width)
    return power_db(energy / np.maximum(count, 1.0))


def _semitones(hz: np.ndarray, reference: float) -> np.ndarray:
    return 12.0 * np.log2(hz / reference)


def _pitch_stats(f0: np.ndarray, settings: ProsodyConfig):
    """(median Hz, 5-95 % range st, spread st, voiced s) of the voiced frames given."""
    voiced = f0[~np.isnan(f0)]
    voiced_s = voiced.size * FRAME_S
    if voiced_s < settings.pitch_min_voiced_s:
        return None, None, None, voiced_s
    median = float(np.median(voiced))
    tones = _semitones(voiced, median)
    low, high = np.percentile(tones, [5, 95])
    return median, float(high - low), float(np.std(tones)), voiced_s


# --- per utterance ------------------------------------------------------------------------------


def _measure_utterance(index: int, utterance: Utterance, track: _Track | None, speaking: np.ndarray,
                       frames: int, settings: ProsodyConfig) -> UtteranceProsody:
    chars = len(normalize(utterance.text).text)
    a, b = _frame_index(utterance.start, frames), _frame_index(utterance.end, frames)
    empty = UtteranceProsody(index, utterance.speaker, utterance.start, utterance.end, chars, 0.0,
                             None, None, None, None, None, 0.0, False, None)
    if track is None or b <= a:
        return empty
    pause = max(1, round(settings.rate_pause_min_s / FRAME_S))
    spans = [(w.start, w.end) for w in utterance.words] or [(utterance.start, utterance.end)]
    timing = _bridge(_interval_mask(spans, a, b - a), pause)
    spoken = timing & speaking[a:b]
    spoken_s = float(spoken.sum()) * FRAME_S
    rated = chars >= settings.rate_min_chars and spoken_s >= settings.rate_min_speech_s
    rate = chars / spoken_s * 60.0 if rated else None
    nuclei = int(np.count_nonzero(track.channel.nuclei[a:b] & spoken))
    rate_audio = nuclei / spoken_s * 60.0 if rated else None
    own = track.mask[a:b]
    level = float(power_db(track.channel.power[a:b][own].mean())) if own.any() else None
    median, pitch_range, _, voiced_s = _pitch_stats(track.f0_hz[a:b][own], settings)
    quiet = level is not None and level < settings.quiet_level_dbfs
    monotone = (pitch_range <= settings.monotone_max_range_st
                if pitch_range is not None and voiced_s >= settings.monotone_min_voiced_s else None)
    return UtteranceProsody(index, utterance.speaker, utterance.start, utterance.end, chars,
                            spoken_s, rate, rate_audio, level, median, pitch_range, voiced_s, quiet,
                            monotone)


# --- per speaker --------------------------------------------------------------------------------


def _summarise(track: _Track, speaking: np.ndarray, level: np.ndarray,
               utterances: list[UtteranceProsody], settings: ProsodyConfig) -> SpeakerProsody:
    speech_s = float(speaking.sum()) * FRAME_S
    rated = [u for u in utterances if u.rate_cpm is not None]
    rate = (sum(u.chars for u in rated) / sum(u.spoken_s for u in rated) * 60.0) if rated else None
    nuclei = int(np.count_nonzero(track.channel.nuclei & speaking))
    rate_audio = nuclei / speech_s * 60.0 if speech_s >= settings.rate_min_speech_s else None
    own_s = float(track.mask.sum()) * FRAME_S
    mean_level = float(power_db(track.channel.power[track.mask].mean())) if own_s else None
    baseline = spread = quiet = None
    if own_s >= settings.level_baseline_min_s:
        levels = level[track.mask]
        baseline = float(np.median(levels))
        low, high = np.percentile(levels, [10, 90])
        spread = float(high - low)
        quiet = float(np.mean(levels < settings.quiet_level_dbfs))
    median, pitch_range, pitch_spread, _ = _pitch_stats(track.f0_hz[track.mask], settings)
    return SpeakerProsody(track.speaker, speech_s, rate, rate_audio, mean_level, baseline, spread,
                          quiet, median, pitch_range, pitch_spread)


def _raised_episodes(track: _Track, level: np.ndarray, baseline: float,
                     utterances: list[UtteranceProsody], frames: int,
                     settings: ProsodyConfig) -> list[RaisedEpisode]:
    raised = track.mask & (level >= baseline + settings.raised_level_db)
    merged = _bridge(raised, max(1, round(settings.raised_merge_gap_s / FRAME_S)))
    starts, ends = true_runs(merged)
    sustained = [(a, b) for a, b in zip(starts, ends)
                 if raised[a:b].sum() * FRAME_S >= settings.raised_min_s]
    label = np.zeros(frames, dtype=np.int32)  # 1 + the episode each frame belongs to
    for number, (a, b) in enumerate(sustained, start=1):
        label[a:b] = number
    held: list[list[int]] = [[] for _ in sustained]
    for u in utterances:  # an utterance belongs to the episode holding most of its speech
        a, b = _frame_index(u.start, frames), _frame_index(u.end, frames)
        inside = label[a:b][track.mask[a:b]]
        if inside.size and np.count_nonzero(inside) >= inside.size / 2:
            held[np.bincount(inside[inside > 0]).argmax() - 1].append(u.index)
    return [RaisedEpisode(track.speaker, float(a * FRAME_S), float(b * FRAME_S),
                          float(np.median(level[a:b][raised[a:b]])) - baseline, tuple(indices))
            for (a, b), indices in zip(sustained, held)]


def _jumps(utterances: list[UtteranceProsody], settings: ProsodyConfig) -> list[HarshJump]:
    """Rises between a speaker's consecutive utterances: in level alone, or in level and pitch."""
    leveled = [u for u in utterances if u.level_dbfs is not None]
    found = []
    for before, after in itertools.pairwise(leveled):
        rise = after.level_dbfs - before.level_dbfs
        pitch_rise = (12.0 * math.log2(after.pitch_median_hz / before.pitch_median_hz)
                      if after.pitch_median_hz and before.pitch_median_hz else None)
        loud = rise >= settings.jump_level_db
        sharp = (pitch_rise is not None and pitch_rise >= settings.jump_pitch_st
                 and rise >= settings.jump_pitch_level_db)
        if loud or sharp:
            found.append(HarshJump(after.speaker, before.index, after.index, after.start, after.end,
                                   rise, pitch_rise))
    return found


def _agitation(utterances: list[UtteranceProsody], settings: ProsodyConfig) -> list[Agitation] | None:
    """Customer utterances well above the customer's calm baseline (a low percentile of their own).

    The rate counts only on utterances of at least `agitation_rate_min_s`: on shorter ones the
    speech edges alone move the rate by more than the rise we look for.
    """
    leveled = [u for u in utterances if u.level_dbfs is not None]
    if len(leveled) < settings.agitation_min_utterances:
        return None
    percentile = settings.agitation_baseline_percentile
    calm_level = float(np.percentile([u.level_dbfs for u in leveled], percentile))
    timed = {u.index: u.rate_cpm for u in leveled
             if u.rate_cpm is not None and u.spoken_s >= settings.agitation_rate_min_s}
    calm_rate = (float(np.percentile(list(timed.values()), percentile))
                 if len(timed) >= settings.agitation_min_utterances else None)
    found = []
    for u in leveled:
        rise = u.level_dbfs - calm_level
        ratio = timed[u.index] / calm_rate if calm_rate is not None and u.index in timed else None
        if rise >= settings.agitation_level_db or (ratio or 0.0) >= settings.agitation_rate_ratio:
            found.append(Agitation(u.index, u.start, u.end, rise, ratio))
    return found


# --- turns: pauses and response gaps ------------------------------------------------------------


def _turn_pauses(agent: _Track, others: list[_Track], settings: ProsodyConfig) -> list[Pause]:
    """Gaps of at least long_pause_s between the agent's speech in which nobody else spoke."""
    starts, ends = true_runs(agent.mask)
    if starts.size < 2:
        return []
    anyone = np.zeros(agent.mask.size, dtype=bool)
    for other in others:
        anyone |= other.mask
    spoken = np.concatenate(([0], np.cumsum(anyone)))
    gap_start, gap_end = ends[:-1], starts[1:]
    long = (gap_end - gap_start) * FRAME_S >= settings.long_pause_s
    alone = spoken[gap_end] - spoken[gap_start] == 0
    return [Pause(agent.speaker, float(a * FRAME_S), float(b * FRAME_S))
            for a, b in zip(gap_start[long & alone], gap_end[long & alone])]


def _response_gaps(agent: _Track, customer: _Track) -> list[ResponseGap]:
    """Each time the agent starts speaking after the customer stopped (and not over them)."""
    agent_starts, agent_ends = true_runs(agent.mask)
    customer_starts, customer_ends = true_runs(customer.mask)
    if not agent_starts.size or not customer_starts.size:
        return []
    last = np.searchsorted(customer_ends, agent_starts, side="right") - 1
    has_last = last >= 0
    stopped = customer_ends[np.maximum(last, 0)]
    following = np.minimum(last + 1, customer_starts.size - 1)
    silent = (last + 1 >= customer_starts.size) | (customer_starts[following] >= agent_starts)
    previous_end = np.concatenate(([-1], agent_ends[:-1]))
    answering = previous_end <= stopped
    keep = has_last & silent & answering
    return [ResponseGap(float(c * FRAME_S), float(a * FRAME_S))
            for c, a in zip(stopped[keep], agent_starts[keep])]


# --- the stage ----------------------------------------------------------------------------------


def measure_prosody(audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...],
                    transcript: Transcript, settings: ProsodyConfig) -> Prosody:
    """Measure every utterance, speaker and episode of one call (audio at 16 kHz, one row a channel)."""
    frames = math.ceil(audio_16k.shape[-1] / FRAME)
    channels = [_analyse_channel(audio_16k[s.channel.index], s.intervals, settings) for s in speech]
    tracks = _tracks(speech, channels, transcript.utterances, frames)
    pause = max(1, round(settings.rate_pause_min_s / FRAME_S))
    speaking = {name: _bridge(track.mask & track.channel.sounding, pause) for name, track in tracks.items()}
    measured = [
        _measure_utterance(i, u, tracks.get(u.speaker), speaking.get(u.speaker), frames, settings)
        for i, u in enumerate(transcript.utterances)
    ]
    summaries, raised, jumps = [], [], []
    for name, track in tracks.items():
        own = [u for u in measured if u.speaker == name]
        level = _smoothed_level(track, settings)
        summary = _summarise(track, speaking[name], level, own, settings)
        summaries.append(summary)
        if summary.level_baseline_dbfs is not None:
            raised += _raised_episodes(track, level, summary.level_baseline_dbfs, own, frames, settings)
        jumps += _jumps(own, settings)
    agent, customer = tracks.get("agent"), tracks.get("customer")
    pauses = _turn_pauses(agent, [t for t in tracks.values() if t is not agent], settings) if agent else []
    gaps = _response_gaps(agent, customer) if agent and customer else []
    agitation = _agitation([u for u in measured if u.speaker == "customer"], settings)
    return Prosody(
        utterances=tuple(measured),
        speakers=tuple(summaries),
        raised=tuple(sorted(raised, key=lambda e: e.start)),
        jumps=tuple(sorted(jumps, key=lambda j: j.start)),
        pauses=tuple(pauses),
        response_gaps=tuple(gaps),
        agitation=None if agitation is None else tuple(agitation),
    )
