"""The bad-input and fault matrix of issue 16, run through `audit` as cron runs it.

Every case starts from the seven sample calls of fixtures/calls (sidecar transcripts, so no model
is needed) audited into an output folder, adds one broken input or one fault in a temporary
folder, runs the command line and prints, per case: the exit code, the message (the error line,
or what the run recorded for the broken input), how many of the seven other calls are audited
after it, and anything lost (a sample call's verdict, row or record gone or changed) or leaked
(temporary files, worker processes outliving their run, numbers unmasked in the report, or in
any shared output with `[privacy] mask_outputs`).

Cases that need root (a small tmpfs for the full disk, a read-only one) are skipped without it.
Asserts nothing: it prints what happened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
CALLS = ROOT / "fixtures" / "calls"
NAMES = sorted(p.stem for p in CALLS.iterdir() if p.suffix in (".wav", ".flac"))
SIDECARS = (".transcript.json", ".meta.json")
PLANTED = re.compile(r"138[\W_]{0,2}1234")  # the phone number the file-name case plants, unmasked


@dataclass
class Result:
    code: int
    message: str
    others: int  # sample calls with a current verdict after the case
    lost: list[str]
    leaked: list[str]


def audit(*args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audit", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    if lines:
        return lines[0].removeprefix("error: ")
    tail = [line for line in done.stderr.splitlines() if "Traceback" in line or "Error" in line]
    return tail[-1] if tail else ""


class Night:
    """An input folder holding the seven sample calls and an output folder they were audited into.

    A night made from `base` shares its input folder (the same paths, so the seven are skipped)
    with a copy of its output; `restore` takes the case's additions out of the shared folder.
    """

    def __init__(self, root: Path, base: "Night | None" = None):
        self.out = root / "out"
        if base is None:
            self.input = root / "night"
            self.input.mkdir(parents=True)
            for name in NAMES:
                for source in CALLS.glob(f"{name}.*"):
                    os.link(source, self.input / source.name)
        else:
            self.input = base.input
            shutil.copytree(base.out, self.out)
        self.listing = {p.name for p in self.input.iterdir()}

    def restore(self) -> None:
        """The input folder as it was: the case's files gone, the sample calls' sidecars back."""
        for path in self.input.iterdir():
            if path.name not in self.listing:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        for name in NAMES:
            for suffix in SIDECARS:
                (self.input / f"{name}{suffix}").unlink(missing_ok=True)
                os.link(CALLS / f"{name}{suffix}", self.input / f"{name}{suffix}")

    def run(self, *extra) -> subprocess.CompletedProcess:
        return audit("run", self.input, "--out", self.out, "--asr", "sidecar", "--workers", "2", *extra)

    def db_rows(self) -> dict[str, tuple]:
        if not (self.out / "audit.sqlite").exists():
            return {}
        with sqlite3.connect(self.out / "audit.sqlite") as db:
            return {row[0]: row[1:] for row in db.execute("SELECT call_id, verdict, score FROM calls")}

    def state(self) -> dict[str, tuple | None]:
        """The verdict of each sample call, and whether its record file is readable."""
        rows, state = self.db_rows(), {}
        for name in NAMES:
            call_id = f"night__{name}"
            record = self.out / "calls" / f"{call_id}.json"
            try:
                readable = json.loads(record.read_text(encoding="utf-8"))["call_id"] == call_id
            except (OSError, ValueError, KeyError):
                readable = False
            state[name] = rows.get(call_id, (None,)) + (readable,)
        return state

    def outcome(self, call_id: str) -> str:
        try:
            summary = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "(no summary)"
        for error in summary["errors"]:
            if error["call_id"] == call_id:
                return f"error: {error['reason']}"
        for call in summary["calls"]:
            if call["call_id"] == call_id:
                return f"audited: {call['verdict']} {call['score']:g}"
        return "(not in the summary)"


def leaks(out: Path) -> list[str]:
    found = [f"temporary file {p.relative_to(out)}" for p in out.rglob("*.tmp")] if out.exists() else []
    report = out / "report"
    if report.exists():
        for path in report.rglob("*"):
            shown = path.name + (path.read_text(encoding="utf-8", errors="replace")
                                 if path.suffix in (".html", ".json") else "")
            found += [f"number {m} in report/{path.relative_to(report)}" for m in PLANTED.findall(shown)]
    return found


def judged(night: Night, before: dict, code: int, message: str, others_expected=NAMES) -> Result:
    after = night.state()
    lost = [f"{name}: {before[name][:2]} -> {after[name][:2]}{'' if after[name][2] else ', no record'}"
            for name in others_expected if after[name] != before[name]]
    others = sum(1 for name in NAMES if after[name][0] is not None)
    return Result(code, message, others, lost, leaks(night.out))


# --- the broken inputs --------------------------------------------------------------------------


def compliant() -> tuple[np.ndarray, int]:
    return soundfile.read(CALLS / "compliant.wav", dtype="float32", always_2d=True)


def beside(folder: Path, name: str, samples: np.ndarray, rate: int, subtype: str = "PCM_16",
           transcript: dict | None = None, meta: dict | None = None) -> None:
    """`name.wav` with the compliant call's sidecars (or the ones given) next to it."""
    soundfile.write(folder / f"{name}.wav", samples, rate, subtype=subtype)
    document = transcript or json.loads((CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))
    (folder / f"{name}.transcript.json").write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    info = meta or json.loads((CALLS / "compliant.meta.json").read_text(encoding="utf-8"))
    (folder / f"{name}.meta.json").write_text(json.dumps(info), "utf-8")


def with_rate(path: Path, rate: int) -> None:
    data = bytearray(path.read_bytes())
    channels, bits = int.from_bytes(data[22:24], "little"), int.from_bytes(data[34:36], "little")
    data[24:28] = rate.to_bytes(4, "little")
    data[28:32] = (rate * channels * bits // 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def transcript() -> dict:
    return json.loads((CALLS / "compliant.transcript.json").read_text(encoding="utf-8"))


def make_inputs() -> dict[str, Callable[[Path], None]]:
    """Each broken input, written into a folder beside the seven sample calls."""
    samples, rate = compliant()
    rng = np.random.default_rng(0)

    def nan_share(share: float) -> np.ndarray:
        dotted = samples.copy()
        dotted.reshape(-1)[rng.choice(dotted.size, int(dotted.size * share), replace=False)] = np.nan
        return dotted

    def open_header(folder: Path) -> None:
        beside(folder, "bad", samples, rate)
        data = bytearray((folder / "bad.wav").read_bytes())
        data[4:8] = data[40:44] = bytes(4)
        (folder / "bad.wav").write_bytes(bytes(data))

    def sidecar(text: str | bytes) -> Callable[[Path], None]:
        def make(folder: Path) -> None:
            beside(folder, "bad", samples, rate)
            path = folder / "bad.transcript.json"
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return make

    def rated(value: int) -> Callable[[Path], None]:
        def make(folder: Path) -> None:
            beside(folder, "bad", samples, rate)
            with_rate(folder / "bad.wav", value)
        return make

    shifted = {"utterances": [u | {"start": u["start"] + 100, "end": u["end"] + 100, "words": []}
                              for u in transcript()["utterances"]]}
    invented = {"utterances": [*transcript()["utterances"],
                               {"speaker": "agent", "start": 1.0, "end": 5.0, "text": "感谢您的耐心等待"}]}
    return {
        "1-sample WAV + compliant sidecar": lambda f: beside(f, "bad", samples[:1], rate),
        "60 s digital silence + sidecar": lambda f: beside(f, "bad", np.zeros((60 * rate, 2), np.float32), rate),
        "all-NaN float WAV + sidecar": lambda f: beside(f, "bad", np.full_like(samples, np.nan), rate, "FLOAT"),
        "5 min white noise + sidecar": lambda f: beside(
            f, "bad", rng.normal(0, 0.05, (300 * rate, 2)).astype(np.float32), rate),
        "1 % NaN samples in a real call": lambda f: beside(f, "bad", nan_share(0.01), rate, "FLOAT"),
        "sidecar times 100-130 s on 59 s": lambda f: beside(f, "bad", samples, rate, transcript=shifted),
        "an utterance with no speech under it": lambda f: beside(f, "bad", samples, rate, transcript=invented),
        "answer_at 500 s on 59 s": lambda f: beside(f, "bad", samples, rate, meta={"answer_at": 500}),
        "header says 1 Hz": rated(1),
        "header says 200 kHz": rated(200000),
        "WAV data size 0, audio follows": open_header,
        "sidecar with a UTF-8 BOM": sidecar(b"\xef\xbb\xbf" + (CALLS / "compliant.transcript.json").read_bytes()),
        'sidecar "words": 5': sidecar('{"utterances": [{"speaker": "agent", "start": 1, "end": 2, '
                                      '"text": "x", "words": 5}]}'),
        "sidecar 400-digit integer": sidecar('{"utterances": [{"speaker": "agent", "start": 1%s, "end": 2, '
                                             '"text": "x"}]}' % ("0" * 400)),
        "sidecar nested 100000 deep": sidecar('{"utterances": ' + "[" * 100000 + "]" * 100000 + "}"),
        "FIFO named bad.wav": lambda f: os.mkfifo(f / "bad.wav"),
        "symlink loop bad.wav": lambda f: os.symlink("bad.wav", f / "bad.wav"),
        "folder named bad.wav": lambda f: (f / "bad.wav").mkdir(),
        "phone number in the file name": lambda f: beside(f, "138 1234 5678", samples, rate),
    }


def input_case(base: Night, root: Path, make: Callable[[Path], None]) -> Result:
    night = Night(root, base)
    before = night.state()
    make(night.input)
    try:
        done = night.run()
        bad = next((f"night__{p.stem.replace(' ', '_')}" for p in night.input.iterdir()
                    if p.name not in night.listing and not p.name.endswith(SIDECARS)), "")
        return judged(night, before, done.returncode, error_line(done) or night.outcome(bad))
    finally:
        night.restore()


# --- the faults ---------------------------------------------------------------------------------


def all_at_once(root: Path) -> Result:
    """Every broken input in one fresh night beside the seven, none audited before: the seven
    must get the verdicts they get alone (audited alone just before, with the same code)."""
    alone = Night(root / "alone")
    alone.run()
    night = Night(root / "all")
    for index, make in enumerate(make_inputs().values()):
        folder = night.input / f"bad{index:02d}"
        folder.mkdir()
        make(folder)
    done = night.run()
    summary = json.loads((night.out / "summary.json").read_text(encoding="utf-8"))
    counts = summary["counts"]
    message = (f"{counts['files']} files: {counts['audited']} audited, {counts['errors']} errors, "
               f"each with its reason")
    return judged(night, alone.state(), done.returncode, error_line(done) or message)


def stale_verdict(base: Night, root: Path) -> Result:
    night = Night(root, base)
    before = night.state()
    (night.input / "compliant.transcript.json").unlink()
    (night.input / "compliant.transcript.json").write_text('{"utterances": 3}', encoding="utf-8")
    try:
        done = night.run()
    finally:
        night.restore()
    rows = night.db_rows()
    with sqlite3.connect(night.out / "audit.sqlite") as db:
        both = db.execute("SELECT count(*) FROM calls JOIN errors USING (call_id)").fetchone()[0]
    csv = root / "calls.csv"
    audit("export", night.out, "--csv", csv)
    exported = "night__compliant" in csv.read_text(encoding="utf-8-sig")
    message = (f"compliant: {night.outcome('night__compliant')}; in calls: {'night__compliant' in rows}, "
               f"in calls and errors: {both}, in the CSV: {exported}")
    return judged(night, before, done.returncode, message, [n for n in NAMES if n != "compliant"])


def colliding_ids(root: Path) -> Result:
    for night in ("n1", "n2"):
        (root / night).mkdir(parents=True)
        for suffix in (".wav", *SIDECARS):
            os.link(CALLS / f"compliant{suffix}", root / night / f"call{suffix}")
    audit("run", root / "n1" / "call.wav", "--out", root / "out", "--asr", "sidecar")
    done = audit("run", root / "n2" / "call.wav", "--out", root / "out", "--asr", "sidecar")
    with sqlite3.connect(root / "out" / "audit.sqlite") as db:
        paths = [row[0] for row in db.execute("SELECT path FROM calls ORDER BY call_id")]
    said = [line for line in done.stderr.splitlines() if "already used" in line]
    lost = [] if len(paths) == 2 else [f"one row for two recordings: {paths}"]
    message = (said[0].split(" WARNING ", 1)[-1] if said else "nothing said") + f"; rows: {len(paths)}"
    return Result(done.returncode, message, 0, lost, leaks(root / "out"))


def corrupt_records(base: Night, root: Path) -> Result:
    night = Night(root, base)
    before = night.state()
    first, second = (night.out / "calls" / f"night__{name}.json" for name in NAMES[:2])
    first.write_text(first.read_text(encoding="utf-8")[:100], encoding="utf-8")
    second.unlink()
    report = audit("report", night.out)
    run = night.run()
    message = f"audit report: exit {report.returncode}; next run: exit {run.returncode}, " + (
        "both records written again" if night.state() == before else "records still broken")
    return judged(night, before, report.returncode or run.returncode, error_line(report) or message)


def masked_outputs(base: Night, root: Path) -> Result:
    """The phone-number file name, with numbers also in the transcript, audited with `[privacy]
    mask_outputs = true`, then exported: every name and text of the output folder (all but the
    database and the audio), the CSVs and what the commands printed are searched for it."""
    night = Night(root, base)
    before = night.state()
    document = transcript()
    document["utterances"][1]["text"] = "我的手机号是138.1234.5678,备用幺三八两两三四五六七八"
    document["utterances"][1]["words"] = []
    samples, rate = compliant()
    beside(night.input, "138 1234 5678", samples, rate, transcript=document)
    site = root / "site.toml"
    site.write_text("[privacy]\nmask_outputs = true\n", encoding="utf-8")
    try:
        done = night.run("--config", site)
        exported = audit("export", night.out, "--csv", root / "calls.csv", "--findings", root / "findings.csv")
    finally:
        night.restore()
    shown = {"stdout/stderr": done.stdout + done.stderr + exported.stdout + exported.stderr}
    for path in [*night.out.rglob("*"), root / "calls.csv", root / "findings.csv"]:
        shown[f"name {path.name}"] = path.name
        if path.is_file() and not path.name.startswith("audit.sqlite") and path.suffix not in (".wav", ".flac", ".ogg"):
            shown[path.name] = path.read_text(encoding="utf-8", errors="replace")
    leaked = [f"number in {name}" for name, text in shown.items()
              if PLANTED.search(text) or "幺三八两两三四" in text]
    summary = json.loads((night.out / "summary.json").read_text(encoding="utf-8"))
    names = [c["call_id"] for c in summary["calls"] if "5678" in c["call_id"]]
    message = f"the call is {names[0] if names else '(missing)'} in every output; exports: exit {exported.returncode}"
    result = judged(night, before, done.returncode, error_line(done) or message)
    return Result(result.code, result.message, result.others, result.lost, result.leaked + leaked)


def corrupt_summary(base: Night, root: Path) -> Result:
    night = Night(root, base)
    before = night.state()
    (night.out / "summary.json").write_text("{", encoding="utf-8")
    done = audit("report", night.out)
    return judged(night, before, done.returncode, error_line(done))


def config_case(text: str | bytes) -> Callable[[Night, Path], Result]:
    def case(base: Night, root: Path) -> Result:
        night = Night(root, base)
        before = night.state()
        path = root / "site.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        done = night.run("--config", path)
        return judged(night, before, done.returncode, error_line(done))
    return case


def relative_config(base: Night, root: Path) -> Result:
    night = Night(root, base)
    before = night.state()
    (root / "site.toml").write_text("[report]\nmax_evidence = 10\n", encoding="utf-8")
    run = audit("run", night.input, "--out", night.out, "--asr", "sidecar", "--config", "site.toml", cwd=root)
    report = audit("report", night.out, cwd=Path("/"))
    summary = json.loads((night.out / "summary.json").read_text(encoding="utf-8"))
    message = f"stored as {summary['config']['files'][-1]}; audit report from /: exit {report.returncode}"
    return judged(night, before, run.returncode or report.returncode, error_line(report) or message)


def out_case(base: Night, out: Path) -> Result:
    """The seven audited into a new `--out` (a file, read-only, a name with markup)."""
    done = audit("run", base.input, "--out", out, "--asr", "sidecar", "--workers", "2")
    message = error_line(done) or f"results in {out.name}"
    return Result(done.returncode, message, audited_in(out), [], leaks(out) if out.is_dir() else [])


def audited_in(out: Path) -> int:
    if not (out / "audit.sqlite").is_file():
        return 0
    with sqlite3.connect(out / "audit.sqlite") as db:
        return db.execute("SELECT count(*) FROM calls").fetchone()[0]


def out_file(base: Night, root: Path) -> Result:
    root.mkdir(parents=True)
    (root / "a_file").write_text("x")
    return out_case(base, root / "a_file")


def out_inside(base: Night, root: Path) -> Result:
    """--out inside the input folder, run twice: the second run must not audit the report's audio."""
    night = Night(root, base)
    inside = night.input / "results"
    try:
        audit("run", night.input, "--out", inside, "--asr", "sidecar", "--workers", "2")
        done = audit("run", night.input, "--out", inside, "--asr", "sidecar", "--workers", "2")
        counts = json.loads((inside / "summary.json").read_text(encoding="utf-8"))["counts"]
        message = f"second run: {counts['files']} files, {counts['errors']} errors"
        return Result(done.returncode, error_line(done) or message, audited_in(inside), [], leaks(inside))
    finally:
        night.restore()


def mounted(root: Path, options: str) -> Path | None:
    """A tmpfs at root/disk mounted with `options`, or None when this process may not mount."""
    disk = root / "disk"
    disk.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True)
    return disk if done.returncode == 0 else None


def read_only_out(base: Night, root: Path) -> Result | str:
    disk = mounted(root, "ro,size=1m")
    if disk is None:
        return "skipped: mounting a tmpfs needs root"
    try:
        return out_case(base, disk / "out")
    finally:
        subprocess.run(["umount", "-l", str(disk)])  # lazily: a report worker may still be closing


def disk_full(base: Night, root: Path) -> Result | str:
    """The seven audited onto a 1.5 MB disk, then the run again with room."""
    disk = mounted(root, "size=1500k")
    if disk is None:
        return "skipped: mounting a tmpfs needs root"
    try:
        night = Night(root / "full")
        night.out = disk / "out"
        full = night.run()
        left = leaks(night.out)
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        again = night.run()
        with sqlite3.connect(night.out / "audit.sqlite") as db:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
        counts = json.loads((night.out / "summary.json").read_text(encoding="utf-8"))["counts"]
        message = (f"{error_line(full)} | after freeing space: exit {again.returncode}, "
                   f"{counts['audited_now']} audited now, {counts['skipped']} kept, integrity {check}")
        return Result(full.returncode, message, counts["audited"], [], left + leaks(night.out))
    finally:
        subprocess.run(["umount", "-l", str(disk)])  # lazily: a report worker may still be closing


def two_reports(base: Night, root: Path) -> Result:
    night = Night(root, base)
    before = night.state()
    shutil.rmtree(night.out / "report")
    command = [sys.executable, "-m", "audit", "report", str(night.out)]
    first, second = (subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2))
    codes = sorted((first.wait(), second.wait()))
    errors = [line for p in (first, second) for line in p.stderr.read().splitlines() if "error:" in line]
    message = f"exit codes {codes}; " + (errors[0].removeprefix("error: ") if errors else "both built")
    return judged(night, before, codes[-1], message)


def orphaned_workers(root: Path) -> Result:
    """kill -9 of `audit run --workers 2` in the middle of two long calls: do the workers stay?"""
    night = Night(root)
    samples, rate = compliant()
    for index in range(3):
        beside(night.input, f"zz_long{index}", np.tile(samples, (10, 1)), rate)  # audited last
    process = subprocess.Popen([sys.executable, "-m", "audit", "run", str(night.input), "--out",
                                str(night.out), "--asr", "sidecar", "--workers", "2"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(night.db_rows()) < 7:
        time.sleep(0.2)
    workers = [pid for pid in children(process.pid)
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(5)
    alive = [pid for pid in workers if alive_process(pid)]
    for pid in alive:  # they are this bench's own processes
        os.kill(pid, signal.SIGKILL)
    message = f"{len(workers)} workers, {len(alive)} still running 5 s after the kill"
    return Result(-signal.SIGKILL, message, len(night.db_rows()), [],
                  [f"worker {pid} outlived its run" for pid in alive])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def alive_process(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- the matrix ---------------------------------------------------------------------------------


def print_row(name: str, result: Result | str) -> None:
    if isinstance(result, str):
        print(f"{name:38} {result}")
        return
    problems = "; ".join(result.lost + result.leaked) or "-"
    print(f"{name:38} exit {result.code:>2}  others {result.others}/{len(NAMES)}  lost/leaked: {problems}")
    print(f"{'':38} {result.message[:300]}")


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-bench-") as temporary:
        root = Path(temporary)
        base = Night(root / "base")
        done = base.run()
        print(f"base: the seven sample calls audited, exit {done.returncode}\n")
        print("Bad inputs, each beside the seven audited calls:")
        for index, (name, make) in enumerate(make_inputs().items()):
            print_row(name, input_case(base, root / f"input{index:02d}", make))
        print("\nFaults:")
        faults: dict[str, Callable[[], Result | str]] = {
            "every bad input at once, fresh folder": lambda: all_at_once(root / "all"),
            "transcript broken after a good audit": lambda: stale_verdict(base, root / "stale"),
            "same call id from two runs": lambda: colliding_ids(root / "ids"),
            "calls/X.json truncated, calls/Y.json gone": lambda: corrupt_records(base, root / "records"),
            "summary.json truncated, audit report": lambda: corrupt_summary(base, root / "summary"),
            "phone numbers, [privacy] mask_outputs": lambda: masked_outputs(base, root / "masked"),
            "config weight = nan": lambda: config_case(
                '[rules."opening.golden_30s"]\nweight = nan\n')(base, root / "nan"),
            "config min_cpm 400 > max_cpm 100": lambda: config_case(
                '[rules."prosody.rate"]\nmin_cpm = 400\nmax_cpm = 100\n')(base, root / "band"),
            "config file in GBK": lambda: config_case(
                '[company]\nname = "蓝天银行"\n'.encode("gbk"))(base, root / "gbk"),
            "relative --config, report from /": lambda: relative_config(base, root / "relative"),
            "--out on a file": lambda: out_file(base, root / "outfile"),
            "--out read-only": lambda: read_only_out(base, root / "readonly"),
            '--out "out[/bad]" (Rich markup)': lambda: out_case(base, root / "markup" / "out[/bad]"),
            "--out inside the input, run twice": lambda: out_inside(base, root / "inside"),
            "two audit report at once": lambda: two_reports(base, root / "reports"),
            "disk full mid-run, then space freed": lambda: disk_full(base, root / "full"),
            "kill -9 of the run under --workers 2": lambda: orphaned_workers(root / "orphans"),
        }
        for name, case in faults.items():
            print_row(name, case())
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
