"""A text finding that rests only on words the ASR doubted goes to a reviewer, not against the agent."""

from __future__ import annotations

import dataclasses

from audit.judge.checks import CHECKS
from audit.configload import load_config
from audit.judge.confidence import weigh_confidence
from audit.records import RuleResult, Transcript, Utterance, Word
from audit.judge.rules import dialogue_context
from audit.judge.scoring import score_call

CONFIG = load_config()


def spoken(words: list[tuple[str, float | None]], start: float = 1.0) -> Utterance:
    """An agent utterance of these (word, probability) pairs, 0.4 s a word."""
    timed = tuple(Word(start + 0.4 * i, start + 0.4 * (i + 1), text, p) for i, (text, p) in enumerate(words))
    return Utterance("agent", start, timed[-1].end, "".join(text for text, _ in words), timed)


def audited(*utterances: Utterance):
    call = dialogue_context(["坐席: 您好。"], CONFIG.company_names)
    call = dataclasses.replace(call, transcript=Transcript("whisper", utterances))
    opening = CONFIG.rules["opening.golden_30s"]
    found = CHECKS["opening.golden_30s"].run(call, opening.params)
    checked = (RuleResult("opening.golden_30s", found.status, opening.severity, found.message, found.evidence),
               *CONFIG.rulebook.evaluate(call))  # the text rules: a written dialogue has no audio to time
    results = weigh_confidence(checked, call.transcript, CONFIG.asr, CONFIG.rulebook.forbidding,
                               CONFIG.rulebook.satisfiable_by(CONFIG.asr.omitted))
    return {r.rule_id: r for r in results}, score_call(results, CONFIG.weights, CONFIG.scoring)


def test_a_你_the_asr_doubted_is_unsure_and_takes_no_points():
    # base on telephone audio: 您 heard as 你 with a low probability
    results, (score, _, _) = audited(spoken([("你", 0.31), ("家", 0.9), ("宽带", 0.88), ("断了", 0.92)]))
    address = results["text.polite_address"]
    assert address.status == "unsure"
    assert address.details["word_probability"] == 0.31 and "请复听确认" in address.message
    assert address.evidence  # the reviewer is shown where
    unsure_free = score_call(tuple(r for r in results.values() if r.rule_id != "text.polite_address"),
                             CONFIG.weights, CONFIG.scoring)[0]
    assert score == unsure_free  # no points off for it


def test_a_你_the_asr_was_sure_of_twice_fails_and_so_does_one_without_confidences():
    sure, _ = audited(spoken([("你", 0.93), ("家", 0.9), ("宽带", 0.88), ("断了", 0.92)]),
                      spoken([("你", 0.96), ("看", 0.9)], start=5.0))
    assert sure["text.polite_address"].status == "fail"
    sidecar, _ = audited(spoken([("你", None), ("家", None), ("宽带", None), ("断了", None)]))
    assert sidecar["text.polite_address"].status == "fail"


def test_one_sure_你_alone_is_unsure_a_mishearing_can_be_that_sure():
    # base wrote 你 for the script's 有什么可以帮到您 at 0.95 (fixtures/natural-eval e11)
    results, _ = audited(spoken([("你", 0.95), ("家", 0.9), ("宽带", 0.88)]))
    address = results["text.polite_address"]
    assert address.status == "unsure" and address.details["sure_confusable"] == 1
    assert "易混字仅1处" in address.message


def test_one_sure_piece_of_evidence_is_enough_to_fail_a_rule_not_on_a_confusable_word():
    results, _ = audited(spoken([("您", 0.95), ("搞错", 0.3), ("了", 0.4)]),
                         spoken([("您", 0.96), ("搞错", 0.92), ("了", 0.9)], start=5.0))
    assert results["text.forbidden.argue"].status == "fail"


def test_a_sentence_with_one_misheard_word_stands_its_mean_is_sure():
    # n08: 请您把验证码告诉我 with 码 heard as 马 (0.41) is still a request for the code
    asked, _ = audited(spoken([("好的", 0.95), ("请", 0.93), ("您", 0.97), ("把", 0.9), ("验证", 0.92), ("码", 0.41),
                               ("告诉", 0.94), ("我", 0.9)]))
    assert asked["text.identity_privacy"].status == "fail"


def test_a_finding_about_what_is_missing_is_not_softened_by_unsure_words():
    results, _ = audited(spoken([("喂", 0.2), ("嗯", 0.2)]))
    assert results["opening.golden_30s"].status == "fail"


def test_a_confusable_character_needs_the_higher_bar_other_words_the_usual_one():
    # 0.85 is sure for most words, not for 你, which base writes for 您 at up to 0.90
    heard, _ = audited(spoken([("你", 0.85), ("家", 0.9), ("宽带", 0.88)]))
    assert heard["text.polite_address"].status == "unsure"
    argued, _ = audited(spoken([("您", 0.95), ("搞错", 0.8), ("了", 0.85)]))
    assert argued["text.forbidden.argue"].status == "fail"
    doubted, _ = audited(spoken([("您", 0.95), ("搞错", 0.4), ("了", 0.6)]))
    assert doubted["text.forbidden.argue"].status == "unsure"


def test_a_rule_a_filler_whisper_leaves_out_could_satisfy_is_unsure_on_asr_text():
    # the curt agent's only listening was 嗯 (嗯，查到了), which Whisper does not write
    assert "text.active_listening" in CONFIG.rulebook.satisfiable_by(CONFIG.asr.omitted)
    assert "opening.golden_30s" not in CONFIG.rulebook.satisfiable_by(CONFIG.asr.omitted)
    asr, _ = audited(spoken([("查到了", 0.9), ("扣的是", 0.9), ("会员费", 0.9)]))
    assert asr["text.active_listening"].status == "unsure" and "嗯" in asr["text.active_listening"].message
    text, _ = audited(spoken([("查到了", None), ("扣的是", None), ("会员费", None)]))
    assert text["text.active_listening"].status == "fail"  # a true transcript would have written it


def test_a_missing_closing_where_the_agent_spoke_and_the_asr_wrote_nothing_is_unsure():
    """base returned no text for a 3.9 s closing (natural-eval4 k01): the voice activity shows the
    agent spoke there, so the missing 感谢来电 is not proven."""
    from audit.measure.coverage import untranscribed
    from audit.records import Channel, ChannelSpeech, Interval
    said = (spoken([("请问", 0.9), ("还有", 0.9), ("其他", 0.9), ("可以", 0.9), ("帮您", 0.9), ("的吗", 0.9)]),)
    transcript = Transcript("whisper", said)
    speech = (ChannelSpeech(Channel(0, "agent"), (Interval(1.0, 3.4), Interval(6.0, 9.9))),
              ChannelSpeech(Channel(1, "customer"), (Interval(4.0, 5.0),)))
    unwritten = untranscribed(speech, transcript, CONFIG.asr.untranscribed_min_s)
    assert unwritten == (Interval(6.0, 9.9),)  # the agent's words the ASR did not write; not the customer's
    call = dataclasses.replace(dialogue_context(["坐席: 您好。"], CONFIG.company_names), transcript=transcript)
    checked = CONFIG.rulebook.evaluate(call)
    assert {r.rule_id: r for r in checked}["text.closing"].status == "fail"

    def closing(unwritten):
        weighed = weigh_confidence(checked, transcript, CONFIG.asr, CONFIG.rulebook.forbidding,
                                   frozenset(), CONFIG.rulebook.requiring, unwritten)
        return {r.rule_id: r for r in weighed}["text.closing"]

    assert closing(unwritten).status == "unsure"
    assert "3.9秒语音未转写出文字" in closing(unwritten).message
    assert closing(()).status == "fail"  # no unwritten speech: the closing is missing
    # a window that names where the words were due: unwritten speech elsewhere does not count
    windowed = tuple(dataclasses.replace(r, expected_window=(0.0, 5.0)) if r.rule_id == "text.closing" else r
                     for r in checked)
    weighed = weigh_confidence(windowed, transcript, CONFIG.asr, CONFIG.rulebook.forbidding, frozenset(),
                               CONFIG.rulebook.requiring, unwritten)
    assert {r.rule_id: r for r in weighed}["text.closing"].status == "fail"
