"""The one phrase matcher (audit.phrases): normalised on both sides, every occurrence, one hit per
stretch of speech, counted in occurrences or utterances; and the rulebook's counts that rest on it."""

from __future__ import annotations

import re

import pytest

from audit.phrases import Phrase, find_pattern, find_phrases, how_many, occurrences, says
from audit.records import Utterance, Word
from audit.judge.rules import check_rulebook, dialogue_context


def utterances(*texts, speaker="agent"):
    return tuple(Utterance(speaker, 2.0 * i, 2.0 * i + 1.6, text) for i, text in enumerate(texts))


def test_every_occurrence_is_found_on_normalised_text():
    said = utterances("請您稍等，您放心。", "工號：零零八六")
    hits = find_phrases(said, ["您", "工号0086"], ("agent",))
    assert [(h.utterance, h.span, h.match) for h in hits] == [(0, (1, 2), "您"), (0, (5, 6), "您"),
                                                               (1, (0, 7), "工號：零零八六")]
    assert occurrences("您好您好", "您好") == [(0, 2), (2, 4)]
    assert says("请您稍等", [Phrase.of("請您稍等")]) and not says("请稍等", [Phrase.of("请您稍等")])


def test_overlapping_occurrences_are_one_hit_the_longest_kept():
    (hit,) = find_phrases(utterances("好好好"), ["好好"], ("agent",))
    assert hit.span == (0, 2)
    (hit,) = find_phrases(utterances("感谢您的耐心等待"), ["您的耐心", "感谢您的耐心等待"], ("agent",))
    assert hit.key == "感谢您的耐心等待"


def test_hits_are_timed_to_the_words_and_only_the_speakers_asked_for():
    words = tuple(Word(1.0 + 0.25 * i, 1.25 + 0.25 * i, c) for i, c in enumerate("请您稍等"))
    said = (Utterance("agent", 1.0, 2.0, "请您稍等", words), Utterance("customer", 3.0, 4.0, "您好"))
    (hit,) = find_phrases(said, ["您"], ("agent",))
    assert (hit.start, hit.end) == (1.25, 1.5)
    (number,) = find_pattern(said, re.compile(r"稍等"), ("agent",))
    assert (number.start, number.end, number.match) == (1.5, 2.0, "稍等")


def test_counted_in_occurrences_or_in_utterances():
    hits = find_phrases(utterances("您好,您贵姓", "您稍等", "好的"), ["您"], ("agent",))
    assert how_many(hits, "occurrences") == 3 and how_many(hits, "utterances") == 2


COUNTS = r'''
version = 1

[rules."t.utterances"]
description = "三句话里说到“您”"
category = "text"
severity = "minor"
weight = 1
fail_message = "少"
require = { speaker = "agent", any = ["您"], more_than = 2 }
examples = { pass = ["坐席: 请问您贵姓 | 坐席: 您稍等 | 坐席: 给您回电"], fail = ["坐席: 请问您贵姓,您稍等,给您回电"] }

[rules."t.occurrences"]
description = "说到三次“您”"
category = "text"
severity = "minor"
weight = 1
fail_message = "少"
require = { speaker = "agent", any = ["您"], occurrences_more_than = 2 }
examples = { pass = ["坐席: 请问您贵姓,您稍等,给您回电"], fail = ["坐席: 请问您贵姓 | 坐席: 您稍等"] }

[rules."t.long_holds"]
description = "两次超过60秒的保持"
category = "text"
severity = "minor"
weight = 1
fail_message = "多"
forbid = { event = "hold", min_s = 60, more_than = 1 }
examples = { pass = ["坐席: 请稍等 | [hold 61s] | [hold 59s]"], fail = ["坐席: 请稍等 | [hold 61s] | [hold 60s]"] }
'''


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    path = tmp_path_factory.mktemp("counts") / "rules.toml"
    path.write_text(COUNTS, encoding="utf-8")
    return check_rulebook(path)


@pytest.mark.parametrize("dialogue, utterances_rule, occurrences_rule", [
    ("坐席: 请问您贵姓,您稍等,给您回电", "fail", "pass"),  # three times in one utterance
    ("坐席: 请问您贵姓 | 坐席: 您稍等 | 坐席: 给您回电", "pass", "pass"),
    ("坐席: 请问您贵姓 | 坐席: 您稍等,您放心", "fail", "pass"),
    ("坐席: 请问您贵姓 | 坐席: 您稍等", "fail", "fail"),
])
def test_more_than_counts_utterances_and_occurrences_more_than_counts_hits(counts, dialogue, utterances_rule,
                                                                          occurrences_rule):
    call = dialogue_context(dialogue)
    assert counts.evaluate_one(counts.rule("t.utterances"), call).status == utterances_rule
    assert counts.evaluate_one(counts.rule("t.occurrences"), call).status == occurrences_rule


@pytest.mark.parametrize("dialogue, status", [
    ("坐席: 请稍等 | [hold 61s] | 坐席: 感谢您的等待 | [hold 60s]", "fail"),  # at least min_s counts
    ("坐席: 请稍等 | [hold 61s] | 坐席: 感谢您的等待 | [hold 59.5s]", "pass"),
    ("坐席: 请稍等 | [hold 120s]", "pass"),  # once is not twice
    ("坐席: 请稍等 | [dead_air 90s] | [dead_air 90s]", "pass"),  # another kind of event
])
def test_events_with_a_duration(counts, dialogue, status):
    assert counts.evaluate_one(counts.rule("t.long_holds"), dialogue_context(dialogue)).status == status


@pytest.mark.parametrize("condition, problem", [
    ('{ speaker = "agent", any = ["您"], min_s = 3 }', "unknown key for a 'any' condition"),
    ('{ event = "hold", min_s = 0 }', "must be more than 0"),
    ('{ speaker = "agent", all = ["您"], occurrences_more_than = 1 }', "unknown key for a 'all' condition"),
    ('{ speaker = "agent", any = ["您"], occurrences_more_than = -1 }', "must be at least 0"),
])
def test_count_and_duration_keys_are_validated(tmp_path, condition, problem):
    path = tmp_path / "rules.toml"
    path.write_text(COUNTS.replace('{ event = "hold", min_s = 60, more_than = 1 }', condition), encoding="utf-8")
    from audit.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(problem)):
        check_rulebook(path)
