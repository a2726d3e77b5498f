"""The nightly batch: resumable after kill -9, incremental, one run per folder, workers, exports."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


from audit.run.batch import BatchOptions, discover, run_batch
from audit.configload import load_config
from audit.records import CallMeta
from audit.present.store import OutputLock
from conftest import FIXTURE_CALLS, ROOT
from nights import audit, copy_call, night_folder

def _db(out: Path):
    return sqlite3.connect(out / "audit.sqlite")


def test_kill_and_resume(tmp_path):
    folder = night_folder(tmp_path / "night", 28)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "audit", "run", str(folder), "--out", str(out), "--asr", "sidecar",
               "--workers", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and process.poll() is None:
        if (out / "audit.sqlite").exists():
            try:
                done = _db(out).execute("SELECT count(*) FROM calls").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 5:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 5 <= done < 28, "the run must be killed part-way"
    with _db(out) as db:
        interrupted = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        assert db.execute("SELECT status FROM runs").fetchall() == [("running",)]
    assert interrupted < 28

    again = audit("run", folder, "--out", out, "--asr", "sidecar", "--workers", "1")
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["skipped"] == interrupted
    assert summary["counts"]["audited_now"] == 28 - interrupted
    expected = sorted(job.call_id for job in discover([folder]))
    with _db(out) as db:
        ids = [row[0] for row in db.execute("SELECT call_id FROM calls ORDER BY call_id")]
        assert ids == expected  # every call once, none lost
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 28 * len(load_config().weights)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert sorted(p.stem for p in (out / "calls").glob("*.json")) == expected
    assert not list((out / "calls").glob("*.tmp"))


def test_second_run_on_the_same_output_is_refused(tmp_path):
    folder = night_folder(tmp_path / "night", 2)
    out = tmp_path / "out"
    with OutputLock(out):
        refused = audit("run", folder, "--out", out, "--asr", "sidecar")
    assert refused.returncode == 3
    assert "in use by another audit process" in refused.stderr and f"pid {os.getpid()}" in refused.stderr
    assert not (out / "audit.sqlite").exists()
    assert audit("run", folder, "--out", out, "--asr", "sidecar").returncode == 0  # lock released


def test_incremental_force_and_changed_config(tmp_path):
    folder = night_folder(tmp_path / "night", 7)
    out = tmp_path / "out"
    config = load_config()
    first = run_batch([folder], out, config, BatchOptions(asr_mode="sidecar"))
    assert first.count("audited") == 7
    second = run_batch([folder], out, config, BatchOptions(asr_mode="sidecar"))
    assert second.count("skipped") == 7 and second.count("audited") == 0
    assert second.document["counts"]["audited"] == 7  # the summary still covers every call
    forced = run_batch([folder], out, config, BatchOptions(asr_mode="sidecar", force=True))
    assert forced.count("audited") == 7
    site = tmp_path / "site.toml"
    site.write_text('[rules."timing.first_words"]\nmax_delay_s = 6.0\n', encoding="utf-8")
    changed = run_batch([folder], out, load_config(site), BatchOptions(asr_mode="sidecar"))
    assert changed.count("audited") == 7  # any threshold may change any verdict
    late = next(c for c in changed.document["calls"] if c["call_id"].endswith("late_answer-001"))
    assert "timing.first_words" not in late["failed_rules"]
    # an edited recording is re-audited on its own
    edited = next(folder.rglob("compliant-000.wav"))
    data = edited.read_bytes()
    edited.unlink()
    edited.write_bytes(data[:-2] + b"\x01\x00")
    after_edit = run_batch([folder], out, load_config(site), BatchOptions(asr_mode="sidecar"))
    assert after_edit.count("audited") == 1 and after_edit.count("skipped") == 6
    # so is a call whose sidecar transcript was corrected, or whose manifest entry changed
    transcript = next(folder.rglob("fast_agent-003.transcript.json"))
    text = transcript.read_text(encoding="utf-8")
    transcript.unlink()  # a hard link to the fixture: replace it, do not write through it
    transcript.write_text(text.replace("您好", "你好", 1), encoding="utf-8")
    manifest = {"night__team2__missing_agent_id-002": CallMeta(agent_id="A-77")}
    after_sidecars = run_batch([folder], out, load_config(site),
                               BatchOptions(asr_mode="sidecar", manifest=manifest))
    assert sorted(o.job.call_id for o in after_sidecars.outcomes if o.state == "audited") == [
        "night__team0__fast_agent-003", "night__team2__missing_agent_id-002"]
    with _db(out) as db:
        assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == 7
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 6


def test_worker_count_gives_identical_results(tmp_path):
    folder = night_folder(tmp_path / "night", 7)
    one = run_batch([folder], tmp_path / "one", load_config(), BatchOptions(asr_mode="sidecar", workers=1))
    two = run_batch([folder], tmp_path / "two", load_config(), BatchOptions(asr_mode="sidecar", workers=2))
    assert one.count("audited") == two.count("audited") == 7
    for record in (tmp_path / "one" / "calls").glob("*.json"):
        assert record.read_text(encoding="utf-8") == (tmp_path / "two" / "calls" / record.name).read_text(
            encoding="utf-8")


def test_corrupt_files_in_a_large_folder(tmp_path):
    folder = night_folder(tmp_path / "night", 42)
    bad = folder / "bad"
    bad.mkdir()
    samples = (FIXTURE_CALLS / "missing_agent_id.wav").read_bytes()
    for index in range(8):
        kinds = [b"", b"garbage" * 100, samples[: len(samples) // 4], b"RIFF\x00\x00\x00\x00WAVE"]
        (bad / f"broken-{index}.wav").write_bytes(kinds[index % 4])
    out = tmp_path / "out"
    done = audit("run", folder, "--out", out, "--asr", "sidecar")
    assert done.returncode == 1
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"] | {} == summary["counts"]
    assert summary["counts"]["audited"] == 42 and summary["counts"]["errors"] == 8
    assert all(e["reason"] and e["call_id"].startswith("night__bad__broken-") for e in summary["errors"])
    rerun = run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar"))
    assert rerun.count("skipped_failed") == 8 and rerun.count("skipped") == 42
    retried = run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar", retry_failed=True))
    assert retried.count("failed") == 8 and retried.count("skipped") == 42


def test_status_and_csv_export(tmp_path):
    folder = night_folder(tmp_path / "night", 7)
    (folder / "bad.wav").write_bytes(b"")
    out = tmp_path / "out"
    run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar"))
    copy_call("compliant", folder, "arrived-late")  # not yet audited
    status = audit("status", out)
    assert status.returncode == 0
    assert "calls in the database: 7" in status.stdout and "recordings that failed: 1" in status.stdout
    assert "left to audit from the last run's folders: 1" in status.stdout and "arrived-late" in status.stdout

    calls_csv, findings_csv = tmp_path / "calls.csv", tmp_path / "findings.csv"
    exported = audit("export", out, "--csv", calls_csv, "--findings", findings_csv)
    assert exported.returncode == 0, exported.stderr
    with open(calls_csv, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert sorted(r["call_id"] for r in rows) == sorted(c["call_id"] for c in summary["calls"])
    by_id = {r["call_id"]: r for r in rows}
    for call in summary["calls"]:
        row = by_id[call["call_id"]]
        assert row["verdict"] == call["verdict"] and float(row["score"]) == call["score"]
        assert row["failed_rules"] == ";".join(sorted(call["failed_rules"]))
    with open(findings_csv, encoding="utf-8-sig", newline="") as handle:
        findings = list(csv.DictReader(handle))
    assert len(findings) == sum(len(c["failed_rules"]) for c in summary["calls"])
    cut = next(f for f in findings if f["rule_id"] == "timing.cut_off")
    assert "那我这个问题到底什么时候能" in cut["text"] and cut["agent_id"] == "2077"


def test_readme_queries_run(tmp_path):
    """The SQL examples in the README work on a real results database."""
    folder = night_folder(tmp_path / "night", 7)
    out = tmp_path / "out"
    run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar"))
    from audit.present.review import current_findings, import_reviews
    from audit.present.store import ResultsDB

    db = ResultsDB(out)
    finding = next(iter(current_findings(db).values()))
    db.close()
    decision = {"finding": finding.key, "rule_id": finding.rule_id, "moment": finding.moment, "decision": "dismiss",
                "reason": "规则误判", "reviewer": "李雷", "decided_at": "2026-11-23T09:00:00Z"}
    (tmp_path / "review.json").write_text(json.dumps({"schema": "audit-review/1", "decisions": [decision]}))
    import_reviews(out, tmp_path / "review.json", load_config().review.reasons)  # for the reviews query
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    queries = [block.split("```", 1)[0].strip() for block in readme.split("```sql")[1:]]
    assert queries
    with _db(out) as db:
        for query in queries:
            rows = db.execute(query).fetchall()
            assert rows, query


def test_include_exclude_manifest_and_agent_id_from_file_name(tmp_path):
    folder = tmp_path / "night"
    copy_call("compliant", folder / "team1", "0086_a")
    copy_call("late_answer", folder / "team1", "1024_b")
    copy_call("missing_agent_id", folder / "team2", "2077_c")
    copy_call("fast_agent", folder / "test", "9999_d")
    for meta in folder.rglob("*.meta.json"):
        meta.unlink()  # metadata comes from the manifest and the file names here
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("call_id,agent_id,ring_start,answer_at\nnight__team1__1024_b,7777,0.2,22.2\n",
                        encoding="utf-8")
    site = tmp_path / "site.toml"
    site.write_text("[metadata]\nagent_id_from_name = '^(?P<agent>\\d{4})_'\n", encoding="utf-8")
    out = tmp_path / "out"
    done = audit("run", folder, "--out", out, "--asr", "sidecar", "--exclude", "test/*",
                 "--manifest", manifest, "--config", site)
    assert done.returncode == 0, done.stderr
    calls = {c["call_id"]: c for c in json.loads((out / "summary.json").read_text())["calls"]}
    assert sorted(calls) == ["night__team1__0086_a", "night__team1__1024_b", "night__team2__2077_c"]
    assert calls["night__team1__1024_b"]["agent_id"] == "7777"  # the manifest beats the file name
    assert calls["night__team1__0086_a"]["agent_id"] == "0086"
    record = json.loads((out / "calls" / "night__team1__1024_b.json").read_text())
    assert record["meta"]["answer_at"] == 22.2 and record["metrics"]["answer_s"] == 22.2
    only = audit("run", folder, "--out", tmp_path / "out2", "--asr", "sidecar", "--include", "team2/*")
    assert only.returncode == 0
    assert [c["call_id"] for c in json.loads((tmp_path / "out2" / "summary.json").read_text())["calls"]] \
        == ["night__team2__2077_c"]
    manifest.write_text("call_id,agent,answer_at\nx,1,2\n", encoding="utf-8")
    bad = audit("run", folder, "--out", out, "--asr", "sidecar", "--manifest", manifest)
    assert bad.returncode == 2 and "manifest.csv" in bad.stderr and "agent" in bad.stderr


class _KillsItsWorker:
    """Stands in for a recording that crashes native code: unpickling it ends the worker process."""

    def __reduce__(self):
        return (os._exit, (70,))


def test_a_worker_that_dies_costs_only_its_own_call(tmp_path):
    from audit.run.batch import _run_parallel
    from audit.run.pipeline import Job

    folder = night_folder(tmp_path / "night", 5)
    jobs = discover([folder])
    crash = Job(folder / "crash.wav", "night__crash")
    object.__setattr__(crash, "meta", _KillsItsWorker())  # travels with the job to the worker
    outcomes = []
    _run_parallel([*jobs[:2], crash, *jobs[2:]], load_config(), BatchOptions(asr_mode="sidecar", workers=2),
                  None, outcomes.append, tmp_path / "out" / "report")
    states = {o.job.call_id: o.state for o in outcomes}
    assert states.pop("night__crash") == "failed"
    assert states == {job.call_id: "audited" for job in jobs}
    (crashed,) = [o for o in outcomes if o.job.call_id == "night__crash"]
    assert "worker process died" in crashed.reason


def test_a_version_1_database_is_upgraded_in_place_and_its_calls_audited_again(tmp_path):
    """Version 1 did not record the sidecars' hash: its calls are kept, then audited once more."""
    from audit.present.store import MIGRATIONS

    folder = night_folder(tmp_path / "night", 2)
    out = tmp_path / "out"
    run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar"))
    with _db(out) as db:  # take the database back to version 1
        db.execute("ALTER TABLE calls DROP COLUMN inputs_sha256")
        db.execute("ALTER TABLE errors DROP COLUMN inputs_sha256")
        db.execute("DROP TABLE secrets")
        db.execute("DROP TABLE reviews")
        db.execute("PRAGMA user_version = 1")
    again = run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar"))
    assert again.count("audited") == 2
    with _db(out) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 5
        assert db.execute("SELECT count(*) FROM calls WHERE inputs_sha256 IS NOT NULL").fetchone()[0] == 2
    assert run_batch([folder], out, load_config(), BatchOptions(asr_mode="sidecar")).count("skipped") == 2
