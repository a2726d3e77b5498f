"""Call timing from the audio: ringback, the answer, first words, holds, overlaps, the ending.

Onsets come from voice activity per channel and from tone detection (`audit.measure.ringback`), never
from ASR segment starts (which drift by up to a second). The transcript is only read for what the words decide:
whether a silence was announced as a hold (and for how long), whether the agent thanked the
customer afterwards, and whether an overlap was a backchannel.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

import numpy as np

from audit.config import TimingConfig
from audit.frames import SAMPLE_RATE, frame_db
from audit.phrases import Phrase, says
from audit.records import CallEvent, CallMeta, ChannelSpeech, Interval, Speaker, Transcript, Utterance
from audit.measure.ringback import count_rings, ringback_and_last_tone, ringback_answer_window
from audit.textnorm import normalize, to_simplified

LEVEL_FRAME_S = 0.02


@dataclass(frozen=True)
class Silence:
    """A stretch after the call started where nobody speaks, longer than `min_silence_s`."""

    start: float
    end: float
    announcement: Utterance | None  # the agent's 请您稍等 ... before it
    promised_s: float | None  # what the announcement promised
    thanks: Utterance | None  # the agent's 感谢您的耐心等待 after it
    music: bool  # a channel carried sound (hold music) though nobody spoke

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def is_hold(self) -> bool:
        return self.announcement is not None


@dataclass(frozen=True)
class Overlap:
    """One speaker starting to talk while the other is talking."""

    start: float
    end: float
    interrupter: Speaker
    text: str  # what the interrupter said, when there is a transcript
    backchannel: bool  # 嗯 / 好的 / 是的: listening, not interrupting

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Timing:
    duration_s: float
    two_channel: bool
    ring_bursts: tuple[Interval, ...]  # ringback tone heard in the recording
    ring_count: int | None
    ring_start_s: float | None
    ring_source: str | None  # "audio" or "metadata"
    answer_s: float  # the earliest moment the call can have been answered
    answer_latest_s: float  # the latest; equal to answer_s when the audio or metadata shows the moment
    answer_source: str  # "line_open", "ringback", "metadata" or "recording_start" (assumed)
    agent_first_words_s: float | None
    silences: tuple[Silence, ...]
    overlaps: tuple[Overlap, ...]
    talk_s: dict  # speaker -> seconds of speech
    non_talk_s: float | None
    last_speaker: Speaker | None
    last_words_end_s: float | None
    interruption_min_overlap_s: float

    @property
    def interruptions(self) -> tuple[Overlap, ...]:
        return tuple(o for o in self.overlaps if o.interrupter == "agent" and self._counts(o))

    @property
    def customer_interruptions(self) -> tuple[Overlap, ...]:
        return tuple(o for o in self.overlaps if o.interrupter == "customer" and self._counts(o))

    def _counts(self, overlap: Overlap) -> bool:
        return not overlap.backchannel and overlap.duration >= self.interruption_min_overlap_s

    @property
    def answer_exact(self) -> bool:
        """Whether the answer moment is known, rather than only the window it lies in."""
        return self.answer_latest_s == self.answer_s

    @property
    def first_words_delay_s(self) -> float | None:
        """Seconds from the earliest possible answer to the agent's first words (the longest the
        wait can have been)."""
        if self.agent_first_words_s is None:
            return None
        return max(0.0, self.agent_first_words_s - self.answer_s)

    @property
    def first_words_delay_min_s(self) -> float | None:
        """Seconds from the latest possible answer to the agent's first words (the shortest the wait
        can have been); equal to `first_words_delay_s` when the answer is exact."""
        if self.agent_first_words_s is None:
            return None
        return max(0.0, self.agent_first_words_s - self.answer_latest_s)

    @property
    def end_gap_s(self) -> float | None:
        return None if self.last_words_end_s is None else self.duration_s - self.last_words_end_s

    def metrics(self) -> dict:
        holds = [s for s in self.silences if s.is_hold]
        dead = [s for s in self.silences if not s.is_hold]
        overlap = sum(o.duration for o in self.overlaps) if self.two_channel else None
        return {
            "ring_count": self.ring_count,
            "ring_start_s": _r(self.ring_start_s),
            "answer_s": _r(self.answer_s),
            "answer_latest_s": _r(self.answer_latest_s),
            "answer_source": self.answer_source,
            "agent_first_words_s": _r(self.agent_first_words_s),
            "first_words_delay_s": _r(self.first_words_delay_s),
            "first_words_delay_min_s": _r(self.first_words_delay_min_s),
            "hold_s": _r(sum(s.duration for s in holds)),
            "dead_air_s": _r(sum(s.duration for s in dead)),
            # where they were, [start, end] in seconds, for the report's timeline (a measure, whatever
            # the rules make of it)
            "hold_intervals": [[_r(s.start), _r(s.end)] for s in holds],
            "silence_intervals": [[_r(s.start), _r(s.end)] for s in dead],
            "overlap_s": _r(overlap),
            "interruption_count": len(self.interruptions) if self.two_channel else None,
            "customer_interruption_count": len(self.customer_interruptions) if self.two_channel else None,
            "talk_agent_s": _r(self.talk_s.get("agent")),
            "talk_customer_s": _r(self.talk_s.get("customer")),
            "non_talk_s": _r(self.non_talk_s),
            "non_talk_share": None if self.non_talk_s is None else round(
                self.non_talk_s / max(self.duration_s - self.answer_s, 1e-6), 3),
            "end_gap_s": _r(self.end_gap_s),
            "last_speaker": self.last_speaker,
        }

    def events(self) -> tuple[CallEvent, ...]:
        events = [CallEvent("ring", b.start, b.end) for b in self.ring_bursts]
        events.append(CallEvent("answer", self.answer_s, self.answer_latest_s,
                                details={"source": self.answer_source}))
        for silence in self.silences:
            kind = "hold" if silence.is_hold else "dead_air"
            events.append(CallEvent(kind, silence.start, silence.end,
                                    details={"promised_s": silence.promised_s, "music": silence.music}))
        for overlap in self.interruptions + self.customer_interruptions:
            events.append(CallEvent("interruption", overlap.start, overlap.end, overlap.interrupter))
        return tuple(sorted(events, key=lambda e: e.start))


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def measure_timing(
    audio_16k: np.ndarray,
    speech: tuple[ChannelSpeech, ...],
    transcript: Transcript,
    meta: CallMeta,
    settings: TimingConfig,
) -> Timing:
    """The call's timing from its audio, with the words read only where they decide.

    Parameters
    ----------
    audio_16k : np.ndarray
        The call, float32 at 16 kHz, shape (channels, frames).
    speech : tuple of ChannelSpeech
        Speech per channel (`audit.measure.speech.find_speech`): onsets and gaps come from here.
    transcript : Transcript
        Read for hold announcements and the promised length (`[timing] hold_phrases`, within
        `announce_window_s`, default 15 s, before a silence), the thanks after a hold
        (`thanks_phrases`, within `thanks_window_s`, default 20 s) and backchannels; an empty
        one (source "none") leaves every silence unannounced.
    meta : CallMeta
        `ring_start` / `answer_at` (s from the recording start) when the switch knows them; used
        where the audio shows no ringback or line opening.
    settings : TimingConfig
        `[timing]`: the ringback cadence and tone thresholds, `min_silence_s` (default 3 s), the
        interruption thresholds (`interruption_min_overlap_s`, default 2 s).

    Returns
    -------
    Timing
        Rings, the answer (exact, or the window it lies in), first words, silences (holds and dead
        air), overlaps, talk time and the ending, all in seconds from the recording start; its
        `events()` are what rules anchor on.
    """
    duration = audio_16k.shape[1] / SAMPLE_RATE
    two_channel = len(speech) > 1
    agent = [s for s in speech if s.channel.speaker == "agent"]
    # Ringing ends before the agent speaks; the ringback itself may fool the VAD on its channel.
    first_speech = min((s.intervals[0].start for s in (agent or speech) if s.intervals), default=duration)

    levels = _frame_levels(audio_16k)
    opened = line_open_s(levels, agent[0].channel.index, settings) if two_channel and agent else None
    if opened is not None and opened > first_speech:
        opened = None
    bursts, last_tone = ringback_and_last_tone(audio_16k, first_speech, settings, opened)
    ring_count, ring_start, ring_source = None, None, None
    if bursts:
        ring_count = count_rings(bursts, settings.cadence)
        ring_start, ring_source = bursts[0].start, "audio"
        answer, latest = ringback_answer_window(bursts, settings, first_speech)
        answer_source = "ringback"
        next_ring = bursts[-1].start + settings.cadence.cycle_s
        if opened is not None and bursts[-1].start <= opened <= next_ring:
            answer = latest = opened  # ringing stopped because the agent picked up
            answer_source = "line_open"
        elif meta.answer_at is not None and answer <= meta.answer_at <= min(next_ring, first_speech):
            answer = latest = meta.answer_at  # the switch knows it exactly
            answer_source = "metadata"
    elif opened is not None:
        answer = latest = opened
        answer_source = "line_open"
    elif meta.answer_at is not None:
        answer = latest = meta.answer_at
        answer_source = "metadata"
        if meta.ring_start is not None and meta.ring_start <= meta.answer_at:
            ring_start, ring_source = meta.ring_start, "metadata"
            ring_count = max(1, math.ceil((meta.answer_at - meta.ring_start) / settings.cadence.cycle_s))
    else:  # assumed: the recording began at the answer, unless a lone ring tone says it may be later
        answer, latest = 0.0, last_tone or 0.0
        answer_source = "recording_start"

    agent_onsets = [i.start for s in agent for i in s.intervals if i.end > answer]
    if not two_channel and not agent:  # mono: whoever speaks first after the answer
        agent_onsets = [i.start for s in speech for i in s.intervals if i.end > answer]

    talk_union = _union([Interval(max(i.start, answer), i.end)
                         for s in speech for i in s.intervals if i.end > answer])
    said = _AgentWords(transcript)
    gaps = _gaps(talk_union, settings.min_silence_s)
    next_starts = [g.start for g in gaps[1:]] + [math.inf]
    silences = tuple(_describe_silence(gap, next_start, said, levels, settings)
                     for gap, next_start in zip(gaps, next_starts))
    last_end = max((i.end for i in talk_union), default=None)
    non_talk = None if last_end is None else last_end - answer - sum(i.duration for i in talk_union)

    return Timing(
        duration_s=duration,
        two_channel=two_channel,
        ring_bursts=tuple(bursts),
        ring_count=ring_count,
        ring_start_s=ring_start,
        ring_source=ring_source,
        answer_s=answer,
        answer_latest_s=latest,
        answer_source=answer_source,
        agent_first_words_s=min(agent_onsets, default=None),
        silences=silences,
        overlaps=_overlaps(speech, transcript, settings) if two_channel else (),
        talk_s={s.channel.speaker: s.speech_s for s in speech},
        non_talk_s=non_talk,
        last_speaker=_last_speaker(speech, transcript, two_channel),
        last_words_end_s=last_end,
        interruption_min_overlap_s=settings.interruption_min_overlap_s,
    )


# --- silences and holds ------------------------------------------------------------------------


def _union(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, interval.end))
        else:
            merged.append(interval)
    return merged


def _gaps(talk: list[Interval], min_s: float) -> list[Interval]:
    return [Interval(a.end, b.start) for a, b in zip(talk, talk[1:]) if b.start - a.end >= min_s]


@dataclass(frozen=True)
class _Levels:
    """Per-channel 20 ms frame levels (dBFS) and each channel's noise floor."""

    db: np.ndarray  # (channels, frames)
    floor: np.ndarray  # (channels,)


def _frame_levels(audio_16k: np.ndarray) -> _Levels:
    step = int(LEVEL_FRAME_S * SAMPLE_RATE)
    usable = audio_16k.shape[1] // step * step
    frames = audio_16k[:, :usable].reshape(audio_16k.shape[0], -1, step)  # a view: no copy of the call
    db = frame_db(frames)
    floor = np.percentile(db, 10, axis=1) if db.shape[1] else np.full(audio_16k.shape[0], -120.0)
    return _Levels(db, floor)


def line_open_s(levels: _Levels, channel: int, settings: TimingConfig) -> float | None:
    """When the agent's leg was connected: its channel leaves digital silence.

    Call recorders write zeros on the agent channel until the agent picks up, so the first frame
    with line noise is the answer, even when it falls in a silent gap between ringback bursts.
    None when the channel is live from the start (the recording began at the answer).
    """
    closed = levels.db[channel] < settings.line_closed_dbfs
    if closed.size == 0 or not closed[0] or closed.all():
        return None
    return float(np.argmin(closed)) * LEVEL_FRAME_S


def _has_music(gap: Interval, levels: _Levels) -> bool:
    """Sound well above the line noise for most of the gap on some channel: hold music."""
    first, last = int(gap.start / LEVEL_FRAME_S), int(gap.end / LEVEL_FRAME_S)
    if last <= first:
        return False
    loud = levels.db[:, first:last] > levels.floor[:, None] + 15
    return bool((loud.mean(axis=1) > 0.5).any())


class _AgentWords:
    """The agent's utterances by start and by end, each normalised once: every silence of a call
    looks at the few around it (found by bisection), however long the call."""

    def __init__(self, transcript: Transcript):
        agent = [(i, u) for i, u in enumerate(transcript.utterances) if u.speaker in ("agent", "unknown")]
        self.by_start = sorted(agent, key=lambda item: item[1].start)
        self.by_end = sorted(agent, key=lambda item: item[1].end)
        self.starts = [u.start for _, u in self.by_start]
        self.ends = [u.end for _, u in self.by_end]
        self._norms: dict[int, str] = {}

    def norm(self, index: int, utterance: Utterance) -> str:
        if index not in self._norms:
            self._norms[index] = normalize(utterance.text).text
        return self._norms[index]

    def said(self, phrases: tuple[str, ...], start: float, end: float, by_end: bool) -> Utterance | None:
        """The agent utterance ending (or starting) in [start, end] that says one of `phrases`
        (`audit.phrases.says`): of several, the last in the transcript (by end) or the first (by start)."""
        wanted = [Phrase.of(p) for p in phrases]
        times, items = (self.ends, self.by_end) if by_end else (self.starts, self.by_start)
        found = [(index, utterance) for index, utterance
                 in items[bisect.bisect_left(times, start):bisect.bisect_right(times, end)]
                 if says(self.norm(index, utterance), wanted)]
        if not found:
            return None
        return (max if by_end else min)(found, key=lambda item: item[0])[1]


def _describe_silence(gap: Interval, next_start: float, said: _AgentWords, levels: _Levels,
                      settings: TimingConfig) -> Silence:
    """What a silence was: announced, thanked (before the next silence, whose thanks it is not).

    `next_start` (s) is where the next silence begins (`math.inf` for the last).
    """
    announcement = said.said(settings.hold_phrases, gap.start - settings.announce_window_s,
                             gap.start + 1.0, by_end=True)
    thanks = said.said(settings.thanks_phrases, gap.end - 1.0,
                       min(gap.end + settings.thanks_window_s, next_start), by_end=False)
    promised = None
    if announcement is not None:
        promised = promised_seconds(announcement.text)
        if promised is None:
            promised = settings.vague_hold_s
    return Silence(gap.start, gap.end, announcement, promised, thanks, _has_music(gap, levels))


_CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                   "六": 6, "七": 7, "八": 8, "九": 9}
_DURATION = re.compile(r"([0-9零〇一二两三四五六七八九十半]+)\s*(?:个)?\s*(分钟|分|秒钟|秒)")


def chinese_number(text: str) -> float | None:
    """'3', '十五', '二十', '两', '半' -> a number (the small numbers people promise holds in)."""
    if text.isdigit():
        return float(text)
    if text == "半":
        return 0.5
    if "十" in text:
        tens, _, ones = text.partition("十")
        tens_value = _CHINESE_DIGITS.get(tens, 1) if tens else 1
        ones_value = _CHINESE_DIGITS.get(ones, 0) if ones else 0
        return float(tens_value * 10 + ones_value)
    if all(c in _CHINESE_DIGITS for c in text):
        return float(int("".join(str(_CHINESE_DIGITS[c]) for c in text)))
    return None


def promised_seconds(text: str) -> float | None:
    """The hold length an announcement promises (稍等1分钟, 两分钟, 三十秒), or None if it names none."""
    match = _DURATION.search(to_simplified(text))
    if not match:
        return None
    value = chinese_number(match.group(1))
    if value is None:
        return None
    return value * (60.0 if match.group(2).startswith("分") else 1.0)


# --- overlaps and the ending -------------------------------------------------------------------


class _Said:
    """One speaker's utterances, searchable by time without scanning the whole call."""

    def __init__(self, transcript: Transcript, speaker: Speaker):
        self.utterances = [u for u in transcript.utterances if u.speaker == speaker]
        self.ends = np.array([u.end for u in self.utterances])
        self.latest_end = np.maximum.accumulate(self.ends) if self.ends.size else self.ends

    def between(self, start: float, end: float) -> str:
        first = int(np.searchsorted(self.latest_end, start, side="right"))
        words = []
        for utterance in self.utterances[first:]:
            if utterance.start >= end:
                break
            if utterance.end > start:
                words.append(utterance.text)
        return "".join(words)


def _overlaps(speech: tuple[ChannelSpeech, ...], transcript: Transcript,
              settings: TimingConfig) -> tuple[Overlap, ...]:
    """Each time one speaker starts while the other is mid-utterance (one pass per channel pair).

    Talking on after a short pause while the other still speaks is the same overlap: an agent who
    talks over the customer for 2 s with a breath in the middle interrupted once, for 2 s. Pauses
    shorter than ``interruption_pause_s`` do not end the other's turn either: an overlap lasts
    while the one cut off talks on through breaths, and the one who was talking first and goes on
    after such a breath is not cutting in.
    """
    pause_s = settings.interruption_pause_s
    by_speaker = {s.channel.speaker: s.intervals for s in speech}
    found = []
    for interrupter, other in (("agent", "customer"), ("customer", "agent")):
        held = by_speaker.get(other, ())
        held_starts = np.array([i.start for i in held])
        said = _Said(transcript, interrupter)
        overlapped = -1  # the last of the other's utterances the last overlap reached
        run_start, run_end = -np.inf, -np.inf  # the interrupter's own talk, joined over short pauses
        for talk in by_speaker.get(interrupter, ()):
            if talk.start - run_end >= pause_s:
                run_start = talk.start
            run_end = talk.end
            index = int(np.searchsorted(held_starts, talk.start, side="right")) - 1
            if index < 0:
                continue
            current = held[index]
            if not current.start + settings.customer_lead_s <= talk.start < current.end:
                continue
            if run_start < current.start:
                continue  # talking on through a breath: the other started over this speaker
            start = talk.start
            if index <= overlapped and talk.start - found[-1].end < pause_s:
                start = found.pop().start
            last = index
            while (last + 1 < len(held) and held[last + 1].start < talk.end
                   and held[last + 1].start - held[last].end < pause_s):
                last += 1
            overlapped = last
            end = min(talk.end, held[last].end)
            text = said.between(start, end)
            found.append(Overlap(start, end, interrupter, text, _is_backchannel(text, transcript, settings)))
    return tuple(sorted(found, key=lambda o: o.start))


def _is_backchannel(text: str, transcript: Transcript, settings: TimingConfig) -> bool:
    if transcript.source == "none":
        return False  # no words to judge by: the overlap length alone decides
    words = normalize(text).text
    return len(words) < settings.interruption_min_chars or set(words) <= set(settings.backchannel_chars)


def _last_speaker(speech: tuple[ChannelSpeech, ...], transcript: Transcript,
                  two_channel: bool) -> Speaker | None:
    if two_channel:
        ends = {s.channel.speaker: s.intervals[-1].end for s in speech if s.intervals}
        return max(ends, key=ends.get) if ends else None
    known = [u for u in transcript.utterances if u.speaker != "unknown"]
    return known[-1].speaker if known else None
