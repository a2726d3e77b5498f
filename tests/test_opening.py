"""The golden-30-seconds opening check on the bundled calls (sidecar transcripts) and on ASR-style text."""

import pytest

from audit.judge.checks import CallContext
from audit.judge.checks.opening import golden_30s
from audit.configload import load_config
from audit.run.pipeline import AsrChoice, Job, audit_call
from audit.records import CallMeta, RecordingInfo, Transcript, Utterance, Word
from audit.textnorm import normalize
from conftest import FIXTURE_CALLS

CALLS = ["compliant", "late_answer", "missing_agent_id", "fast_agent", "raised_voice",
         "unannounced_hold", "customer_cut_off"]


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def audits(config, truth):
    found = {}
    for name in CALLS:
        path = FIXTURE_CALLS / truth["calls"][name]["file"]
        found[name] = audit_call(Job(path, name), config, AsrChoice("sidecar"))
    return found


def _opening(audit):
    (result,) = [r for r in audit.results if r.rule_id == "opening.golden_30s"]
    return result


@pytest.mark.parametrize("name", CALLS)
def test_opening_verdict_matches_ground_truth(audits, truth, name):
    expected = truth["calls"][name]["expected"]
    result = _opening(audits[name])
    assert result.status == ("pass" if expected["opening_complete"] else "fail")
    for element, said_at in expected["opening_elements_s"].items():
        found = result.details["elements"][element]
        if said_at is None:
            assert found is None
        else:  # word timings where the sidecar has them, else spread over the utterance
            assert abs(found["said_at_s"] - said_at) < 1.0, (element, found, said_at)


def test_compliant_call_passes_with_each_element_timed(audits, truth):
    result = _opening(audits["compliant"])
    assert result.status == "pass"
    assert result.details["answer_source"] == "metadata"
    assert result.details["answer_s"] == truth["calls"]["compliant"]["answer_s"]
    # compliant carries word timings: each element is placed to within a word
    for element, said_at in truth["calls"]["compliant"]["expected"]["opening_elements_s"].items():
        assert abs(result.details["elements"][element]["said_at_s"] - said_at) < 0.3
    assert {e.match for e in result.evidence} == {"您好", "星河通信", "工号零零八六", "为您服务"}  # the first offer


def test_missing_agent_id_fails_with_evidence(audits, truth):
    result = _opening(audits["missing_agent_id"])
    assert result.status == "fail"
    assert "缺少工号" in result.message
    assert "公司名称" not in result.message and "问候语" not in result.message
    assert result.missing == ("工号",)  # what the report names, and where it was due: the first 30 s
    answered = result.details["answer_latest_s"]
    assert result.expected_window == (answered, answered + 30.0)
    opening = truth["calls"]["missing_agent_id"]["utterances"][0]
    assert any(e.text == opening["text"] and abs(e.start - opening["start"]) < 0.01
               and e.speaker == "agent" for e in result.evidence)
    assert all(e.start < 30.0 for e in result.evidence)
    assert audits["missing_agent_id"].verdict == "review"


def _context(utterances, answer=0.0, channels=2):
    info = RecordingInfo(path=FIXTURE_CALLS / "x.wav", duration_s=120.0, sample_rate=8000,
                         channels=channels, sha256="0" * 64, format="WAV/PCM_16")
    return CallContext(recording=info, meta=CallMeta(), speech=(),
                       transcript=Transcript("whisper", tuple(utterances)), answer_s=answer,
                       answer_source="metadata", company_names=("星河通信", "星河通讯"))


def _params(config):
    return config.rules["opening.golden_30s"].params


@pytest.mark.parametrize(
    "text",
    [
        "您好，歡迎致電星河通信，工號零零八六為您服務，請問有什麼可以幫您？",  # traditional
        "您好 欢迎致电星河通讯 公号0086 为您服务 请问有什么可以帮到您",  # homophones, spaces
        "您好！欢迎致电星河通信，工号００８６，有什么可以帮您？",  # full-width digits
        "你好,这里是星河通信客服中心,我的工号是幺零二四,很高兴为您服务",
        "下午好，星河通信客服，工号1045，请问有什么可以帮您？",  # a greeting of the time of day
        "早上好 歡迎致電星河通信 工號四四七一 請問有什麼可以為您效勞",  # 为您效劳 offers help
        "您好,星河通信,0086号客服专员为您服务,请问您需要办理什么业务?",  # NNNN号客服专员
        # the offer made with 你 is still an offer (text.polite_address judges the 你)
        "你好 星河通訊客服中心 工號0451 請問有什麼可以幫你",
        "您好，星河通信，工号2233，请问有什么能为您做的？",
        # one digit misheard as a word (爱 for 二): the term is clear and three digits follow
        "您好,欢迎致电星河通信, 工号爱705,请问有什么需要帮助的",
        # asking what the caller wants, the verb misheard (请问您要咨询什么 heard 请问您要自己什么)
        "下午好,星河通信老年关爱专线工号3604,请问您要自己什么?",
        "晚上好 星河通信短信业务客服工号四706请问今天要自行什么?",  # 请问今天要咨询什么
        "中午好,星河通信集团业务专线工号4163,请讲有什么可以为名校老。",  # 为您效劳 misheard
        "早上好星河通信会员权益中心8930后客服为您服务请问有什么可以帮您。",  # 八九三零号客服, 号 misheard
        # natural-eval9: 四八六五号客服 heard 4865号克服; 工号九五零八 heard 9号9508; the offer cut short
        "下午好,星河通信充职服务中心,4865号克服。有什么是我能为您做的?",
        "晚上好星河通信信用服务专锦,9号9508,请问您今天需要什么帮助?",
        "你好,星河通信数据卡克福,工号9142有什么可以?",
        # natural-eval10: 中午好 heard 周五号 (as in natural-eval5 and 9), 可以 heard 可意, the offer put
        # as 您这通电话是要咨询什么 (heard 自行)
        "周五号 星河通信宽代业务受理台 工号七三一九 您这边办理什么业务。",
        "你好,星河通信无限网络服务组,工号5063有什么可意为您分忧的。",
        "晚上好星河通信用量提醒服务组, 工号二六八四,您这通电话是要自行什么。",
        # natural-eval11: 需要办理什么业务您说 heard 幺办理什么; natural-eval12: 工号 heard 公后, and
        # 随时为您效劳 heard 随时为您向老
        "上午好,星河通信融合业务受理组。工号爱七367幺办理什么?",
        "您好,星河通讯宽带心装胸后组。公后五七二九,您想办理什么?",
        "中午好,星河通信家庭网络首护专席,工号9371,随时为您向老您请说。",
    ],
)
def test_asr_spellings_still_count(config, text):
    outcome = golden_30s(_context([Utterance("agent", 1.0, 6.0, text)]), _params(config))
    assert outcome.status == "pass", outcome.message


def test_late_elements_and_customer_words_do_not_count(config):
    utterances = [
        Utterance("customer", 1.0, 3.0, "您好,是星河通信吗,工号0086在吗"),
        Utterance("agent", 4.0, 6.0, "您好,星河通信,请问有什么可以帮您"),
        Utterance("agent", 40.0, 42.0, "我的工号是0086"),
    ]
    outcome = golden_30s(_context(utterances, answer=2.0), _params(config))
    assert outcome.status == "fail"
    assert outcome.message == "工号超过30秒才说出"
    assert outcome.details["elements"]["agent_id"]["said_at_s"] == pytest.approx(40.0 + 2 / 9 * 2, abs=0.01)  # 3rd of 9 chars


def test_word_timings_place_the_element(config):
    words = (Word(1.0, 1.5, "您好"), Word(1.5, 3.0, "星河通信"), Word(10.0, 10.4, "工号"),
             Word(10.4, 11.8, "0086"), Word(12.0, 13.0, "有什么可以帮您"))
    utterance = Utterance("agent", 1.0, 13.0, "您好星河通信工号0086有什么可以帮您", words)
    outcome = golden_30s(_context([utterance]), _params(config))
    elements = outcome.details["elements"]
    assert elements["agent_id"]["said_at_s"] == 10.0
    assert [e.end for e in outcome.evidence if e.match == "工号0086"] == [11.8]


def test_mono_recording_counts_unseparated_speech(config):
    utterances = [Utterance("unknown", 1.0, 6.0, "您好星河通信工号0086请问有什么可以帮您")]
    assert golden_30s(_context(utterances, channels=1), _params(config)).status == "pass"
    assert golden_30s(_context(utterances, channels=2), _params(config)).status == "fail"


def test_normalisation_keeps_positions():
    norm = normalize("工號：零零八六，請稍等")
    assert norm.text == "工号0086请稍等"
    start, end = norm.span(2, 6)
    assert "工號：零零八六，請稍等"[start:end] == "零零八六"


@pytest.mark.parametrize("text, missing", [
    ("星河通信 工号二二一四 说吧什么事", "缺少问候语;缺少服务意愿(请问有什么可以帮您)"),
    ("您好 客服中心 工号二二六八 请问有什么可以帮您", "缺少公司名称"),
    ("您好，星河通信客服中心，工号9048。", "缺少服务意愿(请问有什么可以帮您)"),
    # 工号 with no number, or two characters before one: no staff number was heard
    ("您好，星河通信，我的工号呢一会儿再说，请问有什么可以帮您", "缺少工号"),
    ("您好，星河通信，工号有点长五六，请问有什么可以帮您", "缺少工号"),
    # the numbers a call reads out are no staff number
    ("您好，星河通信，您是尾号8620的机主吧，请问有什么可以帮您", "缺少工号"),
    ("您好，星河通信，您的账号12345已登记，请问有什么可以帮您", "缺少工号"),
    # 周五 later in an utterance is the day, no greeting
    ("星河通信，工号2233，周五好像有活动，请问有什么可以帮您", "缺少问候语"),
])
def test_openings_that_miss_an_element_still_fail(config, text, missing):
    outcome = golden_30s(_context([Utterance("agent", 1.0, 6.0, text)]), _params(config))
    assert (outcome.status, outcome.message) == ("fail", missing)
