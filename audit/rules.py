"""The text rules: norms kept as data in a TOML rulebook, evaluated on one call.

Ops change phrase lists and windows without touching code, so every Text norm of the brief is a rule
in `configs/rulebook.toml`, built from the condition shapes the commercial QA suites share (anchors
1.3, 1.6): keywords any / all / at least N / none, a regex with an exclusion regex, who said it and
where (a time or utterance window), anchors (after X, within N s or K utterances, Y must or must not
happen; X may be a measured event such as a hold or a customer agitation moment), counts, and
and / or / not. A rule either `forbid`s its condition or `require`s it.

Matching survives ASR: it runs on normalised text (`audit.textnorm`), and a phrase only matches whole
words. jieba segments each utterance with a user dictionary of the rulebook's phrases, its
`[dictionary]` words and the company names; a phrase that would cut a word in two does not match
(应该 inside 应该的, 你 inside 迷你). A rulebook phrase never hides another one (你 still matches in
你搞错了). Rules may opt into homophones (pinyin-equal characters: 公号 for 工号) and near matches (a
similarity threshold), both off unless the rule asks.
"""

from __future__ import annotations

import logging
import math
import re
import typing
from dataclasses import dataclass, field, fields
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

from audit.checks import CallContext, char_times
from audit.config import ConfigError, build_section, read_toml
from audit.records import (
    CallEvent,
    CallMeta,
    Evidence,
    RecordingInfo,
    RuleResult,
    Severity,
    Speaker,
    Status,
    Transcript,
    Utterance,
)
from audit.textnorm import normalize, normalize_pattern

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
MIN_TOLERANT_PINYIN = 2  # a single character has too many homophones to tolerate
MIN_TOLERANT_SIMILARITY = 4  # shorter phrases cannot be "nearly" said

# --- the compiled rulebook ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How far a rule's phrases may be misheard and still count (off by default)."""

    pinyin: bool = False  # a character may be any homophone (same pinyin with tone)
    similarity: float | None = field(default=None, metadata={"min": 0.5, "max": 1.0})


@dataclass(frozen=True)
class _RuleFields:
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
class Phrase:
    written: str
    needle: str  # normalised, as matched
    spoken: str  # normalised with numerals kept, for jieba and pinyin


@dataclass(frozen=True)
class PhraseNode:
    frame: Frame
    mode: Literal["any", "all", "none"]
    phrases: tuple[Phrase, ...]
    at_least: int = 1  # distinct phrases of the list, for `any`
    more_than: int | None = None  # utterances with a hit, for `any`


@dataclass(frozen=True)
class RegexNode:
    frame: Frame
    pattern: re.Pattern
    exclude: re.Pattern | None  # an utterance where this matches is skipped (SCA notRegex)
    more_than: int | None = None


@dataclass(frozen=True)
class EventNode:
    frame: Frame
    kinds: tuple[str, ...]
    more_than: int | None = None


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
    speaker, `then` must be present (or absent). Holds when every moment is answered as expected."""

    frame: Frame
    after: Node
    then: Node
    within_s: float | None
    within_utterances: int | None
    expect: Literal["present", "absent"]


Node = PhraseNode | RegexNode | EventNode | AllOf | AnyOf | Not | Anchor


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


@dataclass(frozen=True)
class Rulebook:
    path: Path
    categories: tuple[str, ...]
    rules: tuple[Rule, ...]
    phrase_words: frozenset[str]  # every phrase, as jieba should keep it whole
    protected_words: frozenset[str]  # `[dictionary] words`: no phrase may match inside them

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @cached_property
    def _segmenter(self) -> _Segmenter:
        return _Segmenter(self.phrase_words, self.protected_words)

    def load_dictionary(self) -> None:
        """Read jieba's dictionary (about a second) now, at process start, not inside the first call."""
        self._segmenter.load()

    def evaluate(self, call: CallContext) -> tuple[RuleResult, ...]:
        """The result of every enabled rule on `call`, in rulebook order."""
        view = _CallView(call, self._segmenter)
        return tuple(_evaluate_rule(rule, view) for rule in self.rules if rule.enabled)

    def evaluate_one(self, rule: Rule, call: CallContext) -> RuleResult:
        return _evaluate_rule(rule, _CallView(call, self._segmenter))


# --- loading and validation ---------------------------------------------------------------------

_TOP_KEYS = ("version", "categories", "dictionary", "phrases", "conditions", "rules")
_RULE_STRUCTURE = ("forbid", "require", "examples")
_KINDS = ("any", "all", "none", "regex", "event", "and", "or", "not", "after")
_COMMON = ("speaker", "window", "label")
_MODIFIERS = {
    "any": ("at_least", "more_than"),
    "all": (),
    "none": (),
    "regex": ("not_regex", "more_than"),
    "event": ("more_than",),
    "and": (),
    "or": (),
    "not": (),
    "after": ("then", "within_s", "within_utterances", "expect"),
}
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


def check_rulebook(path: Path | str) -> Rulebook:
    """Read and validate a rulebook; the first problem raises `ConfigError` naming file and key."""
    path = Path(path)
    return _Loader(path, read_toml(path)).rulebook()


class _Loader:
    """Turns the TOML tables into compiled rules, failing on the first bad key."""

    def __init__(self, path: Path, table: dict):
        self.path, self.origin, self.table = path, str(path), table
        self.phrase_words: set[str] = set()
        self.speakers_used: set[str] = set()  # by the rule being compiled
        self.anchors_used = False

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.origin, key, reason)

    def rulebook(self) -> Rulebook:
        table = self.table
        for key in table:
            if key not in _TOP_KEYS:
                raise self.fail(key, f"unknown key; expected one of {list(_TOP_KEYS)}")
        version = table.get("version", 1)
        if version != 1:
            raise self.fail("version", f"{version!r} is not a rulebook version this tool reads (1)")
        categories = (BASE_CATEGORY, *self.strings(table.get("categories", []), "categories"))
        dictionary = table.get("dictionary", {})
        self.expect_table(dictionary, "dictionary")
        for key in dictionary:
            if key != "words":
                raise self.fail(f"dictionary.{key}", "unknown key; expected one of ['words']")
        protected = {self.phrase(w, f"dictionary.words[{i}]").spoken
                     for i, w in enumerate(self.strings(dictionary.get("words", []), "dictionary.words"))}
        self.phrase_lists = self.expect_table(table.get("phrases", {}), "phrases")
        self.named_conditions = self.expect_table(table.get("conditions", {}), "conditions")
        for name, value in self.phrase_lists.items():
            self.phrases(value, f"phrases.{name}")  # every list is checked even if no rule uses it
        for name in self.named_conditions:
            self.node(name, f"conditions.{name}", None, in_require=True, using=())
        rules_table = self.expect_table(table.get("rules", {}), "rules")
        if not rules_table:
            raise self.fail("rules", "the rulebook has no rules")
        rules = tuple(self.rule(rule_id, rule_table, categories)
                      for rule_id, rule_table in rules_table.items())
        return Rulebook(self.path, categories, rules, frozenset(self.phrase_words), frozenset(protected))

    def rule(self, rule_id: str, table: object, categories: tuple[str, ...]) -> Rule:
        key = f"rules.{rule_id}"
        if not _RULE_ID.match(rule_id):
            raise self.fail(key, "a rule id is lower-case words joined by dots, e.g. text.closing")
        table = self.expect_table(table, key)
        allowed = [f.name for f in fields(_RuleFields)] + list(_RULE_STRUCTURE)
        for name in table:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key; expected one of {allowed}")
        plain = build_section(_RuleFields, {k: v for k, v in table.items() if k not in _RULE_STRUCTURE},
                              self.origin, key)
        if plain.category not in categories:
            raise self.fail(f"{key}.category",
                            f"{plain.category!r} is not a category; declare it in categories = [...] "
                            f"(known: {list(categories)})")
        modes = [m for m in ("forbid", "require") if m in table]
        if len(modes) != 1:
            raise self.fail(key, "needs exactly one of forbid = {...} (fail when it holds) "
                                 "or require = {...} (fail unless it holds)")
        mode = modes[0]
        self.speakers_used, self.anchors_used = set(), False
        condition = self.node(table[mode], f"{key}.{mode}", None, in_require=mode == "require", using=())
        examples = self.expect_table(table.get("examples"), f"{key}.examples")
        for name in examples:
            if name not in ("pass", "fail"):
                raise self.fail(f"{key}.examples.{name}", "unknown key; expected one of ['pass', 'fail']")
        found = {}
        for name in ("pass", "fail"):
            dialogues = self.strings(examples.get(name, []), f"{key}.examples.{name}")
            if not dialogues:
                raise self.fail(f"{key}.examples.{name}", "give at least one example dialogue")
            for i, dialogue in enumerate(dialogues):
                try:
                    parse_dialogue(dialogue)
                except ValueError as error:
                    raise self.fail(f"{key}.examples.{name}[{i}]", str(error)) from None
            found[name] = dialogues
        return Rule(
            id=rule_id, description=plain.description, category=plain.category,
            severity=plain.severity, weight=plain.weight, enabled=plain.enabled, mode=mode,
            condition=condition, fail_message=plain.fail_message, pass_message=plain.pass_message,
            tolerance=plain.tolerance, pass_examples=found["pass"], fail_examples=found["fail"],
            uses_customer="customer" in self.speakers_used, uses_anchor=self.anchors_used,
        )

    # -- conditions

    def node(self, value: object, key: str, inherited: str | None, in_require: bool,
             using: tuple[str, ...]) -> Node:
        """Compile one condition; a string names an entry of `[conditions]`."""
        if isinstance(value, str):
            if value not in self.named_conditions:
                raise self.fail(key, f"no condition named {value!r} in [conditions] "
                                     f"(known: {sorted(self.named_conditions)})")
            if value in using:
                raise self.fail(key, f"condition {value!r} refers to itself through {list(using)}")
            return self.node(self.named_conditions[value], f"conditions.{value}", inherited,
                             in_require, using + (value,))
        table = self.expect_table(value, key)
        kinds = [k for k in _KINDS if k in table]
        if len(kinds) != 1:
            raise self.fail(key, f"a condition needs exactly one of {list(_KINDS)}, got {kinds or 'none'}")
        kind = kinds[0]
        allowed = (kind, *_COMMON, *_MODIFIERS[kind])
        for name in table:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key for a {kind!r} condition; "
                                                 f"expected one of {list(allowed)}")
        speaker = table.get("speaker", inherited)
        if speaker is not None and speaker not in RULE_SPEAKERS:
            raise self.fail(f"{key}.speaker", f"{speaker!r} is not one of {list(RULE_SPEAKERS)}")
        label = table.get("label", "")
        if not isinstance(label, str):
            raise self.fail(f"{key}.label", "must be a string")
        window = self.window(table["window"], f"{key}.window") if "window" in table else None
        frame = Frame(speaker, window, label)
        if speaker is not None:
            self.speakers_used.add(speaker)
        if kind in ("any", "all", "none", "regex") and speaker is None:
            raise self.fail(f"{key}.speaker", "missing: say whose words to match "
                                              f"({', '.join(RULE_SPEAKERS)}), here or on an enclosing condition")
        more_than = self.count(table, "more_than", key, lowest=0)
        if kind in ("any", "all", "none"):
            phrases = self.phrases(table[kind], f"{key}.{kind}")
            at_least = self.count(table, "at_least", key, lowest=1) or 1
            if at_least > len(phrases):
                raise self.fail(f"{key}.at_least", f"{at_least} is more than the {len(phrases)} phrases listed")
            return PhraseNode(frame, kind, phrases, at_least, more_than)
        if kind == "regex":
            pattern = self.regex(table["regex"], f"{key}.regex")
            exclude = self.regex(table["not_regex"], f"{key}.not_regex") if "not_regex" in table else None
            return RegexNode(frame, pattern, exclude, more_than)
        if kind == "event":
            raw = table["event"]
            kinds_listed = self.strings([raw] if isinstance(raw, str) else raw, f"{key}.event")
            for name in kinds_listed:
                if name not in EVENT_KINDS:
                    raise self.fail(f"{key}.event", f"{name!r} is not an event kind; known: {list(EVENT_KINDS)}")
            if speaker is None:
                frame = Frame("either", window, label)
            return EventNode(frame, tuple(kinds_listed), more_than)
        if kind in ("and", "or"):
            items = table[kind]
            if not isinstance(items, list) or len(items) < 2:
                raise self.fail(f"{key}.{kind}", "must list at least two conditions")
            children = tuple(self.node(item, f"{key}.{kind}[{i}]", speaker, in_require, using)
                             for i, item in enumerate(items))
            return (AllOf if kind == "and" else AnyOf)(frame, children)
        if kind == "not":
            return Not(frame, self.node(table["not"], f"{key}.not", speaker, False, using))
        return self.anchor(table, key, frame, in_require, using)

    def anchor(self, table: dict, key: str, frame: Frame, in_require: bool,
               using: tuple[str, ...]) -> Anchor:
        if not in_require:
            raise self.fail(key, "an anchored condition (after = ...) is a requirement: use it under "
                                 "require, not under forbid or not")
        if "then" not in table:
            raise self.fail(f"{key}.then", "missing: what must (or must not) follow")
        windows = [w for w in ("within_s", "within_utterances") if w in table]
        if len(windows) != 1:
            raise self.fail(key, "needs exactly one of within_s or within_utterances")
        expect = table.get("expect", "present")
        if expect not in ("present", "absent"):
            raise self.fail(f"{key}.expect", f"{expect!r} is not one of ['present', 'absent']")
        within_s = self.number(table, "within_s", key) if "within_s" in table else None
        within_utterances = self.count(table, "within_utterances", key, lowest=1)
        self.anchors_used = True
        after = self.node(table["after"], f"{key}.after", frame.speaker, in_require, using)
        then = self.node(table["then"], f"{key}.then", frame.speaker, in_require, using)
        if then.frame.speaker is None:
            raise self.fail(f"{key}.then.speaker", "missing: whose utterances follow the anchor")
        return Anchor(frame, after, then, within_s, within_utterances, expect)

    def window(self, value: object, key: str) -> Window:
        table = self.expect_table(value, key)
        kinds = typing.get_args(WindowKind)
        if len(table) != 1 or next(iter(table)) not in kinds:
            raise self.fail(key, f"give exactly one of {list(kinds)}")
        kind, raw = next(iter(table.items()))
        where = f"{key}.{kind}"
        if kind in ("between_s", "utterances"):
            if not isinstance(raw, list) or len(raw) != 2:
                raise self.fail(where, "must be a list of two numbers [from, to]")
            whole = kind == "utterances"
            values = tuple(self.scalar(v, f"{where}[{i}]", whole) for i, v in enumerate(raw))
            if kind == "between_s" and not 0 <= values[0] < values[1]:
                raise self.fail(where, f"{list(values)} is not a range of seconds [from, to]")
            if kind == "utterances" and (values[0] >= 0) == (values[1] >= 0) and values[0] > values[1]:
                raise self.fail(where, f"{list(values)} is empty: from comes after to")
            return Window(kind, values)
        value = self.scalar(raw, where, whole=kind.endswith("utterances"))
        if value <= 0:
            raise self.fail(where, "must be more than 0")
        return Window(kind, (value,))

    def phrases(self, value: object, key: str) -> tuple[Phrase, ...]:
        if isinstance(value, str):
            if value not in self.phrase_lists:
                raise self.fail(key, f"no phrase list named {value!r} in [phrases] "
                                     f"(known: {sorted(self.phrase_lists)})")
            return self.phrases(self.phrase_lists[value], f"phrases.{value}")
        written = self.strings(value, key)
        if not written:
            raise self.fail(key, "must list at least one phrase")
        found = tuple(self.phrase(p, f"{key}[{i}]") for i, p in enumerate(written))
        self.phrase_words.update(p.spoken for p in found)
        return found

    def phrase(self, written: str, key: str) -> Phrase:
        norm = normalize(written)
        if not norm.text:
            raise self.fail(key, f"{written!r} has nothing left to match after normalising "
                                 "(punctuation and spaces are ignored)")
        return Phrase(written, norm.text, norm.with_numerals)

    def regex(self, value: object, key: str) -> re.Pattern:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        try:
            pattern = re.compile(normalize_pattern(value))
        except re.error as error:
            raise self.fail(key, f"not a valid regular expression: {error}") from None
        if pattern.search("") is not None:
            raise self.fail(key, "matches empty text, so it would fire on every utterance")
        return pattern

    def strings(self, value: object, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "must be a list of non-empty strings")
        return value

    def expect_table(self, value: object, key: str) -> dict:
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def count(self, table: dict, name: str, key: str, lowest: int) -> int | None:
        if name not in table:
            return None
        value = self.scalar(table[name], f"{key}.{name}", whole=True)
        if value < lowest:
            raise self.fail(f"{key}.{name}", f"must be at least {lowest}")
        return int(value)

    def number(self, table: dict, name: str, key: str) -> float:
        value = self.scalar(table[name], f"{key}.{name}", whole=False)
        if value <= 0:
            raise self.fail(f"{key}.{name}", "must be more than 0")
        return value

    def scalar(self, value: object, key: str, whole: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, got {value!r}")
        if whole and not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, got {value!r}")
        return value


# --- word boundaries and tolerant matching ------------------------------------------------------


class _Segmenter:
    """jieba with the rulebook's user dictionary; says whether a span would cut a word in two."""

    def __init__(self, phrase_words: frozenset[str], protected_words: frozenset[str]):
        import jieba

        jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at DEBUG to stderr
        self._jieba = jieba.Tokenizer()
        self._phrase_words = phrase_words
        self._protected = set(protected_words)
        for word in sorted(phrase_words | protected_words):
            self._jieba.add_word(word)  # frequency just high enough to keep it whole
        self._words = lru_cache(maxsize=8192)(self._cut)

    def load(self) -> None:
        self._jieba.check_initialized()

    def add_terms(self, terms: tuple[str, ...]) -> None:
        """Config terms (company names) are protected words; a new one resets the cached cuts."""
        new = {normalize(t).with_numerals for t in terms} - self._protected - {""}
        if new:
            for word in sorted(new):
                self._jieba.add_word(word)
            self._protected |= new
            self._words.cache_clear()

    def _cut(self, text: str) -> tuple[tuple[int, int, str], ...]:
        words, position = [], 0
        for word in self._jieba.cut(text, HMM=False):  # no HMM: unknown runs stay single characters
            words.append((position, position + len(word), word))
            position += len(word)
        return tuple(words)

    def whole_words(self, text: str, start: int, end: int) -> bool:
        """False when [start, end) cuts into a protected word wherever it stands, or into a word
        of jieba's segmentation that is not itself a rulebook phrase (a phrase never hides another)."""
        for word in self._protected:
            position = text.find(word)
            while position >= 0:
                if _cuts(start, end, position, position + len(word)):
                    return False
                position = text.find(word, position + 1)
        for word_start, word_end, word in self._words(text):
            if word_start >= end:
                break
            if _cuts(start, end, word_start, word_end) and word not in self._phrase_words:
                return False
        return True


def _cuts(start: int, end: int, word_start: int, word_end: int) -> bool:
    """Whether the span [start, end) has an edge strictly inside the word [word_start, word_end)."""
    return word_start < start < word_end or word_start < end < word_end


@lru_cache(maxsize=8192)
def _readings(char: str) -> frozenset[str]:
    """Every pinyin (with tone) of a character; a non-Chinese character reads as itself."""
    from pypinyin import Style, pinyin

    found = pinyin(char, style=Style.TONE3, heteronym=True, errors=lambda text: [[text]])
    return frozenset(found[0]) if found else frozenset({char})


# --- evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    start: float
    end: float
    speaker: Speaker
    text: str  # the utterance (or the event's label)
    match: str  # the matched words as written; "" for context shown to the reviewer
    utterance: int | None  # index in the transcript, None for an event
    key: str  # the phrase, pattern or event kind that matched

    def evidence(self) -> Evidence:
        return Evidence(self.start, self.end, self.speaker, self.text, self.match)


@dataclass(frozen=True)
class _Finding:
    holds: bool
    hits: tuple[_Hit, ...] = ()
    missing: tuple[str, ...] = ()  # labels (or phrases) of what a requirement lacked
    anchors: int = 0  # anchor moments examined
    unanswered: tuple[float, ...] = ()  # start of each anchor moment that broke the rule


@dataclass(frozen=True)
class _Scope:
    utterances: tuple[int, ...]
    start: float  # a hit counts when it starts within [start, end]
    end: float


class _CallView:
    """One call prepared for matching: normalised utterances, word boundaries, speakers."""

    def __init__(self, call: CallContext, segmenter: _Segmenter):
        self.call = call
        self.segmenter = segmenter
        segmenter.add_terms(call.company_names)
        self.utterances = call.transcript.utterances
        self.norms = [normalize(u.text) for u in self.utterances]
        self._times: dict[int, list[tuple[float, float]]] = {}
        self._readings: dict[int, list[frozenset[str]]] = {}
        self.end_s = max([call.recording.duration_s] + [u.end for u in self.utterances])
        everyone = {u.speaker for u in self.utterances} | {"agent", "customer", "unknown"}
        self.speakers = {"agent": set(call.agent_speakers), "customer": {"customer"}, "either": everyone}

    @property
    def whole(self) -> _Scope:
        return _Scope(tuple(range(len(self.utterances))), -math.inf, math.inf)

    @property
    def customer_unseparated(self) -> bool:
        """On a mono recording nobody's words are labelled the customer's."""
        return (not any(u.speaker == "customer" for u in self.utterances)
                and any(u.speaker == "unknown" for u in self.utterances))

    def hit(self, index: int, start: int, end: int, key: str) -> _Hit:
        utterance, norm = self.utterances[index], self.norms[index]
        if index not in self._times:
            self._times[index] = char_times(utterance, len(norm.text))
        times = self._times[index]
        first, last = norm.span(start, end)
        return _Hit(times[start][0], times[end - 1][1], utterance.speaker, utterance.text,
                    utterance.text[first:last], index, key)

    def readings(self, index: int) -> list[frozenset[str]]:
        """The pinyin readings of each character of an utterance, for homophone matching."""
        if index not in self._readings:
            self._readings[index] = [_readings(char) for char in self.norms[index].with_numerals]
        return self._readings[index]

    def context(self, index: int) -> _Hit:
        u = self.utterances[index]
        return _Hit(u.start, u.end, u.speaker, u.text, "", index, "")


class _Evaluator:
    """Evaluates one rule's condition tree on one call."""

    def __init__(self, view: _CallView, tolerance: Tolerance):
        self.view, self.tolerance = view, tolerance

    def eval(self, node: Node, scope: _Scope) -> _Finding:
        scope = self.narrow(scope, node.frame)
        if isinstance(node, PhraseNode):
            found = self.phrases(node, scope)
        elif isinstance(node, RegexNode):
            found = self.counted(node, self.regex(node, scope))
        elif isinstance(node, EventNode):
            found = self.counted(node, self.events(node, scope))
        elif isinstance(node, AllOf):
            parts = [self.eval(child, scope) for child in node.children]
            found = _combine(all(p.holds for p in parts), parts, parts)
        elif isinstance(node, AnyOf):
            parts = [self.eval(child, scope) for child in node.children]
            holding = [p for p in parts if p.holds]
            found = _combine(bool(holding), parts, holding or parts)
        elif isinstance(node, Not):
            inner = self.eval(node.child, scope)
            found = _Finding(not inner.holds, inner.hits, (), inner.anchors)
        else:
            found = self.anchor(node, scope)
        if node.frame.label and not found.holds:
            return _Finding(False, found.hits, (node.frame.label,), found.anchors, found.unanswered)
        return found

    def narrow(self, scope: _Scope, frame: Frame) -> _Scope:
        window = frame.window
        if window is None:
            return scope
        values, answer, end = window.values, self.view.call.answer_s, self.view.end_s
        if window.kind in ("first_s", "last_s", "between_s"):
            if window.kind == "first_s":
                low, high = answer, answer + values[0]
            elif window.kind == "last_s":
                low, high = end - values[0], end
            else:
                low, high = values
            return _Scope(scope.utterances, max(scope.start, low), min(scope.end, high))
        speakers = self.view.speakers[frame.speaker or "either"]
        own = [i for i in scope.utterances if self.view.utterances[i].speaker in speakers]
        count = int(values[0])
        if window.kind == "first_utterances":
            chosen = own[:count]
        elif window.kind == "last_utterances":
            chosen = own[-count:]
        else:
            first, last = (int(v) if v >= 0 else len(own) + int(v) for v in values)
            chosen = own[max(first, 0):last + 1]
        if not chosen:
            return _Scope((), math.inf, -math.inf)
        utterances = self.view.utterances
        return _Scope(tuple(chosen), max(scope.start, utterances[chosen[0]].start),
                      min(scope.end, utterances[chosen[-1]].end))

    # -- leaves

    def phrases(self, node: PhraseNode, scope: _Scope) -> _Finding:
        speakers = self.view.speakers[node.frame.speaker]
        hits = []
        for index in scope.utterances:
            if self.view.utterances[index].speaker not in speakers:
                continue
            for phrase in node.phrases:
                for start, end in self.find(index, phrase):
                    hit = self.view.hit(index, start, end, phrase.written)
                    if scope.start <= hit.start <= scope.end:
                        hits.append(hit)
        said = {h.key for h in hits}
        hits = _without_overlaps(hits)
        if node.mode == "all":
            missing = tuple(p.written for p in node.phrases if p.written not in said)
            return _Finding(not missing, tuple(hits), missing)
        if node.mode == "none":
            return _Finding(not hits, tuple(hits))
        enough = len(said) >= node.at_least
        if node.more_than is not None:
            enough = enough and len({h.utterance for h in hits}) > node.more_than
        return _Finding(enough, tuple(hits))

    def find(self, index: int, phrase: Phrase) -> list[tuple[int, int]]:
        """Spans of the normalised utterance where `phrase` was said, as whole words."""
        norm = self.view.norms[index]
        text, needle = norm.text, phrase.needle
        spans, position = [], text.find(needle)
        while position >= 0:
            spans.append((position, position + len(needle)))
            position = text.find(needle, position + 1)
        if self.tolerance.pinyin and len(needle) >= MIN_TOLERANT_PINYIN:
            spans += self.homophones(index, phrase, exclude=set(spans))
        spans = [s for s in spans if self.view.segmenter.whole_words(norm.with_numerals, *s)]
        threshold = self.tolerance.similarity
        if not spans and threshold and len(needle) >= MIN_TOLERANT_SIMILARITY and text:
            spans = _near_match(needle, text, threshold)
        return spans

    def homophones(self, index: int, phrase: Phrase, exclude: set) -> list[tuple[int, int]]:
        """Spans where every character is the phrase's or sounds like it (same pinyin and tone)."""
        text, heard = self.view.norms[index].text, self.view.readings(index)
        meant = [_readings(char) for char in phrase.spoken]
        size, found = len(phrase.needle), []
        first, first_sounds = phrase.needle[0], meant[0]
        for start in range(len(text) - size + 1):
            if text[start] != first and not heard[start] & first_sounds:  # cheap test before the rest
                continue
            if (start, start + size) not in exclude and all(
                    text[start + k] == phrase.needle[k] or heard[start + k] & meant[k] for k in range(1, size)):
                found.append((start, start + size))
        return found

    def regex(self, node: RegexNode, scope: _Scope) -> list[_Hit]:
        speakers = self.view.speakers[node.frame.speaker]
        hits = []
        for index in scope.utterances:
            text = self.view.norms[index].text
            if self.view.utterances[index].speaker not in speakers:
                continue
            if node.exclude is not None and node.exclude.search(text):
                continue
            for match in node.pattern.finditer(text):
                if match.end() > match.start():
                    hit = self.view.hit(index, match.start(), match.end(), node.pattern.pattern)
                    if scope.start <= hit.start <= scope.end:
                        hits.append(hit)
        return hits

    def events(self, node: EventNode, scope: _Scope) -> list[_Hit]:
        speakers = self.view.speakers[node.frame.speaker]
        either = node.frame.speaker == "either"
        return [
            _Hit(e.start, e.end, e.speaker or "unknown", f"[{EVENT_KINDS[e.kind]}]", "", None, e.kind)
            for e in self.view.call.events
            if e.kind in node.kinds and (either or e.speaker in speakers)
            and scope.start <= e.start <= scope.end
        ]

    @staticmethod
    def counted(node: RegexNode | EventNode, hits: list[_Hit]) -> _Finding:
        if node.more_than is None:
            return _Finding(bool(hits), tuple(hits))
        times = len({h.utterance if h.utterance is not None else (h.key, h.start) for h in hits})
        return _Finding(times > node.more_than, tuple(hits))

    # -- anchors

    def anchor(self, node: Anchor, scope: _Scope) -> _Finding:
        moments = _moments([h for h in self.eval(node.after, scope).hits if h.utterance is None or h.match])
        utterances = self.view.utterances
        speakers = self.view.speakers[node.then.frame.speaker]
        broken, kept = [], []
        for moment in moments:
            start, end = moment[0].start, max(h.end for h in moment)
            own = {h.utterance for h in moment}
            later = [i for i in scope.utterances if i not in own
                     and utterances[i].speaker in speakers and utterances[i].start >= start]
            if node.within_utterances is not None:
                chosen = later[:node.within_utterances]
                until = utterances[chosen[-1]].end if chosen else end
            else:
                chosen = [i for i in later if utterances[i].start <= end + node.within_s]
                until = end + node.within_s
            found = self.eval(node.then, _Scope(tuple(chosen), start, min(scope.end, until)))
            if found.holds == (node.expect == "present"):
                kept.append((moment, found))
            else:
                shown = ([self.view.context(i) for i in chosen] if node.expect == "present"
                         else list(found.hits))
                broken.append((moment, shown))
        if broken:
            hits = tuple(h for moment, shown in broken for h in (*moment, *shown))
            return _Finding(False, hits, (), len(moments), tuple(m[0].start for m, _ in broken))
        hits = tuple(h for moment, found in kept for h in (*moment, *found.hits))
        return _Finding(True, hits, (), len(moments))


def _combine(holds: bool, parts: list[_Finding], shown: list[_Finding]) -> _Finding:
    return _Finding(
        holds,
        tuple(h for p in shown for h in p.hits),
        () if holds else tuple(m for p in parts if not p.holds for m in p.missing),
        sum(p.anchors for p in parts),
        tuple(t for p in parts for t in p.unanswered),
    )


def _without_overlaps(hits: list[_Hit]) -> list[_Hit]:
    """One hit per stretch of speech: where phrases overlap in an utterance the longest is kept."""
    kept: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.utterance, h.start, -(h.end - h.start), h.key)):
        previous = kept[-1] if kept else None
        if previous and previous.utterance == hit.utterance and hit.start < previous.end:
            continue
        kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _moments(hits: list[_Hit]) -> list[list[_Hit]]:
    """Anchor hits grouped into moments: hits in one utterance, or overlapping in time, are one."""
    moments: list[list[_Hit]] = []
    for hit in sorted(hits, key=lambda h: h.start):
        current = moments[-1] if moments else None
        if current and (hit.start <= max(h.end for h in current)
                        or (hit.utterance is not None and hit.utterance == current[-1].utterance)):
            current.append(hit)
        else:
            moments.append([hit])
    return moments


def _near_match(needle: str, text: str, threshold: float) -> list[tuple[int, int]]:
    from rapidfuzz import fuzz

    cutoff = threshold * 100
    if len(text) < len(needle):
        return [(0, len(text))] if fuzz.ratio(needle, text) >= cutoff else []
    found = fuzz.partial_ratio_alignment(needle, text, score_cutoff=cutoff)
    if found is None or found.dest_end <= found.dest_start:
        return []
    return [(found.dest_start, found.dest_end)]


def _evaluate_rule(rule: Rule, view: _CallView) -> RuleResult:
    details = {"category": rule.category, "weight": rule.weight}

    def result(status: Status, message: str, evidence=(), **more) -> RuleResult:
        return RuleResult(rule.id, status, rule.severity, message, evidence, {**details, **more})

    if view.call.transcript.source == "none":
        return result("not_measurable", "录音中没有转写文本,无法检查该项")
    if rule.uses_customer and view.customer_unseparated:
        return result("not_measurable", "单声道录音未区分说话人,无法判断客户说了什么")
    finding = _Evaluator(view, rule.tolerance).eval(rule.condition, view.whole)
    evidence = tuple(dict.fromkeys(sorted((h.evidence() for h in finding.hits),
                                          key=lambda e: (e.start, e.end, e.match))))
    if rule.uses_anchor:
        details["anchors"] = finding.anchors
    failed = finding.holds if rule.mode == "forbid" else not finding.holds
    if not failed:
        message = rule.pass_message
        if rule.uses_anchor and finding.anchors == 0:
            message += "(本通话未出现需要回应的情形)"
        return result("pass", message, evidence)
    message = rule.fail_message
    if rule.mode == "forbid":
        said = [h for h in sorted(finding.hits, key=lambda h: h.start) if h.match]
        shown = [f"“{h.match}”({h.start:.1f}秒)" for h in said[:5]]
        if len(said) > 5:
            shown.append(f"等{len(said)}处")
        if shown:
            message += ":" + "、".join(shown)
    else:
        if finding.missing:
            message += ":缺少" + "、".join(dict.fromkeys(finding.missing))
        if finding.unanswered:
            message += "(" + "、".join(f"{t:.1f}秒" for t in finding.unanswered) + ")"
    return result("fail", message, evidence, missing=list(dict.fromkeys(finding.missing)))


# --- example dialogues --------------------------------------------------------------------------

_TURN = re.compile(r"^\s*(坐席|客服|客户|agent|customer)\s*[:：]\s*(\S.*?)\s*$")
_MARK = re.compile(r"^\s*\[\s*(?P<kind>[a-z_]+)?\s*(?:(?P<seconds>\d+(?:\.\d+)?)s)?\s*"
                   r"(?P<speaker>agent|customer)?\s*\]\s*$")
_SPEAKER_NAMES: dict[str, Speaker] = {"坐席": "agent", "客服": "agent", "agent": "agent",
                                      "客户": "customer", "customer": "customer"}
CHARS_PER_SECOND = 4.0  # 240 字/分, natural Mandarin (anchors 3.1)
TURN_GAP_S = 0.4


@dataclass(frozen=True)
class Dialogue:
    utterances: tuple[Utterance, ...]
    events: tuple[CallEvent, ...]
    duration_s: float


def parse_dialogue(text: str | list[str] | tuple[str, ...]) -> Dialogue:
    """A short dialogue in transcript form, timed as if spoken at 240 字/分.

    One turn per line (or per `|`, or per list item): `坐席: ...` / `客户: ...` (also 客服, agent,
    customer). `[30s]` is 30 s of silence; `[hold 20s]`, `[agitation customer]` are measured events
    (kind, optional duration, optional speaker) starting at that point.
    """
    lines = [text] if isinstance(text, str) else list(text)
    turns = [piece for line in lines for part in line.split("\n") for piece in part.split("|")]
    clock, utterances, events = 0.5, [], []
    for turn in (t for t in turns if t.strip()):
        spoken, mark = _TURN.match(turn), _MARK.match(turn)
        if spoken:
            words = spoken.group(2)
            length = max(0.6, len(normalize(words).text) / CHARS_PER_SECOND)
            utterances.append(Utterance(_SPEAKER_NAMES[spoken.group(1)], clock, clock + length, words))
            clock += length + TURN_GAP_S
        elif mark and (mark["kind"] or mark["seconds"]):
            seconds = float(mark["seconds"] or 0.0)
            if mark["kind"]:
                if mark["kind"] not in EVENT_KINDS:
                    raise ValueError(f"[{mark['kind']}] is not an event kind; known: {list(EVENT_KINDS)}")
                events.append(CallEvent(mark["kind"], clock, clock + seconds, mark["speaker"]))
            clock += seconds
        else:
            raise ValueError(f"{turn.strip()!r} is neither '坐席: ...', '客户: ...' nor a [mark]")
    if not utterances:
        raise ValueError("the dialogue has no turns")
    return Dialogue(tuple(utterances), tuple(events), clock + 0.5)


def dialogue_context(text: str | list[str] | tuple[str, ...],
                     company_names: tuple[str, ...] = ()) -> CallContext:
    """A two-channel call made of a written dialogue, answered at 0 s, for examples and tests."""
    dialogue = parse_dialogue(text)
    info = RecordingInfo(path=Path("<dialogue>"), duration_s=dialogue.duration_s, sample_rate=8000,
                         channels=2, sha256="", format="dialogue")
    return CallContext(recording=info, meta=CallMeta(), speech=(),
                       transcript=Transcript("sidecar", dialogue.utterances), answer_s=0.0,
                       answer_source="recording_start", company_names=company_names,
                       events=dialogue.events)


class ExampleRow(NamedTuple):
    rule_id: str
    example: str
    expected: Status
    got: Status
    ok: bool


def run_examples(rulebook: Rulebook, company_names: tuple[str, ...] = ()) -> list[ExampleRow]:
    """Run every rule on its own example dialogues; a row per example, `ok` when the status agrees."""
    rows = []
    for rule in rulebook.rules:
        for expected, examples in (("pass", rule.pass_examples), ("fail", rule.fail_examples)):
            for example in examples:
                got = rulebook.evaluate_one(rule, dialogue_context(example, company_names)).status
                rows.append(ExampleRow(rule.id, example, expected, got, got == expected))
    return rows
