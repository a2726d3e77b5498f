"""The night on Ray (`audit run --ray`, issue 18): the same records as a local run, the same
guarantees (skip, --force, --retry-failed, resume after the driver is killed, an actor that dies
costs only its calls, bad recordings reported per file), on one local Ray instance shared by the
module (`ray.init(num_cpus=2)`, nothing beyond this machine)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile

from audit.run.batch import BatchOptions, discover, run_batch
from audit.config import ConfigError
from audit.configload import load_config
from audit.run.pipeline import Job
from conftest import FIXTURE_CALLS, ROOT
from nights import audit, night_folder

ray = pytest.importorskip("ray", reason="the cluster extra is not installed (`make install` installs it)")

def _short_calls(folder: Path, count: int) -> Path:
    """`count` copies of the first 20 s of the compliant call with its transcript: quick to audit."""
    samples, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="float32", always_2d=True)
    transcript = json.loads((FIXTURE_CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))
    transcript["utterances"] = [u for u in transcript["utterances"] if u["end"] <= 20]
    folder.mkdir(parents=True)
    for index in range(count):
        soundfile.write(folder / f"call{index:02d}.wav", samples[: 20 * rate], rate, subtype="PCM_16")
        (folder / f"call{index:02d}.transcript.json").write_text(json.dumps(transcript, ensure_ascii=False),
                                                                 encoding="utf-8")
    return folder


def sidecar(**options) -> BatchOptions:
    return BatchOptions(asr_mode="sidecar", **options)


@pytest.fixture(scope="module")
def cluster() -> str:
    """One local Ray instance for the module; its address, for drivers in other processes."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actor-killing job below
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def night(tmp_path_factory, cluster):
    """The seven sample calls with broken recordings among them, audited once on this machine and
    once on Ray."""
    root = tmp_path_factory.mktemp("ray")
    folder = night_folder(root / "night", 7)
    samples = (FIXTURE_CALLS / "missing_agent_id.wav").read_bytes()
    for name, data in (("empty", b""), ("garbage", b"garbage" * 100), ("truncated", samples[: len(samples) // 4]),
                       ("header_only", b"RIFF\x00\x00\x00\x00WAVE")):
        (folder / "bad").mkdir(exist_ok=True)
        (folder / "bad" / f"{name}.wav").write_bytes(data)
    local = run_batch([folder], root / "local", load_config(), sidecar(workers=1))
    on_ray = run_batch([folder], root / "ray", load_config(), sidecar(ray="auto"))
    return {"folder": folder, "local": local, "ray": on_ray}


def _records(out: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in (out / "calls").glob("*.json")}


def _stored(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "audit.sqlite") as db:
        return dict(db.execute("SELECT call_id, record FROM calls"))


def test_without_the_option_nothing_of_ray_is_imported(tmp_path):
    folder = _short_calls(tmp_path / "night", 1)
    code = ("import sys\nfrom audit.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    done = subprocess.run([sys.executable, "-c", code, "run", str(folder), "--out", str(tmp_path / "out"),
                           "--asr", "sidecar", "--workers", "1"], capture_output=True, text=True, cwd=ROOT)
    assert (tmp_path / "out" / "calls" / "night__call00.json").exists(), done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_call_record_on_ray_is_the_local_one(night):
    local, on_ray = night["local"], night["ray"]
    assert on_ray.document["cluster"]["auditors"] == 2 and local.document["cluster"] is None
    assert on_ray.count("audited") == local.count("audited") == 7
    assert _records(on_ray.out) == _records(local.out)  # byte for byte
    assert _stored(on_ray.out) == _stored(local.out)
    assert on_ray.document["calls"] == local.document["calls"]
    assert on_ray.document["asr"] == local.document["asr"]


def test_bad_recordings_are_reported_per_file_as_locally(night):
    errors = {e["call_id"]: e["reason"] for e in night["ray"].document["errors"]}
    assert errors == {e["call_id"]: e["reason"] for e in night["local"].document["errors"]}
    assert sorted(errors) == [f"night__bad__{name}" for name in ("empty", "garbage", "header_only", "truncated")]
    assert all(errors.values())


def test_the_summary_gives_each_nodes_throughput(night):
    (node,) = night["ray"].document["nodes"]
    assert node["calls"] == 11 and node["failed"] == 4 and node["calls_per_min"] > 0
    assert node["audit_s"] > 0 and "(" in node["node"]  # host name and the node's address
    summary = json.loads((night["ray"].out / "summary.json").read_text(encoding="utf-8"))
    assert summary["nodes"] == night["ray"].document["nodes"]
    assert summary["cluster"]["ray"] == "auto" and summary["cluster"]["setup_s"] > 0


def test_skip_retry_failed_and_force_hold_across_local_and_ray(night):
    """The plan is the driver's: a folder audited on one machine is skipped on Ray, and back."""
    local_out = night["local"].out
    again = run_batch([night["folder"]], local_out, load_config(), sidecar(ray="auto", retry_failed=True))
    assert again.count("skipped") == 7 and again.count("failed") == 4 and again.count("audited") == 0
    assert _records(local_out) == _records(night["ray"].out)
    forced = run_batch([night["folder"]], night["ray"].out, load_config(),
                       sidecar(ray="auto", force=True, include=("team0/*",)))
    assert forced.count("audited") == 3
    back = run_batch([night["folder"]], night["ray"].out, load_config(), sidecar())
    assert back.count("skipped") == 7 and back.count("skipped_failed") == 4
    assert _records(local_out) == _records(night["ray"].out)


def test_resume_after_the_driver_is_killed(cluster, tmp_path):
    folder = _short_calls(tmp_path / "night", 12)
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "audit", "run", str(folder), "--out", str(out),
                               "--asr", "sidecar", "--ray", cluster], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and done < 3 and driver.poll() is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(out / "audit.sqlite") as db:
                done = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        except sqlite3.OperationalError:
            continue
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with sqlite3.connect(out / "audit.sqlite") as db:
        interrupted = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        assert db.execute("SELECT status FROM runs").fetchall() == [("running",)]
    assert 3 <= interrupted < 12, "the driver must be killed part-way"
    again = run_batch([folder], out, load_config(), sidecar(ray="auto"))
    assert again.count("skipped") == interrupted and again.count("audited") == 12 - interrupted
    expected = sorted(job.call_id for job in discover([folder]))
    with sqlite3.connect(out / "audit.sqlite") as db:
        assert [row[0] for row in db.execute("SELECT call_id FROM calls ORDER BY call_id")] == expected
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 12 * len(load_config().weights)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert sorted(p.stem for p in (out / "calls").glob("*.json")) == expected
    assert not list(out.rglob("*.tmp"))


class _KillsItsActor:
    """Stands in for a recording that crashes native code: unpickling it ends the actor's process."""

    def __reduce__(self):
        return (os._exit, (70,))


def _auditing_pids() -> list[int]:
    """The auditor actors of this Ray instance that are in the middle of a call."""
    from ray._private import state

    pids = [actor["Pid"] for actor in state.actors().values()
            if actor["ActorClassName"] == "Auditor" and actor["State"] == "ALIVE"]
    busy = []
    for pid in pids:
        try:
            title = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::Auditor.audit"):
            busy.append(pid)
    return busy


def test_an_actor_killed_mid_call_costs_only_its_call(cluster, tmp_path):
    from audit.run.cluster import RayExecutor

    folder = _short_calls(tmp_path / "night", 5)
    jobs = discover([folder])
    crash = Job(folder / "crash.wav", "night__crash")
    object.__setattr__(crash, "meta", _KillsItsActor())  # travels with the job to the actor
    outcomes, killed = [], []

    def kill_one_mid_call():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for pid in _auditing_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    with RayExecutor(load_config(), "auto", "sidecar", None, None) as executor:
        killer = threading.Thread(target=kill_one_mid_call)
        killer.start()
        executor.run([*jobs[:3], crash, *jobs[3:]], outcomes.append)
        killer.join()
    assert killed, "no auditor was caught mid-call"
    states = {o.job.call_id: o.state for o in outcomes}
    assert len(outcomes) == len(states) == 6  # every call once
    assert states.pop("night__crash") == "failed"
    assert states == {job.call_id: "audited" for job in jobs}  # the killed actor's calls were retried
    (crashed,) = [o for o in outcomes if o.job.call_id == "night__crash"]
    assert "actor auditing this recording died, also when the call was tried again alone" in crashed.reason


def test_whisper_on_a_shared_model_actor_gives_the_local_records(cluster, tiny_whisper, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    samples, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="float32")
    soundfile.write(folder / "compliant.wav", samples[: 20 * rate], rate, subtype="ULAW")  # no sidecar
    site = tmp_path / "share.toml"
    site.write_text('[asr]\nshare_model = "always"\n', encoding="utf-8")
    options = dict(asr_mode="whisper", model=str(tiny_whisper), device="cpu")
    local = run_batch([folder], tmp_path / "local", load_config(), BatchOptions(**options))
    on_ray = run_batch([folder], tmp_path / "ray", load_config(site), BatchOptions(**options, ray="auto"))
    assert on_ray.document["cluster"]["model_actors"] == 1 and on_ray.document["asr"]["shared_model"] is True
    assert local.document["asr"]["whisper_model"] == on_ray.document["asr"]["whisper_model"]
    (record,) = _records(on_ray.out).values()
    assert json.loads(record)["transcript_source"] == "whisper"
    assert _records(on_ray.out) == _records(local.out)


def test_cluster_settings_are_validated(tmp_path):
    for text, message in (('ray = "http://head"', "is not a Ray cluster address"),
                          ("calls_per_auditor = 0", "outside the allowed range")):
        site = tmp_path / "site.toml"
        site.write_text(f"[cluster]\n{text}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as raised:
            load_config(site)
        assert raised.value.file == str(site) and raised.value.key.startswith("cluster.")
    done = audit("run", FIXTURE_CALLS, "--out", tmp_path / "out", "--ray", "head")
    assert done.returncode == 2 and "--ray: 'head' is not a Ray cluster address" in done.stderr
    nobody = audit("run", FIXTURE_CALLS, "--out", tmp_path / "out", "--asr", "sidecar", "--ray", "127.0.0.1:1")
    assert nobody.returncode == 2 and "cannot reach the Ray cluster at '127.0.0.1:1'" in nobody.stderr
    assert not (tmp_path / "out" / "audit.sqlite").exists()  # nothing audited
