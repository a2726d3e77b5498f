"""Reading and validating a rulebook TOML: every key checked, the first problem raised as a
`ConfigError` naming the file and the key."""

from __future__ import annotations

import math
import re
import typing
from dataclasses import fields
from pathlib import Path

from audit.judge import intent as meaning
from audit.config import ConfigError, build_section, read_toml
from audit.judge.rules.evaluate import Rulebook
from audit.judge.rules.examples import parse_dialogue
from audit.judge.rules.training import load_intent_model, model_spec
from audit.judge.rules.model import (
    BASE_CATEGORY,
    EVENT_KINDS,
    RULE_SPEAKERS,
    AllOf,
    Anchor,
    AnyOf,
    EchoNode,
    EventNode,
    Frame,
    IntentNode,
    Node,
    Not,
    Phrase,
    PhraseNode,
    RegexNode,
    Rule,
    RuleFields,
    Window,
    WindowKind,
)
from audit.textnorm import normalize, normalize_pattern

_TOP_KEYS = ("version", "categories", "dictionary", "phrases", "intents", "conditions", "rules")
_RULE_STRUCTURE = ("forbid", "require", "examples")
Place = typing.Literal["require", "forbid", "negated"]  # where a condition sits in its rule
_KINDS = ("any", "all", "none", "regex", "intent", "echo", "event", "and", "or", "not", "after")
_INTENT_KEYS = ("label", "patterns", "examples", "not_patterns", "not_in_clause", "lead_clause",
                "not_in_utterance", "threshold", "mood", "negated", "model")
_COMMON = ("speaker", "window", "label")
_MODIFIERS = {
    "any": ("at_least", "more_than", "occurrences_more_than", "skip_negated", "not_regex", "glossed"),
    "all": (),
    "none": (),
    "regex": ("not_regex", "more_than", "occurrences_more_than"),
    "intent": ("more_than", "occurrences_more_than"),
    "echo": ("lead", "answers"),
    "event": ("more_than", "occurrences_more_than", "min_s"),
    "and": (),
    "or": (),
    "not": (),
    "after": ("then", "within_s", "within_utterances", "back_utterances", "expect", "look"),
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
        intents_table = self.expect_table(table.get("intents", {}), "intents")
        self.intents = {name: self.intent(name, value) for name, value in intents_table.items()}
        self.named_conditions = self.expect_table(table.get("conditions", {}), "conditions")
        for name, value in self.phrase_lists.items():
            self.phrases(value, f"phrases.{name}")  # every list is checked even if no rule uses it
        for name in self.named_conditions:
            self.node(name, f"conditions.{name}", None, place="require", using=())
        rules_table = self.expect_table(table.get("rules", {}), "rules")
        if not rules_table:
            raise self.fail("rules", "the rulebook has no rules")
        rules = tuple(self.rule(rule_id, rule_table, categories)
                      for rule_id, rule_table in rules_table.items())
        return Rulebook(self.path, categories, rules, frozenset(self.phrase_words), frozenset(protected),
                        tuple(self.intents.values()))

    def intent(self, name: str, value: object) -> meaning.Intent:
        """Compile one `[intents.NAME]` table: label, patterns and/or examples, and how it judges."""
        key = f"intents.{name}"
        table = self.expect_table(value, key)
        for field_name in table:
            if field_name not in _INTENT_KEYS:
                raise self.fail(f"{key}.{field_name}", f"unknown key; expected one of {list(_INTENT_KEYS)}")
        label = table.get("label")
        if not isinstance(label, str) or not label.strip():
            raise self.fail(f"{key}.label", "missing: the words a reviewer reads for this intent")
        patterns = tuple(self.regex(p, f"{key}.patterns[{i}]")
                         for i, p in enumerate(self.strings(table.get("patterns", []), f"{key}.patterns")))
        examples = []
        for i, written in enumerate(self.strings(table.get("examples", []), f"{key}.examples")):
            try:
                examples.append(meaning.make_example(written, normalize(written).text))
            except ValueError as error:
                raise self.fail(f"{key}.examples[{i}]", str(error)) from None
        model = None
        if "model" in table:
            spec = model_spec(name, table["model"], self.path)
            try:
                model = load_intent_model(spec)
            except ValueError as error:
                raise self.fail(f"{key}.model.file", str(error)) from None
        if not patterns and not examples and model is None:
            raise self.fail(key, "give patterns = [...], examples = [...] or a model (or several)")
        exclude = tuple(self.regex(p, f"{key}.not_patterns[{i}]") for i, p in
                        enumerate(self.strings(table.get("not_patterns", []), f"{key}.not_patterns")))
        in_clause = self.strings(table.get("not_in_clause", []), f"{key}.not_in_clause")
        clause_exclude = tuple(self.regex(p, f"{key}.not_in_clause[{i}]") for i, p in enumerate(in_clause))
        lead = self.regex(table["lead_clause"], f"{key}.lead_clause") if "lead_clause" in table else None
        in_utterance = self.strings(table.get("not_in_utterance", []), f"{key}.not_in_utterance")
        utterance_exclude = tuple(self.regex(p, f"{key}.not_in_utterance[{i}]")
                                  for i, p in enumerate(in_utterance))
        if lead is not None and not clause_exclude:
            raise self.fail(f"{key}.lead_clause", "only means something with not_in_clause = [...]")
        threshold = meaning.DEFAULT_THRESHOLD
        if "threshold" in table:
            threshold = self.scalar(table["threshold"], f"{key}.threshold", whole=False)
            if not 0.5 <= threshold <= 1.0:
                raise self.fail(f"{key}.threshold", f"{threshold} is outside [0.5, 1.0]")
        mood = table.get("mood", "any")
        if mood not in meaning.MOODS:
            raise self.fail(f"{key}.mood", f"{mood!r} is not one of {list(meaning.MOODS)}")
        negated = table.get("negated", False)
        if not isinstance(negated, bool):
            raise self.fail(f"{key}.negated", "must be true or false")
        return meaning.Intent(name, label.strip(), patterns, tuple(examples), exclude, threshold,
                              mood, negated, clause_exclude, lead, utterance_exclude, model)

    def rule(self, rule_id: str, table: object, categories: tuple[str, ...]) -> Rule:
        key = f"rules.{rule_id}"
        if not _RULE_ID.match(rule_id):
            raise self.fail(key, "a rule id is lower-case words joined by dots, e.g. text.closing")
        table = self.expect_table(table, key)
        allowed = [f.name for f in fields(RuleFields)] + list(_RULE_STRUCTURE)
        for name in table:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key; expected one of {allowed}")
        plain = build_section(RuleFields, {k: v for k, v in table.items() if k not in _RULE_STRUCTURE},
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
        condition = self.node(table[mode], f"{key}.{mode}", None, place=mode, using=())
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

    def node(self, value: object, key: str, inherited: str | None, place: Place,
             using: tuple[str, ...]) -> Node:
        """Compile one condition; a string names an entry of `[conditions]`. `place` is where it
        sits: under require, under forbid, or under a `not` (where an anchor has no clear meaning)."""
        if isinstance(value, str):
            if value not in self.named_conditions:
                raise self.fail(key, f"no condition named {value!r} in [conditions] "
                                     f"(known: {sorted(self.named_conditions)})")
            if value in using:
                raise self.fail(key, f"condition {value!r} refers to itself through {list(using)}")
            return self.node(self.named_conditions[value], f"conditions.{value}", inherited,
                             place, using + (value,))
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
        if kind in ("any", "all", "none", "regex", "intent", "echo") and speaker is None:
            raise self.fail(f"{key}.speaker", "missing: say whose words to match "
                                              f"({', '.join(RULE_SPEAKERS)}), here or on an enclosing condition")
        more_than = self.count(table, "more_than", key, lowest=0)  # utterances (audit.phrases)
        occurrences = self.count(table, "occurrences_more_than", key, lowest=0)  # hits
        if kind in ("any", "all", "none"):
            phrases = self.phrases(table[kind], f"{key}.{kind}")
            at_least = self.count(table, "at_least", key, lowest=1) or 1
            if at_least > len(phrases):
                raise self.fail(f"{key}.at_least", f"{at_least} is more than the {len(phrases)} phrases listed")
            skip_negated = table.get("skip_negated", False)
            if not isinstance(skip_negated, bool):
                raise self.fail(f"{key}.skip_negated", "must be true or false")
            exclude = self.regex(table["not_regex"], f"{key}.not_regex") if "not_regex" in table else None
            glossed = self.regex(table["glossed"], f"{key}.glossed") if "glossed" in table else None
            if glossed is not None and kind != "any":
                raise self.fail(f"{key}.glossed", "only an `any` list can skip glossed phrases")
            return PhraseNode(frame, kind, phrases, at_least, more_than, occurrences, skip_negated, exclude,
                              glossed)
        if kind == "regex":
            pattern = self.regex(table["regex"], f"{key}.regex")
            exclude = self.regex(table["not_regex"], f"{key}.not_regex") if "not_regex" in table else None
            return RegexNode(frame, pattern, exclude, more_than, occurrences)
        if kind == "intent":
            raw = table["intent"]
            names = self.strings([raw] if isinstance(raw, str) else raw, f"{key}.intent")
            for name in names:
                if name not in self.intents:
                    raise self.fail(f"{key}.intent", f"no intent named {name!r} in [intents] "
                                                     f"(known: {sorted(self.intents)})")
            return IntentNode(frame, tuple(self.intents[n] for n in names), more_than, occurrences)
        if kind == "echo":
            length = self.count(table, "echo", key, lowest=2)
            lead = self.regex(table["lead"], f"{key}.lead") if "lead" in table else None
            answers = table.get("answers", True)
            if not isinstance(answers, bool):
                raise self.fail(f"{key}.answers", f"must be true or false, not {answers!r}")
            return EchoNode(frame, length, lead, answers)
        if kind == "event":
            raw = table["event"]
            kinds_listed = self.strings([raw] if isinstance(raw, str) else raw, f"{key}.event")
            for name in kinds_listed:
                if name not in EVENT_KINDS:
                    raise self.fail(f"{key}.event", f"{name!r} is not an event kind; known: {list(EVENT_KINDS)}")
            if speaker is None:
                frame = Frame("either", window, label)
            min_s = self.number(table, "min_s", key) if "min_s" in table else None
            return EventNode(frame, tuple(kinds_listed), more_than, occurrences, min_s)
        if kind in ("and", "or"):
            items = table[kind]
            if not isinstance(items, list) or len(items) < 2:
                raise self.fail(f"{key}.{kind}", "must list at least two conditions")
            children = tuple(self.node(item, f"{key}.{kind}[{i}]", speaker, place, using)
                             for i, item in enumerate(items))
            return (AllOf if kind == "and" else AnyOf)(frame, children)
        if kind == "not":
            return Not(frame, self.node(table["not"], f"{key}.not", speaker, "negated", using))
        return self.anchor(table, key, frame, place, using)

    def anchor(self, table: dict, key: str, frame: Frame, place: Place,
               using: tuple[str, ...]) -> Anchor | Not:
        """Under require, every moment of `after` must be answered as `then` and `expect` say; under
        forbid, the sequence is what is forbidden: the rule fails when some moment of `after` is
        answered so (a customer who asks what a term means, and an agent who does not explain it)."""
        if place == "negated":
            raise self.fail(key, "an anchored condition (after = ...) cannot sit under not: write "
                                 "the sequence under forbid, or the requirement under require")
        if "then" not in table:
            raise self.fail(f"{key}.then", "missing: what must (or must not) follow")
        look = table.get("look", "ahead")
        if look not in ("ahead", "back"):
            raise self.fail(f"{key}.look", f"{look!r} is not one of ['ahead', 'back']")
        windows = [w for w in ("within_s", "within_utterances") if w in table]
        if len(windows) > 1 or (not windows and look == "ahead"):
            raise self.fail(key, "needs exactly one of within_s or within_utterances"
                                 " (or none, with look = \"back\")")
        expect = table.get("expect", "present")
        if expect not in ("present", "absent"):
            raise self.fail(f"{key}.expect", f"{expect!r} is not one of ['present', 'absent']")
        within_s = self.number(table, "within_s", key) if "within_s" in table else None
        within_utterances = self.count(table, "within_utterances", key, lowest=1)
        back_utterances = self.count(table, "back_utterances", key, lowest=1) or 0
        if back_utterances and look == "back":
            raise self.fail(f"{key}.back_utterances", 'only with look = "ahead": look = "back" reads back already')
        self.anchors_used = True
        inner = "require" if place == "require" else "negated"  # no anchor inside a forbidden sequence
        after = self.node(table["after"], f"{key}.after", frame.speaker, inner, using)
        then = self.node(table["then"], f"{key}.then", frame.speaker, inner, using)
        if then.frame.speaker is None:
            raise self.fail(f"{key}.then.speaker", "missing: whose utterances follow the anchor")
        if place == "require":
            return Anchor(frame, after, then, within_s, within_utterances, expect, look, back_utterances)
        # forbidden: some moment answered as said = not every moment answered the other way
        opposite = "absent" if expect == "present" else "present"
        return Not(Frame(frame.speaker, None, ""),
                   Anchor(frame, after, then, within_s, within_utterances, opposite, look, back_utterances))

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
