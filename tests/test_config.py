"""The config is validated on load and a bad value names its file and key."""

import subprocess
import sys

import pytest

from audit.config import DEFAULT_CONFIG, ConfigError
from audit.configload import load_config
from conftest import ROOT


def test_default_config_loads_with_every_rule():
    config = load_config()
    assert config.company.name == "星河通信"
    every_rule = {*config.rules, *(r.id for r in config.rulebook.rules)}
    assert set(config.labels.rules) == every_rule  # each with its Chinese name and category
    assert config.labels.rules["text.forbidden.shirk"].category == "服务禁语"
    assert config.rules["opening.golden_30s"].params.window_s == 30.0
    assert config.files == (str(DEFAULT_CONFIG),)


def test_overlay_changes_only_its_keys(tmp_path):
    overlay = tmp_path / "site.toml"
    overlay.write_text('[company]\nname = "蓝天银行"\n[rules."opening.golden_30s"]\nwindow_s = 20\n',
                       encoding="utf-8")
    config = load_config(overlay)
    assert config.company.name == "蓝天银行"
    assert config.rules["opening.golden_30s"].params.window_s == 20.0
    assert config.rules["opening.golden_30s"].params.greeting == ("您好", "你好")  # kept from default
    assert config.sha256 != load_config().sha256


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ("[vad]\nthreshold = 1.5\n", "vad.threshold", "outside the allowed range"),
        ("[vad]\nthreshhold = 0.4\n", "vad.threshhold", "unknown key"),
        ('[asr]\ndevice = "tpu"\n', "asr.device", "is not one of"),
        ('[channels]\nagent = "left"\n', "channels.agent", "must be a number"),
        ('[company]\nname = "  "\n', "company.name", "must not be empty"),
        ('[company]\naliases = "星河"\n', "company.aliases", "must be a list"),
        ('[rules."opening.golden_30s"]\nagent_id_pattern = "工号(\\\\d+"\n',
         "rules.opening.golden_30s.agent_id_pattern", "not a valid regular expression"),
        ('[rules."opening.golden_30s"]\nseverity = "fatal"\n',
         "rules.opening.golden_30s.severity", "is not one of"),
        ('[rules."opening.golden_30s"]\nweight = -5\n', "rules.opening.golden_30s.weight", "range"),
        ('[rules."no.such_rule"]\nseverity = "minor"\nweight = 1\n', "rules.no.such_rule", "no such rule"),
        ("[colour]\nx = 1\n", "colour", "unknown section"),
        # nan passes every comparison, so it must be refused before the range check (issue 16)
        ('[rules."opening.golden_30s"]\nweight = nan\n', "rules.opening.golden_30s.weight", "finite"),
        ("[vad]\nthreshold = nan\n", "vad.threshold", "must be a finite number"),
        ("[scoring]\nfail_below = inf\n", "scoring.fail_below", "must be a finite number"),
        ('[timing.presets.cn]\nfreqs_hz = [450.0, -inf]\n', "timing.presets.cn.freqs_hz[1]", "finite"),
        # a band nothing can fall inside
        ('[rules."prosody.rate"]\nmin_cpm = 400\nmax_cpm = 100\n', "rules.prosody.rate.min_cpm",
         "is above max_cpm = 100.0: the band is empty"),
        ('[rules."prosody.rate"]\nutterance_min_cpm = 500\n', "rules.prosody.rate.utterance_min_cpm",
         "is above utterance_max_cpm"),
        ("[prosody]\npitch_min_hz = 190\npitch_max_hz = 160\n", "prosody.pitch_min_hz", "is above"),
        ("[decode]\nmin_sample_rate = 16000\nmax_sample_rate = 8000\n", "decode.min_sample_rate",
         "is above max_sample_rate"),
        ("[agreement]\nmin_speech_share = 1.5\n", "agreement.min_speech_share", "outside the allowed range"),
        # what reviewers read and pick from (issue 17)
        ("[review]\nreasons = []\n", "review.reasons", "must list at least one reason"),
        ('[review]\nreasons = ["属实", "属实"]\n', "review.reasons", "listed twice"),
        ('[review]\nreasons = ["属实", " "]\n', "review.reasons[1]", "must not be empty"),
        ('[labels.rules]\n"timing.cut_off" = { name = "挂机", category = "杂项" }\n',
         "labels.rules.timing.cut_off.category", "is not one of the categories"),
        ('[labels.rules]\n"timing.cut_off" = { name = "", category = "服务规范" }\n',
         "labels.rules.timing.cut_off.name", "must not be empty"),
        ('[labels.rules]\n"no.such_rule" = { name = "无", category = "服务规范" }\n', "labels.rules.no.such_rule",
         "no such rule"),
        ('[labels]\nverdicts = { maybe = "也许" }\n', "labels.verdicts", "must name exactly ['pass', 'review', 'fail']"),
        ('[labels]\nspeakers = { agent = "" }\n', "labels.speakers.agent", "must not be empty"),
    ],
)
def test_invalid_value_names_file_and_key(tmp_path, text, key, reason):
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(bad) in str(caught.value)


def test_unparsable_and_missing_files(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[vad\nthreshold = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_cli_exits_2_and_names_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[scoring]\nfail_below = 150\n", encoding="utf-8")
    (tmp_path / "in").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "audit", "run", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
         "--config", str(bad)],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "scoring.fail_below" in done.stderr and "bad.toml" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_utf8_exits_2_naming_it(tmp_path):
    from typer.testing import CliRunner

    from audit.cli import app

    bad = tmp_path / "gbk.toml"
    bad.write_bytes('[company]\nname = "蓝天银行"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(bad)
    done = CliRunner().invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(bad)])
    assert done.exit_code == 2
    assert "gbk.toml" in done.output and "not UTF-8 text" in done.output


def test_a_relative_config_is_kept_as_an_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "site.toml").write_text("[scoring]\nfail_below = 50\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config("site.toml")
    monkeypatch.chdir("/")
    assert config.files[1] == str(tmp_path / "site.toml")
    assert load_config(config.files[1]).sha256 == config.sha256  # a report from elsewhere finds it


def test_the_checks_parameters_have_no_code_defaults():
    """default.toml is the one place a check's parameter gets its value (as for the sections)."""
    from dataclasses import MISSING, fields

    from audit.judge.checks import CHECKS

    for rule_id, check in CHECKS.items():
        for spec in fields(check.params):
            assert spec.default is MISSING and spec.default_factory is MISSING, f"{rule_id}.{spec.name}"


@pytest.mark.parametrize("line, key", [
    ("max_rings = 3\n", "rules.timing.three_rings.max_rings"),
    ("grace_s = 10.0\n", "rules.timing.hold_overrun.grace_s"),
    ("max_monotone_share = 0.5", "rules.prosody.monotone.max_monotone_share"),
    ("vague_hold_s = 60.0", "timing.vague_hold_s"),
])
def test_a_key_missing_from_the_defaults_names_it_and_the_defaults_file(tmp_path, monkeypatch, line, key):
    """No code default fills a gap in default.toml: the load stops, naming the key and that file,
    also when a site file is laid over it."""
    import audit.configload

    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    start = text.index(line)
    (tmp_path / "default.toml").write_text(text[:start] + text[text.index("\n", start) + 1:], encoding="utf-8")
    (tmp_path / "rulebook.toml").write_bytes((DEFAULT_CONFIG.parent / "rulebook.toml").read_bytes())
    site = tmp_path / "site.toml"
    site.write_text('[company]\nname = "蓝天银行"\n', encoding="utf-8")
    monkeypatch.setattr(audit.configload, "DEFAULT_CONFIG", tmp_path / "default.toml")
    for given in (None, site):
        with pytest.raises(ConfigError) as caught:
            load_config(given)
        assert (caught.value.key, caught.value.reason) == (key, "missing")
        assert caught.value.file == str(tmp_path / "default.toml")


def test_a_site_file_sets_a_rulebook_rule_like_any_other(tmp_path):
    """One namespace: `[rules."<id>"]` sets severity, weight and enabled of a rulebook rule as of a
    built-in check, and the verdict follows."""
    from audit.judge.rules import dialogue_context
    from audit.judge.scoring import score_call

    site = tmp_path / "site.toml"
    site.write_text('[rules."text.closing"]\nweight = 1\nseverity = "critical"\n'
                    '[rules."text.forbidden.jargon"]\nenabled = false\n'
                    '[rules."timing.cut_off"]\nweight = 12\n', encoding="utf-8")
    default, config = load_config(), load_config(site)
    assert (config.rules["text.closing"].weight, config.rules["text.closing"].severity) == (1.0, "critical")
    assert config.rules["text.closing"].params is None  # its conditions live in the rulebook
    assert config.weights["text.closing"] == 1.0 and config.weights["timing.cut_off"] == 12.0
    assert default.weights["text.closing"] == default.rulebook.rule("text.closing").weight != 1.0
    assert not config.rules["text.forbidden.jargon"].enabled
    assert config.sha256 != default.sha256  # a changed weight re-audits
    closing = config.rulebook.rule("text.closing")
    call = dialogue_context(closing.fail_examples[0], config.company_names)
    results = config.rulebook.evaluate(call)
    failed = next(r for r in results if r.rule_id == "text.closing")
    assert (failed.status, failed.severity, failed.details["weight"]) == ("fail", "critical", 1.0)
    assert "text.forbidden.jargon" not in {r.rule_id for r in results}
    score, _, verdict = score_call((failed,), config.weights, config.scoring)
    assert (score, verdict) == (99.0, "fail")  # critical now: one point off, and the call fails
    as_shipped = {r.rule_id: r for r in default.rulebook.evaluate(call)}
    assert "text.forbidden.jargon" in as_shipped
    score, _, verdict = score_call((as_shipped["text.closing"],), default.weights, default.scoring)
    assert (score, verdict) == (100.0 - default.weights["text.closing"], "review")


@pytest.mark.parametrize("text, key, reason", [
    ('[rules."text.closing"]\nweight = -1\n', "rules.text.closing.weight", "outside the allowed range"),
    ('[rules."text.closing"]\nseverity = "fatal"\n', "rules.text.closing.severity", "is not one of"),
    ('[rules."text.closing"]\nany = ["再见"]\n', "rules.text.closing.any", "a rulebook rule takes"),
    ('[rules."text.closings"]\nweight = 1\n', "rules.text.closings", "no such rule"),
    ("rules = 5\n", "rules", "must be a table of rule tables"),
])
def test_a_bad_rulebook_rule_setting_names_the_site_file_and_key(tmp_path, text, key, reason):
    site = tmp_path / "site.toml"
    site.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(site)
    assert (caught.value.key, caught.value.file) == (key, str(site))
    assert reason in caught.value.reason


def test_a_refitted_intent_model_changes_the_config_hash(tmp_path):
    """The rulebook's text alone does not say how its models judge: a model fitted again (same
    rulebook, same data, another threshold) must re-audit, as an edited rulebook does."""
    import json
    import shutil

    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    before = load_config(configs / "default.toml").sha256
    model_file = configs / "models" / "hedge.json"
    model = json.loads(model_file.read_text(encoding="utf-8"))
    model["threshold"] = min(1.0, model["threshold"] + 0.01)
    model_file.write_text(json.dumps(model, ensure_ascii=False), encoding="utf-8")
    assert load_config(configs / "default.toml").sha256 != before
