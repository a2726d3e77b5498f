"""Key terms read by sound: what Whisper base really printed for 星河通信 and 工号 on the natural-voice
calls (fixtures/natural), and look-alikes that must stay as they are."""

from __future__ import annotations

import dataclasses

import pytest

from audit.judge.checks import CHECKS
from audit.configload import load_config
from audit.records import Transcript, Utterance
from audit.judge.rules import dialogue_context
from audit.measure.terms import correct_terms, sounds_like

TERMS = ("星河通信", "星河通讯", "工号")


def corrected(*texts: str, speaker: str = "agent") -> Transcript:
    utterances = tuple(Utterance(speaker, float(i), i + 0.9, text) for i, text in enumerate(texts))
    return correct_terms(Transcript("whisper", utterances), TERMS)


@pytest.mark.parametrize("heard, meant", [
    ("你好,欢迎这电心和通信,我是宫号0086的客服。", "你好,欢迎这电星河通信,我是工号0086的客服。"),
    ("星和 通信为您服务", "星河通信为您服务"),   # a space Whisper left inside the name
    ("欢迎致电行和通讯", "欢迎致电星河通讯"),       # 行 reads xing as well as hang; the alias is kept
    ("我是公号幺二三四", "我是工号幺二三四"),
])
def test_a_term_heard_by_sound_is_written_as_the_term(heard, meant):
    transcript = corrected(heard)
    assert transcript.utterances[0].text == meant
    assert transcript.corrections and all(c.term in TERMS for c in transcript.corrections)


@pytest.mark.parametrize("heard, meant", [
    # natural-eval9: 工号二七幺四 heard with its first digit as another word (爱) and a pause mark after it
    ("数据业务组。公好爱,七一四,有什么可以帮到您的吗?", "数据业务组。工号爱七一四,有什么可以帮到您的吗?"),
    ("工号是爱七零五", "工号是爱七零五"),  # already the term: the number is left as heard
])
def test_a_staff_number_whose_first_digit_was_misheard_still_follows_the_term(heard, meant):
    transcript = correct_terms(Transcript("whisper", (Utterance("agent", 0.0, 5.0, heard),)), TERMS, ("工号",))
    assert transcript.utterances[0].text == meant


def test_two_words_that_sound_like_the_term_before_fewer_than_three_digits_stay():
    text = "共耗了一百二十块"  # 共耗 sounds like 工号, but no staff number follows
    transcript = correct_terms(Transcript("whisper", (Utterance("agent", 0.0, 5.0, text),)), TERMS, ("工号",))
    assert transcript.utterances[0].text == text


@pytest.mark.parametrize("text", [
    "心里很难受",              # sounds nothing like 星河
    "我们的公众号上可以查",      # 公众 is not 工号: the next character differs in sound
    "新款手机通话质量好",        # 新款 shares no character with 星河
    "星河通信的工号0086",       # already right: nothing to correct
])
def test_words_that_only_look_alike_stay(text):
    transcript = corrected(text)
    assert transcript.utterances[0].text == text and not transcript.corrections


def test_a_string_of_homophones_with_no_character_of_the_term_is_not_the_term():
    assert sounds_like("心和通信", "星河通信") is True
    assert sounds_like("心和同心", "星河通信") is False  # the same sounds, not one character


def test_the_opening_passes_on_what_the_agent_said_once_the_terms_are_read_by_sound():
    """Whisper's own words for a compliant opening (n01_model_call): without the reading, the
    opening fails for a missing company and 工号."""
    config = load_config()
    rule = config.rules["opening.golden_30s"]
    heard = "你好,欢迎这电心和通信,我是宫号0086的客服。请问有什么可以帮你。"
    raw = dialogue_context([f"坐席: {heard}"], config.company_names)
    assert CHECKS["opening.golden_30s"].run(raw, rule.params).status == "fail"
    fixed = dataclasses.replace(raw, transcript=correct_terms(raw.transcript, config.key_terms))
    assert CHECKS["opening.golden_30s"].run(fixed, rule.params).status == "pass"


def test_a_longer_term_is_recognised_by_its_syllables_alone():
    """Whisper base on n08_privacy: 身份证 as 深分正, 验证码 as 验证马 (the critical privacy rule
    missed both)."""
    transcript = correct_terms(Transcript("whisper", (
        Utterance("agent", 17.5, 21.0, "好的,请您抱一下您完整的深分正号码。"),
        Utterance("agent", 27.0, 33.0, "请您把验证马告诉我。"))), ("身份证", "验证码"))
    assert [u.text for u in transcript.utterances] == ["好的,请您抱一下您完整的身份证号码。", "请您把验证码告诉我。"]
    assert not sounds_like("深分", "身份")  # two syllables alone are too little


def test_a_long_set_phrase_may_have_one_syllable_heard_only_nearly():
    """Whisper base on natural-eval: 亲和通信 for 星河通信 (the opening then lacked the company),
    感谢您的内心等待 for 耐心等待 (the hold looked unthanked), 感谢来点 for 感谢来电."""
    assert sounds_like("亲和通信", "星河通信")  # qin / xing: the same final once folded
    assert sounds_like("内心等待", "耐心等待")  # nei / nai: the same initial
    assert sounds_like("亲和同心", "星河通信")  # no character of its own, but only 亲 is off, and near
    assert not sounds_like("亲和同乡", "星河通信")  # two syllables only near
    assert not sounds_like("亲和通话", "星河通信")  # hua / xin share nothing
    assert not sounds_like("专讯", "专席")  # a two-character term may not be near
    config = load_config()
    transcript = correct_terms(Transcript("whisper", (
        Utterance("agent", 3.1, 9.0, "下午好,亲和通信工号5924位您服务。"),
        Utterance("agent", 43.8, 45.0, "感谢您的内心等待。"),
        Utterance("agent", 74.0, 75.5, "感谢您的来点再见。"))), config.key_terms)
    assert [u.text for u in transcript.utterances] == [
        "下午好,星河通信工号5924位您服务。", "感谢您的耐心等待。", "感谢您的来电再见。"]
    assert [(c.heard, c.term) for c in transcript.corrections] == [
        ("亲和通信", "星河通信"), ("内心等待", "耐心等待"), ("感谢您的来点", "感谢您的来电")]


def test_a_short_term_a_number_follows_may_have_one_syllable_heard_only_nearly():
    """Whisper base on fixtures/natural-eval2 f02: 孤号六夭四八 for 工号六幺四八 (夭 is its 幺)."""
    heard = correct_terms(Transcript("whisper", (Utterance("agent", 0.0, 3.0, "你好,星河通信,孤号六夭四八位您服务"),
                                                 Utterance("agent", 4.0, 5.0, "孤号很多"))), TERMS, ("工号",))
    assert heard.utterances[0].text == "你好,星河通信,工号六幺四八位您服务"  # 夭 written as the numeral it is
    assert heard.utterances[1].text == "孤号很多"  # no number after it: no context that leaves no doubt
    config = load_config()
    opening = CHECKS["opening.golden_30s"].run(
        dialogue_context("坐席: 你好,星河通信,孤号六夭四八位您服务,请问有什么能帮你?"),
        config.rules["opening.golden_30s"].params)
    assert opening.status == "fail"  # uncorrected, the id is missing
    fixed = dataclasses.replace(dialogue_context("坐席: x"), transcript=correct_terms(
        dialogue_context("坐席: 你好,星河通信,孤号六夭四八位您服务,请问有什么能帮你?").transcript,
        config.key_terms, config.text.numbered_terms), company_names=config.company_names)
    assert CHECKS["opening.golden_30s"].run(fixed, config.rules["opening.golden_30s"].params).status == "pass"


def test_verification_heard_by_sound():
    """后思维 for 后四位 and 已经合适 for 已经核实 (base on natural-eval2 f07); 后肃尾 for 后四位 (a term of
    three, one syllable near, one its own: natural-eval4 k03); 身份证好 for 身份证号 (k10)."""
    config = load_config()
    transcript = correct_terms(Transcript("whisper", (
        Utterance("agent", 14.5, 16.0, "好的,麻烦您提供一下手机号后思维。"),
        Utterance("agent", 21.4, 23.0, "好的,谢谢您。您已经合适。"),
        Utterance("agent", 24.0, 26.0, "好的,麻烦您提供一下您女儿这个号码的后肃尾,"),
        Utterance("agent", 27.0, 29.0, "提供一下机主的姓名和身份证好后四位。"),
        Utterance("customer", 30.0, 31.0, "前四位是多少"),
        Utterance("agent", 32.0, 35.0, "一共是一万二千六百四十元"))), config.key_terms)  # 百四十 no 末四位: 十/位 share the final only
    assert [u.text for u in transcript.utterances] == [
        "好的,麻烦您提供一下手机号后四位。", "好的,谢谢您。您已经核实。", "好的,麻烦您提供一下您女儿这个号码的后四位,",
        "提供一下机主的姓名和身份证号后四位。", "前四位是多少", "一共是一万二千六百四十元"]


@pytest.mark.parametrize("heard, meant", [
    ("我们这儿馆不着你找鞋校网馆去吧", "我们这儿管不着你找鞋校网馆去吧"),  # base on natural-eval5 m05
    ("重启以后，手机就好了", "重启以后，手机就好了"),  # 手 (shou) is no near 四 (si) in 后四位
    ("我们周五好像不上班", "我们周五好像不上班"),
    # the hold announcement as base heard it (natural-eval8 s08, s09); 少等 alone is no 稍等's near miss kept
    ("我为您转接,请您收后,", "我为您转接,请您稍候,"),
    ("我查一下这个号码的状态,醒烧等,", "我查一下这个号码的状态,醒稍等,"),
    ("请您收好身份证", "请您收好身份证"),  # two syllables apart from 请您稍候
])
def test_set_phrases_heard_by_sound(heard, meant):
    config = load_config()
    transcript = correct_terms(Transcript("whisper", (Utterance("agent", 0.0, 3.0, heard),)), config.key_terms)
    assert transcript.utterances[0].text == meant

def test_the_thanks_after_a_hold_heard_by_sound():
    """就等了 for 久等了 (base on natural-eval4 k01: 就等了。谢谢您。 after a 8-s hold)."""
    config = load_config()
    transcript = correct_terms(Transcript("whisper", (Utterance("agent", 66.3, 74.3, "就等了。谢谢您。最近七天没有异地登录"),)),
                               config.key_terms)
    assert transcript.utterances[0].text.startswith("久等了。谢谢您。")


@pytest.mark.parametrize("heard, meant", [
    ("您好,这里是星河通信客服。工号死要其三。", "您好,这里是星河通信客服。工号四幺七三。"),  # base on natural-eval3 g01
    ("工号是幺二三四", "工号是幺二三四"),  # already digits
    ("您的工号吧", "您的工号吧"),  # one digit-like sound is no number
    ("工号对吗", "工号对吗"),
    # base on natural-eval4 k04 / k12 / k09: 号 heard as 好 (the tone alone differs), 幺 as 央 or 要
    ("上午好,星河通讯,公好七央零四,请问需要什么帮助。", "上午好,星河通讯,工号七幺零四,请问需要什么帮助。"),
    ("中午好,星河通信宽败客服。公好要七三四。", "中午好,星河通信宽败客服。工号幺七三四。"),
    ("我是工号六央七三。", "我是工号六幺七三。"),
    ("公好啊", "公好啊"),  # no number after it
    ("工号七央", "工号七央"),  # a near digit only inside a number, never at its end
    ("工号央央七三", "工号央央七三"),  # ... nor first, and one at most
])
def test_the_number_after_a_numbered_term_is_read_by_sound(heard, meant):
    transcript = correct_terms(Transcript("whisper", (Utterance("agent", 0.0, 3.0, heard),)), TERMS, ("工号",))
    assert transcript.utterances[0].text == meant
    assert bool(transcript.corrections) == (heard != meant)


def test_an_alias_heard_closely_wins_over_the_name_heard_nearly():
    assert corrected("欢迎致电行和通讯").utterances[0].text == "欢迎致电星河通讯"
    assert corrected("你好亲和同性,我是六零二五号客服").utterances[0].text == "你好星河通信,我是六零二五号客服"
