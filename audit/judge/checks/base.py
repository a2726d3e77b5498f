"""What every check shares: the facts of one call (`CallContext`), a check's `Outcome`, the
registry of checks by rule id, and running them all on one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from audit.config import Config
from audit.records import (
    CallEvent,
    CallMeta,
    ChannelSpeech,
    Evidence,
    Interval,
    RecordingInfo,
    RuleResult,
    Speaker,
    Status,
    Transcript,
)


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
    timing: Any = None  # audit.measure.timing.Timing: rings, holds, overlaps, the ending
    prosody: Any = None  # audit.measure.prosody.Prosody: rate, level, pitch, agitation
    events: tuple[CallEvent, ...] = ()  # from the timing and prosody stages
    answer_latest_s: float | None = None  # the latest the answer can have been; None: answer_s is exact
    unwritten: tuple[Interval, ...] = ()  # the agent's speech the ASR wrote nothing for (audit.measure.coverage)

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
    missing: tuple[str, ...] = ()  # what a requirement lacked (see RuleResult)
    expected_window: tuple[float, float] | None = None  # s; where it should have been


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


def run_checks(context: CallContext, config: Config) -> tuple[RuleResult, ...]:
    """Every enabled function check, then the text rulebook (whose rules carry their settings)."""
    results = []
    for rule_id, rule in config.rules.items():
        if not rule.enabled or rule_id not in CHECKS:
            continue
        outcome = CHECKS[rule_id].run(context, rule.params)
        results.append(
            RuleResult(rule_id, outcome.status, rule.severity, outcome.message, outcome.evidence,
                       outcome.details, outcome.missing, outcome.expected_window)
        )
    return (*results, *config.rulebook.evaluate(context))
