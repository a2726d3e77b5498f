"""Evaluating a compiled rulebook on one call: the call view (normalised utterances, clauses, word
boundaries, speakers), the condition tree walk, and the result with its evidence and explanations."""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from audit.judge import intent as meaning
from audit.judge.checks.base import CallContext
from audit.config import RuleConfig
from audit.phrases import Hit, Segmenter, char_times, how_many, phrase_spans, timed_hit, without_overlaps
from audit.records import RuleResult, Status
from audit.judge.rules.model import (
    EVENT_KINDS,
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
    Tolerance,
)
from audit.textnorm import char_readings, normalize

@dataclass(frozen=True)
class Rulebook:
    path: Path
    categories: tuple[str, ...]
    rules: tuple[Rule, ...]
    phrase_words: frozenset[str]  # every phrase, as jieba should keep it whole
    protected_words: frozenset[str]  # `[dictionary] words`: no phrase may match inside them
    intents: tuple[meaning.Intent, ...] = ()

    @cached_property
    def forbidding(self) -> frozenset[str]:
        """The rules that fail on something said (`forbid`), as opposed to something missing."""
        return frozenset(rule.id for rule in self.rules if rule.mode == "forbid")

    @cached_property
    def requiring(self) -> frozenset[str]:
        """The rules that fail for something missing (`require`)."""
        return frozenset(rule.id for rule in self.rules if rule.mode == "require")

    def satisfiable_by(self, words: tuple[str, ...]) -> frozenset[str]:
        """The `require` rules that one of `words` could satisfy (it is one of their phrases, not
        under a `not`): when the ASR leaves those words out of its text, such a rule failing on
        that text proves nothing."""
        wanted = frozenset(normalize(word).text for word in words)
        return frozenset(rule.id for rule in self.rules
                         if rule.mode == "require" and wanted & _phrases_that_satisfy(rule.condition))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)

    def with_settings(self, settings: dict[str, RuleConfig]) -> Rulebook:
        """This rulebook with each rule's enabled, severity and weight as the config's
        `[rules."<id>"]` says (`audit.configload`: one namespace for every rule)."""
        return replace(self, rules=tuple(
            replace(rule, enabled=settings[rule.id].enabled, severity=settings[rule.id].severity,
                    weight=settings[rule.id].weight) if rule.id in settings else rule
            for rule in self.rules))

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @cached_property
    def _segmenter(self) -> Segmenter:
        return Segmenter(self.phrase_words, self.protected_words)

    def load_dictionary(self) -> None:
        """Read jieba's dictionary (about a second) now, at process start, not inside the first call."""
        self._segmenter.load()

    def evaluate(self, call: CallContext) -> tuple[RuleResult, ...]:
        """The result of every enabled rule on `call`, in rulebook order."""
        view = CallView(call, self._segmenter)
        return tuple(evaluate_rule(rule, view) for rule in self.rules if rule.enabled)

    def evaluate_one(self, rule: Rule, call: CallContext) -> RuleResult:
        return evaluate_rule(rule, CallView(call, self._segmenter))


@dataclass(frozen=True)
class _Finding:
    holds: bool
    hits: tuple[Hit, ...] = ()
    missing: tuple[str, ...] = ()  # labels (or phrases) of what a requirement lacked
    anchors: int = 0  # anchor moments examined
    unanswered: tuple[float, ...] = ()  # start of each anchor moment that broke the rule


@dataclass(frozen=True)
class _Scope:
    utterances: tuple[int, ...]
    start: float  # a hit counts when it starts within [start, end]
    end: float


class CallView:
    """One call prepared for matching: normalised utterances, word boundaries, speakers."""

    def __init__(self, call: CallContext, segmenter: Segmenter):
        self.call = call
        self.segmenter = segmenter
        segmenter.add_terms(call.company_names)
        self.utterances = call.transcript.utterances
        self.norms = [normalize(u.text) for u in self.utterances]
        self._read: dict[int, meaning.Reading] = {}
        self._judged: dict[tuple[str, int], list[meaning.IntentHit]] = {}
        self._times: dict[int, list[tuple[float, float]]] = {}
        self.char_readings: dict[int, list[frozenset[str]]] = {}
        self._sounds: dict[int, frozenset[str]] = {}
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

    def hit(self, index: int, start: int, end: int, key: str, why: str = "") -> Hit:
        utterance, norm = self.utterances[index], self.norms[index]
        if index not in self._times:
            self._times[index] = char_times(utterance, len(norm.text))
        return timed_hit(utterance, index, norm, start, end, key, self._times[index], why)

    def read(self, index: int) -> meaning.Reading:
        """The utterance's clauses and quotations, for intents and for skipping quoted words."""
        if index not in self._read:
            self._read[index] = meaning.Reading.read(self.utterances[index].text, self.norms[index])
        return self._read[index]

    def quoted(self, index: int, start: int) -> bool:
        return start in self.read(index).quoted

    def judged(self, intent: meaning.Intent, index: int) -> list[meaning.IntentHit]:
        key = (intent.name, index)
        if key not in self._judged:
            self._judged[key] = meaning.judge(intent, self.read(index))
        return self._judged[key]

    def readings(self, index: int) -> list[frozenset[str]]:
        """The pinyin readings of each character of an utterance, for homophone matching."""
        if index not in self.char_readings:
            self.char_readings[index] = [char_readings(char) for char in self.norms[index].with_numerals]
        return self.char_readings[index]

    def sounds(self, index: int) -> frozenset[str]:
        """Every pinyin reading heard anywhere in an utterance: a cheap test before homophone search."""
        if index not in self._sounds:
            self._sounds[index] = frozenset().union(*self.readings(index))
        return self._sounds[index]

    def context(self, index: int) -> Hit:
        u = self.utterances[index]
        return Hit(u.start, u.end, u.speaker, u.text, "", index, "")


def _phrases_that_satisfy(node: Node) -> frozenset[str]:
    """The phrases (normalised) whose hearing helps `node` hold: those of `any` lists, through
    `and` / `or` and what must follow an anchor; never those under a `not`."""
    if isinstance(node, PhraseNode):
        return frozenset(p.needle for p in node.phrases) if node.mode == "any" else frozenset()
    if isinstance(node, (AllOf, AnyOf)):
        return frozenset().union(*(_phrases_that_satisfy(child) for child in node.children))
    if isinstance(node, Anchor):
        return _phrases_that_satisfy(node.then)
    return frozenset()


class _Evaluator:
    """Evaluates one rule's condition tree on one call."""

    def __init__(self, view: CallView, tolerance: Tolerance):
        self.view, self.tolerance = view, tolerance

    def eval(self, node: Node, scope: _Scope) -> _Finding:
        scope = self.narrow(scope, node.frame)
        if isinstance(node, PhraseNode):
            found = self.phrases(node, scope)
        elif isinstance(node, RegexNode):
            found = self.counted(node, self.regex(node, scope))
        elif isinstance(node, IntentNode):
            found = self.counted(node, self.intents(node, scope))
        elif isinstance(node, EchoNode):
            hits = self.echoes(node, scope)
            found = _Finding(bool(hits), tuple(hits))
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
            if window.kind == "first_s":  # from the earliest possible answer to N s after the latest
                low, high = answer, self.view.call.answer_by_s + values[0]
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
            if node.exclude is not None and node.exclude.search(self.view.norms[index].text):
                continue
            for phrase in node.phrases:
                for start, end in self.find(index, phrase):
                    if self.view.quoted(index, start):
                        continue
                    if node.skip_negated and self.view.read(index).negated(start):
                        continue
                    hit = self.view.hit(index, start, end, phrase.written)
                    if scope.start <= hit.start <= scope.end:
                        hits.append(hit)
        if node.glossed is not None:
            explained = self.glossed(node)
            hits = [h for h in hits if h.key not in explained]
        said = {h.key for h in hits}
        hits = without_overlaps(hits)
        if node.mode == "all":
            missing = tuple(p.written for p in node.phrases if p.written not in said)
            return _Finding(not missing, tuple(hits), missing)
        if node.mode == "none":
            return _Finding(not hits, tuple(hits))
        found = self.counted(node, hits)
        return _Finding(found.holds and len(said) >= node.at_least, found.hits)

    def glossed(self, node: PhraseNode) -> set[str]:
        """The phrases of `node` its speaker explains somewhere in the call (`node.glossed` matches
        right after one of its occurrences)."""
        speakers = self.view.speakers[node.frame.speaker]
        explained = set()
        for index, utterance in enumerate(self.view.utterances):
            if utterance.speaker not in speakers:
                continue
            text = self.view.norms[index].text
            for phrase in node.phrases:
                if phrase.written not in explained and any(
                        node.glossed.match(text, end) for _, end in self.find(index, phrase)):
                    explained.add(phrase.written)
        return explained

    def find(self, index: int, phrase: Phrase) -> list[tuple[int, int]]:
        """Spans of the normalised utterance where `phrase` was said, as whole words
        (`audit.phrases.phrase_spans`, with the rule's tolerance)."""
        return phrase_spans(self.view.norms[index], phrase, self.view.segmenter, self.tolerance,
                            lambda: (self.view.readings(index), self.view.sounds(index)))

    def regex(self, node: RegexNode, scope: _Scope) -> list[Hit]:
        speakers = self.view.speakers[node.frame.speaker]
        hits = []
        for index in scope.utterances:
            text = self.view.norms[index].text
            if self.view.utterances[index].speaker not in speakers:
                continue
            if node.exclude is not None and node.exclude.search(text):
                continue
            for match in node.pattern.finditer(text):
                if match.end() > match.start() and not self.view.quoted(index, match.start()):
                    hit = self.view.hit(index, match.start(), match.end(), node.pattern.pattern)
                    if scope.start <= hit.start <= scope.end:
                        hits.append(hit)
        return hits

    def intents(self, node: IntentNode, scope: _Scope) -> list[Hit]:
        speakers = self.view.speakers[node.frame.speaker]
        hits = []
        for index in scope.utterances:
            if self.view.utterances[index].speaker not in speakers:
                continue
            for intent in node.intents:
                for found in self.view.judged(intent, index):
                    hit = self.view.hit(index, found.start, found.end, f"{intent.name}: {found.reason}",
                                        f"{intent.label} {found.score:.2f}")
                    if scope.start <= hit.start <= scope.end:
                        hits.append(hit)
        return hits

    def echoes(self, node: EchoNode, scope: _Scope) -> list[Hit]:
        speakers = self.view.speakers[node.frame.speaker]
        utterances, norms = self.view.utterances, self.view.norms
        hits = []
        for index in scope.utterances:
            if index == 0 or utterances[index].speaker not in speakers \
                    or utterances[index - 1].speaker == utterances[index].speaker:
                continue
            if node.lead is None:
                start, end = meaning.shared_run(norms[index].text, norms[index - 1].text)
            else:
                start, end = _taken_up_after(node.lead, norms[index].text, norms[index - 1].text)
            if end - start < node.length or (not node.answers and self._from_question(index, start, end)):
                continue
            # 不是来电显示 takes the customer's words up to deny them: a contradiction, not a restatement
            if not self.view.read(index).negated(start, straddling=True):
                hit = self.view.hit(index, start, end, f"echo of utterance {index - 1}",
                                    f"复述对方原话 {end - start}字")
                if scope.start <= hit.start <= scope.end:
                    hits.append(hit)
        return hits

    def _from_question(self, index: int, start: int, end: int) -> bool:
        """Whether utterance `index`'s words [start, end) were taken from a question just asked."""
        norms = self.view.norms
        position = norms[index - 1].text.find(norms[index].text[start:end])
        return position >= 0 and self.view.read(index - 1).clause_at(position).question

    def events(self, node: EventNode, scope: _Scope) -> list[Hit]:
        speakers = self.view.speakers[node.frame.speaker]
        either = node.frame.speaker == "either"
        return [
            Hit(e.start, e.end, e.speaker or "unknown", f"[{EVENT_KINDS[e.kind]}]", "", None, e.kind)
            for e in self.view.call.events
            if e.kind in node.kinds and (either or e.speaker in speakers)
            and scope.start <= e.start <= scope.end
            and (node.min_s is None or e.end - e.start >= node.min_s)
        ]

    @staticmethod
    def counted(node: PhraseNode | RegexNode | IntentNode | EventNode, hits: list[Hit]) -> _Finding:
        """Holds with a hit, or with more than the node's counts (`audit.phrases.how_many`):
        `more_than` utterances, `occurrences_more_than` hits; both when both are given."""
        holds = bool(hits)
        if node.more_than is not None:
            holds = holds and how_many(hits, "utterances") > node.more_than
        if node.occurrences_more_than is not None:
            holds = holds and how_many(without_overlaps(hits), "occurrences") > node.occurrences_more_than
        return _Finding(holds, tuple(hits))

    # -- anchors

    def anchor(self, node: Anchor, scope: _Scope) -> _Finding:
        moments = _moments([h for h in self.eval(node.after, scope).hits if h.utterance is None or h.match])
        utterances = self.view.utterances
        speakers = self.view.speakers[node.then.frame.speaker]
        broken, kept = [], []
        # who may answer, in time order: each moment's answer starts at the moment or later, found
        # by bisection and read forward only as far as its window reaches, so a long call with many
        # moments stays linear
        order = [i for i in scope.utterances if utterances[i].speaker in speakers]
        starts = [utterances[i].start for i in order]
        if any(later < earlier for earlier, later in zip(starts, starts[1:])):
            order.sort(key=lambda i: utterances[i].start)  # stable: ties keep their order
            starts = [utterances[i].start for i in order]
        for moment in moments:
            start, end = moment[0].start, max(h.end for h in moment)
            own = {h.utterance for h in moment}
            if node.look == "back":
                chosen, since = self.looked_back(node, scope, speakers, own, start)
                until = max([end] + [utterances[i].end for i in own if i is not None])  # the same turn
                found = self.eval(node.then, _Scope(tuple(chosen), max(scope.start, since), until))
                if found.holds == (node.expect == "present"):
                    kept.append((moment, found))
                else:
                    broken.append((moment, [] if node.expect == "present" else list(found.hits)))
                continue
            limit = node.within_utterances
            horizon = math.inf if limit is not None else end + node.within_s
            chosen = []
            for position in range(bisect.bisect_left(starts, start), len(order)):
                if starts[position] > horizon:
                    break
                index = order[position]
                if index in own:
                    continue
                chosen.append(index)
                if limit is not None and len(chosen) == limit:
                    break
            if limit is not None:
                until = utterances[chosen[-1]].end if chosen else end
            else:
                until = horizon
            since = start
            if node.back_utterances:
                first = bisect.bisect_left(starts, start)
                before = [i for i in order[max(0, first - node.back_utterances): first] if i not in own]
                if before:
                    chosen = before + chosen
                    since = max(scope.start, utterances[before[0]].start)
            found = self.eval(node.then, _Scope(tuple(chosen), since, min(scope.end, until)))
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


    def looked_back(self, node: Anchor, scope: _Scope, speakers: set, own: set,
                    start: float) -> tuple[list[int], float]:
        """The utterances of `then`'s speaker up to a moment (its own included), and the earliest
        time a hit may start: the last `within_utterances`, the last `within_s` or the whole call."""
        utterances = self.view.utterances
        earlier = [i for i in scope.utterances if utterances[i].speaker in speakers
                   and (i in own or utterances[i].start <= start)]
        if node.within_utterances is not None:
            chosen = earlier[-node.within_utterances:]
            return chosen, (utterances[chosen[0]].start if chosen else start)
        if node.within_s is not None:
            return [i for i in earlier if utterances[i].end >= start - node.within_s], start - node.within_s
        return earlier, -math.inf


def _taken_up_after(lead: re.Pattern, text: str, other: str) -> tuple[int, int]:
    """[start, end) of the longest stretch of `text` that starts right after a match of `lead` and
    is also in `other`; (0, 0) when none."""
    best = (0, 0)
    for match in lead.finditer(text):
        start = match.end()
        length = best[1] - best[0] + 1
        while start + length <= len(text) and text[start:start + length] in other:
            best = (start, start + length)
            length += 1
    return best


def _combine(holds: bool, parts: list[_Finding], shown: list[_Finding]) -> _Finding:
    return _Finding(
        holds,
        tuple(h for p in shown for h in p.hits),
        () if holds else tuple(m for p in parts if not p.holds for m in p.missing),
        sum(p.anchors for p in parts),
        tuple(t for p in parts for t in p.unanswered),
    )


def _moments(hits: list[Hit]) -> list[list[Hit]]:
    """Anchor hits grouped into moments: hits in one utterance, or overlapping in time, are one."""
    moments: list[list[Hit]] = []
    reach = -math.inf  # the latest end among the current moment's hits
    for hit in sorted(hits, key=lambda h: h.start):
        current = moments[-1] if moments else None
        if current and (hit.start <= reach
                        or (hit.utterance is not None and hit.utterance == current[-1].utterance)):
            current.append(hit)
            reach = max(reach, hit.end)
        else:
            moments.append([hit])
            reach = hit.end
    return moments


SHOWN_IN_MESSAGE = 5  # matches or unanswered moments a message names; the rest are counted


def evaluate_rule(rule: Rule, view: CallView) -> RuleResult:
    details = {"category": rule.category, "weight": rule.weight}

    def result(status: Status, message: str, evidence=(), **more) -> RuleResult:
        return RuleResult(rule.id, status, rule.severity, message, evidence, {**details, **more})

    if view.call.transcript.source == "none":
        return result("not_measurable", "录音中没有转写文本,无法检查该项")
    if rule.uses_customer and view.customer_unseparated:
        return result("not_measurable", "单声道录音未区分说话人,无法判断客户说了什么")
    finding = _Evaluator(view, rule.tolerance).eval(rule.condition, view.whole)
    # a phrase and an intent (or two branches of an `any`) finding the same words are one finding
    finding = replace(finding, hits=tuple(without_overlaps(finding.hits)))
    evidence = tuple(dict.fromkeys(sorted((h.evidence() for h in finding.hits),
                                          key=lambda e: (e.start, e.end, e.match))))
    if rule.uses_anchor:
        details["anchors"] = finding.anchors
    details["matches"] = [h.explained() for h in sorted(finding.hits, key=lambda h: h.start) if h.match]
    failed = finding.holds if rule.mode == "forbid" else not finding.holds
    if not failed:
        message = rule.pass_message
        if rule.mode == "require" and rule.uses_anchor and finding.anchors == 0:
            message += "(本通话未出现需要回应的情形)"
        return result("pass", message, evidence)
    message = rule.fail_message
    if rule.mode == "forbid":
        said = [h for h in sorted(finding.hits, key=lambda h: h.start) if h.match]
        shown = [f"“{h.match}”({h.start:.1f}秒{',' + h.why if h.why else ''})"
                 for h in said[:SHOWN_IN_MESSAGE]]
        if len(said) > SHOWN_IN_MESSAGE:
            shown.append(f"等{len(said)}处")
        if shown:
            message += ":" + "、".join(shown)
    else:
        if finding.missing:
            message += ":缺少" + "、".join(dict.fromkeys(finding.missing))
        if finding.unanswered:
            times = [f"{t:.1f}秒" for t in finding.unanswered[:SHOWN_IN_MESSAGE]]
            if len(finding.unanswered) > SHOWN_IN_MESSAGE:
                times.append(f"等{len(finding.unanswered)}处")
            message += "(" + "、".join(times) + ")"
    missing = tuple(dict.fromkeys(finding.missing))
    return replace(result("fail", message, evidence, missing=list(missing)), missing=missing)
