"""The nightly batch: discover recordings, skip what is done, audit the rest in parallel, record all.

Guarantees, whatever happens during the night:
- one run per output folder at a time (a lock file; a second run is refused with a clear message);
- every call is written to the results database in its own transaction, after its JSON record, so a
  run killed at any moment (kill -9 included) loses at most the calls in flight, which the next run
  audits; nothing is duplicated (a call's rows are keyed by its call id);
- a call already audited with the same audio (SHA-256 of the file), the same other inputs (its
  sidecar transcript and metadata, the manifest's and the file name's metadata), the same config
  (hash of the merged settings) and the same model is skipped; `force` re-audits. A changed config
  re-audits every call, since any threshold may change any verdict;
- a recording that fails is recorded with its reason and not retried unless asked
  (`retry_failed`), and a worker that crashes takes only its own call down.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections import Counter
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from audit import sidecar
from audit.asr import AsrUnavailable
from audit.asr_service import ModelService, ServiceHandle, model_devices
from audit.config import Config, load_config
from audit.decode import AUDIO_EXTENSIONS
from audit.pipeline import AsrChoice, AuditError, Job, audit_call, load_models
from audit.records import CallMeta
from audit.store import SUMMARY_SCHEMA, ResultsDB, call_record, write_json

log = logging.getLogger(__name__)

LOCK_NAME = ".audit.lock"


class RunLocked(Exception):
    """Another run is using this output folder."""


def discover(paths: list[Path], include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[Job]:
    """Recordings under `paths` (files as given, folders recursively), each with a stable call id.

    In folders, `include` / `exclude` globs are matched against the path below the folder
    (`team1/*.wav`, `**/test/*`); with `include`, only matching recordings are taken.

    The call id is the folder's own name followed by the path below it, separators turned into
    `__` (`/recordings/2026-11-22/team1/a.wav` -> `2026-11-22__team1__a`), so nights audited into
    one results database do not collide; two recordings that would still share an id both get a
    short hash of their full path.
    """
    found: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_dir():
            base = root.resolve().name
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                relative = path.relative_to(root).as_posix()
                if (path.suffix.lower() in AUDIO_EXTENSIONS and not sidecar.is_sidecar(path)
                        and _wanted(relative, include, exclude)):
                    found.append((path, f"{base}/{path.relative_to(root).with_suffix('').as_posix()}"))
        else:
            found.append((root, root.stem))
    ids = Counter(_safe_id(name) for _, name in found)
    jobs = []
    for path, name in found:
        call_id = _safe_id(name)
        if ids[call_id] > 1:
            call_id += "-" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        jobs.append(Job(path, call_id))
    return jobs


def _wanted(relative: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    from fnmatch import fnmatch

    if include and not any(fnmatch(relative, pattern) for pattern in include):
        return False
    return not any(fnmatch(relative, pattern) for pattern in exclude)


def with_metadata(jobs: list[Job], manifest: dict[str, CallMeta], name_pattern: str) -> list[Job]:
    """Attach what the manifest (by call id or path) and the file name say about each call."""
    import re

    pattern = re.compile(name_pattern) if name_pattern else None
    attached = []
    for job in jobs:
        meta = manifest.get(job.call_id) or manifest.get(str(job.path.resolve())) or CallMeta()
        match = pattern.search(job.path.name) if pattern else None
        if match and match.group("agent"):
            meta = meta.filled_from(CallMeta(agent_id=match.group("agent")))
        attached.append(replace(job, meta=meta))
    return attached


def _safe_id(name: str) -> str:
    import re

    return re.sub(r"[^\w.-]", "_", name.replace("/", "__"))


def file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None  # the audit itself reports why the file cannot be read
    return digest.hexdigest()


@dataclass
class Outcome:
    """What became of one recording in this run."""

    job: Job
    state: str  # "audited", "skipped", "failed", "skipped_failed"
    row: dict | None = None  # the summary row of an audited or skipped call
    reason: str | None = None
    seconds: float = 0.0  # time spent auditing it (zero when skipped)


@dataclass
class BatchOptions:
    asr_mode: str = "auto"
    model: str | None = None
    device: str | None = None
    workers: int = 1
    force: bool = False
    retry_failed: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    manifest: dict[str, CallMeta] = field(default_factory=dict)  # from `sidecar.read_manifest`


@dataclass
class RunReport:
    run_id: int
    out: Path
    document: dict
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)


class OutputLock:
    """An exclusive, crash-safe lock on the output folder (released by the OS if the run dies)."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / LOCK_NAME
        self.handle = open(self.path, "a+")

    def __enter__(self):
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise RunLocked(f"{self.path.parent} is in use by another audit run ({holder}); "
                            "wait for it to finish or use another --out folder") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        self.handle.close()


def run_batch(
    paths: list[Path],
    out: Path,
    config: Config,
    options: BatchOptions,
    on_outcome: Callable[[Outcome, int, int], None] = lambda outcome, done, total: None,
) -> RunReport:
    """Audit everything under `paths` into `out`; see the module docstring for the guarantees."""
    started = time.perf_counter()
    with OutputLock(out), _shared_model(config, options) as (service, service_error):
        if service_error is not None:
            asr = AsrChoice.without_whisper(options.asr_mode, service_error)
        else:
            asr = AsrChoice.prepare(options.asr_mode, config, options.model, options.device,
                                    service.handle if service else None)
        model_key = f"whisper:{asr.transcriber.model_name}" if asr.transcriber else "sidecar"
        asr_info = asr.describe()
        db = ResultsDB(out)
        try:
            jobs = with_metadata(discover(paths, options.include, options.exclude), options.manifest,
                                 config.metadata.agent_id_from_name)
            run_id = db.start_run([str(p) for p in paths], config, asr_info, options.workers)
            todo, outcomes = _plan(jobs, db, config, model_key, options)
            total = len(jobs)
            for outcome in outcomes:
                on_outcome(outcome, len(outcomes), total)

            def record(outcome: Outcome) -> None:
                _store(outcome, db, out, run_id, config, model_key)
                outcomes.append(outcome)
                on_outcome(outcome, len(outcomes), total)

            if options.workers > 1 and len(todo) > 1:
                asr.transcriber = None  # each worker loads its own model or uses the shared one
                _run_parallel(todo, config, options, service.handle if service else None, record)
            elif todo:
                load_models(config)
                for job in todo:
                    record(_audit(job, config, asr))
            elapsed = time.perf_counter() - started
            db.finish_run(run_id, len(jobs), sum(o.state == "audited" for o in outcomes),
                          sum(o.state.startswith("skipped") for o in outcomes),
                          sum(o.state in ("failed", "skipped_failed") for o in outcomes))
            document = _summary(db, jobs, run_id, config, asr_info, outcomes, elapsed)
            write_json(out / "summary.json", document)
        finally:
            db.close()
    return RunReport(run_id, out, document, outcomes, elapsed)


@contextmanager
def _shared_model(config: Config, options: BatchOptions):
    """The run's model processes when the workers share a model (see `asr_service`), else None;
    with the reason when they could not start."""
    service = error = None
    try:
        devices = [] if options.asr_mode == "sidecar" else \
            model_devices(options.device or config.asr.device, config.asr.share_model, options.workers)
        if devices:
            threads = 2 if devices[0].startswith("cuda") else os.cpu_count() or 1  # on a CPU the model does nearly all the work
            service = ModelService(get_context("spawn"), config.asr, options.model, devices,
                                   options.workers, threads)
            log.info("one Whisper model process on each of %s transcribes for %d workers",
                     ", ".join(devices), options.workers)
    except AsrUnavailable as failure:
        error = failure
    try:
        yield service, error
    finally:
        if service is not None:
            service.close()


def inputs_sha256(job: Job) -> str:
    """A hash of everything besides the audio that a call's audit reads: its sidecar transcript
    and metadata files and the metadata from the manifest and the file name."""
    digest = hashlib.sha256(json.dumps(asdict(job.meta), sort_keys=True).encode())
    for sidecar_file in (sidecar.transcript_path(job.path), sidecar.meta_path(job.path)):
        try:
            digest.update(sidecar_file.read_bytes())
        except OSError:
            digest.update(b"(none)")
    return digest.hexdigest()


def _plan(jobs: list[Job], db: ResultsDB, config: Config, model_key: str, options: BatchOptions):
    """Split jobs into those to audit now and those whose result is already in the database."""
    todo, settled = [], []
    for job in jobs:
        job = replace(job, inputs_sha256=inputs_sha256(job))  # stored with the result, as planned
        digest = file_sha256(job.path)
        if not options.force and digest is not None:
            if db.done_key(job.call_id) == (digest, job.inputs_sha256, config.sha256, model_key):
                settled.append(Outcome(job, "skipped"))
                continue
            failed = db.failed_key(job.call_id)
            if not options.retry_failed and failed == (digest, job.inputs_sha256, config.sha256):
                settled.append(Outcome(job, "skipped_failed"))
                continue
        todo.append(job)
    return todo, settled


def _audit(job: Job, config: Config, asr: AsrChoice) -> Outcome:
    started = time.perf_counter()
    try:
        record = call_record(audit_call(job, config, asr))
        return Outcome(job, "audited", record, seconds=time.perf_counter() - started)
    except AuditError as failure:
        reason = str(failure)
    except Exception as failure:  # a bug or an odd file must not cost the other calls
        log.exception("internal error on %s", job.path)
        reason = f"internal error: {type(failure).__name__}: {failure}"
    return Outcome(job, "failed", reason=reason, seconds=time.perf_counter() - started)


def _store(outcome: Outcome, db: ResultsDB, out: Path, run_id: int, config: Config, model_key: str):
    """JSON record first, then the database row: the row is the proof the call is done."""
    if outcome.state == "audited":
        record = outcome.row
        write_json(out / "calls" / f"{record['call_id']}.json", record)
        db.save_call(record, run_id, config.sha256, model_key, outcome.job.inputs_sha256)
    else:
        db.save_error(outcome.job.call_id, str(outcome.job.path), file_sha256(outcome.job.path),
                      outcome.job.inputs_sha256, config.sha256, run_id, outcome.reason)


# --- worker processes ---------------------------------------------------------------------------

_WORKER: dict = {}


def _worker_start(config_files: tuple[str, ...], options: BatchOptions, threads: int,
                  shared: ServiceHandle | None) -> None:
    """Load the config and the ASR model (unless the run shares one) once per worker process."""
    import torch

    torch.set_num_threads(threads)
    config = load_config(config_files[1] if len(config_files) > 1 else None)
    _WORKER["config"] = config
    _WORKER["asr"] = AsrChoice.prepare(options.asr_mode, config, options.model, options.device, shared)
    load_models(config)


def _worker_audit(job: Job) -> Outcome:
    return _audit(job, _WORKER["config"], _WORKER["asr"])


def _run_parallel(todo: list[Job], config: Config, options: BatchOptions, shared: ServiceHandle | None,
                  record: Callable[[Outcome], None]) -> None:
    """Audit `todo` on `options.workers` processes; survive a worker that dies.

    When a worker process dies (a crash in native code, the OOM killer), the pool breaks and every
    call in flight is lost with it; those calls are then retried one at a time, so the call that
    kills its worker again is recorded as failed and the others are audited.
    """
    threads = max(1, (os.cpu_count() or 1) // options.workers)
    pending = list(todo)
    suspects: list[Job] = []
    while pending or suspects:
        if suspects:
            job = suspects.pop(0)
            outcome = _run_alone(job, config, options, threads, shared)
            record(outcome)
            continue
        with _pool(config, options, options.workers, threads, shared) as pool:
            running = {}
            try:
                while pending or running:
                    while pending and len(running) < options.workers * 2:
                        job = pending.pop(0)
                        running[pool.submit(_worker_audit, job)] = job
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        outcome = future.result()  # raises BrokenProcessPool if its worker died
                        del running[future]
                        record(outcome)
            except BrokenProcessPool:
                suspects.extend(running.values())
                log.warning("a worker process died; retrying its %d calls one by one", len(running))


def _pool(config: Config, options: BatchOptions, workers: int, threads: int,
          shared: ServiceHandle | None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                               initializer=_worker_start, initargs=(config.files, options, threads, shared))


def _run_alone(job: Job, config: Config, options: BatchOptions, threads: int,
               shared: ServiceHandle | None) -> Outcome:
    with _pool(config, options, 1, threads, shared) as pool:
        try:
            return pool.submit(_worker_audit, job).result()
        except BrokenProcessPool:
            return Outcome(job, "failed", reason="the worker process died while auditing this recording")


# --- the run summary ----------------------------------------------------------------------------


def _summary(db: ResultsDB, jobs: list[Job], run_id: int, config: Config, asr: dict,
             outcomes: list[Outcome], elapsed: float) -> dict:
    """Every recording given to this run, audited now or before, with what became of it."""
    ids = [job.call_id for job in jobs]
    calls = db.call_rows(ids)
    errors = db.error_rows(ids)
    state = {o.job.call_id: o.state for o in outcomes}
    call_list, error_list = [], []
    for call_id in ids:
        if state[call_id] in ("failed", "skipped_failed"):
            error_list.append(errors[call_id] | {"state": state[call_id]})
        else:
            call_list.append(calls[call_id] | {"state": state[call_id]})
    verdicts = Counter(c["verdict"] for c in call_list)
    by_rule = Counter(rule for c in call_list for rule in c["failed_rules"])
    by_agent: dict[str, dict] = {}
    for call in call_list:
        agent = by_agent.setdefault(call["agent_id"] or "unknown", {"calls": 0, "fails": Counter()})
        agent["calls"] += 1
        agent["fails"].update(call["failed_rules"])
    return {
        "schema": SUMMARY_SCHEMA,
        "run_id": run_id,
        "elapsed_s": round(elapsed, 2),
        "config": {"files": list(config.files), "sha256": config.sha256},
        "asr": asr,
        "counts": {
            "files": len(jobs),
            "audited": len(call_list),
            "audited_now": sum(o.state == "audited" for o in outcomes),
            "skipped": sum(o.state == "skipped" for o in outcomes),
            "errors": len(error_list),
            **{v: verdicts.get(v, 0) for v in ("pass", "review", "fail")},
        },
        "fails_by_rule": dict(sorted(by_rule.items())),
        "fails_by_agent": {
            agent: {"calls": row["calls"], "fails": dict(sorted(row["fails"].items()))}
            for agent, row in sorted(by_agent.items())
        },
        "calls": call_list,
        "errors": error_list,
    }
