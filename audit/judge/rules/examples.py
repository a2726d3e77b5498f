"""Example dialogues: a short written dialogue timed as speech, the call made of it, and running every
rule on its own pass / fail examples (`audit rules test`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from audit.judge.checks.base import CallContext
from audit.records import CallEvent, CallMeta, RecordingInfo, Speaker, Status, Transcript, Utterance
from audit.judge.rules.model import EVENT_KINDS
from audit.textnorm import normalize

if TYPE_CHECKING:
    from audit.judge.rules.evaluate import Rulebook

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
