"""Typed records passed between pipeline stages.

Each stage takes and returns these small, immutable records, so a stage can be tested, replaced or
run in another process without knowing how the others work. Times are seconds from the start of
the recording throughout.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Speaker = Literal["agent", "customer", "unknown"]
Status = Literal["pass", "fail", "unsure", "not_measurable"]  # unsure: a failure resting on words the ASR doubted
Severity = Literal["critical", "major", "minor"]
Verdict = Literal["pass", "review", "fail"]
TranscriptSource = Literal["whisper", "sidecar", "none"]

SPEAKERS: tuple[Speaker, ...] = ("agent", "customer", "unknown")
FLAGGED: tuple[Status, ...] = ("fail", "unsure")  # findings a reviewer looks at


def moment(evidence: list[dict]) -> str:
    """Where a finding is: the whole second its first piece of evidence starts at, `-` without any."""
    if not evidence or not isinstance(evidence[0].get("start"), (int, float)):
        return "-"
    return str(int(math.floor(float(evidence[0]["start"]) + 0.5)))


def finding_key(audio_sha256: str, call_id: str, rule_id: str, where: str) -> str:
    """A finding's identity across re-audits of the same recording (audit/present/review.py), hashed so
    that a review file names no call id in clear."""
    return hashlib.sha256(f"{audio_sha256}/{call_id}/{rule_id}/{where}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class RecordingInfo:
    """What the call record says about the file; small enough to pass between processes."""

    path: Path
    duration_s: float
    sample_rate: int
    channels: int
    sha256: str
    format: str  # container/codec as decoded, e.g. "WAV/ULAW"
    notes: tuple[str, ...] = ()  # what decoding had to repair (an unfinalised header, NaN samples)


@dataclass(frozen=True)
class Recording:
    """Decoded audio: one float32 row per channel, in [-1, 1]."""

    info: RecordingInfo
    samples: np.ndarray  # shape (channels, frames), float32

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate


@dataclass(frozen=True)
class Channel:
    """One channel of a recording and whose voice it carries."""

    index: int
    speaker: Speaker


@dataclass(frozen=True)
class Interval:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ChannelSpeech:
    """Voice activity found on one channel."""

    channel: Channel
    intervals: tuple[Interval, ...]

    @property
    def speech_s(self) -> float:
        return sum(i.duration for i in self.intervals)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float | None = None  # the ASR's confidence in the word, 0-1; None when not known (sidecars)


@dataclass(frozen=True)
class Utterance:
    speaker: Speaker
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class CallMeta:
    """Call metadata from a sidecar `NAME.meta.json`; every field may be missing."""

    agent_id: str | None = None
    direction: str | None = None
    ring_start: float | None = None
    answer_at: float | None = None

    def filled_from(self, other: "CallMeta") -> "CallMeta":
        """These values, with the gaps filled from `other` (a less specific source)."""
        return CallMeta(*(mine if mine is not None else theirs
                          for mine, theirs in zip(astuple(self), astuple(other))))


@dataclass(frozen=True)
class DroppedText:
    """ASR output kept out of the checks (e.g. a hallucination on silence), with the reason."""

    utterance: Utterance
    reason: str


@dataclass(frozen=True)
class TermCorrection:
    """A key term written as it sounded (心和通信 heard, 星河通信 meant: `audit.measure.terms`)."""

    speaker: Speaker
    utterance_start: float  # s, start of the utterance it is in
    heard: str
    term: str


@dataclass(frozen=True)
class Transcript:
    source: TranscriptSource
    utterances: tuple[Utterance, ...]
    dropped: tuple[DroppedText, ...] = ()
    corrections: tuple[TermCorrection, ...] = ()  # key terms read by sound, as written into the utterances
    model: str = ""  # the ASR that wrote it: engine and model ("openai-whisper:models/base.pt"); "" for sidecars


@dataclass(frozen=True)
class CallEvent:
    """Something measured in the call that rules can anchor on (a hold, an interruption, ...)."""

    kind: str  # e.g. "ring", "answer", "hold", "dead_air", "interruption", "agitation"
    start: float
    end: float
    speaker: Speaker | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """Where a reviewer looks to judge a finding: a time range, whose it is and what was said.

    `utterance` and `span` locate a match exactly (the report need not find the utterance by its
    text or the words by their times); records written before they existed lack both keys.
    """

    start: float  # s from the recording start
    end: float
    speaker: Speaker
    text: str  # the utterance the evidence sits in (or a measured event's label)
    match: str = ""  # the words that matched, as written in `text`
    utterance: int | None = None  # index in the call's transcript; None for a measured event or a window
    span: tuple[int, int] | None = None  # [start, end) of `match` in `text`, in characters; None without one


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    status: Status
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...] = ()
    details: dict = field(default_factory=dict)  # the rule's own figures, for people; nothing reads them
    missing: tuple[str, ...] = ()  # what a requirement lacked, in the reviewer's words (工号, 结束语)
    expected_window: tuple[float, float] | None = None  # where the missing should have been, s
    evidence_total: int | None = None  # how many evidence items there were, when only the first are kept


@dataclass(frozen=True)
class CallAudit:
    call_id: str
    recording: RecordingInfo
    meta: CallMeta
    speech: tuple[ChannelSpeech, ...]
    transcript: Transcript
    metrics: dict
    utterance_metrics: tuple[dict, ...]  # prosody of each utterance, same order as the transcript
    results: tuple[RuleResult, ...]
    score: float
    subscores: dict  # category -> score, e.g. {"timing": 90.0, "prosody": 100.0, "text": 80.0}
    verdict: Verdict
