"""The two example norms of the README's "Adding a norm", written as configuration only
(tests/data/norms: rulebook tables and a site file), judged end to end on the sample calls' audio:
"the agent says 您 fewer than 5 times" and "the customer was held over 60 s twice"."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

from audit.configload import load_config
from audit.run.pipeline import AsrChoice, Job, audit_call
from audit.judge.rules import run_examples
from conftest import FIXTURE_CALLS, ROOT

NORMS = ROOT / "tests" / "data" / "norms"


def site_config(folder, min_hold_s: float = 60):
    """The shipped rulebook with the two norms appended, named by the site file: what a site does.
    `min_hold_s` is the X of "held over X s twice" (the sample calls' holds last 8 s)."""
    norms = (NORMS / "norms.toml").read_text(encoding="utf-8")
    assert "min_s = 60," in norms
    rulebook = (ROOT / "configs" / "rulebook.toml").read_text(encoding="utf-8") + "\n" + norms.replace(
        "min_s = 60,", f"min_s = {min_hold_s:g},")
    (folder / "rulebook.toml").write_text(rulebook, encoding="utf-8")
    for beside in ("models", "utterances"):  # the intent models and their data go with the rulebook
        shutil.copytree(ROOT / "configs" / beside, folder / beside, dirs_exist_ok=True)
    shutil.copy(NORMS / "site.toml", folder / "site.toml")
    return load_config(folder / "site.toml")


def result(audit, rule_id):
    return next(r for r in audit.results if r.rule_id == rule_id)


def test_the_norms_load_and_their_examples_agree(tmp_path):
    config = site_config(tmp_path)
    assert {"text.nin_count", "text.held_twice"} <= set(config.rules)
    rows = [row for row in run_examples(config.rulebook) if row.rule_id in ("text.nin_count", "text.held_twice")]
    assert len(rows) == 4 and all(row.ok for row in rows), rows


def test_agent_says_nin_fewer_than_five_times(tmp_path):
    """Counted in occurrences: the compliant agent says 您 well over five times; the agent of
    raised_voice says 你 instead and fails."""
    config = site_config(tmp_path)
    compliant = result(audit_call(Job(FIXTURE_CALLS / "compliant.wav", "compliant"), config, AsrChoice("sidecar")),
                       "text.nin_count")
    assert compliant.status == "pass" and len(compliant.details["matches"]) > 5
    assert all(m["match"] == "您" for m in compliant.details["matches"])
    rude = result(audit_call(Job(FIXTURE_CALLS / "raised_voice.wav", "raised_voice"), config, AsrChoice("sidecar")),
                  "text.nin_count")
    assert rude.status == "fail" and rude.message == "座席说“您”少于5次"
    assert 0 < len(rude.details["matches"]) < 5


def two_holds(folder):
    """The compliant call with its hold said and taken twice: the announcement (请您稍等一分钟)
    and the 8 s of silence after it are copied, sample for sample, in front of the thanks."""
    audio, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="int16")
    transcript = json.loads((FIXTURE_CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))
    utterances = transcript["utterances"]
    (announcement,) = [u for u in utterances if "稍等" in u["text"]]
    back = next(u for u in utterances if u["start"] > announcement["end"])
    before = max(u["end"] for u in utterances if u["end"] < announcement["start"])  # line noise from here
    first, last = round(before * rate), round(back["start"] * rate)
    shift = (last - first) / rate

    def moved(utterance):
        return {**utterance, "start": round(utterance["start"] + shift, 3), "end": round(utterance["end"] + shift, 3),
                "words": [{**w, "start": round(w["start"] + shift, 3), "end": round(w["end"] + shift, 3)}
                          for w in utterance.get("words", [])]}

    spliced = [u for u in utterances if u["start"] < back["start"]] + [moved(announcement)] + [
        moved(u) for u in utterances if u["start"] >= back["start"]]
    soundfile.write(folder / "held.wav", np.concatenate([audio[:last], audio[first:]]), rate, subtype="PCM_16")
    (folder / "held.transcript.json").write_text(json.dumps({"utterances": spliced}, ensure_ascii=False),
                                                 encoding="utf-8")
    shutil.copy(FIXTURE_CALLS / "compliant.meta.json", folder / "held.meta.json")
    return folder / "held.wav"


@pytest.mark.parametrize("min_hold_s, twice, verdict", [(5, True, "fail"), (10, True, "pass"), (5, False, "pass")])
def test_customer_held_over_x_seconds_twice(tmp_path, min_hold_s, twice, verdict):
    """Held over 5 s twice fails the call with two holds of 8 s; over 10 s it passes (neither
    lasted that long), and the compliant call, held once, passes."""
    config = site_config(tmp_path, min_hold_s)
    path = two_holds(tmp_path) if twice else FIXTURE_CALLS / "compliant.wav"
    audit = audit_call(Job(path, path.stem), config, AsrChoice("sidecar"))
    holds = result(audit, "timing.hold_overrun").details["holds"]  # what the timing stage measured
    assert len(holds) == (2 if twice else 1) and all(7.5 < h["duration_s"] < 9.0 for h in holds)
    held = result(audit, "text.held_twice")
    assert held.status == verdict
    if verdict == "fail":
        assert [(round(e.start, 2), round(e.end, 2)) for e in held.evidence] == [(h["start"], h["end"]) for h in holds]
