"""Prosody: speech rate, level, pitch and pauses per utterance and per speaker.

The frame measures of each channel (power, speaking frames, YIN pitch, syllable nuclei) are
`audit.measure.acoustics`'; this module says what they mean for each utterance and speaker:

- Level: RMS of the full-band samples in dBFS (a full-scale square wave is 0 dBFS), over speech
  frames. A 1 s moving level over speech frames gives the speaker's baseline (its median), the
  spread and the raised-voice episodes.
- Pitch: the speaker's F0 (octave errors moved back against their own median), its median, 5-95 %
  range and spread in semitones; monotone utterances.
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
from dataclasses import dataclass
from typing import Callable

import numpy as np

from audit.measure.acoustics import (
    FRAME,
    FRAME_S,
    ChannelFrames,
    analyse_channel,
    bridge,
    frame_index,
    interval_mask,
    moving_sum,
    speaker_pitch,
)
from audit.config import ProsodyConfig
from audit.frames import power_db, true_runs
from audit.records import CallEvent, ChannelSpeech, Speaker, Transcript, Utterance
from audit.textnorm import normalize


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
            # the agent's usual level (median 1 s level, dBFS) and the stretches well above it
            "agent_level_baseline_dbfs": of(agent, "level_baseline_dbfs"),
            "agent_raised_intervals": ([[round(e.start, 2), round(e.end, 2), round(e.rise_db, 1)]
                                        for e in self.raised if e.speaker == "agent"]
                                       if measured_raise else None),
            # the agent's rate is counted from the transcript where it has text, else from the audio
            "agent_rate_source": (None if agent is None
                                  else "transcript" if agent.rate_cpm is not None else "audio"),
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


# --- speakers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Track:
    """Where one speaker speaks: a channel's frames, the mask of this speaker's speech, their F0."""

    speaker: Speaker
    channel: ChannelFrames
    mask: np.ndarray
    f0_hz: np.ndarray  # NaN outside the mask and where unvoiced; octave errors moved back

    @classmethod
    def of(cls, speaker: Speaker, channel: ChannelFrames, mask: np.ndarray) -> _Track:
        return cls(speaker, channel, mask, speaker_pitch(channel.f0_hz, channel.f0_deepest_hz, mask))


def _tracks(speech: tuple[ChannelSpeech, ...], channels: list[ChannelFrames],
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
                mask = analysed.speech & interval_mask(spans, 0, frames)
                tracks[name] = _Track.of(name, analysed, mask)
                rest &= ~mask
        if rest.any():
            tracks["unknown"] = _Track.of("unknown", analysed, rest)
    return tracks


def _smoothed_level(track: _Track, settings: ProsodyConfig) -> np.ndarray:
    """The speaker's level (dB) over a moving window of their own speech frames."""
    width = max(1, round(settings.level_window_s / FRAME_S))
    weight = track.mask.astype(np.float64)
    energy = moving_sum(track.channel.power * weight, width)
    count = moving_sum(weight, width)
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
    a, b = frame_index(utterance.start, frames), frame_index(utterance.end, frames)
    empty = UtteranceProsody(index, utterance.speaker, utterance.start, utterance.end, chars, 0.0,
                             None, None, None, None, None, 0.0, False, None)
    if track is None or b <= a:
        return empty
    pause = max(1, round(settings.rate_pause_min_s / FRAME_S))
    spans = [(w.start, w.end) for w in utterance.words] or [(utterance.start, utterance.end)]
    timing = bridge(interval_mask(spans, a, b - a), pause)
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
    merged = bridge(raised, max(1, round(settings.raised_merge_gap_s / FRAME_S)))
    starts, ends = true_runs(merged)
    sustained = [(a, b) for a, b in zip(starts, ends)
                 if raised[a:b].sum() * FRAME_S >= settings.raised_min_s]
    label = np.zeros(frames, dtype=np.int32)  # 1 + the episode each frame belongs to
    for number, (a, b) in enumerate(sustained, start=1):
        label[a:b] = number
    held: list[list[int]] = [[] for _ in sustained]
    for u in utterances:  # an utterance belongs to the episode holding most of its speech
        a, b = frame_index(u.start, frames), frame_index(u.end, frames)
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
    speech edges alone move the rate by more than the rise we look for. Where both rates are
    measured (characters of the transcript, syllable nuclei of the audio), an utterance is faster
    only when both say so, each against its own calm baseline: a string of digits the ASR writes
    as many characters, or a transcript's tight times, raise one count and not the other.
    """
    leveled = [u for u in utterances if u.level_dbfs is not None]
    if len(leveled) < settings.agitation_min_utterances:
        return None
    percentile = settings.agitation_baseline_percentile
    calm_level = float(np.percentile([u.level_dbfs for u in leveled], percentile))
    ratios = [_rate_ratios(leveled, lambda u: u.rate_cpm, settings),
              _rate_ratios(leveled, lambda u: u.rate_audio_cpm, settings)]
    found = []
    for u in leveled:
        rise = u.level_dbfs - calm_level
        measured = [r[u.index] for r in ratios if r is not None and u.index in r]
        ratio = min(measured) if measured else None
        if rise >= settings.agitation_level_db or (ratio or 0.0) >= settings.agitation_rate_ratio:
            found.append(Agitation(u.index, u.start, u.end, rise, ratio))
    return found


def _rate_ratios(utterances: list[UtteranceProsody], rate_of: Callable[[UtteranceProsody], float | None],
                 settings: ProsodyConfig) -> dict[int, float] | None:
    """Each long-enough utterance's rate over the speaker's calm one (a low percentile of these
    rates); None when too few utterances have the rate."""
    timed = {u.index: rate_of(u) for u in utterances
             if rate_of(u) is not None and u.spoken_s >= settings.agitation_rate_min_s}
    if len(timed) < settings.agitation_min_utterances:
        return None
    calm = float(np.percentile(list(timed.values()), settings.agitation_baseline_percentile))
    return {index: rate / calm for index, rate in timed.items()} if calm > 0 else None


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
    """Measure every utterance, speaker and episode of one call.

    Parameters
    ----------
    audio_16k : np.ndarray
        The call, float32 at 16 kHz, shape (channels, frames).
    speech : tuple of ChannelSpeech
        Speech per channel: level, pitch and syllable nuclei are measured on speech frames only.
    transcript : Transcript
        The utterances measured (rate in 字/分 from their characters; with no transcript only the
        audio measures remain).
    settings : ProsodyConfig
        `[prosody]`: rate bands, the raised-voice, jump and monotone thresholds (dB, semitones,
        seconds, as the key names say) and the agitation cues.

    Returns
    -------
    Prosody
        Per utterance and per speaker: rate (字/分, from the text and from the audio), level
        (dBFS), pitch (Hz, range in semitones); raised-voice, jump and monotone episodes and the
        customer's agitation moments (seconds from the recording start); its `events()` are what
        rules anchor on.
    """
    frames = math.ceil(audio_16k.shape[-1] / FRAME)
    channels = [analyse_channel(audio_16k[s.channel.index], s.intervals, settings) for s in speech]
    tracks = _tracks(speech, channels, transcript.utterances, frames)
    pause = max(1, round(settings.rate_pause_min_s / FRAME_S))
    speaking = {name: bridge(track.mask & track.channel.sounding, pause) for name, track in tracks.items()}
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
