"""What a call page shows, as plain data for the templates: the findings with their evidence and
highlights located in the text, the transcript, why the verdict, and each rule's Chinese name and
category. Every text is masked here (when asked) before any template sees it."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Callable

from audit.config import LabelsConfig, ScoringConfig
from audit.records import FLAGGED, SPEAKERS, finding_key, moment

SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}
SPEAKER_CLASSES = set(SPEAKERS)  # CSS classes; anything else shows as unknown


def clock(seconds: float | None, decimals: bool = True) -> str:
    """mm:ss.s, the way the player shows time."""
    if seconds is None:
        return "-"
    minutes, rest = divmod(max(float(seconds), 0.0), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}" if decimals else f"{int(minutes):02d}:{int(rest):02d}"


@dataclass(frozen=True)
class RuleName:
    rule_id: str
    name: str
    category: str

    @classmethod
    def of(cls, labels: LabelsConfig, rule_id: str) -> "RuleName":
        """A rule's label; a record audited with a rule no longer configured shows its id."""
        label = labels.rules.get(rule_id)
        return cls(rule_id, label.name if label else rule_id, label.category if label else "")




@dataclass(frozen=True)
class Highlight:
    start: int  # character positions in the text
    end: int
    kind: str  # "fail" or "pass": the result the match belongs to
    title: str


def text_pieces(text: str, highlights: list[Highlight]) -> list[tuple[str, Highlight | None]]:
    """The text cut into plain and highlighted pieces; failed findings win where matches overlap."""
    chosen: list[Highlight] = []
    for mark in sorted(highlights, key=lambda h: (h.kind != "fail", h.start)):
        if all(mark.end <= other.start or mark.start >= other.end for other in chosen):
            chosen.append(mark)
    pieces, position = [], 0
    for mark in sorted(chosen, key=lambda h: h.start):
        if mark.start > position:
            pieces.append((text[position:mark.start], None))
        pieces.append((text[mark.start:mark.end], mark))
        position = mark.end
    if position < len(text):
        pieces.append((text[position:], None))
    return pieces


def match_position(text: str, match: str, share: float) -> tuple[int, int] | None:
    """Where `match` sits in `text`: of several occurrences, the one nearest `share` of the way in.

    Evidence carries the time of the match, not its position; in a sentence that says 你 twice the
    time tells which one was meant.
    """
    starts = [m.start() for m in re.finditer(re.escape(match), text)] if match else []
    if not starts:
        return None
    best = min(starts, key=lambda s: abs(s - share * len(text)))
    return best, best + len(match)


# --- the call page's content --------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceView:
    start: float
    end: float
    speaker: str
    pieces: list
    utterance: int | None  # index in the transcript, for the "in transcript" link
    event: int | None = None  # a measured event (dead air, agitation), quoting no utterance: its row


@dataclass(frozen=True)
class EventView:
    """A measured moment shown as an event in the transcript (静音25秒), not as someone's words."""

    index: int
    start: float
    end: float
    speaker: str
    text: str
    is_event: bool = True


@dataclass(frozen=True)
class ResultView:
    number: int
    rule: RuleName
    status: str
    severity: str
    message: str
    evidence: list[EvidenceView]
    more: int = 0  # evidence found beyond what the record (or the page) keeps
    key: str = ""  # the finding's key (audit.present.review) for decisions
    moment: str = "-"
    missing: tuple[str, ...] = ()  # what the call lacks, as the rule names it
    absent: bool = False  # the finding is about something not said: its evidence is what was said
    window: tuple[float, float] | None = None  # where the missing words were due, in call time

    @property
    def rule_id(self) -> str:
        return self.rule.rule_id


@dataclass(frozen=True)
class UtteranceView:
    index: int
    start: float
    end: float
    speaker: str
    pieces: list
    is_event: bool = False


class CallContent:
    """What a call page shows, with every text masked (when asked) and matches located."""

    def __init__(self, record: dict, shown: Callable[[str], str], labels: LabelsConfig,
                 max_evidence: int | None = None, call_id: str = ""):
        self.record, self.shown, self.labels = record, shown, labels
        self.call_id = call_id or record["call_id"]  # in clear, for the findings' keys
        self.max_evidence = max_evidence  # per finding: a record audited before the cap holds more
        self.utterances = record["utterances"]
        self._by_text: dict[tuple[str, str], list[int]] = {}
        for index, utterance in enumerate(self.utterances):
            self._by_text.setdefault((utterance["speaker"], utterance["text"]), []).append(index)
        self.highlights: dict[int, list[Highlight]] = {}
        self.events: dict[tuple, EventView] = {}
        ordered = sorted(record["results"], key=lambda r: (r["status"] not in FLAGGED,
                                                           SEVERITY_ORDER.get(r["severity"], 3)))
        self.results = [self._result(number, result) for number, result in enumerate(ordered, 1)]

    @property
    def findings(self) -> list[ResultView]:
        return [r for r in self.results if r.status in FLAGGED]

    @property
    def other_results(self) -> list[ResultView]:
        return [r for r in self.results if r.status not in FLAGGED]

    def transcript(self) -> list[UtteranceView | EventView]:
        """The utterances, with the measured events of the findings as rows of their own."""
        rows = [UtteranceView(i, u["start"], u["end"], speaker_class(u["speaker"]),
                              self._pieces(u["text"], self.highlights.get(i, [])))
                for i, u in enumerate(self.utterances)]
        return sorted([*rows, *self.events.values()], key=lambda row: (row.start, row.is_event))

    def corrections(self) -> list[dict]:
        return [{"utterance_start": c["utterance_start"], "speaker": speaker_class(c["speaker"]),
                 "heard": self.shown(c["heard"]), "term": self.shown(c["term"])}
                for c in self.record.get("term_corrections", [])]

    def dropped(self) -> list[dict]:
        return [{"start": d["start"], "end": d["end"], "speaker": speaker_class(d["speaker"]),
                 "text": self.shown(d["text"]), "reason": self.shown(d["reason"])}
                for d in self.record.get("dropped_utterances", [])]

    def _result(self, number: int, result: dict) -> ResultView:
        failed = result["status"] in FLAGGED
        rule = RuleName.of(self.labels, result["rule_id"])
        title = f"{rule.name}({rule.rule_id}):{self.shown(result['message'])}"
        missing = tuple(self.shown(str(m)) for m in result.get("missing") or ())
        absent = failed and bool(missing)
        window = tuple(result["expected_window"]) if absent and result.get("expected_window") else None
        items = result["evidence"][:self.max_evidence]
        # what was said beside a missing element passed: green
        evidence = [self._evidence(item, "fail" if failed and not absent else "pass", title) for item in items]
        found = result.get("evidence_total") or len(result["evidence"])
        more = found - len(items)
        where = moment(result["evidence"])
        key = finding_key(self.record["recording"]["sha256"], self.call_id, rule.rule_id, where)
        return ResultView(number, rule, result["status"], result["severity"], self.shown(result["message"]),
                          evidence, max(more, 0), key if failed else "", where, missing, absent, window)

    def _evidence(self, item: dict, kind: str, title: str) -> EvidenceView:
        utterance = self._utterance_of(item)
        marks = []
        if item.get("match"):
            share = self._share(item, utterance)
            span = match_position(item["text"], item["match"], share)
            if span:
                marks.append(Highlight(*span, kind, title))
                if utterance is not None:
                    self.highlights.setdefault(utterance, []).append(Highlight(*span, kind, title))
        event = None
        if utterance is None and not item.get("match"):
            row = (item["start"], item["end"], item["speaker"], item["text"])
            if row not in self.events:
                self.events[row] = EventView(len(self.events), item["start"], item["end"],
                                             speaker_class(item["speaker"]), self.shown(item["text"].strip("()[]()【】")))
            event = self.events[row].index
        return EvidenceView(item["start"], item["end"], speaker_class(item["speaker"]),
                            self._pieces(item["text"], marks), utterance, event)

    def _utterance_of(self, item: dict) -> int | None:
        """The transcript utterance an evidence item quotes: same speaker and text, nearest in time.

        The candidates are in transcript (start) order: the one starting last before the item and
        the next are the nearest, found by bisection (thousands of identical short utterances stay
        cheap).
        """
        candidates = self._by_text.get((item["speaker"], item["text"]), [])
        if not candidates:
            return None
        middle = (item["start"] + item["end"]) / 2
        at = bisect.bisect_right(candidates, item["start"], key=lambda i: self.utterances[i]["start"])
        near = candidates[max(0, at - 2): at + 1]
        return min(near, key=lambda i: abs((self.utterances[i]["start"] + self.utterances[i]["end"]) / 2
                                           - middle))

    def _share(self, item: dict, utterance: int | None) -> float:
        if utterance is None:
            return 0.0
        u = self.utterances[utterance]
        return min(max((item["start"] - u["start"]) / max(u["end"] - u["start"], 1e-6), 0.0), 1.0)

    def _pieces(self, text: str, highlights: list[Highlight]) -> list:
        return text_pieces(self.shown(text), highlights)


def speaker_class(speaker: str) -> str:
    return speaker if speaker in SPEAKER_CLASSES else "unknown"


def why_verdict(record: dict, weights: dict[str, float], scoring: ScoringConfig, labels: LabelsConfig) -> str:
    """The reason for the call's verdict, as `audit.judge.scoring` decided it, in one sentence."""
    def names(rule_ids: list[str]) -> str:
        return "、".join(f"{RuleName.of(labels, r).name}({r})" for r in rule_ids)

    failed = [r for r in record["results"] if r["status"] == "fail"]
    critical = [r["rule_id"] for r in failed if r["severity"] == "critical"]
    unsure = [r["rule_id"] for r in record["results"]
              if r["status"] == "unsure" and r["severity"] in scoring.unsure_review]
    if record["verdict"] == "fail" and critical:
        return f"不合格:关键规则 {names(critical)} 未通过(关键规则未通过,不论得分即判不合格)。"
    if record["verdict"] == "fail":
        return f"不合格:得分 {record['score']:g} 低于合格线 fail_below {scoring.fail_below:g}({len(failed)} 条规则未通过)。"
    if record["verdict"] == "review":
        reasons = []
        if failed:
            lost = sum(weights.get(r["rule_id"], 0.0) for r in failed)
            reasons.append(f"{len(failed)} 条规则未通过(扣 {lost:g} 分)")
        if unsure:
            reasons.append(f"{names(unsure)} 所依据的词识别置信度低,请先听录音再判断")
        return "需复核:" + ";".join(reasons or ["有一项结果需要人工复核"]) + "。"
    return "合格:没有规则未通过。"


def facts(record: dict, shown: Callable[[str], str]) -> list[tuple[str, str]]:
    recording, meta = record["recording"], record["meta"]
    direction = {"inbound": "呼入", "outbound": "呼出"}.get(meta.get("direction"), meta.get("direction") or "-")
    items = [("坐席工号", meta.get("agent_id") or "未知"), ("呼叫方向", direction),
             ("时长", clock(recording["duration_s"])),
             ("录音", f"{recording['path']}({recording['format']},{recording['channels']} 声道,"
                      f"{recording['sample_rate']} Hz)")]
    return [(label, shown(str(value))) for label, value in items]
