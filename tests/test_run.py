"""`audit run` as users run it: the demo invocation, folders with bad files, exit codes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURE_CALLS, ROOT


def audit(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "audit", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def demo_command() -> list[str]:
    """The `audit run` line of the Makefile's demo target, so this test follows the Makefile."""
    lines = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].splitlines()
    recipe = next(line.strip() for line in lines[1:] if line.startswith("\t"))
    return recipe.replace("$(BIN)/audit ", "").split()


def test_demo_invocation(tmp_path):
    """The demo audits the natural-voice calls; with their true transcripts (`--asr sidecar`, the
    fast way to run the Makefile's own line here) every rule outcome is truth's. From the audio with
    the real Whisper base, see test_whisper.py and bench/e2e_bench.py."""
    args = demo_command()
    assert args[:2] == ["run", "fixtures/natural"] and args[2:4] == ["--out", "out/demo"]
    args[3] = str(tmp_path / "demo")
    done = audit(*args, "--asr", "sidecar")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text(encoding="utf-8"))
    calls = json.loads((ROOT / "fixtures" / "natural" / "truth.json").read_text(encoding="utf-8"))["calls"]
    assert summary["counts"]["audited"] == len(calls) and summary["errors"] == []
    for name, facts in calls.items():
        record = json.loads((tmp_path / "demo" / "calls" / f"natural__{name}.json").read_text(encoding="utf-8"))
        assert record["schema"] == "call-audit/1" and record["transcript_source"] == "sidecar"
        assert record["recording"]["duration_s"] == pytest.approx(facts["duration_s"], abs=0.01)
        failed = {r["rule_id"] for r in record["results"] if r["status"] == "fail"}
        assert failed == {rule for rule, want in facts["expected"].items() if want == "fail"}, name
        assert name in done.stdout
    assert f"{len(calls)} of {len(calls)} recordings audited" in done.stdout


def test_the_sample_calls_with_their_sidecars_give_truths_findings(tmp_path, truth):
    """The espeak-ng sample calls (fixtures/calls: exact timing truth), in auto mode with no model
    to load: each record says the sidecar was used, and the failed rules are truth's."""
    done = audit("run", "fixtures/calls", "--out", tmp_path / "demo", "--model", tmp_path / "absent.pt")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text(encoding="utf-8"))
    calls = truth["calls"]
    assert summary["counts"]["audited"] == len(calls) and summary["errors"] == []
    assert summary["asr"]["mode"] == "auto" and summary["asr"]["whisper_error"]  # no weights here
    for name, facts in calls.items():
        record = json.loads((tmp_path / "demo" / "calls" / f"calls__{name}.json").read_text(encoding="utf-8"))
        assert record["schema"] == "call-audit/1"
        assert record["transcript_source"] == "sidecar"
        assert record["recording"]["duration_s"] == pytest.approx(facts["duration_s"], abs=0.01)
        assert [u["text"] for u in record["utterances"]] == [u["text"] for u in facts["utterances"]]
        opening = next(r for r in record["results"] if r["rule_id"] == "opening.golden_30s")
        assert (opening["status"] == "pass") == facts["expected"]["opening_complete"]
        assert name in done.stdout
        failed = {r["rule_id"] for r in record["results"] if r["status"] == "fail"}
        assert failed == set(facts["expected"]["failed_rules"]), name
    assert summary["fails_by_rule"]["opening.golden_30s"] == 1
    assert summary["fails_by_agent"]["2077"]["fails"]["opening.golden_30s"] == 1
    assert "7 of 7 recordings audited" in done.stdout


def test_each_sample_call_gets_truths_verdict_and_score(tmp_path, truth):
    """End to end through the CLI with the true transcripts: each call's verdict, score and
    subscores are what its truth scores to (fixtures/generate.py deducts the expected failed rules'
    configured weights itself, so a scoring or wiring bug cannot agree with itself)."""
    from audit.configload import load_config

    config = load_config()
    assumed = {rule_id: {"weight": config.rules[rule_id].weight, "severity": config.rules[rule_id].severity}
               for rule_id in truth["scoring"]["rules"]}
    assert (config.scoring.fail_below, assumed) == (truth["scoring"]["fail_below"], truth["scoring"]["rules"]), (
        "the weights, severities or fail_below changed: rerun `.venv/bin/python fixtures/generate.py --scores`")
    done = audit("run", "fixtures/calls", "--out", tmp_path / "out", "--asr", "sidecar")
    assert done.returncode == 0, done.stderr
    verdicts = set()
    for name, facts in truth["calls"].items():
        record = json.loads((tmp_path / "out" / "calls" / f"calls__{name}.json").read_text(encoding="utf-8"))
        expected = facts["expected"]
        failed = sorted(r["rule_id"] for r in record["results"] if r["status"] == "fail")
        assert failed == expected["failed_rules"], name
        assert not [r for r in record["results"] if r["status"] == "unsure"], name
        assert (record["verdict"], record["score"], record["subscores"]) == (
            expected["verdict"], expected["score"], expected["subscores"]), name
        verdicts.add(expected["verdict"])
    assert verdicts == {"pass", "review", "fail"}  # the sample calls show all three


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    folder = tmp_path / "in"
    (folder / "day" / "team").mkdir(parents=True)
    for name in ("compliant", "missing_agent_id"):
        for suffix in (".wav", ".transcript.json", ".meta.json"):
            shutil.copy(FIXTURE_CALLS / f"{name}{suffix}", folder / "day" / "team" / f"{name}{suffix}")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.mp3").write_text("not audio at all", encoding="utf-8")
    data = (FIXTURE_CALLS / "missing_agent_id.wav").read_bytes()
    (folder / "cut.wav").write_bytes(data[: len(data) // 3])
    shutil.copy(FIXTURE_CALLS / "missing_agent_id.wav", folder / "broken_sidecar.wav")
    (folder / "broken_sidecar.transcript.json").write_text('{"utterances": [{"speaker": "boss"}]}')
    shutil.copy(FIXTURE_CALLS / "missing_agent_id.wav", folder / "no_transcript.wav")
    (folder / "readme.txt").write_text("ignored: not a recording extension")
    return folder


def test_bad_files_are_reported_and_the_run_goes_on(tmp_path, mixed_folder):
    done = audit("run", mixed_folder, "--out", tmp_path / "out", "--asr", "sidecar")
    assert done.returncode == 1, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["files"] == 7 and summary["counts"]["audited"] == 2
    audited = sorted(c["call_id"] for c in summary["calls"])
    assert audited == ["in__day__team__compliant", "in__day__team__missing_agent_id"]
    reasons = {e["call_id"].removeprefix("in__"): e["reason"] for e in summary["errors"]}
    assert reasons["empty"] == "empty file (0 bytes)"
    assert "not a readable audio file" in reasons["notes"]
    assert "truncated" in reasons["cut"]
    assert "broken_sidecar.transcript.json" in reasons["broken_sidecar"] and "speaker" in reasons["broken_sidecar"]
    assert "no sidecar transcript no_transcript.transcript.json" in reasons["no_transcript"]
    for call_id in audited:
        assert (tmp_path / "out" / "calls" / f"{call_id}.json").exists()
    assert "empty file" in done.stdout and "2 of 7 recordings audited" in done.stdout


def test_auto_without_model_or_sidecar_says_what_is_missing(tmp_path, mixed_folder):
    done = audit("run", mixed_folder / "no_transcript.wav", "--out", tmp_path / "out",
                 "--model", tmp_path / "absent.pt")
    assert done.returncode == 1
    (error,) = json.loads((tmp_path / "out" / "summary.json").read_text())["errors"]
    assert "Whisper is unavailable" in error["reason"] and "absent.pt" in error["reason"]
    assert "no sidecar no_transcript.transcript.json" in error["reason"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "/no/such/folder", "--out", "OUT"], "no such file or folder"),
        (["run", "EMPTY", "--out", "OUT"], "no recordings"),
        (["run", "fixtures/calls", "--out", "OUT", "--asr", "whisper", "--model", "/no/model.pt"],
         "cannot load Whisper model"),
        (["run", "fixtures/calls", "--out", "OUT", "--asr", "deepgram"], "Invalid value"),
    ],
)
def test_invocation_errors_exit_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("OUT", str(tmp_path / "out")).replace("EMPTY", str(tmp_path / "empty")) for a in args]
    done = audit(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_help_lists_the_options():
    done = audit("run", "--help")
    assert done.returncode == 0
    for option in ("--out", "--config", "--asr", "--model", "--device"):
        assert option in done.stdout


def test_each_run_logs_to_its_own_file_only(tmp_path, mixed_folder):
    """Two runs in one process (a scheduler, a notebook): the first run's log file gets nothing of
    the second, and no handler is left behind on the root logger."""
    import logging

    from typer.testing import CliRunner

    from audit.cli import app

    call = mixed_folder / "day" / "team" / "compliant.wav"
    handlers = list(logging.getLogger().handlers)
    for name in ("first", "second"):
        done = CliRunner().invoke(app, ["run", str(call), "--out", str(tmp_path / name), "--asr", "sidecar"])
        assert done.exit_code == 0, done.output
    assert logging.getLogger().handlers == handlers
    (first_log,) = (tmp_path / "first" / "logs").glob("run-*.log")
    (second_log,) = (tmp_path / "second" / "logs").glob("run-*.log")
    assert str(tmp_path / "second") not in first_log.read_text(encoding="utf-8")
    assert str(tmp_path / "second") in second_log.read_text(encoding="utf-8")
