"""Intent models trained on labelled utterances (audit/judge/textmodel.py, audit/judge/rules/training.py):
fitting, the cross-validated threshold, the model file, a rulebook that names one, and the shipped
models on wordings no rulebook pattern lists."""

from __future__ import annotations

import json
import textwrap

import pytest

from audit.config import ConfigError
from audit.judge import textmodel
from audit.judge.rules import check_rulebook, dialogue_context
from audit.judge.rules.training import ModelSpec, read_utterances, train_rulebook
from audit.textnorm import normalize
from conftest import ROOT

BLAME = ["您肯定是记错了", "是您自己没看清楚", "您自己点错了还怪我们", "那是您自己没注意", "您肯定是自己弄错了",
         "您自己搞错了吧", "这明明是您自己开的", "是您自己没说清楚", "您自己没看短信", "那是您记错了时间",
         "您一定是自己按错了", "是您自己家没人"]
NEUTRAL = ["好的我帮您查一下", "请您稍等", "您的话费已经到账了", "感谢您的来电再见", "我给您转接到宽带专席",
           "麻烦您提供一下身份证后四位", "这个月的账单是八十元", "我已经帮您提交了", "您还有其他问题吗",
           "明天下午三点前给您回电", "很抱歉给您添麻烦了", "这边看到您的套餐是五十八元", "好的没问题",
           "我帮您登记一下", "营业厅早上九点开门", "您说的情况我记下了", "稍后会有短信通知您", "请问您贵姓"]


def _items() -> list[textmodel.Labelled]:
    return ([textmodel.Labelled(normalize(t).text, True) for t in BLAME]
            + [textmodel.Labelled(normalize(t).text, False) for t in NEUTRAL])


def _write_lines(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_a_model_scores_what_it_was_taught_and_its_threshold_keeps_negatives_out():
    model = textmodel.train(_items(), "digest")
    assert model.stats["positives"] == len(BLAME) and model.stats["negatives"] == len(NEUTRAL)
    assert 0.0 < model.threshold <= 1.0
    assert model.score(normalize("您肯定是自己记错了").text) > model.score(normalize("我帮您查一下账单").text)
    # the threshold lets at most max_false_rate of the held-out negatives through: none of 18 here
    assert model.stats["cv_false_rate"] == 0.0


def test_a_saved_model_loads_with_the_same_scores(tmp_path):
    model = textmodel.train(_items(), "digest")
    model.save(tmp_path / "m.json")
    loaded = textmodel.load_model(tmp_path / "m.json")
    for text in ("您自己没看清楚吧", "请您稍等一下", "完全没见过的话"):
        assert loaded.score(normalize(text).text) == pytest.approx(model.score(normalize(text).text), abs=1e-3)
    assert loaded.threshold == pytest.approx(model.threshold, abs=1e-5)


def test_a_model_needs_both_labels():
    with pytest.raises(ValueError, match="at least 5"):
        textmodel.train([textmodel.Labelled("您记错了", True)] * 10, "digest")


def test_a_bad_utterance_line_names_the_file_and_line(tmp_path):
    data = tmp_path / "u.jsonl"
    data.write_text('{"intent": "blame", "text": "您记错了", "label": 1}\n{"intent": "blame", "label": 1}\n',
                    encoding="utf-8")
    with pytest.raises(ValueError, match=r"u\.jsonl:2"):
        read_utterances(ModelSpec("blame", tmp_path / "m.json", (data,), 0.001))


def test_lines_labelled_for_several_intents_teach_each_its_own(tmp_path):
    data = tmp_path / "u.jsonl"
    _write_lines(data, [{"text": "您记错了", "labels": {"blame": 1, "hedge": 0}},
                        {"intent": "hedge", "text": "大概吧", "label": 1}])
    assert [i.says for i in read_utterances(ModelSpec("blame", tmp_path / "m", (data,), 0.001))] == [True]
    assert [i.says for i in read_utterances(ModelSpec("hedge", tmp_path / "m", (data,), 0.001))] == [False, True]


def _rulebook(tmp_path, model_key: str = 'model = { file = "blame.json", data = ["u.jsonl"] }') -> object:
    _write_lines(tmp_path / "u.jsonl", [{"intent": "blame", "text": t, "label": 1} for t in BLAME]
                 + [{"intent": "blame", "text": t, "label": 0} for t in NEUTRAL])
    path = tmp_path / "rulebook.toml"
    path.write_text(textwrap.dedent(f"""
        [intents.blame]
        label = "怪客户"
        mood = "statement"
        {model_key}

        [rules."text.blame"]
        description = "不怪客户"
        category = "text"
        severity = "major"
        weight = 10
        fail_message = "坐席怪客户"
        pass_message = "未怪客户"
        forbid = {{ speaker = "agent", intent = "blame" }}
        [rules."text.blame".examples]
        pass = ["坐席: 好的，我帮您查一下。"]
        fail = ["坐席: 您肯定是记错了。"]
        """), encoding="utf-8")
    return path


def test_a_rulebook_intent_with_a_model_judges_by_it_and_says_its_score(tmp_path):
    path = _rulebook(tmp_path)
    (spec, model), = train_rulebook(path)
    assert spec.file == tmp_path / "blame.json" and spec.file.is_file()
    rulebook = check_rulebook(path)
    rule = rulebook.rule("text.blame")
    blamed = rulebook.evaluate_one(rule, dialogue_context(["客户: 我没开过这个业务。", "坐席: 那肯定是您自己没看清楚。"]))
    assert blamed.status == "fail" and "模型" in blamed.details["matches"][0]["by"]
    helped = rulebook.evaluate_one(rule, dialogue_context(["客户: 我没开过这个业务。", "坐席: 好的，我帮您查一下。"]))
    assert helped.status == "pass"
    # a model hit is judged like any other: in a question it is no statement
    assert model.score(normalize("是不是您自己没看清楚").text) >= model.threshold
    asked = rulebook.evaluate_one(rule, dialogue_context(["坐席: 是不是您自己没看清楚？"]))
    assert asked.status == "pass"


def test_a_model_fitted_on_other_data_is_refused_naming_the_key(tmp_path):
    path = _rulebook(tmp_path)
    train_rulebook(path)
    with (tmp_path / "u.jsonl").open("a", encoding="utf-8") as more:
        more.write(json.dumps({"intent": "blame", "text": "又是您自己弄的", "label": 1}, ensure_ascii=False) + "\n")
    with pytest.raises(ConfigError, match=r"intents\.blame\.model\.file.*audit rules train"):
        check_rulebook(path)


def test_a_missing_model_or_a_bad_model_key_fails_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"intents\.blame\.model\.file.*no model file"):
        check_rulebook(_rulebook(tmp_path))
    bad = _rulebook(tmp_path, 'model = { file = "blame.json", data = ["u.jsonl"], rate = 1 }')
    with pytest.raises(ConfigError, match=r"intents\.blame\.model\.rate"):
        check_rulebook(bad)
    missing = _rulebook(tmp_path, 'model = { file = "blame.json", data = ["nowhere.jsonl"] }')
    with pytest.raises(ConfigError, match=r"intents\.blame\.model\.data\[0\]"):
        check_rulebook(missing)


@pytest.fixture(scope="module")
def shipped():
    return check_rulebook(ROOT / "configs" / "rulebook.toml")


@pytest.mark.parametrize("rule_id, said", [
    ("text.forbidden.argue", "您那是自己瞎琢磨的，我们这边清清白白。"),
    ("text.forbidden.shirk", "路由器是您自己买的，坏了您找卖家。"),
    ("text.forbidden.shirk", "营业厅的事我们客服管不到，您去营业厅说。"),
    ("text.forbidden.negative", "这个口子开不了，您再说也白搭。"),
])
def test_the_shipped_models_catch_wordings_no_pattern_lists(shipped, rule_id, said):
    """Sentences written for this test, in no training file and matched by no pattern: the rule
    fails on the model alone, and the finding gives the model's score."""
    call = dialogue_context(["客户: 这个问题你们得给我解决。", f"坐席: {said}"])
    found = shipped.evaluate_one(shipped.rule(rule_id), call)
    assert found.status == "fail"
    (match,) = found.details["matches"]
    assert "模型 0.9" in match["by"] and "句式" not in match["by"]
    assert f"{match['intent']}" in found.message  # the reviewer reads the intent and its score
