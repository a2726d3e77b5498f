"""Evidence locates what it shows: the utterance (its index in the transcript) and the character
span of the matched words, from the rulebook and the built-in checks to the call record."""

from __future__ import annotations

from audit.judge.checks.opening import golden_30s
from audit.configload import load_config
from audit.run.pipeline import AsrChoice, Job, audit_call
from audit.records import Evidence
from audit.judge.rules import dialogue_context
from audit.present.store import call_record
from conftest import FIXTURE_CALLS

CONFIG = load_config()


def located(evidence: Evidence, utterances) -> bool:
    """The evidence's utterance is the one it quotes, and its span is exactly its matched words."""
    start, end = evidence.span
    return utterances[evidence.utterance].text == evidence.text and evidence.text[start:end] == evidence.match


def test_a_rulebook_match_carries_its_utterance_and_span():
    call = dialogue_context(["客户: 我的宽带又断了。", "坐席: 好的,我看一下。",
                             "坐席: 这个不歸我們管,宽带维修是装维部门负责的。"], CONFIG.company_names)
    result = CONFIG.rulebook.evaluate_one(CONFIG.rulebook.rule("text.forbidden.shirk"), call)
    assert result.status == "fail"
    (evidence,) = result.evidence
    # the match is written as said (traditional characters and all), and found at its place
    assert (evidence.utterance, evidence.span, evidence.match) == (2, (0, 7), "这个不歸我們管")
    assert located(evidence, call.transcript.utterances)
    (explained,) = result.details["matches"]
    assert (explained["utterance"], tuple(explained["span"])) == (evidence.utterance, evidence.span)


def test_context_and_events_have_an_utterance_or_nothing():
    """Context shown beside a missing element names its utterance and no span; a measured event
    neither."""
    rulebook = CONFIG.rulebook
    empathy = rulebook.evaluate_one(rulebook.rule("text.empathy"), dialogue_context(
        ["[agitation customer]", "客户: 你们怎么回事!我都打了三次了!", "坐席: 请提供您的手机号码。"]))
    assert empathy.status == "fail"
    events = [e for e in empathy.evidence if e.text.startswith("[")]
    said = [e for e in empathy.evidence if not e.text.startswith("[")]
    assert events and all(e.utterance is None and e.span is None for e in events)
    assert said and all(e.utterance is not None and (e.span is None) == (e.match == "") for e in said)


def test_the_opening_check_locates_each_element():
    call = dialogue_context(["坐席: 您好,星河通信,工号0086,请问有什么可以帮您?", "客户: 我想查话费。"],
                            CONFIG.company_names)
    outcome = golden_30s(call, CONFIG.rules["opening.golden_30s"].params)
    assert outcome.status == "pass" and len(outcome.evidence) == 4
    assert all(located(e, call.transcript.utterances) for e in outcome.evidence)
    assert sorted(e.match for e in outcome.evidence) == sorted(["您好", "星河通信", "工号0086", "有什么可以帮您"])


def test_the_record_of_a_real_call_locates_its_matches():
    """A sample call audited from its audio (sidecar transcript): in the record every matched piece
    of evidence names its utterance and span; evidence without a match has no span key, and a
    measured event no utterance key, so records read as before."""
    audit = audit_call(Job(FIXTURE_CALLS / "missing_agent_id.wav", "m"), CONFIG, AsrChoice("sidecar"))
    record = call_record(audit)
    utterances = record["utterances"]
    matched = 0
    for result in record["results"]:
        for evidence in result["evidence"]:
            assert set(evidence) <= {"start", "end", "speaker", "text", "match", "utterance", "span"}
            if "match" in evidence:
                matched += 1
                start, end = evidence["span"]
                assert evidence["text"][start:end] == evidence["match"], result["rule_id"]
                assert utterances[evidence["utterance"]]["text"] == evidence["text"], result["rule_id"]
            else:
                assert "span" not in evidence
    assert matched >= 5
