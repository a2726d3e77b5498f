"""Trust under bad input and faults (issue 16): no call is judged on evidence its recording does
not hold, a call's current state is one thing, ids never collide silently, broken records are
written again, and bad inputs are reported with the file and the reason."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audit.run.batch import BatchOptions, run_batch, run_status
from audit.configload import load_config
from audit.present.report import write_report
from audit.present.store import OutputError, OutputFull, OutputLock, RunLocked, check_output_folder, export_csv
from conftest import FIXTURE_CALLS, ROOT

SECONDS = 20  # the first 20 s of the compliant call: its greeting and the customer's first reply
RATE = 8000


def audit(*args):
    return subprocess.run([sys.executable, "-m", "audit", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def short_call():
    """(samples (frames, 2) float32 at 8 kHz, transcript dict, meta dict) of a 20-s compliant call."""
    samples, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="float32", always_2d=True)
    assert rate == RATE
    transcript = json.loads((FIXTURE_CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))
    transcript["utterances"] = [u for u in transcript["utterances"] if u["end"] <= SECONDS]
    meta = json.loads((FIXTURE_CALLS / "compliant.meta.json").read_text(encoding="utf-8"))
    return samples[: SECONDS * RATE], transcript, meta


def write_call(folder: Path, name: str, samples, transcript, meta, subtype="PCM_16", rate=RATE):
    folder.mkdir(parents=True, exist_ok=True)
    soundfile.write(folder / f"{name}.wav", samples, rate, subtype=subtype)
    (folder / f"{name}.transcript.json").write_text(json.dumps(transcript, ensure_ascii=False), "utf-8")
    (folder / f"{name}.meta.json").write_text(json.dumps(meta), "utf-8")


def with_rate(wav: bytes, rate: int) -> bytes:
    """The same WAV with another sample rate (and byte rate) written in its header."""
    data = bytearray(wav)
    channels, bits = int.from_bytes(data[22:24], "little"), int.from_bytes(data[34:36], "little")
    data[24:28] = rate.to_bytes(4, "little")
    data[28:32] = (rate * channels * bits // 8).to_bytes(4, "little")
    return bytes(data)


def run(folder: Path, out: Path, config, **options):
    return run_batch([folder], out, config, BatchOptions(asr_mode="sidecar", workers=1, **options))


@pytest.fixture(scope="module")
def night(tmp_path_factory, short_call, config):
    """One run over a folder of purpose-broken recordings and sidecars beside a good call."""
    samples, transcript, meta = short_call
    folder = tmp_path_factory.mktemp("faults") / "night"
    write_call(folder, "good", samples, transcript, meta)
    write_call(folder, "silence", np.zeros_like(samples), transcript, meta)
    write_call(folder, "one_sample", samples[:1], transcript, meta)
    write_call(folder, "all_nan", np.full_like(samples, np.nan), transcript, meta, subtype="FLOAT")
    noise = np.random.default_rng(0).normal(0, 0.03, samples.shape).astype(np.float32)
    write_call(folder, "noise", noise, transcript, meta)
    dotted = samples.copy()
    dotted.reshape(-1)[np.random.default_rng(1).choice(dotted.size, dotted.size // 100, replace=False)] = np.nan
    write_call(folder, "nan_1pct", dotted, transcript, meta, subtype="FLOAT")
    shifted = {"utterances": [u | {"start": u["start"] + 100, "end": u["end"] + 100, "words": []}
                              for u in transcript["utterances"]]}
    write_call(folder, "shifted", samples, shifted, meta)
    invented = {"utterances": [*transcript["utterances"],
                               {"speaker": "agent", "start": 1.0, "end": 5.0, "text": "感谢您的耐心等待"}]}
    write_call(folder, "invented", samples, invented, meta)
    write_call(folder, "answer_late", samples, transcript, meta | {"answer_at": 500})
    missed = {"utterances": [{"speaker": "customer", "start": 3.0, "end": 3.5, "text": "好的"},
                             *transcript["utterances"]]}  # between two rings: no speech under it
    write_call(folder, "one_missed", samples, missed, meta)
    shirking = [{"speaker": "agent", "start": 7.2 + i * 0.01, "end": 7.21 + i * 0.01, "text": "不归我们管"}
                for i in range(600)]  # under the agent's greeting: speech is there
    write_call(folder, "many", samples, {"utterances": transcript["utterances"] + shirking}, meta)
    for rate in (1, 200000):
        write_call(folder, f"rate_{rate}", samples, transcript, meta)
        path = folder / f"rate_{rate}.wav"
        path.write_bytes(with_rate(path.read_bytes(), rate))
    write_call(folder, "open_header", samples, transcript, meta)
    path = folder / "open_header.wav"
    wav = bytearray(path.read_bytes())
    wav[4:8] = wav[40:44] = bytes(4)  # RIFF and data sizes as a recorder writes them before it closes
    path.write_bytes(bytes(wav))
    write_call(folder, "bom", samples, transcript, meta)
    path = folder / "bom.transcript.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    for name, broken in (
        ("words_int", '{"utterances": [{"speaker": "agent", "start": 1, "end": 2, "text": "x", "words": 5}]}'),
        ("big_int", '{"utterances": [{"speaker": "agent", "start": 1%s, "end": 2, "text": "x"}]}' % ("0" * 400)),
        ("deep", '{"utterances": ' + "[" * 100000 + "]" * 100000 + "}"),
    ):
        write_call(folder, name, samples, transcript, meta)
        (folder / f"{name}.transcript.json").write_text(broken, encoding="utf-8")
    os.mkfifo(folder / "fifo.wav")
    os.symlink("loop.wav", folder / "loop.wav")
    (folder / "folder.wav").mkdir()
    out = folder.parent / "out"
    report = run(folder, out, config)
    summary = report.document
    return {"folder": folder, "out": out,
            "calls": {c["call_id"].removeprefix("night__"): c for c in summary["calls"]},
            "errors": {e["call_id"].removeprefix("night__"): e["reason"] for e in summary["errors"]}}


def record(night, name: str) -> dict:
    return json.loads((night["out"] / "calls" / f"night__{name}.json").read_text(encoding="utf-8"))


def test_the_good_call_is_judged_beside_the_broken_ones(night):
    good = night["calls"]["good"]  # cut at 20 s: it fails the closing rules, as it should
    assert good["verdict"] == "fail" and good["score"] == 52
    for name in ("nan_1pct", "open_header", "bom"):  # repaired or accepted: judged as the good one
        assert (night["calls"][name]["verdict"], night["calls"][name]["score"]) == ("fail", 52)


@pytest.mark.parametrize("name", ["silence", "one_sample", "noise"])
def test_no_measurable_speech_is_not_judged(night, name):
    assert name not in night["calls"]
    assert night["errors"][name].startswith("not judged: no measurable speech in the recording")


def test_an_all_nan_recording_is_refused(night):
    assert "100.0% of the samples are NaN or infinite" in night["errors"]["all_nan"]


def test_a_few_nan_samples_are_silenced_and_noted(night):
    call, good = record(night, "nan_1pct"), record(night, "good")

    def speech_s(audit: dict) -> list[float]:
        return [sum(end - start for start, end in channel["intervals"]) for channel in audit["speech"]]

    assert speech_s(call) == pytest.approx(speech_s(good), abs=0.5)  # voice activity kept
    assert "NaN or infinite samples (1.00%) were replaced by silence" in call["recording"]["notes"][0]


def test_transcript_and_metadata_must_lie_inside_the_recording(night):
    assert "transcript utterances after the recording's end at 20.00 s (2)" in night["errors"]["shifted"]
    assert ("with voice activity under less than 50% of their time (1): agent 1.00-5.00 s"
            in night["errors"]["invented"])
    assert "the metadata's answer_at (500 s) is after the recording's end (20.00 s)" in night["errors"]["answer_late"]


def test_a_short_utterance_without_speech_is_noted_and_the_call_judged(night):
    """A 0.5-s 好的 the VAD did not hear (5 % of the transcript's time) does not make the transcript
    another call's: the call is judged, and its record says what did not agree."""
    assert "one_missed" not in night["errors"]
    (note,) = record(night, "one_missed")["recording"]["notes"]
    assert "customer 3.00-3.50 s" in note and "judged anyway" in note


def test_evidence_is_capped_per_finding(night):
    shirk = next(r for r in record(night, "many")["results"] if r["rule_id"] == "text.forbidden.shirk")
    assert len(shirk["evidence"]) == 20 and shirk["details"]["evidence_total"] == 600


@pytest.mark.parametrize("rate", [1, 200000])
def test_sample_rates_outside_the_configured_range_are_refused(night, rate):
    assert night["errors"][f"rate_{rate}"] == (
        f"sample rate {rate} Hz is outside the accepted 8000-48000 Hz ([decode] min_sample_rate, "
        "max_sample_rate)")


def test_an_unfinalised_wav_header_is_read_with_a_note(night):
    call = record(night, "open_header")
    assert call["recording"]["duration_s"] == SECONDS
    assert "never finalised" in call["recording"]["notes"][0]


def test_a_sidecar_with_a_bom_is_read(night):
    assert record(night, "bom")["utterances"] == record(night, "good")["utterances"]


@pytest.mark.parametrize("name, reason", [
    ("words_int", "words_int.transcript.json: utterances[0].words has the wrong type (int)"),
    ("big_int", "big_int.transcript.json: utterances[0].start is not a finite number"),
    ("deep", "deep.transcript.json: not valid JSON: nested too deeply"),
])
def test_malformed_sidecars_name_the_file_and_field(night, name, reason):
    assert night["errors"][name] == reason


@pytest.mark.parametrize("name, reason", [
    ("fifo", "a FIFO, not a regular file"),
    ("loop", "a symbolic link loop, not a recording"),
    ("folder", "a folder, not a recording"),
])
def test_what_is_not_a_file_is_reported_never_opened(night, name, reason):
    assert night["errors"][name] == reason


def test_a_later_failure_replaces_the_verdict_everywhere(tmp_path, short_call, config):
    samples, transcript, meta = short_call
    folder, out = tmp_path / "in", tmp_path / "out"
    write_call(folder, "call", samples, transcript, meta)
    assert run(folder, out, config).document["calls"][0]["verdict"] == "fail"
    (folder / "call.transcript.json").write_text('{"utterances": 3}', encoding="utf-8")
    summary = run(folder, out, config).document
    assert summary["calls"] == [] and len(summary["errors"]) == 1
    with sqlite3.connect(out / "audit.sqlite") as db:
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM results").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM errors").fetchone() == (1,)
    assert not (out / "calls" / "in__call.json").exists()
    assert export_csv(out, tmp_path / "calls.csv") == (0, 0)
    status = run_status(out)
    assert status["calls"] == 0 and [e[0] for e in status["errors"]] == ["in__call"]


def test_call_ids_colliding_across_runs_are_made_unique_and_said(tmp_path, short_call, config):
    samples, transcript, meta = short_call
    out = tmp_path / "out"
    for night in ("n1", "n2"):
        write_call(tmp_path / night, "call", samples, transcript, meta)
    first = run_batch([tmp_path / "n1" / "call.wav"], out, config, BatchOptions(asr_mode="sidecar"))
    second = run_batch([tmp_path / "n2" / "call.wav"], out, config, BatchOptions(asr_mode="sidecar"))
    assert first.document["calls"][0]["call_id"] == "call"
    renamed = second.document["id_collisions"]
    assert len(renamed) == 1 and renamed[0]["wanted"] == "call"
    assert renamed[0]["held_by"] == str((tmp_path / "n1" / "call.wav").resolve())
    with sqlite3.connect(out / "audit.sqlite") as db:
        paths = dict(db.execute("SELECT call_id, path FROM calls"))
    assert paths == {"call": str((tmp_path / "n1" / "call.wav").resolve()),
                     renamed[0]["call_id"]: str((tmp_path / "n2" / "call.wav").resolve())}
    again = run_batch([tmp_path / "n2" / "call.wav"], out, config, BatchOptions(asr_mode="sidecar"))
    assert again.outcomes[0].state == "skipped"  # the unique id is stable from run to run
    assert again.outcomes[0].job.call_id == renamed[0]["call_id"]


def test_corrupt_or_deleted_records_are_written_again(tmp_path, short_call, config):
    samples, transcript, meta = short_call
    folder, out = tmp_path / "in", tmp_path / "out"
    for name in ("a", "b"):
        write_call(folder, name, samples, transcript, meta)
    run(folder, out, config)
    good = (out / "calls" / "in__a.json").read_text(encoding="utf-8")
    (out / "calls" / "in__a.json").write_text(good[: len(good) // 2], encoding="utf-8")
    (out / "calls" / "in__b.json").unlink()
    (out / "report").mkdir(exist_ok=True)
    (out / "report" / "build.json").write_text("{not json", encoding="utf-8")
    write_report(out)
    assert json.loads((out / "calls" / "in__a.json").read_text(encoding="utf-8"))["verdict"] == "fail"
    assert (out / "calls" / "in__b.json").exists()
    assert (out / "report" / "calls" / "in__b.html").exists()
    (out / "calls" / "in__b.json").write_text("", encoding="utf-8")
    summary = run(folder, out, config).document
    assert summary["counts"]["skipped"] == 2
    assert json.loads((out / "calls" / "in__b.json").read_text(encoding="utf-8"))["call_id"] == "in__b"
    (out / "summary.json").write_text("{", encoding="utf-8")
    done = audit("report", out)
    assert done.returncode == 2 and "summary.json cannot be read" in done.stderr


def test_the_output_lock_covers_the_report(tmp_path, short_call, config):
    samples, transcript, meta = short_call
    folder, out = tmp_path / "in", tmp_path / "out"
    write_call(folder, "call", samples, transcript, meta)
    run(folder, out, config)
    with OutputLock(out):
        with pytest.raises(RunLocked, match="in use by another audit process"):
            write_report(out)
        done = audit("report", out)
    assert done.returncode == 3 and "in use by another audit process" in done.stderr


def test_an_output_folder_that_cannot_be_one_is_refused_before_any_work(tmp_path, short_call):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="lies under a file, not a folder"):
        check_output_folder(tmp_path / "file" / "out")
    done = audit("run", FIXTURE_CALLS, "--out", tmp_path / "file", "--asr", "sidecar")
    assert done.returncode == 2 and "--out " + str(tmp_path / "file") + " is a file, not a folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_output_folder_inside_the_input_with_markup_in_its_name(tmp_path, short_call, config):
    samples, transcript, meta = short_call
    folder = tmp_path / "in"
    write_call(folder, "call", samples, transcript, meta)
    inside = folder / "out[/bad]"  # Rich markup in the path, inside the input folder
    first = audit("run", folder, "--out", inside, "--asr", "sidecar", "--workers", "1")
    assert first.returncode == 0, first.stderr
    assert f"Results in {inside}" in first.stdout and f"Report: {inside}" in first.stdout
    assert list((inside / "report" / "audio").glob("*.ogg"))  # audio the next run must not audit
    second = run(folder, inside, config)
    assert second.document["counts"]["files"] == 1 and second.document["counts"]["skipped"] == 1


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_the_run_is_killed(tmp_path, short_call):
    samples, transcript, meta = short_call
    folder, out = tmp_path / "in", tmp_path / "out"
    write_call(folder, "a_short", samples, transcript, meta)
    for index in range(3):  # ten minutes each: the workers are in the middle of these when killed
        write_call(folder, f"long{index}", np.tile(samples, (30, 1)), transcript, meta)
    process = subprocess.Popen([sys.executable, "-m", "audit", "run", str(folder), "--out", str(out),
                                "--asr", "sidecar", "--workers", "2"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and not done and process.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(out / "audit.sqlite") as db:
                done = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        except sqlite3.OperationalError:
            continue
    workers = [pid for pid in _children(process.pid)
               if b"spawn_main" in (Path("/proc") / str(pid) / "cmdline").read_bytes()]
    assert done == 1 and len(workers) == 2, "both workers must be auditing the long calls"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MB tmpfs (a real file system that fills up); skipped where this user may not mount."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_stops_the_run_cleanly_and_the_next_run_resumes(tmp_path, small_disk, short_call, config):
    samples, transcript, meta = short_call
    folder, out = tmp_path / "in", small_disk / "out"
    for index in range(4):
        write_call(folder, f"call{index}", samples, transcript, meta)
    filler = small_disk / "filler"

    def fill_after_the_first(outcome, done, total):
        if done == 1:  # the disk fills up while the second call is audited
            with open(filler, "wb") as handle:
                try:
                    while True:
                        handle.write(bytes(1 << 20))
                except OSError:
                    pass

    with pytest.raises(OutputFull, match="cannot take more writes .* the 1 calls recorded in this run "
                                         "are kept, 3 were not finished; free space and run again"):
        run_batch([folder], out, config, BatchOptions(asr_mode="sidecar", workers=1), fill_after_the_first)
    assert not list(out.rglob("*.tmp"))
    with sqlite3.connect(out / "audit.sqlite") as db:
        assert db.execute("SELECT call_id FROM calls").fetchall() == [("in__call0",)]
    filler.unlink()
    again = run(folder, out, config).document
    assert again["counts"]["skipped"] == 1 and again["counts"]["audited_now"] == 3
    with sqlite3.connect(out / "audit.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (4,)


# --- [privacy] mask_outputs: no number in clear in what gets shared (issue 16, item 2) ----------

PLANTED = {"phone": "13812345678", "phone_spoken": "13822345678", "id": "11010519491231002X",
           "card": "6222020200012345678", "error_name": "13987654321"}
_SPOKEN = str.maketrans("０１２３４５６７８９零〇一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖",
                        "0123456789" "00123456789" "12" "123456789")


def numbers_in_clear(text: str) -> list[str]:
    """The planted numbers that can be read in `text`, however separated or spelled (digits,
    Chinese, 幺/两, financial numerals): everything but letters and digits dropped first."""
    digits = "".join(c for c in text.translate(_SPOKEN).upper() if c.isascii() and c.isalnum())
    return [name for name, number in PLANTED.items() if number in digits]


def numbered_night(folder: Path) -> None:
    """The compliant call named after a phone number, numbers in several spellings in what the
    customer and the agent say (one split over word timestamps), and a broken call named after
    another number."""
    samples, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="float32", always_2d=True)
    transcript = json.loads((FIXTURE_CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))
    meta = json.loads((FIXTURE_CALLS / "compliant.meta.json").read_text(encoding="utf-8"))
    customer = transcript["utterances"][1]
    pieces = ["我的手机号是", "138", ".1234", ".5678", ",备用幺三八两两三四五六七八,身份证11010519491231002X,",
              "卡号6222 0202 0001 2345 678"]
    step = (customer["end"] - customer["start"]) / len(pieces)
    customer["text"] = "".join(pieces)
    customer["words"] = [{"start": customer["start"] + i * step, "end": customer["start"] + (i + 1) * step,
                          "text": piece} for i, piece in enumerate(pieces)]
    agent = transcript["utterances"][2]  # a forbidden phrase beside a number: evidence quoting it
    agent["text"], agent["words"] = "这个不归我们管,您打138  1234  5678问问,或者壹叁捌壹贰叁肆伍陆柒捌。", []
    write_call(folder, "138 1234 5678", samples, transcript, meta, rate=rate)
    write_call(folder, "139 8765 4321", samples[: RATE * 20], transcript, meta, rate=rate)
    (folder / "139 8765 4321.transcript.json").write_text('{"utterances": 3}', encoding="utf-8")


def shared_outputs(out: Path, *commands: subprocess.CompletedProcess) -> dict[str, str]:
    """Every name and text an output folder shares (all but the database and the audio), with the
    commands' stdout and stderr."""
    found = {f"{c.args[3]} stdout/stderr": c.stdout + c.stderr for c in commands}
    for path in out.rglob("*"):
        relative = str(path.relative_to(out))
        found[f"name {relative}"] = relative
        if path.is_file() and not path.name.startswith("audit.sqlite") and path.suffix not in (".flac", ".wav", ".ogg"):
            found[relative] = path.read_text(encoding="utf-8-sig")
    return found


def test_with_mask_outputs_no_number_is_in_clear_in_records_summary_export_or_logs(tmp_path):
    folder, out = tmp_path / "night", tmp_path / "out"
    numbered_night(folder)
    site = tmp_path / "site.toml"
    site.write_text("[privacy]\nmask_outputs = true\n", encoding="utf-8")
    ran = audit("run", folder, "--out", out, "--asr", "sidecar", "--workers", "1", "--config", site)
    assert ran.returncode == 1, ran.stderr  # the broken call
    exported = audit("export", out, "--csv", out / "calls.csv", "--findings", out / "findings.csv")
    status = audit("status", out)
    assert exported.returncode == 0 and status.returncode == 0
    outputs = shared_outputs(out, ran, exported, status)
    assert {name: found for name, text in outputs.items() if (found := numbers_in_clear(text))} == {}
    # ... and everything was there to leak: the records, the findings, the error, the log lines
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (call,), (error,) = summary["calls"], summary["errors"]
    assert summary["privacy"] == {"mask_outputs": True}
    assert call["call_id"].startswith("night__***_****_5678-") and error["call_id"].startswith("night__***_****_4321-")
    record = json.loads((out / "calls" / f"{call['call_id'].replace('*', '_')}.json").read_text(encoding="utf-8"))
    assert record["masked"] is True and record["call_id"] == call["call_id"]
    assert record["utterances"][1]["text"].startswith("我的手机号是***.****.5678,备用*******五六七八")
    shirk = next(r for r in record["results"] if r["rule_id"] == "text.forbidden.shirk")
    assert shirk["status"] == "fail" and "***  ****  5678" in shirk["evidence"][0]["text"]
    assert "***  ****  5678" in (out / "findings.csv").read_text(encoding="utf-8-sig")
    (log,) = (out / "logs").glob("*.log")
    line = f"{call['call_id']}: {call['verdict']} {call['score']:g}"
    assert line in log.read_text(encoding="utf-8") and line in ran.stderr  # the id as every output names it
    assert call["call_id"] in ran.stdout and error["call_id"] in status.stdout
    assert list((out / "report" / "audio").glob("night_*.ogg"))  # the report still finds the audio
    # the clear text stays in the auditors' own database
    with sqlite3.connect(out / "audit.sqlite") as db:
        (stored,) = db.execute("SELECT record FROM calls").fetchone()
    assert numbers_in_clear(stored) == ["phone", "phone_spoken", "id", "card"]


def test_without_mask_outputs_the_records_are_unchanged_and_a_switch_rewrites_nothing_else(tmp_path):
    folder, out = tmp_path / "night", tmp_path / "out"
    numbered_night(folder)
    assert audit("run", folder, "--out", out, "--asr", "sidecar", "--workers", "1").returncode == 1
    with sqlite3.connect(out / "audit.sqlite") as db:
        (stored,) = db.execute("SELECT record FROM calls").fetchone()
    (record_file,) = (out / "calls").iterdir()
    assert record_file.name == "night__138_1234_5678.json"
    record = json.loads(record_file.read_text(encoding="utf-8"))
    assert record == json.loads(stored) and "masked" not in record  # the clear record, as before
    assert numbers_in_clear(record_file.read_text(encoding="utf-8")) == ["phone", "phone_spoken", "id", "card"]
    # turned on for the next night: the record is written again masked, under its masked name,
    # from the database; nothing is audited again
    site = tmp_path / "site.toml"
    site.write_text("[privacy]\nmask_outputs = true\n", encoding="utf-8")
    again = audit("run", folder, "--out", out, "--asr", "sidecar", "--workers", "1", "--config", site)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["audited_now"] == 0 and summary["counts"]["skipped"] == 1, again.stderr
    (masked_file,) = (out / "calls").iterdir()
    assert masked_file.name.startswith("night___________5678-") and not numbers_in_clear(masked_file.read_text("utf-8"))
    assert audit("run", folder, "--out", out, "--asr", "sidecar", "--workers", "1", "--config", site).returncode == 1
    assert list((out / "calls").iterdir()) == [masked_file]  # the same name on every run


# --- bounded work (issue 16, item 10) -----------------------------------------------------------


def test_thousands_of_tiny_utterances_give_capped_evidence(tmp_path, short_call):
    """5,000 one-character utterances on the call's own speech: every finding keeps at most
    `[report] max_evidence` items (and explanations, and names at most 5 in its message), and
    the page shows at most that many evidence buttons per finding (bench/scale_bench.py: 50,000)."""
    samples, transcript, meta = short_call
    spoken = [(u["start"], u["end"], u["speaker"]) for u in transcript["utterances"]]
    count, tiny = 5000, []
    for n in range(count):
        start, end, speaker = spoken[n % len(spoken)]
        at = start + (end - start) * (n // len(spoken)) / (count / len(spoken))
        tiny.append({"speaker": speaker, "start": round(at, 4), "end": round(at + 0.004, 4),
                     "text": "你" if n % 3 else "喂"})
    folder, out = tmp_path / "in", tmp_path / "out"
    write_call(folder, "tiny", samples, {"utterances": tiny}, meta)
    site = tmp_path / "site.toml"
    site.write_text("[report]\nmax_evidence = 5\n", encoding="utf-8")
    config = load_config(site)
    started = time.perf_counter()
    assert run(folder, out, config).document["calls"], "the call must be judged"
    write_report(out, config)
    assert time.perf_counter() - started < 20
    audit_record = json.loads((out / "calls" / "in__tiny.json").read_text(encoding="utf-8"))
    assert len(audit_record["utterances"]) == count
    results = audit_record["results"]
    assert max(r["details"].get("evidence_total", 0) for r in results) > 1000  # the cap was needed
    for result in results:
        assert len(result["evidence"]) <= 5 and len(result["details"].get("matches", [])) <= 5
        assert len(result["message"]) < 300, result["message"]
    failed = [r for r in results if r["status"] == "fail" and r["evidence"]]
    (page,) = (out / "report" / "calls").glob("*.html")
    findings = page.read_text(encoding="utf-8").split('<article class="finding')[1:]
    assert len(findings) == sum(r["status"] == "fail" for r in results)
    assert all(finding.count('class="seek in-call"') <= 5 for finding in findings)
    assert any("处类似的证据未显示" in finding for finding in findings)
    assert sum(finding.count('class="seek in-call"') for finding in findings) <= 5 * len(failed)
