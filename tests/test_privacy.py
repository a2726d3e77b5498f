"""Masking the shared outputs (audit/privacy.py, `[privacy] mask_outputs`): ids, records, config.

The end-to-end proof (a run, its records, summary, export and logs with the setting on and off) is
in tests/test_faults.py; the report's own masking in tests/test_report.py.
"""

import copy

import pytest

from audit.config import ConfigError
from audit.configload import load_config
from audit.privacy import Privacy, mask_numbers, mask_record, masked_id

KEY = bytes(range(32))
PHONE = "13812345678"


def test_a_masked_id_is_stable_keyed_and_tells_calls_apart():
    one = masked_id("night__138_1234_5678", KEY)
    assert one == masked_id("night__138_1234_5678", KEY)  # the same file name on every run
    assert one.startswith("night__***_****_5678-") and len(one.rsplit("-", 1)[1]) == 8
    assert one.rsplit("-", 1)[1].isalpha()  # a tag of letters: no digits to be taken for a number
    assert masked_id("night__139_9999_5678", KEY) != one  # the same last four digits, another call
    assert masked_id("night__138_1234_5678", bytes(32)) != one  # another folder's key
    assert masked_id("2026-11-22__team1__a", KEY) == "2026-11-22__team1__a"  # nothing to mask


def test_a_disabled_privacy_changes_nothing():
    privacy = Privacy(False, KEY)
    record = {"call_id": f"x_{PHONE}", "utterances": [{"text": PHONE}]}
    assert privacy.record(record) is record and privacy.id(record["call_id"]) == record["call_id"]
    assert privacy.text(PHONE) == PHONE
    with pytest.raises(ValueError):
        Privacy(True)  # masked ids need the folder's key


def _record() -> dict:
    text = "您打138 1234 5678问问,不归我们管"
    return {
        "schema": "call-audit/1", "call_id": "night__138_1234_5678",
        "recording": {"path": "/rec/138 1234 5678.wav", "sha256": "0" * 20 + "13812345678" + "0" * 33,
                      "notes": [f"note about {PHONE}"]},
        "meta": {"agent_id": PHONE, "direction": "inbound"},
        "utterances": [
            {"speaker": "customer", "start": 1.0, "end": 3.0, "text": "号码是13812345678",
             "words": [{"start": 1.0, "end": 1.5, "text": "号码是"}, {"start": 1.5, "end": 2.0, "text": "138"},
                       {"start": 2.0, "end": 2.5, "text": "1234"}, {"start": 2.5, "end": 3.0, "text": "5678"}]},
            {"speaker": "agent", "start": 3.0, "end": 6.0, "text": text},
        ],
        "dropped_utterances": [{"speaker": "agent", "start": 7, "end": 8, "text": PHONE, "reason": "r"}],
        "metrics": {"answer_source": "line_open"},
        "results": [{"rule_id": "text.x", "status": "fail", "severity": "minor",
                     "message": f"“138 1234”({PHONE})",
                     "evidence": [{"start": 3.0, "end": 4.0, "speaker": "agent", "text": text,
                                   "match": "138 1234"}],
                     "details": {"matches": [{"utterance": 1, "span": [2, 10], "match": "138 1234"}]}}],
    }


def test_every_text_of_a_record_is_masked_and_numbers_split_over_words_too():
    record = _record()
    clear = copy.deepcopy(record)
    masked = Privacy(True, KEY).record(record)
    assert record == clear  # the record given is left as it was
    assert masked["masked"] is True and masked["call_id"] == masked_id(record["call_id"], KEY)
    assert masked["recording"]["path"] == "/rec/*** **** 5678.wav"
    assert masked["recording"]["sha256"] == record["recording"]["sha256"]  # the report checks the audio by it
    assert masked["meta"]["agent_id"] == "*******5678"
    words = [w["text"] for w in masked["utterances"][0]["words"]]
    assert words == ["号码是", "***", "****", "5678"]  # none of them a number alone
    assert masked["utterances"][1]["text"] == "您打*** **** 5678问问,不归我们管"
    evidence = masked["results"][0]["evidence"][0]
    assert evidence["match"] == "*** ****"  # masked as it reads in its utterance
    assert evidence["text"][2:10] == evidence["match"]
    assert masked["results"][0]["details"]["matches"][0]["match"] == "*** ****"
    shown = str({**masked, "recording": {**masked["recording"], "sha256": ""}})
    assert PHONE not in shown and "1234" not in shown


def test_mask_record_keeps_lengths_so_highlights_stay_valid():
    masked = mask_record(_record())
    for clear, shown in zip(_record()["utterances"], masked["utterances"]):
        assert len(clear["text"]) == len(shown["text"])
    assert mask_numbers(masked["utterances"][1]["text"]) == masked["utterances"][1]["text"]  # idempotent


@pytest.mark.parametrize("text, reason", [
    ('[privacy]\nmask_outputs = "yes"\n', "[privacy.mask_outputs] must be true or false, got 'yes'"),
    ("[privacy]\nmask_output = true\n", "[privacy.mask_output] unknown key; expected one of ['mask_outputs']"),
])
def test_the_privacy_setting_is_validated_on_load(tmp_path, text, reason):
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: {reason}"


def test_the_privacy_setting_is_off_by_default_and_re_audits_nothing(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text("[privacy]\nmask_outputs = true\n", encoding="utf-8")
    default, masked = load_config(), load_config(path)
    assert default.privacy.mask_outputs is False and masked.privacy.mask_outputs is True
    assert masked.sha256 == default.sha256  # the verdicts do not depend on it
