"""Utterance-level judgements (audit/judge/intent.py) and the shipped intents of configs/rulebook.toml:
speaker, question versus statement, negation, quoted speech, example similarity, explanations."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from audit.judge import intent as meaning
from audit.config import ConfigError
from audit.judge.rules import check_rulebook, dialogue_context
from audit.textnorm import normalize
from conftest import ROOT

COMPANY = ("星河通信", "星河通讯")


@pytest.fixture(scope="module")
def shipped():
    return check_rulebook(ROOT / "configs" / "rulebook.toml")


def _intent(rulebook, name: str) -> meaning.Intent:
    (found,) = [i for i in rulebook.intents if i.name == name]
    return found


def _says(rulebook, name: str, text: str) -> list[meaning.IntentHit]:
    return meaning.judge(_intent(rulebook, name), meaning.Reading.read(text, normalize(text)))


def _status(rulebook, rule_id: str, *turns: str) -> str:
    return rulebook.evaluate_one(rulebook.rule(rule_id), dialogue_context(list(turns), COMPANY)).status


def test_clauses_split_on_punctuation_and_asr_spaces_and_know_questions():
    text = "好的，您是想查话费，对吗？我帮您看一下"
    read = meaning.Reading.read(text, normalize(text))
    pieces = [(read.norm.text[c.start:c.end], c.question) for c in read.clauses]
    # the tag question 对吗 makes the clause it follows a question too
    assert pieces == [("好的", False), ("您是想查话费", True), ("对吗", True), ("我帮您看1下", False)]
    spaced = "嗯 您是说退款还没到账是吧 我查一下"
    read = meaning.Reading.read(spaced, normalize(spaced))
    assert [c.question for c in read.clauses] == [False, True, False]
    assert not meaning.Reading.read("差不多下周能好吧", normalize("差不多下周能好吧")).clauses[0].question


def test_quoted_positions_are_found_in_normalised_text():
    text = "短信上写着“你好，验证码是1234”。"
    read = meaning.Reading.read(text, normalize(text))
    quoted = "".join(read.norm.text[i] for i in sorted(read.quoted))
    assert quoted == "你好验证码是1234"


def test_shared_run_finds_the_longest_common_stretch():
    assert meaning.shared_run("联系不上家人确实让人揪心", "现在联系不上她") == (0, 4)
    assert meaning.shared_run("好的", "我想查话费") == (0, 0)


@pytest.mark.parametrize("text, fires", [
    ("可能是系统延迟。", True),
    ("差不多下周能好吧。", True),  # a bare 吧 softens a statement, it asks nothing
    ("请问您是不是可能输错了密码？", False),  # a hedge in a question is no vague answer
    ("可能我们之前沟通有些误会。", False),  # a softened apology
    ("大概三个工作日到账。", False),  # attached to a concrete estimate
    ("大概需要两到三个工作日。", False),  # a range is concrete too
    ("您当时应该是在网上办理的，对吗？", False),  # a tag question asks the clause before it
    # asking whether the agent understood puts all that went before to the caller (natural-eval9 t01:
    # 没转过来 heard 没准过来 in a restatement)
    ("上个月剩的流量没准过来,您想知道去哪了?我理解得对吗?", False),
    ("没准过两天就好了，您先看看。", True),
    ("这是不可能的事,我们会尽可能帮您。", False),  # other words
])
def test_hedge_is_a_statement_and_not_an_apology_or_estimate(shipped, text, fires):
    assert bool(_says(shipped, "hedge", text)) is fires


@pytest.mark.parametrize("text, fires", [
    ("我帮您转接到技术部门,请稍候。", True),
    ("这个要退款专席处理,我再帮您转一下。", True),
    ("不用帮您转接到别的部门,我这边就能办理。", False),  # negated
    ("您可以通过转账的方式缴费。", False),  # 转账 is no transfer
    ("我会把您的意见转告相关部门。", False),
])
def test_transfer_knows_negation_and_other_words(shipped, text, fires):
    assert bool(_says(shipped, "transfer", text)) is fires


@pytest.mark.parametrize("text, fires", [
    ("请您报一下银行卡卡号后四位和银行卡密码。", True),  # the password is asked for in full
    ("我给您发一个验证码 您收到后念给我听一下", True),
    ("麻烦您提供一下机主身份证号码的后四位。", False),  # partial
    ("请不要把验证码告诉任何人,包括我们客服人员。", False),  # a warning
    ("我们不会向您索要密码,也请您不要把密码告诉我。", False),  # negated
    ("请您在页面上输入收到的验证码。", False),  # keypad entry the agent cannot hear
])
def test_secret_request_is_judged_item_by_item(shipped, text, fires):
    assert bool(_says(shipped, "secret_request", text)) is fires


def test_contradiction_is_turned_round_by_negation(shipped):
    assert _says(shipped, "contradiction", "那是您看错了,那个是预授权。")
    assert _says(shipped, "contradiction", "您这话就不对了,系统计费是不会错的。")
    assert not _says(shipped, "contradiction", "您没有搞错,非常抱歉给您带来困扰。")
    assert not _says(shipped, "contradiction", "我没有说是您搞错了,是系统的问题。")  # negated


def test_example_similarity_scores_a_paraphrase_and_names_the_example(shipped):
    examples_only = dataclasses.replace(_intent(shipped, "empathy"), model=None)  # the model aside

    def says(text):
        return meaning.judge(examples_only, meaning.Reading.read(text, normalize(text)))

    (hit,) = says("遇到这种事大家都会生气")  # no pattern says it
    assert hit.score == pytest.approx(7 / 9, abs=0.01)
    assert "遇到这种事谁都会生气" in hit.reason
    assert not says("遇到问题您可以再打过来")


def test_speaker_matters_a_customers_hedge_is_no_vague_answer(shipped):
    assert _status(shipped, "text.forbidden.vague", "客户: 可能是我自己点错了吧。", "坐席: 我帮您查一下。") == "pass"
    assert _status(shipped, "text.forbidden.vague", "客户: 多久到账?", "坐席: 也许三五天吧。") == "fail"


def test_a_listed_forbidden_phrase_turned_round_by_a_negator_does_not_count(shipped):
    assert _status(shipped, "text.forbidden.argue", "坐席: 不是说您搞错了,是系统升级的问题。") == "pass"
    assert _status(shipped, "text.forbidden.argue", "坐席: 您搞错了,是系统升级的问题。") == "fail"
    # 你 stays address even after a negator: polite_address does not skip negated hits
    assert _status(shipped, "text.polite_address", "坐席: 这不是你的问题。") == "fail"


def test_quoted_words_are_not_the_agents_own(shipped):
    quoted = "坐席: 您收到的短信写着“你好，您的宽带已续费”，这是我们发的。"
    assert _status(shipped, "text.polite_address", quoted) == "pass"
    assert _status(shipped, "text.polite_address", "坐席: 你好，您的宽带已续费。") == "fail"


def test_transfer_needs_a_customer_already_passed_around_or_two_transfers(shipped):
    once = "坐席: 我帮您转接到宽带专席。"
    assert _status(shipped, "text.transfers", "客户: 我想退订宽带。", once) == "pass"
    assert _status(shipped, "text.transfers", "客户: 我已经被转了三个部门了!", once) == "fail"
    assert _status(shipped, "text.transfers", "客户: 我已经被转了三个部门了!",
                   "坐席: 非常抱歉,我直接帮您处理。") == "pass"


def test_reading_out_a_card_tail_is_disclosure_not_verification(shipped):
    disclose = ("客户: 我这个号码绑定的是哪张银行卡?", "坐席: 您这个号码绑定的是尾号六六一八的储蓄卡。")
    assert _status(shipped, "text.identity_verification", *disclose) == "fail"
    asked = ("客户: 我这个号码绑定的是哪张银行卡?", "坐席: 请提供一下机主身份证后四位。", "客户: 一二三四。",
             "坐席: 谢谢,您这个号码绑定的是尾号六六一八的储蓄卡。")
    assert _status(shipped, "text.identity_verification", *asked) == "pass"


def test_a_finding_says_which_utterance_fired_and_why(shipped):
    result = shipped.evaluate_one(shipped.rule("text.forbidden.negative"), dialogue_context(
        ["客户: 能退吗?", "坐席: 那也没办法,下个月的续费已经帮您取消了。"], COMPANY))
    assert result.status == "fail"
    (match,) = result.details["matches"]
    assert match["utterance"] == 1 and match["match"] == "也没办法"
    assert match["intent"] == "负面拒绝 1.00" and match["by"].startswith("refusal: 句式")
    text = "那也没办法,下个月的续费已经帮您取消了。"
    assert text[slice(*match["span"])] == "也没办法"
    assert "负面拒绝 1.00" in result.message
    phrase = shipped.evaluate_one(shipped.rule("text.polite_address"), dialogue_context(["坐席: 你好。"]))
    assert phrase.details["matches"][0]["phrase"] == "你好"


def test_echo_of_the_customers_words_is_listening(shipped):
    assert _status(shipped, "text.active_listening", "客户: 我家宽带从昨晚就上不了网。",
                   "坐席: 从昨晚就上不了网确实着急,请提供机主身份证后四位。") == "pass"
    # four shared characters are too often a set phrase or a retort, and a denial is no restatement
    assert _status(shipped, "text.active_listening", "客户: 我记得很清楚。",
                   "坐席: 系统里记录得很清楚。") == "fail"
    assert _status(shipped, "text.active_listening", "客户: 我上个月退订的是来电显示。",
                   "坐席: 您退订的是彩铃,不是来电显示。") == "fail"
    assert _status(shipped, "text.active_listening", "客户: 我想查一下余额。", "坐席: 手机号后四位。") == "fail"


INTENT_BOOK = '''
version = 1
[intents.sorry]
label = "道歉"
examples = ["给您添麻烦了"]
[rules."t.sorry"]
description = "道歉"
category = "text"
severity = "minor"
weight = 1
fail_message = "未道歉"
require = { speaker = "agent", intent = "sorry" }
examples = { pass = ["坐席: 真是给您添麻烦了"], fail = ["坐席: 好的"] }
'''


def _book(tmp_path, text: str):
    path = tmp_path / "book.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return check_rulebook(path)


def test_a_site_adds_an_intent_example_in_toml(tmp_path):
    book = _book(tmp_path, INTENT_BOOK)
    said = dialogue_context(["坐席: 实在给您添了麻烦"])
    assert book.evaluate_one(book.rule("t.sorry"), said).status == "fail"  # 4 of 6 pairs < 0.75
    lower = _book(tmp_path, INTENT_BOOK.replace('examples = ["给', 'threshold = 0.6\nexamples = ["给'))
    assert lower.evaluate_one(lower.rule("t.sorry"), said).status == "pass"


@pytest.mark.parametrize("change, key, reason", [
    (('examples = ["给您添麻烦了"]', 'examples = ["麻烦"]'), "intents.sorry.examples[0]", "too short"),
    (('examples = ["给您添麻烦了"]', ''), "intents.sorry", "give patterns"),
    (('label = "道歉"', 'label = "道歉"\nthreshold = 0.2'), "intents.sorry.threshold", "outside"),
    (('label = "道歉"', 'label = "道歉"\nmood = "ask"'), "intents.sorry.mood", "not one of"),
    (('label = "道歉"', 'label = "道歉"\nwhat = 1'), "intents.sorry.what", "unknown key"),
    (('label = "道歉"\n', ''), "intents.sorry.label", "missing"),
    (('intent = "sorry"', 'intent = "sorrow"'), "rules.t.sorry.require.intent", "no intent named"),
    (('label = "道歉"', "label = \"道歉\"\npatterns = ['(']"), "intents.sorry.patterns[0]", "not a valid"),
    (('label = "道歉"', "label = \"道歉\"\nnot_in_clause = ['(']"), "intents.sorry.not_in_clause[0]",
     "not a valid"),
    (('label = "道歉"', "label = \"道歉\"\nlead_clause = '前$'"), "intents.sorry.lead_clause", "only means"),
])
def test_intent_validation_names_file_and_key(tmp_path, change, key, reason):
    with pytest.raises(ConfigError) as error:
        _book(tmp_path, INTENT_BOOK.replace(*change))
    assert error.value.key == key and reason in str(error.value) and "book.toml" in str(error.value)


def test_an_exclamation_is_a_mood_of_its_own(tmp_path):
    book = _book(tmp_path, INTENT_BOOK.replace('examples = ["给您添麻烦了"]',
                                               "mood = \"exclamation\"\npatterns = ['麻烦']"))
    (sorry,) = book.intents
    said = "真是给您添麻烦了！"
    assert meaning.judge(sorry, meaning.Reading.read(said, normalize(said)))
    flat = "真是给您添麻烦了。"
    assert not meaning.judge(sorry, meaning.Reading.read(flat, normalize(flat)))


# --- round 2 of issue 15: meanings taught from text-dev and text-eval, each with its traps ---------

def test_a_clause_exclusion_looks_at_the_hits_clause_and_a_clause_leading_into_it(tmp_path):
    book = _book(tmp_path, INTENT_BOOK.replace(
        'examples = ["给您添麻烦了"]',
        "patterns = ['联系您']\nnot_in_clause = ['明天|\\\\d+点']\nlead_clause = '前$'"))
    (promise,) = book.intents
    assert promise.clause_exclude and promise.lead_clause is not None

    def fires(text: str) -> bool:
        return bool(meaning.judge(promise, meaning.Reading.read(text, normalize(text))))

    assert not fires("我们明天联系您")  # the promise's own clause names the time
    assert fires("明天师傅上门，费用的事我们再联系您")  # the time belongs to another statement
    assert not fires("明天下午三点前，我们会联系您")  # a time bound said first leads into the promise
    assert fires("百分之百明天修好 我们会尽快联系您")  # no bound: a separate statement


def test_a_phrase_list_may_skip_utterances_by_regex(tmp_path):
    skipping = "require = { speaker = \"agent\", any = [\"请\"], not_regex = '工号' }"
    book = _book(tmp_path, INTENT_BOOK.replace('require = { speaker = "agent", intent = "sorry" }', skipping))
    rule = book.rule("t.sorry")
    assert book.evaluate_one(rule, dialogue_context(["坐席: 您好,工号0086,请问有什么可以帮您?"])).status == "fail"
    assert book.evaluate_one(rule, dialogue_context(["坐席: 请您稍等。"])).status == "pass"


@pytest.mark.parametrize("turns, status", [
    # bare commands are curt even when a polite word is said elsewhere
    (("坐席: 您好,请问有什么可以帮您?", "客户: 我要退会员。", "坐席: 会员是商家的,您找商家去。", "坐席: 感谢来电。"), "fail"),
    (("坐席: 您好,请问有什么可以帮您?", "客户: 多扣了钱。", "坐席: 你先别说了,我给你发了验证码。", "坐席: 谢谢。"), "fail"),
    (("坐席: 星河通信 工号2214 说吧什么事", "客户: 查话费", "坐席: 请稍等 八十元"), "fail"),
    (("坐席: 您好,请问有什么可以帮您?", "客户: 什么时候有结果?", "坐席: 等着吧,谢谢。"), "fail"),
    # 请您等通知吧 / 您先等通知吧 is a request with 请 or a softening 吧, no bare command (text-eval2 f013)
    (("坐席: 您好,请问有什么可以帮您?", "客户: 什么时候有结果?", "坐席: 请您等通知吧,谢谢。"), "pass"),
    # an opening formula, the first agent's or a second desk's, does not rescue a curt call
    (("坐席: 您好,工号6277,请问有什么可以帮您?", "坐席: 那给您转投诉。", "坐席: 投诉组 请讲", "坐席: 登记了"), "fail"),
    # announcing the end politely is no command
    (("坐席: 您好,请问有什么可以帮您?", "坐席: 请您稍等。", "坐席: 好的,那没别的事我就先挂了啊。"), "pass"),
])
def test_politeness_fails_curt_commands_and_skips_opening_formulas(shipped, turns, status):
    assert _status(shipped, "text.politeness", *turns) == status


@pytest.mark.parametrize("turns, status", [
    (("坐席: 我帮您转接过去。", "坐席: 这个得套餐变更组处理,我再给您接过去。"), "fail"),
    (("客户: 我已经被转了五次了!", "坐席: 那给您转投诉部门。"), "fail"),
    # a third agent introducing themselves: two transfers, whatever the wording
    (("坐席: 您好,工号1001。", "坐席: 您好,宽带专席,工号2002。", "坐席: 您好,投诉组,工号3003。"), "fail"),
    (("坐席: 您好,工号1001。", "坐席: 您好,宽带专席,工号2002。"), "pass"),  # one transfer
    (("客户: 是要转账吗?", "坐席: 不用,我给您转告技术部门。"), "pass"),  # 转账 / 转告
    (("客户: 我都转了三次了!", "坐席: 我给您转携号转网专席。"), "fail"),  # a desk named after porting
    (("客户: 我都转了三次了!", "坐席: 携号转网可以在这里直接办,不用转。"), "pass"),
])
def test_transfers_in_other_words(shipped, turns, status):
    assert _status(shipped, "text.transfers", *turns) == status


@pytest.mark.parametrize("turns, status", [
    # verification in other words: the registered contact number, 核对 of identity
    (("客户: 我家宽带断了。", "坐席: 麻烦您报一下宽带登记的联系电话。", "客户: 一三九零七五五二三一八。",
      "坐席: 好的,核对上了,我看到您的宽带现在是断开的。"), "pass"),
    (("客户: 我想查一下我家宽带到期时间。", "坐席: 我核对一下身份,请输入服务密码。",
      "坐席: 您的宽带是明年一月到期。"), "pass"),
    # an account's figures read out for a number the caller only named
    (("客户: 帮我查一下一三六一二三四九八七六这个号码最近有没有充值。", "坐席: 这个号码本月五号充值了两百元。"), "fail"),
    (("客户: 我的副卡怎么停了?", "坐席: 号码。", "客户: 一五八二二六七三三零一。", "坐席: 欠费了,欠了六十二。"), "fail"),
    (("客户: 我手机丢了,帮我停一下机。", "坐席: 已经为您办理挂失停机。"), "fail"),
    # a look-up of coverage or store hours touches no account
    (("客户: 翠湖花园能装宽带吗?我叫刘洋,电话一三九一二三四五六七八。", "坐席: 我查到翠湖花园已经覆盖了光纤。"), "pass"),
])
def test_identity_verification_in_other_words(shipped, turns, status):
    assert _status(shipped, "text.identity_verification", *turns) == status


@pytest.mark.parametrize("text, fires", [
    ("麻烦您提供一下机主身份证后四位，还有这张银行卡的取款密码。", True),  # added to a partial item
    ("您把刚收到的那串六位数字念给我听一下。", True),  # the code named by what it is
    ("请报一下您刚收到的短信里的数字。", True),
    ("请提供身份证后四位，密码和验证码千万不要告诉任何人。", False),
    ("请您在手机上输入收到的那串数字。", False),
])
def test_secret_request_in_other_words(shipped, text, fires):
    assert bool(_says(shipped, "secret_request", text)) is fires


@pytest.mark.parametrize("text, fires", [
    ("你们的APP怎么回事，我交了三次话费都显示失败！", True),
    ("你们这是抢钱吗？我根本没怎么用！", True),
    ("你们怎么乱扣费", True),
    ("我想问问怎么回事。", False),  # a plain question
    ("能帮我看看怎么回事吗？", False),
    ("不着急，你慢慢查。", False),  # calm
    ("那就好，吓死我了。", False),  # relief once the worry is answered
])
def test_upset_is_not_a_plain_question_calm_or_relief(shipped, text, fires):
    assert bool(_says(shipped, "upset", text)) is fires


@pytest.mark.parametrize("turns, status", [
    (("坐席: 我保证明天一定给您修好 我们会尽快处理 回头给您回电话",), "fail"),  # 明天 is the repair's
    (("坐席: 我已经记录了您的诉求,回头我们再联系您。",), "fail"),
    (("坐席: 最晚下周五下午六点前,我们会给您回电话告知测试结果。",), "pass"),
    (("坐席: 这次我直接帮您跟进,不再给您转接了。",), "pass"),  # taken on now, no later promise
])
def test_commitment_time_is_judged_on_the_promises_own_clause(shipped, turns, status):
    assert _status(shipped, "text.commitment_time", *turns) == status


@pytest.mark.parametrize("rule_id, said, status", [
    ("text.forbidden.shirk", "这个不归我们客服管,我给您转到宽带部门。", "fail"),
    ("text.forbidden.shirk", "补卡要带什么这个您得自己去营业厅问,我们客服不管这个。", "fail"),
    ("text.forbidden.shirk", "建基站不是我们客服能决定的。", "fail"),
    ("text.forbidden.shirk", "补卡需要本人带身份证到营业厅办理,我把地址发给您。", "pass"),
    ("text.forbidden.negative", "你那个小区不行 没覆盖 装不了", "fail"),
    ("text.forbidden.negative", "没办法 你要投诉就投诉", "fail"),
    ("text.forbidden.negative", "您看这样行不行?", "pass"),  # a question, no refusal
    ("text.forbidden.vague", "不是这样的,我们的线路没有问题。应该明天能好吧。", "fail"),
    ("text.forbidden.jargon", "这个要看铁塔那边的站点规划,还要等网优评估。", "fail"),
    ("text.forbidden.jargon", "已经转到二线,也就是技术支持的同事那里。", "pass"),  # explained
])
def test_forbidden_families_in_other_words(shipped, rule_id, said, status):
    assert _status(shipped, rule_id, "客户: 那怎么办?", "坐席: " + said) == status


# --- round 5: order of verification, word-split ASR text, glosses, negation reach -------------------


def test_word_split_asr_text_is_cut_into_clauses_not_words():
    said = "谢谢 您 核实 通过 了 我 看 到 您 号码 上 还 有 一个 合约 这个 应该 可以 吧 我 也 不 太 确定 能 不能 转"
    reading = meaning.Reading.read(said, normalize(said))
    clauses = [reading.norm.text[c.start:c.end] for c in reading.clauses]
    assert clauses == ["谢谢您核实通过了", "我看到您号码上还有1个合约这个应该可以吧", "我也不太确定能不能转"]
    assert [c.question for c in reading.clauses] == [False, False, True]
    # a phrase-spaced Whisper line keeps its spaces as clause ends
    spaced = "您好 星河通信客服中心 工号1207 请问有什么可以帮您"
    assert len(meaning.Reading.read(spaced, normalize(spaced)).clauses) == 4


@pytest.mark.parametrize("said, negated", [
    ("我现在特别着急", False),  # 特别 holds no 别
    ("您别着急", True),
    ("您没收到那是您自己的问题", False),  # 那是 starts a predication of its own
    ("不是您自己的问题", True),
])
def test_negation_reach(said, negated):
    reading = meaning.Reading.read(said, normalize(said))
    target = "着急" if "着急" in said else "您自己的问题"
    assert reading.negated(reading.norm.text.index(target)) is negated


@pytest.mark.parametrize("turns, status", [
    # figures read out before the caller is verified: verification afterwards comes too late
    (("客户: 我这个号上个月为什么扣了两百多?", "坐席: 我看一下,您这个号码上个月是二百一十六元。",
      "坐席: 要退费的话麻烦您提供一下机主身份证后四位。", "客户: 零三三八。", "坐席: 谢谢您,核实通过了。"), "fail"),
    (("客户: 我这个号上个月为什么扣了两百多?", "坐席: 麻烦您提供一下机主身份证后四位。", "客户: 零三三八。",
      "坐席: 谢谢您,核实通过了。您这个号码上个月是二百一十六元。"), "pass"),
    # a relative who only states the number is not verified
    (("客户: 我帮我妈问一下她那个号还有多少钱,一三零八八五二六七四一。",
      "坐席: 好的,余额还有十二块五,套餐是每月十八元。"), "fail"),
    # a full ID number asked for verifies the caller (identity_privacy fails instead)
    (("客户: 我想把套餐改成便宜一点的。", "坐席: 你身份证号报一下,全部。", "客户: 四一零一零五一九七二零八一五三三二七。",
      "坐席: 你现在是一百二十八的套餐。"), "pass"),
    # a coverage look-up is no account
    (("客户: 我刚搬到锦华小区,能装宽带吗?", "坐席: 我查了一下,锦华小区已经覆盖了千兆光纤。"), "pass"),
])
def test_identity_verification_comes_before_the_account_is_read_out(shipped, turns, status):
    assert _status(shipped, "text.identity_verification", *turns) == status


def test_look_back_anchor_needs_no_window_and_ahead_still_does(tmp_path):
    book = '''
    version = 1
    [rules."x.verified_first"]
    description = "d"
    category = "text"
    severity = "minor"
    weight = 1
    fail_message = "f"
    require = { after = { speaker = "agent", any = ["余额"] }, look = "back", then = { speaker = "agent", any = ["后四位"] } }
    examples = { pass = ["坐席: 请提供后四位。 | 坐席: 余额十元。"], fail = ["坐席: 余额十元。 | 坐席: 请提供后四位。"] }
    '''
    rules = _book(tmp_path, book)
    rule = rules.rule("x.verified_first")
    late = dialogue_context(["坐席: 余额十元。", "坐席: 请提供后四位。"], COMPANY)
    early = dialogue_context(["坐席: 请提供后四位。", "坐席: 余额十元。"], COMPANY)
    assert rules.evaluate_one(rule, late).status == "fail"
    assert rules.evaluate_one(rule, early).status == "pass"
    with pytest.raises(ConfigError, match="within_s or within_utterances"):
        _book(tmp_path, book.replace('look = "back", ', ""))


@pytest.mark.parametrize("turns, status", [
    # glossed once, explained for the rest of the call
    (("坐席: 现在提示要输PUK码,PUK码就是SIM卡的解锁码。", "坐席: 我把PUK码念给您:四七二九一八零六。"), "pass"),
    (("坐席: 您这是PIN连续输错三次锁了,要用PUK解。",), "fail"),
    (("坐席: 我帮您转到派单调度,就是给维修师傅安排上门的同事。", "坐席: 您好,派单调度,工号7033。"), "pass"),
    (("坐席: 在CDR里是按标准资费批价的。",), "fail"),
])
def test_jargon_glossed_once_is_explained(shipped, turns, status):
    assert _status(shipped, "text.forbidden.jargon", *turns) == status


@pytest.mark.parametrize("turns, status", [
    (("客户: 我现在特别着急。", "坐席: 请您提供一下机主身份证后四位。"), "fail"),  # 特别着急 is upset
    (("客户: 这个月第三次断网了,真是烦死了。", "坐席: 不好意思给您添麻烦了,我看一下。"), "fail"),  # routine
    (("客户: 已经被转了两次了,我真是有点烦了。", "坐席: 真是难为您了,我这边认真帮您看。"), "pass"),
    (("客户: 还要转啊?好吧。", "坐席: 请您稍等。"), "pass"),  # calm
])
def test_empathy_answers_upset_in_other_words(shipped, turns, status):
    assert _status(shipped, "text.empathy", *turns) == status


@pytest.mark.parametrize("turns, status", [
    # a bare 跟进 / 回访 beside a timed follow-up is an assurance; alone it promises no time
    (("坐席: 维护人员会在明天中午十二点前到现场处理,处理完会短信通知您。", "坐席: 您放心,我会跟进的。"), "pass"),
    (("坐席: 您放心,我会跟进的。",), "fail"),
    # a clause continuing a timed promise shares its time
    (("坐席: 我今天下午六点之前给您回电话,告诉您结果。",), "pass"),
    (("坐席: 线路那边修好了会通知。",), "fail"),
])
def test_commitment_time_assurances_and_continued_promises(shipped, turns, status):
    assert _status(shipped, "text.commitment_time", *turns) == status


@pytest.mark.parametrize("turns, rule_id, status", [
    # Whisper's word-split text: 号码 is a word, not a bare command; the offer is still a question
    (("坐席: 好 的 麻烦 您 报 一下 手机 号码 我 帮 您 看 一下", "坐席: 谢谢 您"), "text.politeness", "pass"),
    (("坐席: 请问 还 有 别 的 需要 帮 您 的 吗", "客户: 没 了", "坐席: 感謝 您 的 來電 再见"), "text.closing", "pass"),
    # the closing formula alone does not make a curt call polite
    (("坐席: 您好,工号1145,请问有什么可以帮您?", "坐席: 机主身份证后四位", "坐席: 还有其他问题吗", "坐席: 感谢来电 再见"),
     "text.politeness", "fail"),
])
def test_word_split_text_and_closing_formulas(shipped, turns, rule_id, status):
    assert _status(shipped, rule_id, *turns) == status


def test_a_restatement_in_a_later_clause_is_no_disclosure(shipped):
    # the clause exclusion ^(?:您)(?:是说) must hold in any clause, not only the utterance's first
    said = "也很抱歉。您是说这个月银行卡被扣了两次话费，每次一百五十元，对吧？"
    assert not _says(shipped, "account_disclosure", said)
    assert _says(shipped, "account_disclosure", "我看到这个月银行卡被扣了两次话费。")


@pytest.mark.parametrize("text, fires", [
    ("谢谢 您 核实 通过 了 翠湖 苑 那边 可能 是 基站 在 割接 也许 过 几 天 就 好 了", True),  # 过几天: no question
    ("您 过 几 天 能 来 营业厅 吗", False),
    ("应该 下 个 月 一 號 就 生效 了 吧", True),
    ("跟转账差不多，就是选手机充值这一项。", False),  # alike, not a hedge
])
def test_hedges_in_word_split_text_and_what_is_no_hedge(shipped, text, fires):
    assert bool(_says(shipped, "hedge", text)) is fires


@pytest.mark.parametrize("turns, status", [
    (["坐席: 您好，请问有什么可以帮您？", "坐席: 请 您 放 心 只要 没 点 链接 别人 就 动 不 了 您 的 号码"], "pass"),
    (["坐席: 您好，请问有什么可以帮您？", "坐席: 阿姨，让您久等了，谢谢您耐心等着。"], "pass"),
    (["坐席: 您好，请问有什么可以帮您？", "坐席: 你就等着吧。"], "fail"),
])
def test_curt_commands_are_whole_clauses(shipped, turns, status):
    assert _status(shipped, "text.politeness", *turns) == status


@pytest.mark.parametrize("rule_id, said, status", [
    ("text.forbidden.negative", "维修公司的电话不对外，这个没办法。", "fail"),
    ("text.forbidden.negative", "不 行 你 这 个 套餐 提 不 了 没 办 法", "fail"),
    ("text.forbidden.negative", "那么多东西都绑着，换了我也会急得不行。", "pass"),
    ("text.forbidden.overpromise", "这 次 肯定 给 您 弄 好", "fail"),
    ("text.forbidden.overpromise", "这个号我肯定给您留着，绝对不会被别人选走。", "fail"),
    ("text.forbidden.argue", "系统记录就是您点的，您肯定是点了。", "fail"),
    ("text.forbidden.argue", "非常抱歉让您来回说了好几遍。", "pass"),
    ("text.identity_privacy", "我给您手机发了一条短信，里面有一串六位数字，麻烦您把那串数字念给我。", "fail"),
    ("text.identity_privacy", "麻烦您告诉我您身份证号码最后四个数字。", "pass"),
    ("text.identity_privacy", "那条短信是您自己发给运营商的号码，不用告诉我。", "pass"),
])
def test_round_five_wordings(shipped, rule_id, said, status):
    assert _status(shipped, rule_id, f"坐席: {said}") == status


def test_another_partys_reply_is_no_promise_of_ours(shipped):
    turns = ["坐席: 您发短信给现在那家运营商，它会回复您能不能转。"]
    assert _status(shipped, "text.commitment_time", *turns) != "fail"


@pytest.mark.parametrize("turns, status", [
    # a term the customer asks about and the agent does not explain (text-eval4 round 6)
    (["坐席: 您收到的是RCS消息，走的是MaaP平台。", "客户: 什么RCS、MaaP……我就想正常看短信。",
      "坐席: 终端不支持，回落以后就是这样显示的。"], "fail"),
    (["坐席: 手表要先上报EID。", "客户: 啊？EID是啥……", "坐席: 您在手表的APP里能找到，报给我就行。"], "fail"),
    (["坐席: 手表要先上报EID。", "客户: EID是啥？", "坐席: EID就是手表芯片的编号，在设置里能看到。"], "pass"),
    # a protest is no question about a word
    (["坐席: 退款已经原路退回了。", "客户: 你们到底什么意思啊，我根本没收到。", "坐席: 我再帮您查一下。"], "pass"),
])
def test_a_term_the_customer_asks_about_must_be_explained(shipped, turns, status):
    assert _status(shipped, "text.forbidden.jargon", *turns) == status


def test_speech_reported_without_quotation_marks_is_not_the_agents():
    text = "对方说的 你要是不配合就冻结你的卡 就是吓唬人的"
    reading = meaning.Reading.read(text, normalize(text))
    second = reading.clauses[1]
    assert set(range(second.start, second.end)) <= reading.quoted
    assert not set(range(reading.clauses[2].start, reading.clauses[2].end)) & reading.quoted


@pytest.mark.parametrize("rule_id, turns, status", [
    ("text.polite_address", ["坐席: 对方说的 你要是不配合就冻结你的卡 就是吓唬人的"], "pass"),
    ("text.polite_address", ["坐席: 你要是不配合 我们就没办法了"], "fail"),
    ("text.empathy", ["客户: 我他妈每个月交两百块钱就给我这个网速？", "坐席: 请问您是怎么测的速？",
                      "客户: 手机连WiFi测的。", "坐席: 那是路由器的问题。"], "fail"),
    ("text.empathy", ["客户: 我妈的手机打不通了。", "坐席: 好的，您是说母亲的手机打不通，对吗？"], "pass"),
    ("text.commitment_time", ["坐席: 您是想让打给您的电话转到同事手机上，对吧？"], "pass"),
    ("text.forbidden.argue", ["坐席: 您说得不对，以前也是这样发的。"], "fail"),
])
def test_round_six_wordings(shipped, rule_id, turns, status):
    assert _status(shipped, rule_id, *turns) == status


def test_how_a_plan_works_is_no_handling_of_this_account(shipped):
    turns = ["客户: 呼叫转移收钱吗？", "坐席: 按国内通话计费，您的套餐里有通话分钟数的话，会先扣分钟数。"]
    assert _status(shipped, "text.identity_verification", *turns) == "pass"


@pytest.mark.parametrize("rule_id, turns, status", [
    # a polite request Whisper's spaces cut in two is no bare command (text-eval5 round 6)
    ("text.politeness", ["坐席: 好的 麻烦您先提供一下 机主身份證后四位", "客户: 三一二零", "坐席: 谢谢您"], "pass"),
    ("text.politeness", ["坐席: 机主身份证后四位", "客户: 三一二零", "坐席: 谢谢您"], "fail"),
    # a bare promise to call is in time when the call's follow-up names one
    ("text.commitment_time", ["坐席: 我会在明天下午四点之前给您回电话，不管进展到哪一步，都会给您回电。"], "pass"),
    ("text.commitment_time", ["坐席: 已经登记了，我们会给您回电。"], "fail"),
    ("text.commitment_time", ["坐席: 师傅明天上午九点到十二点之间上门，師傅出发前会先给您打电话。"], "pass"),
    ("text.commitment_time", ["坐席: 稍微晚一点，审核通过了我们会通知您的。"], "fail"),  # 一点 is no hour
    ("text.commitment_time", ["坐席: 台风过后家里老人联系不上，您肯定很着急。"], "pass"),
    ("text.forbidden.overpromise", ["坐席: 用到套餐的百分之八十和百分之百的时候，都发了提醒短信。"], "pass"),
    ("text.forbidden.overpromise", ["坐席: 这个钱我肯定给您全部退回来，一分都不会少。"], "fail"),
    ("text.forbidden.shirk", ["坐席: 他们办的业务跟我们客服这边没关系，您得回那家店去找他们。"], "fail"),
    ("text.identity_verification", ["客户: 有个陌生号码骚扰我。", "坐席: 请问这个号码是多少？"], "pass"),
    ("text.empathy", ["客户: 那什么时候能有个说法？", "坐席: 明天下午四点前给您回电。"], "pass"),
])
def test_round_six_wordings_of_text_eval5(shipped, rule_id, turns, status):
    assert _status(shipped, rule_id, *turns) == status


def test_soothing_a_few_turns_later_is_in_time(shipped):
    upset = ["客户: 你们凭什么扣我钱？", "坐席: 请提供手机号后四位。", "客户: 八五八五。",
             "坐席: 查到了，是彩铃业务。", "客户: 我从来没订过！"]
    assert _status(shipped, "text.empathy", *upset, "坐席: 非常抱歉，我理解您的心情，已经为您退订。") == "pass"
    cold = ["坐席: 已经退订了。", "客户: 好。"] * 4
    assert _status(shipped, "text.empathy", "客户: 你们凭什么扣我钱？", *cold) == "fail"


@pytest.mark.parametrize("turns, status", [
    # however the request was heard (登录立马 for 登录密码), the caller reading a password out answers it
    (["坐席: 请您把宽代账号的登录立马报给我。", "客户: 密码1826491,"], "fail"),
    (["坐席: 麻烦您把身份证号码说一下。", "客户: 身份证号是110101199003071234。"], "fail"),
    (["坐席: 麻烦您报一下身份证后四位。", "客户: 后四位是七七一零。"], "pass"),
    (["坐席: 请您在电话按键上输入服务密码。", "客户: 密码123456,输好了。"], "pass"),  # no "tell me"
])
def test_a_caller_reading_a_secret_out_to_an_agent_who_asked(shipped, turns, status):
    assert _status(shipped, "text.identity_privacy", *turns) == status


def test_upset_words_heard_by_sound():
    """及死我了 for 急死我了 (base on natural-eval2 f06) is a key term read by sound; 吓死我了 is not it."""
    from audit.configload import load_config
    from audit.measure.terms import correct_terms
    config = load_config()
    def judged(*turns):
        call = dialogue_context(list(turns), COMPANY)
        call = dataclasses.replace(call, transcript=correct_terms(call.transcript, config.key_terms))
        return config.rulebook.evaluate_one(config.rulebook.rule("text.empathy"), call).status
    assert judged("客户: 今晚打不了电话可及死我了。", "坐席: 请您把手机重起一下。") == "fail"
    assert judged("客户: 那就好，吓死我了。", "坐席: 请问还有其他可以帮您的吗？") == "pass"


@pytest.mark.parametrize("rule_id, turns, status", [
    # natural-eval3 round (the set is spent: studied and tuned on)
    ("text.forbidden.shirk", ["坐席: 重复充值是支付平台那边的问题，跟我们这边没什么关系，您去找银行吧。"], "fail"),
    ("text.forbidden.shirk", ["坐席: 退款的事我们这边不管，银行那边能查到。"], "fail"),
    ("text.forbidden.shirk", ["坐席: 断网是OLT那边的问题，我已经报修了。"], "pass"),  # a cause, not a push
    ("text.forbidden.argue", ["坐席: 话单是系统自动记录的，不会有错，这个电话您肯定是打过的。"], "fail"),
    ("text.identity_verification", ["客户: 我妈妈的手机老是收到扣费短信。", "坐席: 请问您母亲的手机号码是多少？",
                                    "客户: 一三八零五七六二九一四。", "坐席: 您母亲现在是五十八元的套餐，本月已经消费了八十六元。"], "fail"),
    ("text.empathy", ["客户: 我有点慌，怕是骗子。", "坐席: 您先别紧张，这一步做得特别对。"], "pass"),
    ("text.empathy", ["客户: 他会收到验证码吗？要不要告诉你们？", "坐席: 不需要，验证码请他自己填写。"], "pass"),  # no 投诉你们
    ("text.forbidden.jargon", ["坐席: 先做成员加挂。", "客户: 什么加挂割接？我听不太明白。", "坐席: 您等着就行。"], "fail"),
])
def test_natural_eval3_wordings(shipped, rule_id, turns, status):
    assert _status(shipped, rule_id, *turns) == status


def test_a_question_word_after_a_negator_asks_nothing():
    reading = meaning.Reading.read("跟我们这边没什么关系", normalize("跟我们这边没什么关系"))
    assert not reading.clauses[0].question


def test_a_question_word_answered_by_dou_means_whichever_and_asks_nothing():
    """natural-eval10 u12: 往后您夜里什么时候看，都不会再多扣一分钱 is a guarantee, not a question."""
    def questions(text):
        return [c.question for c in meaning.Reading.read(text, normalize(text)).clauses]

    assert questions("往后您夜里什么时候看，都不会再多扣一分钱") == [False, False]
    assert questions("不管哪天来，我们都在") == [False, False]
    assert questions("您什么时候方便，我们安排师傅") == [True, False]  # no 都: it asks
    assert questions("您什么时候看？都不会扣钱") == [True, False]  # the question mark says it asks


# --- round 8: general shapes rather than one dialogue's words -----------------------------------------

def test_an_utterance_exclusion_drops_every_hit_of_the_turn(tmp_path):
    book = _book(tmp_path, INTENT_BOOK.replace(
        'examples = ["给您添麻烦了"]', "patterns = ['没收到']\nnot_in_utterance = ['不着急']"))
    (upset,) = book.intents
    assert upset.utterance_exclude

    def fires(text: str) -> bool:
        return bool(meaning.judge(upset, meaning.Reading.read(text, normalize(text))))

    assert fires("包裹我一直没收到。")
    assert not fires("包裹我一直没收到，不过我不着急，就是问问。")  # calm in the same turn


@pytest.mark.parametrize("text, fires", [
    ("我现在脑子一团乱，什么都想不起来。", True),  # distress in general words
    ("这下全完了，房子的事怎么弄。", True),
    ("想想都后怕。", True),
    ("快递说送到了我根本没收到，也不着急，你帮我看看。", False),  # says it is in no hurry
    ("我能不着急吗？", True),  # a rhetorical question is no calm
])
def test_upset_in_general_words_and_calm_said_outright(shipped, text, fires):
    assert bool(_says(shipped, "upset", text)) is fires


@pytest.mark.parametrize("turns, status", [
    (("客户: 孩子一个人在外地联系不上，我都吓坏了。", "坐席: 听您这么说我也替您捏把汗，我们一起想办法。"), "pass"),
    (("客户: 我真是要疯了。", "坐席: 还好卡已经停了，没有造成损失就好，我们接着处理。"), "pass"),
    (("客户: 我真是要疯了。", "坐席: 请报一下身份证后四位。"), "fail"),
    # soothed earlier; a smaller worry a few turns later needs no second comfort
    (("客户: 我很害怕他再打过来。", "坐席: 我理解您的心情，我们马上帮您处理。", "客户: 好。",
      "坐席: 新号码当场就能用。", "客户: 我怕亲戚找不到我。", "坐席: 可以给亲友发改号通知。"), "pass"),
])
def test_empathy_in_the_general_words_of_feeling_with_someone(shipped, turns, status):
    assert _status(shipped, "text.empathy", *turns) == status


@pytest.mark.parametrize("said, status", [
    ("办卡和激活是两件事，您把它们混在一起了。", "fail"),  # the customer said to mix things up
    ("您那个截图不算数，我们系统才准。", "fail"),  # the customer's evidence dismissed
    ("营业厅的同事不可能这么说的。", "fail"),  # what the customer was told, denied
    ("合同都签了，没什么好争的。", "fail"),
    ("这两个套餐名字很像，确实容易混淆，我给您讲一下区别。", "pass"),
    ("真正的银行工作人员不会这么说，这是诈骗。", "pass"),  # a fraud warning, no denial of the customer
])
def test_argue_in_general_shapes(shipped, said, status):
    assert _status(shipped, "text.forbidden.argue", "客户: 可我记得不是这样。", "坐席: " + said) == status


@pytest.mark.parametrize("said, status", [
    ("密码是您自己设的，忘了是您这边的责任。", "fail"),
    ("这事得您自己跟商家协商，我们只管话费。", "fail"),
    ("这笔需要商家退款，我帮您把订单号发到手机上，方便您联系。", "pass"),
    ("这跟我们客服根本不沾边，您还是找物业去吧。", "fail"),  # none of ours, sent away
    ("这个需要物业开门，我帮您把报修单号发给您，物业联系电话也一起发。", "pass"),
])
def test_shirk_puts_the_responsibility_on_the_customer(shipped, said, status):
    assert _status(shipped, "text.forbidden.shirk", "客户: 那怎么办?", "坐席: " + said) == status


@pytest.mark.parametrize("text, fires", [
    ("我给您发一个激活码，您收到以后直接念给我。", True),  # the code named, then asked for
    ("验证码马上发到您手机，您打字不方便就念给我吧。", True),
    ("验证码发过去了，请在页面上自己输入，不用念给我。", False),
])
def test_a_code_named_then_asked_for_is_a_secret_request(shipped, text, fires):
    assert bool(_says(shipped, "secret_request", text)) is fires


@pytest.mark.parametrize("turns, status", [
    # an account's own figures need a verified caller, however the caller named the line
    (("客户: 我店里那张收款机的卡连不上了。", "坐席: 卡号报一下。", "客户: 八九八六零四一二。",
      "坐席: 这张卡欠了三十五元，已经停机了。"), "fail"),
    (("客户: 我店里那张收款机的卡连不上了。", "坐席: 麻烦报一下经办人姓名和身份证后四位。", "客户: 王强，一二三四。",
      "坐席: 谢谢，这张卡欠了三十五元，已经停机了。"), "pass"),
    # a rule, not this account; a new order registered
    (("客户: 给孩子办张卡怎么办?", "坐席: 未成年人的卡需要登记在家长名下，请带户口本到营业厅。"), "pass"),
])
def test_account_details_read_out_need_verification(shipped, turns, status):
    assert _status(shipped, "text.identity_verification", *turns) == status


@pytest.mark.parametrize("turns, status", [
    # the explanation did not help: the next turn must explain, not go on in the same words
    (("坐席: 您这个是保底档。", "客户: 保底是什么?", "坐席: 保底就是保底档位。", "客户: 还是不太明白。",
      "坐席: 按保底档出账。"), "fail"),
    (("坐席: 您这个是保底档。", "客户: 保底是什么?", "坐席: 保底就是保底档位。", "客户: 还是不太明白。",
      "坐席: 意思是每个月最少按三百八收费，用得少也收三百八。"), "pass"),
])
def test_jargon_not_understood_after_the_explanation(shipped, turns, status):
    assert _status(shipped, "text.forbidden.jargon", *turns) == status


@pytest.mark.parametrize("said, status", [
    ("多半是您家路由器的问题。", "fail"),  # everyday hedges
    ("这个没准下周就好了。", "fail"),
    ("这台是八成新的备用机，可以先借您用。", "pass"),  # 八成新 is a condition, no hedge
])
def test_vague_everyday_hedges(shipped, said, status):
    assert _status(shipped, "text.forbidden.vague", "客户: 那怎么办?", "坐席: " + said) == status


@pytest.mark.parametrize("said, status", [
    ("我们商量一下，过几天再给您回话。", "fail"),  # no time
    ("我们商量一下，周五下午五点前给您回话。", "pass"),
])
def test_commitment_time_a_reply_promised_some_day(shipped, said, status):
    assert _status(shipped, "text.commitment_time", "客户: 那怎么办?", "坐席: " + said) == status


@pytest.mark.parametrize("turns, status", [
    (("客户: 我吓坏了，是不是被盗号了?", "坐席: 您的担心我完全明白，我们先把号码保护起来。"), "pass"),
    (("客户: 我吓坏了，是不是被盗号了?", "坐席: 这种短信谁看了都会慌，我们先把号码保护起来。"), "pass"),
])
def test_empathy_names_the_feeling_and_understands_it(shipped, turns, status):
    assert _status(shipped, "text.empathy", *turns) == status


def test_an_echo_with_a_lead_counts_only_the_words_taken_up_right_after_it(tmp_path):
    book = _book(tmp_path, INTENT_BOOK.replace(
        'require = { speaker = "agent", intent = "sorry" }',
        "forbid = { speaker = \"agent\", echo = 2, lead = '^就是' }"))
    rule = book.rule("t.sorry")

    def status(*turns: str) -> str:
        return book.evaluate_one(rule, dialogue_context(list(turns))).status

    assert status("客户: 光衰是什么?", "坐席: 就是光衰正常。") == "fail"  # the term said again
    assert status("客户: 光衰是什么?", "坐席: 就是光信号变弱了,光衰正常。") == "pass"  # explained first
    assert status("客户: 光衰是什么?", "坐席: 光衰就是光信号变弱了。") == "pass"


def test_an_echo_of_a_question_answers_it_when_answers_is_false(tmp_path):
    """natural-eval11 w07: repeating the words of the customer's question to answer it is no sign
    of listening; a statement taken up is. `answers` must be a boolean, named in the error."""
    def book_with(echo: str):
        return _book(tmp_path, INTENT_BOOK.replace(
            'require = { speaker = "agent", intent = "sorry" }', f'require = {{ speaker = "agent", {echo} }}'))

    asked = ("客户: 流量还是每个月二十个吉吗?", "坐席: 流量不变,每月二十个吉,足够用。")
    told = ("客户: 我每个月二十个吉的流量不够。", "坐席: 每月二十个吉不够用,我帮您看看。")
    for echo, statuses in (("echo = 5", ("pass", "pass")), ("echo = 5, answers = false", ("fail", "pass"))):
        book = book_with(echo)
        rule = book.rule("t.sorry")
        assert tuple(book.evaluate_one(rule, dialogue_context(list(t))).status for t in (asked, told)) == statuses
    with pytest.raises(ConfigError, match="answers"):
        book_with('echo = 5, answers = "no"')


@pytest.mark.parametrize("turns, status", [
    # the asked terms said again after 就是, with no meaning given
    (("坐席: 您这个走的是代计费。", "客户: 代计费又是什么?我不懂这些。", "坐席: 就是代计费那边扣的。"), "fail"),
    (("坐席: 您这个走的是代计费。", "客户: 代计费又是什么?我不懂这些。",
      "坐席: 就是别的公司通过我们的话费帮它收钱。"), "pass"),
    # a clause that is only a term and 是什么 asks about the term; a charge asked about does not
    (("坐席: 晚上出口拥塞。", "客户: 出口拥塞、回程绕路是什么?", "坐席: 出口拥塞。"), "fail"),
    (("坐席: 您的账单我发到邮箱。", "客户: 账单上有一个二十块是什么?", "坐席: 这是国际短信费。"), "pass"),
])
def test_jargon_asked_about_and_said_again(shipped, turns, status):
    assert _status(shipped, "text.forbidden.jargon", *turns) == status


@pytest.mark.parametrize("rule_id, said, status", [
    # a "cannot" left flat, or the loss left with the customer, is negative ...
    ("text.forbidden.negative", "删掉的记录找不回来。", "fail"),
    ("text.forbidden.negative", "转出去的钱系统里撤销不了，只能您自己承担。", "fail"),
    ("text.forbidden.negative", "对方的信息不能透露，我们不会帮您联系。", "fail"),
    # ... with an apology and a way forward it is the recommended form
    ("text.forbidden.negative", "删掉的记录找不回来了，很抱歉。以后您可以打开自动备份。", "pass"),
    # bearing the loss is no redirection (negative, not shirk); sending the customer elsewhere is
    ("text.forbidden.shirk", "转出去的钱系统里撤销不了，只能您自己承担。", "pass"),
    ("text.forbidden.shirk", "这个只能您自己去找银行。", "fail"),
    ("text.forbidden.argue", "您这个说法站不住，系统里有记录。", "fail"),
    ("text.forbidden.argue", "肯定是您家里人没注意听。", "fail"),
    ("text.forbidden.vague", "十有八九没问题。", "fail"),
])
def test_refusals_and_contradictions_of_round_8(shipped, rule_id, said, status):
    assert _status(shipped, rule_id, "客户: 那怎么办?", "坐席: " + said) == status


@pytest.mark.parametrize("intent, text, fires", [
    ("secret_request", "您说一下身份证上的姓名。", False),  # the name, not the number
    ("secret_request", "您说一下身份证号码。", True),
    ("verification", "欠费的是后一个号码。", False),  # the latter, no digits asked for
    ("verification", "麻烦说一下身份证后四位。", True),
    ("account_details", "您名下登记了两个号码。", True),
])
def test_items_asked_for_and_read_out(shipped, intent, text, fires):
    assert bool(_says(shipped, intent, text)) is fires


@pytest.mark.parametrize("said, status", [
    ("有了结果再打电话告诉您。", "fail"),
    ("有两结果在打电话告诉你。", "fail"),  # as Whisper writes it
    ("三个工作意内给您回电话。", "pass"),  # 三个工作日内 with 日 misheard: the time is still there
])
def test_commitment_time_as_asr_writes_it(shipped, said, status):
    assert _status(shipped, "text.commitment_time", "客户: 那怎么办?", "坐席: " + said) == status


@pytest.mark.parametrize("text, fires", [
    ("这个账号登记的是王小明，套餐是五十元一个月。", True),  # the holder and the plan
    ("这个月断线记录有九次。", True),
    ("您这号开了来电拦截。", True),
    ("订单是寄到建设路二十号的。", True),
    ("这款套餐的月租是五十元。", False),  # a product's price
    ("卡办好以后寄到您家，或者您来营业厅取。", False),  # how it will be sent, no address read out
])
def test_account_details_of_round_8(shipped, text, fires):
    assert bool(_says(shipped, "account_details", text)) is fires


def test_a_restatement_whose_you_the_asr_lost_is_still_one(shipped):
    said = "本名是想看七天以前的录像，可是回放里找不到的事吗？"  # 嗯，您是想……，是吗 as base wrote it
    assert _says(shipped, "restatement", said)
    assert not _says(shipped, "restatement", "您想看哪天的录像？")  # a plain question


@pytest.mark.parametrize("rule_id, said, status", [
    ("text.forbidden.overpromise", "约了号的到了直接进，保准一分钟都不用等。", "fail"),  # everyday guarantee words
    ("text.forbidden.shirk", "这事我们这边插不上手。", "fail"),
    ("text.forbidden.shirk", "那你还是找你们管理员去。", "fail"),
    ("text.forbidden.argue", "这话可不对，明明就是群发。", "fail"),
    ("text.forbidden.argue", "您再怎么说也是群发，系统不会冤枉人。", "fail"),
])
def test_forbidden_in_everyday_words_of_round_8(shipped, rule_id, said, status):
    assert _status(shipped, rule_id, "客户: 那怎么办?", "坐席: " + said) == status


@pytest.mark.parametrize("turns, status", [
    (("客户: 半夜都有人打电话，我快烦透了！", "坐席: 搁谁身上都受不了，我来想办法。"), "pass"),
    (("客户: 周六人会不会很多？我怕排半天队。", "坐席: 约了号直接进。"), "pass"),  # a practical worry, not upset
    (("客户: 我怕卡被别人冒用了。", "坐席: 请报一下身份证后四位。"), "fail"),  # a fear of harm
])
def test_upset_is_a_fear_of_harm_and_empathy_in_everyday_words(shipped, turns, status):
    assert _status(shipped, "text.empathy", *turns) == status
