"""The checks: each norm is one function registered under its rule id.

A check gets the facts of one call (`CallContext`) and its own parameters (a dataclass, filled from
`[rules.<rule id>]` in the config and validated on load) and returns an `Outcome` with evidence a
reviewer can jump to. Severity and weight are the engine's business, not the check's. Adding a
norm means: write one function with `@check(...)` in the module of its category (`opening.py`,
...), and add its table to `configs/default.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from audit.records import (
    CallEvent,
    CallMeta,
    ChannelSpeech,
    Evidence,
    RecordingInfo,
    RuleResult,
    Speaker,
    Status,
    Transcript,
    Utterance,
)
from audit.textnorm import normalize, normalize_phrase


@dataclass(frozen=True)
class CallContext:
    """Everything the checks may look at for one call."""

    recording: RecordingInfo
    meta: CallMeta
    speech: tuple[ChannelSpeech, ...]
    transcript: Transcript
    answer_s: float  # the moment the call was answered, seconds from the recording start
    answer_source: str  # where answer_s came from: "line_open", "ringback", "metadata" or "recording_start"
    company_names: tuple[str, ...]
    timing: Any = None  # audit.timing.Timing: rings, holds, overlaps, the ending
    prosody: Any = None  # audit.prosody.Prosody: rate, level, pitch, agitation
    events: tuple[CallEvent, ...] = ()  # from the timing and prosody stages
    answer_latest_s: float | None = None  # the latest the answer can have been; None: answer_s is exact

    @property
    def answer_by_s(self) -> float:
        """The latest moment the call can have been answered: a deadline counted from the answer
        starts here, so that nobody is held to a moment the recording cannot show."""
        return self.answer_s if self.answer_latest_s is None else self.answer_latest_s

    @property
    def agent_speakers(self) -> tuple[Speaker, ...]:
        """Whose utterances may be the agent's: on a mono recording nobody is separated."""
        return ("agent",) if self.recording.channels > 1 else ("agent", "unknown")


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    rule_id: str
    run: Callable[[CallContext, Any], Outcome]
    params: type


CHECKS: dict[str, Check] = {}


def check(rule_id: str, params: type):
    """Register a check function under `rule_id`, with `params` as its config section."""

    def register(function: Callable[[CallContext, Any], Outcome]):
        CHECKS[rule_id] = Check(rule_id, function, params)
        return function

    return register


def run_checks(context: CallContext, config) -> tuple[RuleResult, ...]:
    """Every enabled function check, then the text rulebook (`config` is an `audit.config.Config`)."""
    results = []
    for rule_id, rule in config.rules.items():
        if not rule.enabled:
            continue
        outcome = CHECKS[rule_id].run(context, rule.params)
        results.append(
            RuleResult(rule_id, outcome.status, rule.severity, outcome.message,
                       outcome.evidence, outcome.details)
        )
    return (*results, *config.rulebook.evaluate(context))


# --- phrase finding, shared by the text checks -------------------------------------------------


@dataclass(frozen=True)
class PhraseHit:
    utterance: Utterance
    phrase: str
    start: float  # when the matched words were said
    end: float
    text: str  # the matched span as written in the transcript


def char_times(utterance: Utterance, length: int) -> list[tuple[float, float]]:
    """(start, end) for each normalised character of the utterance.

    From word timestamps when the words spell the utterance, else spread evenly over it (a close
    enough guess for a reviewer to land on the right second).
    """
    if utterance.words:
        times: list[tuple[float, float]] = []
        for word in utterance.words:
            times.extend([(word.start, word.end)] * len(normalize(word.text).text))
        if len(times) == length:
            return times
    step = (utterance.end - utterance.start) / max(length, 1)
    return [(utterance.start + i * step, utterance.start + (i + 1) * step) for i in range(length)]


def find_phrases(
    utterances: tuple[Utterance, ...], phrases: tuple[str, ...], speakers: tuple[Speaker, ...]
) -> list[PhraseHit]:
    """Every place a speaker in `speakers` said one of `phrases`, in time order."""
    wanted = [(p, normalize_phrase(p)) for p in phrases]
    hits = []
    for utterance in utterances:
        if utterance.speaker not in speakers:
            continue
        norm = normalize(utterance.text)
        times = None
        for phrase, needle in wanted:
            position = norm.text.find(needle) if needle else -1
            if position < 0:
                continue
            times = times or char_times(utterance, len(norm.text))
            end = position + len(needle)
            first, last = norm.span(position, end)
            hits.append(PhraseHit(utterance, phrase, times[position][0], times[end - 1][1],
                                  utterance.text[first:last]))
    return sorted(hits, key=lambda h: h.start)


def find_pattern(utterances, pattern, speakers) -> list[PhraseHit]:
    """Like `find_phrases`, for a compiled regex run on the normalised text."""
    hits = []
    for utterance in utterances:
        if utterance.speaker not in speakers:
            continue
        norm = normalize(utterance.text)
        match = pattern.search(norm.text)
        if not match:
            continue
        times = char_times(utterance, len(norm.text))
        first, last = norm.span(match.start(), match.end())
        hits.append(PhraseHit(utterance, match.group(0), times[match.start()][0],
                              times[match.end() - 1][1], utterance.text[first:last]))
    return sorted(hits, key=lambda h: h.start)


def evidence_of(hit: PhraseHit) -> Evidence:
    return Evidence(hit.start, hit.end, hit.utterance.speaker, hit.utterance.text, hit.text)


# Importing the check modules registers their checks.
from audit.checks import opening, prosody, timing  # noqa: E402,F401
