"""The opening norms: what the agent must say right after answering."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from audit.judge.checks.base import CallContext, Outcome, check
from audit.phrases import Hit, find_pattern, find_phrases
from audit.records import Evidence


@dataclass(frozen=True)
class GoldenOpeningParams:
    """The window after the answer (s) and what counts as each element: phrase lists, and regexes
    on normalised text (Chinese numerals already digits)."""

    window_s: float = field(metadata={"min": 1.0, "max": 300.0})
    greeting: tuple[str, ...]
    greeting_pattern: str = field(metadata={"regex": True})
    offer_help: tuple[str, ...]
    offer_help_pattern: str = field(metadata={"regex": True})
    agent_id_pattern: str = field(metadata={"regex": True})


OPENING_ELEMENTS = {
    "greeting": "问候语",
    "company": "公司名称",
    "agent_id": "工号",
    "offer_help": "服务意愿(请问有什么可以帮您)",
}


@check("opening.golden_30s", GoldenOpeningParams)
def golden_30s(call: CallContext, params: GoldenOpeningParams) -> Outcome:
    """Within the golden 30 s after answering, the agent gives greeting, company, 工号 and help offer.

    Source: seed 000 (标准的服务话术应包括完整的公司名称、个人工号和服务目的), 002 (标准问候语), 004 (黄金30秒).
    """
    if call.transcript.source == "none":
        return Outcome("not_measurable", "录音中没有检测到语音,无法判断开场白")
    speakers = call.agent_speakers
    utterances = call.transcript.utterances

    def said(phrases: tuple[str, ...], pattern: str) -> list[Hit]:
        """The element said as a listed phrase or in the pattern's shape, in time order."""
        return sorted(find_phrases(utterances, phrases, speakers)
                      + find_pattern(utterances, re.compile(pattern), speakers), key=lambda h: h.start)

    hits = {
        "greeting": said(params.greeting, params.greeting_pattern),
        "company": find_phrases(utterances, call.company_names, speakers),
        "agent_id": find_pattern(utterances, re.compile(params.agent_id_pattern), speakers),
        "offer_help": said(params.offer_help, params.offer_help_pattern),
    }
    deadline = call.answer_by_s + params.window_s  # from the latest the call can have been answered
    elements: dict[str, dict | None] = {}
    missing, late, evidence = [], [], []
    for name, found in hits.items():
        after_answer = [h for h in found if h.end >= call.answer_s]
        if not after_answer:
            elements[name] = None
            missing.append(name)
            continue
        first = after_answer[0]
        elements[name] = {
            "said_at_s": round(first.start, 2),
            "after_answer_s": round(first.start - call.answer_s, 2),
            "text": first.text,
        }
        evidence.append(first.evidence())
        if first.end > deadline:
            late.append(name)
    details = {"answer_s": call.answer_s, "answer_latest_s": call.answer_by_s,
               "answer_source": call.answer_source, "deadline_s": deadline, "elements": elements}
    if not missing and not late:
        return Outcome("pass", f"开场白完整,均在接听后{params.window_s:g}秒内说出", tuple(evidence), details)
    problems = [f"缺少{OPENING_ELEMENTS[n]}" for n in missing]
    problems += [f"{OPENING_ELEMENTS[n]}超过{params.window_s:g}秒才说出" for n in late]
    if missing:  # show what the agent did say in the window, so the reviewer can confirm
        evidence += [
            Evidence(u.start, u.end, u.speaker, u.text, utterance=index)
            for index, u in enumerate(utterances)
            if u.speaker in speakers and u.start < deadline and u.end >= call.answer_s
        ]
    unique = tuple(dict.fromkeys(sorted(evidence, key=lambda e: e.start)))
    return Outcome("fail", ";".join(problems), unique, details,
                   missing=tuple(OPENING_ELEMENTS[n] for n in missing),
                   expected_window=(call.answer_by_s, deadline) if missing else None)
