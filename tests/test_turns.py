"""Whisper's pieces of one sentence joined back (audit.measure.turns), as base cut them on natural-eval3 g04."""

from __future__ import annotations

from audit.records import Transcript, Utterance, Word
from audit.judge.rules import dialogue_context
from audit.configload import load_config
from audit.measure.turns import join_continuations


def _heard(*pieces: tuple[str, float, float, str]) -> Transcript:
    return Transcript("whisper", tuple(
        Utterance(speaker, start, end, text, (Word(start, end, text, 0.9),)) for speaker, start, end, text in pieces))


def test_a_sentence_cut_by_whisper_is_one_utterance_again():
    heard = _heard(("agent", 83.5, 85.9, "我会在今天下午两点,"), ("agent", 86.0, 89.0, "之前给您回电话告诉您恢复的进度。"),
                   ("customer", 91.1, 94.0, "好,那孩子的考试怎么办。"))
    joined = join_continuations(heard, 1.0)
    assert [u.text for u in joined.utterances] == ["我会在今天下午两点,之前给您回电话告诉您恢复的进度。",
                                                   "好,那孩子的考试怎么办。"]
    first = joined.utterances[0]
    assert (first.start, first.end, len(first.words)) == (83.5, 89.0, 2)


def test_what_is_not_one_sentence_stays_apart():
    ended = _heard(("agent", 0.0, 2.0, "您好。"), ("agent", 2.2, 4.0, "请问有什么可以帮您"))
    assert join_continuations(ended, 1.0) is ended  # the first ends a sentence
    paused = _heard(("agent", 0.0, 2.0, "我帮您查一下"), ("agent", 4.5, 6.0, "查到了"))
    assert join_continuations(paused, 1.0) is paused  # a long pause between
    other = _heard(("agent", 0.0, 2.0, "您是说"), ("customer", 2.1, 3.0, "对"), ("agent", 3.2, 4.0, "好的"))
    assert join_continuations(other, 1.0) is other  # someone spoke in between
    assert join_continuations(_heard(("agent", 0.0, 2.0, "我会在今天下午两点,"), ("agent", 2.1, 3.0, "之前回电")), 0.0) \
        .utterances[0].text == "我会在今天下午两点,"  # 0 = off


def test_the_promise_joined_carries_its_time():
    config = load_config()
    pieces = [("agent", 83.5, 85.9, "我会在今天下午两点,"), ("agent", 86.0, 89.0, "之前给您回电话告诉您恢复的进度。")]
    rule = config.rulebook.rule("text.commitment_time")

    def judged(transcript: Transcript) -> str:
        call = dialogue_context("坐席: x")
        from dataclasses import replace
        return config.rulebook.evaluate_one(rule, replace(call, transcript=transcript)).status

    assert judged(_heard(*pieces[1:])) == "fail"  # the second piece alone promises with no time
    assert judged(join_continuations(_heard(*pieces), config.text.join_gap_s)) == "pass"
