"""The text rule engine (audit/judge/rules/) and the shipped rulebook (configs/rulebook.toml)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from audit.measure import sidecar
from audit.judge.checks import CallContext
from audit.config import ConfigError
from audit.records import CallEvent, CallMeta, RecordingInfo, Transcript, Utterance, Word
from audit.judge.rules import check_rulebook, dialogue_context, parse_dialogue, run_examples
from conftest import FIXTURE_CALLS, ROOT

SHIPPED = ROOT / "configs" / "rulebook.toml"
COMPANY = ("星河通信", "星河通讯")

# One rule per condition shape; each test evaluates the rule it is about.
ENGINE_RULES = r'''
version = 1
categories = ["demo"]

[dictionary]
words = ["应该的", "不可能"]

[phrases]
sorry = ["抱歉", "对不起"]

[conditions.upset]
or = [{ speaker = "customer", any = ["太过分"] }, { speaker = "customer", event = "agitation" }]

[rules."t.any"]
description = "任一"
category = "demo"
severity = "major"
weight = 1
fail_message = "说了"
forbid = { speaker = "agent", any = ["应该", "你", "可能", "搞错了", "你搞错了", "工号0086"] }
examples = { pass = ["坐席: 您好"], fail = ["坐席: 你好吗 你"] }

[rules."t.all"]
description = "全部"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没说全"
require = { speaker = "agent", all = ["您好", "再见"] }
examples = { pass = ["坐席: 您好 | 坐席: 再见"], fail = ["坐席: 您好"] }

[rules."t.at_least"]
description = "至少两个"
category = "demo"
severity = "minor"
weight = 1
fail_message = "礼貌用语太少"
require = { speaker = "agent", any = ["请", "谢谢", "抱歉"], at_least = 2 }
examples = { pass = ["坐席: 请您等一下。谢谢。"], fail = ["坐席: 请 请 请 | 坐席: 请稍等"] }

[rules."t.none"]
description = "一个都不能有"
category = "demo"
severity = "minor"
weight = 1
fail_message = "说了不该说的"
require = { speaker = "agent", none = "sorry" }
examples = { pass = ["坐席: 好的"], fail = ["坐席: 对不起"] }

[rules."t.regex"]
description = "正则加排除"
category = "demo"
severity = "critical"
weight = 30
fail_message = "索要验证码"
forbid = { speaker = "agent", regex = '验证码(?:报一下|是多少)', not_regex = '不要' }
examples = { pass = ["坐席: 不要把验证码报一下给别人"], fail = ["坐席: 驗證碼報一下"] }

[rules."t.count"]
description = "多次转接"
category = "demo"
severity = "major"
weight = 1
fail_message = "多次转接"
forbid = { speaker = "agent", regex = '转接', more_than = 1 }
examples = { pass = ["坐席: 转接转接"], fail = ["坐席: 转接 | 坐席: 转接"] }

[rules."t.logic"]
description = "和、或、非"
category = "demo"
severity = "minor"
weight = 1
fail_message = "组合不成立"
[rules."t.logic".require]
speaker = "agent"
and = [
  { label = "问候", or = [{ any = ["您好"] }, { any = ["你好"] }] },
  { label = "没有道歉", not = { any = "sorry" } },
]
[rules."t.logic".examples]
pass = ["坐席: 你好"]
fail = ["坐席: 您好,抱歉"]

[rules."t.first_s"]
description = "接听后10秒内"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有及时问候"
require = { speaker = "agent", window = { first_s = 10 }, any = ["您好"] }
examples = { pass = ["坐席: 您好"], fail = ["[20s] | 坐席: 您好"] }

[rules."t.last_s"]
description = "结束前10秒内"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有道别"
require = { speaker = "agent", window = { last_s = 10 }, any = ["再见"] }
examples = { pass = ["坐席: 再见"], fail = ["坐席: 再见 | [30s] | 客户: 嗯"] }

[rules."t.between_s"]
description = "第20到40秒"
category = "demo"
severity = "minor"
weight = 1
fail_message = "说了"
forbid = { speaker = "either", window = { between_s = [20, 40] }, any = ["稍等"] }
examples = { pass = ["坐席: 稍等"], fail = ["[25s] | 客户: 稍等"] }

[rules."t.first_utterances"]
description = "坐席头两句"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有问候"
require = { speaker = "agent", window = { first_utterances = 2 }, any = ["您好"] }
examples = { pass = ["客户: 喂 | 坐席: 喂 | 坐席: 您好"], fail = ["坐席: 喂 | 坐席: 喂 | 坐席: 您好"] }

[rules."t.last_utterances"]
description = "坐席最后两句"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有道别"
require = { speaker = "agent", window = { last_utterances = 2 }, any = ["再见"] }
examples = { pass = ["坐席: 再见 | 坐席: 好 | 客户: 好"], fail = ["坐席: 再见 | 坐席: 好 | 坐席: 好"] }

[rules."t.utterance_range"]
description = "坐席第二到倒数第二句"
category = "demo"
severity = "minor"
weight = 1
fail_message = "中间说了"
forbid = { speaker = "agent", window = { utterances = [1, -2] }, any = ["稍等"] }
examples = { pass = ["坐席: 稍等 | 坐席: 好 | 坐席: 稍等"], fail = ["坐席: 好 | 坐席: 稍等 | 坐席: 好"] }

[rules."t.anchor_turns"]
description = "客户激动后两句内安抚"
category = "demo"
severity = "major"
weight = 1
fail_message = "未安抚"
[rules."t.anchor_turns".require]
after = "upset"
within_utterances = 2
then = { speaker = "agent", any = "sorry" }
[rules."t.anchor_turns".examples]
pass = ["客户: 太过分 | 坐席: 好 | 坐席: 抱歉"]
fail = ["客户: 太过分 | 坐席: 好 | 坐席: 好 | 坐席: 抱歉"]

[rules."t.anchor_seconds"]
description = "保持后10秒内致谢"
category = "demo"
severity = "minor"
weight = 1
fail_message = "保持后未致谢"
[rules."t.anchor_seconds".require]
after = { event = "hold" }
within_s = 10
then = { speaker = "agent", any = ["久等了"] }
[rules."t.anchor_seconds".examples]
pass = ["[hold 30s] | 坐席: 久等了"]
fail = ["[hold 30s] | [20s] | 坐席: 久等了"]

[rules."t.anchor_absent"]
description = "客户激动后两句内不许争辩"
category = "demo"
severity = "major"
weight = 1
fail_message = "客户激动后争辩"
[rules."t.anchor_absent".require]
after = "upset"
within_utterances = 2
expect = "absent"
then = { speaker = "agent", any = ["您搞错了"] }
[rules."t.anchor_absent".examples]
pass = ["客户: 太过分 | 坐席: 好 | 坐席: 好 | 坐席: 您搞错了"]
fail = ["客户: 太过分 | 坐席: 您搞错了"]

[rules."t.homophone"]
description = "工号,容许同音"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有报工号"
tolerance = { pinyin = true }
require = { speaker = "agent", any = ["工号", "请"] }
examples = { pass = ["坐席: 公号0086"], fail = ["坐席: 情况是这样"] }

[rules."t.exact"]
description = "工号,不容许同音"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有报工号"
require = { speaker = "agent", any = ["工号"] }
examples = { pass = ["坐席: 工号0086"], fail = ["坐席: 公号0086"] }

[rules."t.similar"]
description = "感谢来电,容许近似"
category = "demo"
severity = "minor"
weight = 1
fail_message = "没有感谢来电"
tolerance = { similarity = 0.8 }
require = { speaker = "agent", any = ["感谢您的来电"] }
examples = { pass = ["坐席: 感谢您来电"], fail = ["坐席: 谢谢"] }
'''


def _write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return check_rulebook(_write(tmp_path_factory.mktemp("engine"), ENGINE_RULES))


@pytest.fixture(scope="module")
def shipped():
    return check_rulebook(SHIPPED)


def _call(*utterances: Utterance, events=(), answer=0.0, channels=2, source="sidecar",
          duration=60.0) -> CallContext:
    info = RecordingInfo(path=Path("x.wav"), duration_s=duration, sample_rate=8000,
                         channels=channels, sha256="", format="WAV")
    return CallContext(recording=info, meta=CallMeta(), speech=(),
                       transcript=Transcript(source, tuple(utterances)), answer_s=answer,
                       answer_source="metadata", company_names=COMPANY, events=tuple(events))


def _run(rulebook, rule_id, call):
    return rulebook.evaluate_one(rulebook.rule(rule_id), call)


def _status(rulebook, rule_id, dialogue):
    return _run(rulebook, rule_id, dialogue_context(dialogue, COMPANY)).status


# --- condition kinds ---------------------------------------------------------------------------


def test_engine_rulebook_examples_pass(engine):
    bad = [row for row in run_examples(engine, COMPANY) if not row.ok]
    assert not bad


def test_forbid_any_reports_each_phrase_with_time_and_original_span(engine):
    call = _call(Utterance("agent", 10.0, 14.0, "工號：零零八六,這個應該可以"),
                 Utterance("customer", 15.0, 16.0, "应该吧"))
    result = _run(engine, "t.any", call)
    assert result.status == "fail" and result.severity == "major"
    assert [(e.match, e.speaker) for e in result.evidence] == [("工號：零零八六", "agent"), ("應該", "agent")]
    assert result.evidence[0].start == pytest.approx(10.0)
    assert result.evidence[1].text == "工號：零零八六,這個應該可以"
    assert "“應該”" in result.message and result.details["category"] == "demo"


def test_all_lists_the_missing_phrases(engine):
    result = _run(engine, "t.all", _call(Utterance("agent", 1, 2, "您好")))
    assert result.status == "fail"
    assert result.message == "没说全:缺少再见" and result.details["missing"] == ["再见"]
    assert [e.match for e in result.evidence] == ["您好"]


@pytest.mark.parametrize("rule_id, passing, failing", [
    ("t.at_least", "坐席: 请您稍等,非常抱歉", "坐席: 请您请请,请稍等"),  # 请 is not a word inside 请稍等
    ("t.none", "坐席: 没问题", "坐席: 很抱歉"),
    ("t.logic", "坐席: 您好", "坐席: 对不起您好"),
])
def test_counting_and_combinations(engine, rule_id, passing, failing):
    assert _status(engine, rule_id, passing) == "pass"
    assert _status(engine, rule_id, failing) == "fail"


def test_logic_names_the_labelled_part_that_failed(engine):
    result = _run(engine, "t.logic", dialogue_context("坐席: 抱歉"))
    assert result.details["missing"] == ["问候", "没有道歉"]


def test_regex_exclusion_skips_the_utterance_and_patterns_are_normalised(engine):
    # the pattern says 报一下; normalised text has 报1下 (and traditional characters become simplified)
    assert _status(engine, "t.regex", "坐席: 请把驗證碼報一下") == "fail"
    assert _status(engine, "t.regex", "坐席: 您的验证码是多少") == "fail"
    assert _status(engine, "t.regex", "坐席: 请不要把验证码报一下给别人") == "pass"
    assert _status(engine, "t.regex", "客户: 验证码是多少") == "pass"  # the customer's words


def test_more_than_counts_utterances(engine):
    assert _status(engine, "t.count", "坐席: 我帮您转接,转接中请稍候") == "pass"
    result = _run(engine, "t.count", dialogue_context("坐席: 转接 | 客户: 好 | 坐席: 再转接一次"))
    assert result.status == "fail" and len(result.evidence) == 2


# --- windows -----------------------------------------------------------------------------------


def test_first_seconds_count_from_the_answer(engine):
    late_greeting = _call(Utterance("agent", 25.0, 26.0, "您好"), answer=20.0)
    assert _run(engine, "t.first_s", late_greeting).status == "pass"
    assert _run(engine, "t.first_s", _call(Utterance("agent", 25.0, 26.0, "您好"))).status == "fail"


def test_time_windows_use_when_the_words_were_said(engine):
    words = (Word(50.0, 50.5, "好的"), Word(55.0, 56.0, "再见"))
    long_turn = Utterance("agent", 40.0, 56.0, "好的再见", words)
    assert _run(engine, "t.last_s", _call(long_turn, duration=60.0)).status == "pass"
    assert _run(engine, "t.last_s", _call(long_turn, duration=80.0)).status == "fail"
    assert _status(engine, "t.between_s", "[25s] | 坐席: 您稍等") == "fail"  # either speaker


@pytest.mark.parametrize("rule_id, dialogue, status", [
    ("t.first_utterances", "坐席: 喂 | 客户: 喂 | 坐席: 您好", "pass"),  # customer turns do not count
    ("t.first_utterances", "坐席: 喂 | 坐席: 喂 | 坐席: 您好", "fail"),
    ("t.last_utterances", "坐席: 再见 | 客户: 好 | 坐席: 好", "pass"),
    ("t.utterance_range", "坐席: 稍等 | 坐席: 好 | 坐席: 好 | 坐席: 稍等", "pass"),
    ("t.utterance_range", "坐席: 好 | 坐席: 好 | 坐席: 稍等 | 坐席: 好", "fail"),
])
def test_utterance_windows_count_the_speakers_turns(engine, rule_id, dialogue, status):
    assert _status(engine, rule_id, dialogue) == status


# --- anchors -----------------------------------------------------------------------------------


def test_anchor_needs_the_reply_within_the_next_turns(engine):
    result = _run(engine, "t.anchor_turns",
                  dialogue_context("客户: 太过分了 | 坐席: 请稍等 | 客户: 快点 | 坐席: 好的 | 坐席: 抱歉"))
    assert result.status == "fail" and result.details["anchors"] == 1
    assert [e.text for e in result.evidence] == ["太过分了", "请稍等", "好的"]  # anchor, then the two turns
    assert "太过分" in [e.match for e in result.evidence]


def test_anchor_on_a_measured_agitation_event(engine):
    # no angry words: only the prosody stage's event says the customer is upset
    soothed = "客户: 宽带又断了 | [agitation customer] | 坐席: 对不起"
    ignored = "客户: 宽带又断了 | [agitation customer] | 坐席: 请稍等 | 坐席: 好了"
    assert _status(engine, "t.anchor_turns", soothed) == "pass"
    result = _run(engine, "t.anchor_turns", dialogue_context(ignored))
    assert result.status == "fail"
    assert result.evidence[0].text == "[客户情绪激动]" and result.evidence[0].speaker == "customer"
    # an agitation event the prosody stage did not attribute to the customer is not this anchor
    unattributed = _call(Utterance("agent", 5.0, 6.0, "请稍等"), events=[CallEvent("agitation", 1.0, 3.0)])
    assert _run(engine, "t.anchor_turns", unattributed).details["anchors"] == 0


def test_anchor_within_seconds_after_a_hold(engine):
    hold = CallEvent("hold", 10.0, 40.0)
    thanked = _call(Utterance("agent", 45.0, 47.0, "让您久等了"), events=[hold])
    too_late = _call(Utterance("agent", 55.0, 57.0, "让您久等了"), events=[hold])
    assert _run(engine, "t.anchor_seconds", thanked).status == "pass"
    result = _run(engine, "t.anchor_seconds", too_late)
    assert result.status == "fail" and result.message == "保持后未致谢(10.0秒)"


def test_anchor_that_must_not_be_followed(engine):
    assert _status(engine, "t.anchor_absent", "客户: 太过分 | 坐席: 您搞错了") == "fail"
    assert _status(engine, "t.anchor_absent", "坐席: 您搞错了 | 客户: 太过分") == "pass"


def test_anchor_rule_with_nothing_to_answer_passes_and_says_so(engine):
    result = _run(engine, "t.anchor_turns", dialogue_context("客户: 你好 | 坐席: 您好"))
    assert result.status == "pass" and result.details["anchors"] == 0
    assert result.message.endswith("(本通话未出现需要回应的情形)")


# --- when a rule cannot be judged -------------------------------------------------------------


def test_no_transcript_is_not_measurable(engine):
    assert _run(engine, "t.any", _call(source="none")).status == "not_measurable"


def test_mono_recording_cannot_judge_customer_words_but_counts_unseparated_speech_as_agent(engine):
    mono = _call(Utterance("unknown", 1.0, 2.0, "太过分你搞错了"), channels=1)
    assert _run(engine, "t.anchor_turns", mono).status == "not_measurable"
    assert _run(engine, "t.any", mono).status == "fail"
    assert _run(engine, "t.any", _call(Utterance("unknown", 1.0, 2.0, "你搞错了"))).status == "pass"


# --- matching that survives ASR ----------------------------------------------------------------


@pytest.mark.parametrize("text, fires", [
    ("不客气,这是我应该的", False),  # 应该的 is a dictionary word: 应该 does not fire inside it
    ("这个应该可以", True),
    ("您好,您的套餐", False),  # 你 is not 您
    ("迷你套餐十元", False),  # 你 inside the word 迷你
    ("你搞错了", True),  # 你 still fires inside another phrase of the rulebook
    ("这不可能", False),  # 可能 inside the dictionary word 不可能
    ("工号零零八六", True),  # Chinese numerals == digits
    ("工号００８６", True),  # full width
])
def test_whole_word_matching_on_normalised_text(engine, text, fires):
    assert _status(engine, "t.any", f"坐席: {text}") == ("fail" if fires else "pass")


def test_pinyin_tolerance_accepts_homophones_only_when_the_rule_asks(engine):
    assert _status(engine, "t.homophone", "坐席: 我的公号是零零八六") == "pass"
    assert _status(engine, "t.exact", "坐席: 我的公号是零零八六") == "fail"
    # a single character is never tolerated: 情 (qing2) and 请 (qing3) differ anyway, 顷 would not
    assert _status(engine, "t.homophone", "坐席: 顷刻之间") == "fail"


def test_similarity_tolerance_accepts_a_near_match(engine):
    result = _run(engine, "t.similar", dialogue_context("坐席: 感谢您来电,再见"))
    assert result.status == "pass" and result.evidence[0].match == "感谢您来电"
    assert _status(engine, "t.similar", "坐席: 感谢大家") == "fail"


def test_company_names_are_protected_words(tmp_path):
    rulebook = check_rulebook(_write(tmp_path, VALID_RULE))
    rule, said = rulebook.rule("text.demo"), "坐席: 欢迎致电和你通信"
    assert rulebook.evaluate_one(rule, dialogue_context(said)).status == "fail"
    # the configured company name is a word: 你 inside it is not the agent saying 你
    assert rulebook.evaluate_one(rule, dialogue_context(said, ("和你通信",))).status == "pass"


# --- validation --------------------------------------------------------------------------------

VALID_RULE = '''
[rules."text.demo"]
description = "示例"
category = "text"
severity = "major"
weight = 5
fail_message = "不符合"
forbid = { speaker = "agent", any = ["你"] }
examples = { pass = ["坐席: 您好"], fail = ["坐席: 你搞错了"] }
'''


@pytest.mark.parametrize("change, key, reason", [
    (("severity = \"major\"", "severity = \"fatal\""), "rules.text.demo.severity", "is not one of"),
    (("weight = 5", "weight = 500"), "rules.text.demo.weight", "outside the allowed range"),
    (("weight = 5", "weight = 5\ncolour = 1"), "rules.text.demo.colour", "unknown key"),
    (("category = \"text\"", "category = \"txet\""), "rules.text.demo.category", "not a category"),
    (('speaker = "agent"', 'speaker = "boss"'), "rules.text.demo.forbid.speaker", "not one of"),
    (('speaker = "agent", ', ''), "rules.text.demo.forbid.speaker", "missing"),
    (('any = ["你"]', 'regex = "(你"'), "rules.text.demo.forbid.regex", "not a valid regular expression"),
    (('any = ["你"]', 'regex = "你?"'), "rules.text.demo.forbid.regex", "matches empty text"),
    (('any = ["你"]', 'any = ["！！"]'), "rules.text.demo.forbid.any[0]", "nothing left to match"),
    (('any = ["你"]', 'any = "rude"'), "rules.text.demo.forbid.any", "no phrase list named 'rude'"),
    (('any = ["你"]', 'any = ["你"], within = 3'), "rules.text.demo.forbid.within", "unknown key"),
    (('any = ["你"]', 'any = ["你"], all = ["你"]'), "rules.text.demo.forbid", "exactly one of"),
    (('any = ["你"]', 'any = ["你"], at_least = 2'), "rules.text.demo.forbid.at_least", "more than the 1"),
    (('any = ["你"]', 'any = ["你"], window = { first_s = 0 }'), "rules.text.demo.forbid.window.first_s",
     "more than 0"),
    (('any = ["你"]', 'any = ["你"], window = { first_s = 5, last_s = 5 }'), "rules.text.demo.forbid.window",
     "exactly one of"),
    (('speaker = "agent", any = ["你"]', 'event = "laugh"'), "rules.text.demo.forbid.event",
     "not an event kind"),
    (("forbid = ", "require = "), "rules.text.demo.require", None),  # valid: switches the polarity
    (('examples = { pass = ["坐席: 您好"], fail = ["坐席: 你搞错了"] }', 'examples = { pass = ["坐席: 您好"] }'),
     "rules.text.demo.examples.fail", "at least one example"),
    (('pass = ["坐席: 您好"]', 'pass = ["老板: 您好"]'), "rules.text.demo.examples.pass[0]", "neither"),
    (('pass = ["坐席: 您好"]', 'pass = ["[laugh]"]'), "rules.text.demo.examples.pass[0]", "not an event kind"),
])
def test_validation_names_file_rule_and_key(tmp_path, change, key, reason):
    path = _write(tmp_path, VALID_RULE.replace(*change))
    if reason is None:
        assert check_rulebook(path).rule("text.demo").mode == "require"
        return
    with pytest.raises(ConfigError) as caught:
        check_rulebook(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


@pytest.mark.parametrize("rulebook, key, reason", [
    ('colour = 1\n' + VALID_RULE, "colour", "unknown key"),
    ('version = 2\n' + VALID_RULE, "version", "rulebook version"),
    ('[conditions.a]\nnot = "b"\n[conditions.b]\nnot = "a"\n' + VALID_RULE, "conditions.b.not", "refers to itself"),
    (VALID_RULE.replace('forbid = { speaker = "agent", any = ["你"] }', 'forbid = "nope"'),
     "rules.text.demo.forbid", "no condition named 'nope'"),
    (VALID_RULE.replace('forbid = { speaker = "agent", any = ["你"] }',
                        'forbid = { not = { after = { event = "hold" }, then = { speaker = "agent", any = ["谢谢"] }, '
                        'within_s = 5 } }'),
     "rules.text.demo.forbid.not", "cannot sit under not"),
    (VALID_RULE.replace('forbid = { speaker = "agent", any = ["你"] }',
                        'require = { after = { event = "hold" }, then = { any = ["谢谢"] }, within_s = 5 }'),
     "rules.text.demo.require.then.speaker", "missing"),
    (VALID_RULE.replace('forbid = { speaker = "agent", any = ["你"] }',
                        'require = { after = { event = "hold" }, then = { speaker = "agent", any = ["谢谢"] } }'),
     "rules.text.demo.require", "within_s or within_utterances"),
    (VALID_RULE.replace('[rules."text.demo"]', '[rules."Text Demo"]'), "rules.Text Demo", "rule id"),
    (VALID_RULE + 'forbid = 1\n', "", "not valid TOML"),
])
def test_validation_of_the_rulebook_as_a_whole(tmp_path, rulebook, key, reason):
    path = _write(tmp_path, rulebook)
    with pytest.raises(ConfigError) as caught:
        check_rulebook(path)
    assert (caught.value.file, caught.value.key) == (str(path), key)
    assert reason in caught.value.reason


def test_missing_rulebook_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        check_rulebook(tmp_path / "absent.toml")


def test_dialogue_parser_times_turns_and_events():
    dialogue = parse_dialogue(["坐席：您好", "[hold 20s]", "客户: 好的 | [agitation customer]"])
    first, second = dialogue.utterances
    assert (first.speaker, first.text, first.start) == ("agent", "您好", 0.5)
    assert second.start == pytest.approx(first.end + 0.4 + 20.0)
    assert [(e.kind, e.end - e.start, e.speaker) for e in dialogue.events] == [
        ("hold", 20.0, None), ("agitation", 0.0, "customer")]
    with pytest.raises(ValueError, match="no turns"):
        parse_dialogue("[30s]")


def test_run_examples_reports_a_wrong_example(tmp_path):
    path = _write(tmp_path, VALID_RULE.replace('pass = ["坐席: 您好"]', 'pass = ["坐席: 你搞错了"]'))
    rows = run_examples(check_rulebook(path))
    assert [(r.rule_id, r.expected, r.got, r.ok) for r in rows] == [
        ("text.demo", "pass", "fail", False), ("text.demo", "fail", "fail", True)]


# --- the shipped rulebook ----------------------------------------------------------------------

SHIPPED_IDS = {
    "text.identity_verification", "text.identity_privacy", "text.polite_address", "text.politeness",
    "text.active_listening", "text.empathy", "text.forbidden.shirk", "text.forbidden.vague",
    "text.forbidden.argue", "text.forbidden.jargon", "text.forbidden.overpromise",
    "text.forbidden.negative", "text.commitment_time", "text.transfers", "text.closing",
}


def test_shipped_rulebook_covers_the_text_norms(shipped):
    assert {r.id for r in shipped.rules} == SHIPPED_IDS
    assert shipped.rule("text.identity_privacy").severity == "critical"
    forbidden = [r for r in shipped.rules if r.id.startswith("text.forbidden.")]
    assert all(r.tolerance.pinyin is False and r.tolerance.similarity is None for r in forbidden)


def test_shipped_rulebook_examples_pass(shipped):
    rows = run_examples(shipped, COMPANY)
    assert len(rows) >= 2 * len(SHIPPED_IDS)
    assert [row for row in rows if not row.ok] == []


FORBIDDEN_FAMILIES = {"推卸责任": "text.forbidden.shirk", "模糊词汇": "text.forbidden.vague",
                      "争辩": "text.forbidden.argue", "内部黑话": "text.forbidden.jargon",
                      "承诺无法兑现": "text.forbidden.overpromise", "负面生硬": "text.forbidden.negative"}
CALLS = ["compliant", "late_answer", "missing_agent_id", "fast_agent", "raised_voice",
         "unannounced_hold", "customer_cut_off"]


def _fixture_call(truth: dict, name: str) -> CallContext:
    """A fixture call from its sidecar files; its holds and dead air as the timing stage reports them."""
    call = truth["calls"][name]
    path = FIXTURE_CALLS / call["file"]
    info = RecordingInfo(path, call["duration_s"], call["samplerate"], call["channels"], "", call["format"])
    events = [CallEvent("hold" if s["announced"] else "dead_air", s["start"], s["end"]) for s in call["silences"]]
    return CallContext(info, sidecar.read_meta(path), (), sidecar.read_transcript(path), call["answer_s"],
                       "metadata", COMPANY, tuple(events))


def _expected_from_truth(expected: dict) -> dict[str, str]:
    def fails(condition: bool) -> str:
        return "fail" if condition else "pass"

    families = {FORBIDDEN_FAMILIES[f["category"]] for f in expected["forbidden_phrases"]}
    statuses = {rule: fails(rule in families) for rule in FORBIDDEN_FAMILIES.values()}
    polite = expected["polite_words"]
    statuses.update({
        "text.identity_verification": fails(not expected["identity_verification_asked"]),
        "text.identity_privacy": fails(not expected["identity_privacy_ok"]),
        "text.polite_address": fails(bool(expected["agent_says_ni"])),
        "text.politeness": fails(not (polite["qing"] and polite["thanks"])),
        "text.active_listening": fails(not expected["active_listening"]),
        "text.empathy": fails(expected["empathy_shown"] is False),
        "text.commitment_time": fails(expected["vague_commitment"]),
        "text.transfers": "pass",  # no fixture call is transferred
        "text.closing": fails(not expected["closing_complete"]),
    })
    return statuses


@pytest.mark.parametrize("name", CALLS)
def test_fixture_calls_match_ground_truth(shipped, truth, name):
    results = {r.rule_id: r.status for r in shipped.evaluate(_fixture_call(truth, name))}
    assert results == _expected_from_truth(truth["calls"][name]["expected"])


def test_raised_voice_evidence_points_at_the_utterances(shipped, truth):
    call = truth["calls"]["raised_voice"]
    utterances = call["utterances"]
    results = {r.rule_id: r for r in shipped.evaluate(_fixture_call(truth, "raised_voice"))}
    for found in call["expected"]["forbidden_phrases"]:
        result = results[FORBIDDEN_FAMILIES[found["category"]]]
        assert any(e.match == found["phrase"] and e.text == utterances[found["utterance"]]["text"]
                   and found["start"] <= e.start < utterances[found["utterance"]]["end"]
                   for e in result.evidence), (found, result.evidence)
    ni = {utterances[i]["text"] for i in call["expected"]["agent_says_ni"]}
    assert {e.text for e in results["text.polite_address"].evidence} == ni
    angry = [utterances[i]["text"] for i in call["expected"]["customer_angry_utterances"]]
    said_by_customer = [e.text for e in results["text.empathy"].evidence if e.speaker == "customer"]
    assert list(dict.fromkeys(said_by_customer)) == angry
    assert results["text.empathy"].details["anchors"] == 2
    commitment = call["expected"]["commitments"][0]["text"]
    assert {e.text for e in results["text.commitment_time"].evidence} == {commitment}


def test_privacy_breach_is_critical(shipped):
    result = shipped.evaluate_one(shipped.rule("text.identity_privacy"),
                                  dialogue_context("坐席: 麻烦您把身份证号完整地念给我听一下"))
    assert (result.status, result.severity) == ("fail", "critical")
    assert result.evidence[0].match.startswith("身份证")


# --- the labelled dialogues --------------------------------------------------------------------

# Disagreements the rulebook is known to have with the labels, and why. A regression adds one; a fix
# removes one; both fail this test until the list is updated.
KNOWN_DISAGREEMENTS = {
    # forbidden phrases match exactly: 搞措 for 搞错 is no proof the agent argued
    ("argue_homophone_in_forbidden_phrase", "text.forbidden.argue"),
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("rules_bench", ROOT / "bench" / "rules_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def judgements(bench, shipped):
    dialogues = bench.load_dialogues(bench.DEFAULT_DIALOGUES, shipped)
    assert len(dialogues) >= 40
    assert sum(bool(d.noise) for d in dialogues) >= 10
    return bench.judge(shipped, dialogues, COMPANY)


def test_labelled_dialogues_give_the_labelled_results(judgements):
    wrong = {(j.dialogue.id, j.rule_id) for j in judgements if j.expected_fail != j.got_fail}
    assert wrong == KNOWN_DISAGREEMENTS


def test_labelled_dialogues_reach_the_target_per_category(bench, judgements):
    for category, tally in bench.tally(judgements, lambda j: j.category).items():
        assert tally.precision >= bench.TARGET, category
        assert tally.recall >= bench.TARGET, category


# --- the independent dev dialogues (fixtures/text-dev, tuning part) -----------------------------

# Where the rules and the tuning part's labels disagree, and why: none since round 2 of issue 15
# (好的 is a backchannel, as the labels count it; an echo is five characters, not 记得很清楚's four).
# The held-aside part and the text-eval sets are only measured (bench/rules_bench.py), never pinned.
KNOWN_DEV_DISAGREEMENTS: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def dev_judgements(bench, shipped):
    from audit.configload import load_config

    config = load_config()
    tuning, held = bench.split_dev(bench.load_sidecar_set(bench.DEV_DIR, config.company_names))
    assert (len(tuning), len(held)) == (34, 17)
    return bench.judge(shipped, tuning, config.company_names, config)


def test_dev_split_is_fixed_every_third_dialogue_held_aside(bench, dev_judgements):
    tuned = {j.dialogue.id for j in dev_judgements}
    assert {"t001", "t003", "t007", "t097", "t099"} <= tuned
    assert not {"t005", "t011", "t101"} & tuned


def test_dev_tuning_dialogues_give_the_labelled_results_per_rule(dev_judgements):
    judged = {j.rule_id for j in dev_judgements}
    assert "opening.golden_30s" in judged and len(judged) == 16
    wrong = {(j.dialogue.id, j.rule_id) for j in dev_judgements if j.expected_fail != j.got_fail}
    assert wrong == KNOWN_DEV_DISAGREEMENTS


def test_dev_paraphrases_are_caught_by_meaning(dev_judgements):
    """The issue's examples: each is judged as labelled, by an intent, not by a listed phrase."""
    found = {(j.dialogue.id, j.rule_id): j for j in dev_judgements}
    for key, said in [(("t039", "text.forbidden.negative"), "没办法"),  # 那也没办法
                      (("t081", "text.forbidden.negative"), "没办法"),  # 这个我们没办法
                      (("t093", "text.forbidden.argue"), "不对"),  # 您这话就不对了
                      (("t087", "text.forbidden.argue"), "看错"),  # 那是您看错了
                      (("t079", "text.identity_privacy"), "密码"),  # 卡号后四位和银行卡密码
                      (("t097", "text.transfers"), "转接")]:  # 已经被转了三个部门了 + 转接
        assert found[key].got_fail and said in found[key].message, (key, found[key].message)
    assert not found[("t025", "text.forbidden.vague")].got_fail  # 可能我们之前沟通有些误会
    assert found[("t063", "text.identity_verification")].got_fail  # the agent reads out 尾号
    assert not found[("t009", "opening.golden_30s")].got_fail  # 下午好
    assert not found[("t073", "opening.golden_30s")].got_fail  # 早上好 ... 为您效劳


SEQUENCE_RULE = '''
[rules."text.sequence"]
description = "客户问术语后坐席须解释"
category = "text"
severity = "minor"
weight = 5
fail_message = "未解释"
forbid = { after = { speaker = "customer", any = ["什么意思"] }, then = { speaker = "agent", not = { any = ["就是"] } }, within_utterances = 1 }
examples = { pass = ["客户: 什么意思 | 坐席: 就是下个月生效"], fail = ["客户: 什么意思 | 坐席: 您留意短信"] }
'''


@pytest.mark.parametrize("dialogue, status", [
    ("坐席: 走OTA写卡 | 客户: 什么意思 | 坐席: 您等着就行", "fail"),  # asked, not explained
    ("坐席: 走OTA写卡 | 客户: 什么意思 | 坐席: 就是远程把号码写进手表", "pass"),
    ("坐席: 走OTA写卡 | 客户: 好的 | 坐席: 您等着就行", "pass"),  # nobody asked
    ("客户: 什么意思 | 坐席: 就是远程写卡 | 客户: 什么意思 | 坐席: 您等着就行", "fail"),  # one moment is enough
])
def test_an_anchor_under_forbid_forbids_the_sequence(tmp_path, dialogue, status):
    rulebook = check_rulebook(_write(tmp_path, SEQUENCE_RULE))
    result = _run(rulebook, "text.sequence", dialogue_context(dialogue))
    assert result.status == status
    if status == "fail":  # the moment that broke the rule is the evidence, and no "nothing to answer" note
        assert result.evidence[0].text == "什么意思"
    else:
        assert "未出现" not in result.message

