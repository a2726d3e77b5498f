"""The compiled rulebook's records: rules, their condition trees, windows and tolerances.

Plain frozen dataclasses, built by `audit.judge.rules.loader` from `configs/rulebook.toml` and read by
`audit.judge.rules.evaluate`; nothing here matches or loads anything.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Literal

from audit.judge import intent as meaning
from audit.phrases import Phrase, Tolerance
from audit.records import Severity

# The kinds of `CallEvent` the timing and prosody stages report, with the words a reviewer reads.
EVENT_KINDS = {
    "ring": "振铃",
    "answer": "接听",
    "hold": "保持等待",
    "dead_air": "静音",
    "interruption": "抢话",
    "agitation": "客户情绪激动",
    "raised_voice": "坐席提高音量",
    "monotone": "语调平淡",
}
RuleSpeaker = Literal["agent", "customer", "either"]
RULE_SPEAKERS: tuple[str, ...] = typing.get_args(RuleSpeaker)
BASE_CATEGORY = "text"

# --- the compiled rulebook ----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFields:
    """The plain keys of a rule table, validated by `audit.config.build_section`."""

    description: str = field(metadata={"nonempty": True})
    category: str = field(metadata={"nonempty": True})
    severity: Severity
    weight: float = field(metadata={"min": 0.0, "max": 100.0})
    fail_message: str = field(metadata={"nonempty": True})
    pass_message: str = field(default="符合规范", metadata={"nonempty": True})
    enabled: bool = True
    tolerance: Tolerance = Tolerance()


WindowKind = Literal["first_s", "last_s", "between_s", "first_utterances", "last_utterances", "utterances"]


@dataclass(frozen=True)
class Window:
    """Where a condition looks: seconds after the answer / before the end / absolute, or utterances
    of the condition's speaker (first N, last N, or an inclusive index range, negative from the end)."""

    kind: WindowKind
    values: tuple[float, ...]


@dataclass(frozen=True)
class Frame:
    speaker: RuleSpeaker | None  # resolved at load: a node inherits its parent's speaker
    window: Window | None
    label: str  # what the reviewer is told is missing when the condition does not hold


@dataclass(frozen=True)
class PhraseNode:
    frame: Frame
    mode: Literal["any", "all", "none"]
    phrases: tuple[Phrase, ...]
    at_least: int = 1  # distinct phrases of the list, for `any`
    more_than: int | None = None  # utterances with a hit, for `any`
    occurrences_more_than: int | None = None  # hits, for `any` (audit.phrases: how they are counted)
    skip_negated: bool = False  # a hit a negator turns round (不是说您错了) does not count
    exclude: re.Pattern | None = None  # `any` only: an utterance where this matches is skipped (SCA notRegex)
    # `any` only: a phrase this matches right after (PUK码就是SIM卡的解锁码) is explained, and then
    # counts nowhere in the call (派单调度，就是给师傅安排上门的同事 ... 您好，派单调度)
    glossed: re.Pattern | None = None


@dataclass(frozen=True)
class RegexNode:
    frame: Frame
    pattern: re.Pattern
    exclude: re.Pattern | None  # an utterance where this matches is skipped (SCA notRegex)
    more_than: int | None = None  # utterances with a match
    occurrences_more_than: int | None = None  # matches


@dataclass(frozen=True)
class EventNode:
    """Measured events of the given kinds (`CallEvent`), those lasting at least `min_s` seconds
    when it is given (a hold of a minute or more: ``event = "hold"``, ``min_s = 60``)."""

    frame: Frame
    kinds: tuple[str, ...]
    more_than: int | None = None  # events (each is its own moment)
    occurrences_more_than: int | None = None  # the same count, for rules that say it so
    min_s: float | None = None


@dataclass(frozen=True)
class IntentNode:
    frame: Frame
    intents: tuple[meaning.Intent, ...]
    more_than: int | None = None  # utterances with a hit
    occurrences_more_than: int | None = None  # hits, overlapping ones counted once


@dataclass(frozen=True)
class EchoNode:
    """An utterance that takes up at least `length` consecutive characters of the utterance just
    before it, when someone else said that one (the agent restating the customer's words); words a
    negator turns round (不是来电显示) are a contradiction and do not count. With `lead`, only words
    taken up right after a match of it count (`^就是` + the very words the customer asked about:
    a term said again, not explained). With `answers = false`, words taken up from a question
    answer it (流量还是每月二十个吉吗 -> 流量不变，每月二十个吉): they show no listening."""

    frame: Frame
    length: int
    lead: re.Pattern | None = None
    answers: bool = True


@dataclass(frozen=True)
class AllOf:
    frame: Frame
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    frame: Frame
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    frame: Frame
    child: Node


@dataclass(frozen=True)
class Anchor:
    """After each moment `after` finds, within N seconds or the next K utterances of `then`'s
    speaker, `then` must be present (or absent). Holds when every moment is answered as expected.
    With ``look = "back"`` `then` is looked for up to the moment instead (its own utterance
    included): the last N seconds or K utterances, or the whole call so far when neither is given
    (an account read out only after the caller was verified). Looking ahead, `back_utterances = B`
    also counts the B utterances of `then`'s speaker just before the moment (an agent who soothed
    the worry the customer then puts into words)."""

    frame: Frame
    after: Node
    then: Node
    within_s: float | None
    within_utterances: int | None
    expect: Literal["present", "absent"]
    look: Literal["ahead", "back"] = "ahead"
    back_utterances: int = 0  # looking ahead: also this many of `then`'s speaker's just before


Node = PhraseNode | RegexNode | IntentNode | EchoNode | EventNode | AllOf | AnyOf | Not | Anchor


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    category: str
    severity: Severity
    weight: float
    enabled: bool
    mode: Literal["forbid", "require"]  # fail when the condition holds / unless it holds
    condition: Node
    fail_message: str
    pass_message: str
    tolerance: Tolerance
    pass_examples: tuple[str, ...]
    fail_examples: tuple[str, ...]
    uses_customer: bool  # cannot be judged when the customer's words are not separated
    uses_anchor: bool
