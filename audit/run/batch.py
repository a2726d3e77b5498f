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
- a recording that fails is recorded with its reason (replacing any earlier verdict: a call is in
  `calls` or in `errors`, never both) and not retried unless asked (`retry_failed`), and a worker
  that crashes takes only its own call down; workers exit when the run's process dies;
- what cannot be read as a file (a folder named `x.wav`, a FIFO, a symbolic link loop or a broken
  link) is recorded as failed with the reason, never opened; files under the output folder are
  never audited (an `--out` inside the input folder holds the report's own audio);
- a call id already held in the database by another recording is made unique with a hash of the
  path, and the run says so (`id_collisions` in the summary, a warning in the log);
- a call record (`calls/<id>.json`) that is missing or corrupt is written again from the database;
- when the output's disk fills up (or turns read-only) the run stops at once with `OutputFull`,
  keeping every call already recorded and leaving no temporary file; the next run resumes;
- all of this holds on a Ray cluster too (`ray`, `audit.run.cluster`): the calls are audited there by
  the same per-call work, and planned and recorded here, by this process alone.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections import Counter
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from audit.measure import sidecar
from audit.measure.asr import AsrUnavailable
from audit.measure.asr_service import ModelService, ServiceHandle, model_devices
from audit.config import Config
from audit.configload import load_config
from audit.measure.decode import AUDIO_EXTENSIONS
from audit.run.pipeline import AsrChoice, Job, load_models
from audit.privacy import Privacy, worker_logging
from audit.records import CallMeta
from audit.present.store import (SUMMARY_SCHEMA, OutputFull, OutputLock, ResultsDB, output_full, record_path,
                         remove_other_records, remove_records, stored_status, write_json)
from audit.present.report.audio import REPORT_FOLDER
from audit.run.work import HOST, Outcome, audit_job

log = logging.getLogger(__name__)


def discover(paths: list[Path], include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
             outside: Path | None = None) -> list[Job]:
    """Recordings under `paths` (files as given, folders recursively), each with a stable call id.

    In folders, `include` / `exclude` globs are matched against the path below the folder
    (`team1/*.wav`, `**/test/*`); with `include`, only matching recordings are taken. Every entry
    with an audio extension is taken, also one that is not a readable file (a folder named
    `x.wav`, a FIFO, a link loop), so the run can say why it is not audited (`unusable`). Entries
    under `outside` (the output folder) are left out, with a warning.

    The call id is the folder's own name followed by the path below it, separators turned into
    `__` (`/recordings/2026-11-22/team1/a.wav` -> `2026-11-22__team1__a`), so nights audited into
    one results database do not collide; two recordings that would still share an id both get a
    short hash of their full path.
    """
    found: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_dir():
            base = root.resolve().name
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root).as_posix()
                if (path.suffix.lower() in AUDIO_EXTENSIONS and not sidecar.is_sidecar(path)
                        and _wanted(relative, include, exclude)):
                    found.append((path, f"{base}/{path.relative_to(root).with_suffix('').as_posix()}"))
        else:
            found.append((root, root.stem))
    if outside is not None:
        found = _outside(found, outside)
    ids = Counter(_safe_id(name) for _, name in found)
    jobs = []
    for path, name in found:
        call_id = _safe_id(name)
        if ids[call_id] > 1:
            call_id = _unique_id(call_id, path)
        jobs.append(Job(path, call_id))
    return jobs


def _outside(found: list[tuple[Path, str]], out: Path) -> list[tuple[Path, str]]:
    inside = Path(os.path.realpath(out))
    kept = [(path, name) for path, name in found if not Path(os.path.realpath(path)).is_relative_to(inside)]
    if len(kept) < len(found):
        log.warning("%d files under the output folder %s are not audited (they are this tool's own "
                    "output); put --out outside the input folders", len(found) - len(kept), out)
    return kept


def _unique_id(call_id: str, path: Path) -> str:
    """`call_id` with a short hash of the recording's full path (the id of a colliding call)."""
    return call_id + "-" + hashlib.sha1(os.path.realpath(path).encode()).hexdigest()[:8]


def unusable(path: Path) -> str | None:
    """Why `path` cannot be opened as a recording without harm, or None when it is a regular file.

    Checked before a file is hashed or decoded: opening a FIFO would block the run for good.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop, not a recording"
        if os.path.islink(path):
            return f"a broken symbolic link (to {os.readlink(path)})"
        return f"cannot read: {error.strerror}"
    if stat.S_ISDIR(mode):
        return "a folder, not a recording"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"{kind}, not a regular file"
    return None


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
        meta = manifest.get(job.call_id) or manifest.get(os.path.realpath(job.path)) or CallMeta()
        match = pattern.search(job.path.name) if pattern else None
        if match and match.group("agent"):
            meta = meta.filled_from(CallMeta(agent_id=match.group("agent")))
        attached.append(replace(job, meta=meta))
    return attached


def _safe_id(name: str) -> str:
    import re

    return re.sub(r"[^\w.-]", "_", name.replace("/", "__"))


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a regular file; None when it cannot be read (the audit says why)."""
    if unusable(path) is not None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None  # the audit itself reports why the file cannot be read
    return digest.hexdigest()


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
    ray: str = ""  # a Ray cluster's address ([cluster] ray): the calls are audited there


@dataclass
class RunReport:
    run_id: int
    out: Path
    document: dict
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)


def run_batch(
    paths: list[Path],
    out: Path,
    config: Config,
    options: BatchOptions,
    on_outcome: Callable[[Outcome, int, int], None] = lambda outcome, done, total: None,
) -> RunReport:
    """Audit everything under `paths` into `out`; see the module docstring for the guarantees."""
    started = time.perf_counter()
    with OutputLock(out), _executor(config, options, out) as executor:
        asr_info = executor.asr
        model_key = f"whisper:{asr_info['whisper_model']}" if asr_info["whisper_model"] else "sidecar"
        db = ResultsDB(out)
        privacy = db.privacy(config.privacy.mask_outputs)
        jobs: list[Job] = []
        outcomes: list[Outcome] = []
        recorded = 0
        try:
            jobs = with_metadata(discover(paths, options.include, options.exclude, outside=out),
                                 options.manifest, config.metadata.agent_id_from_name)
            run_id = db.start_run([os.path.realpath(p) for p in paths], config, asr_info, executor.workers)
            plan = _plan(jobs, db, config, model_key, options, privacy)
            jobs = plan.jobs
            db.restore_records(out, [o.job.call_id for o in plan.settled if o.state == "skipped"], privacy)
            total = len(jobs)

            def record(outcome: Outcome) -> None:
                nonlocal recorded
                if outcome.state in ("audited", "failed"):
                    _store(outcome, db, out, run_id, config, model_key, privacy)
                    recorded += 1
                outcome.shown_id = privacy.id(outcome.job.call_id)
                outcomes.append(outcome)
                on_outcome(outcome, len(outcomes), total)

            for outcome in plan.settled + plan.refused:
                record(outcome)
            executor.run(plan.todo, record)
            elapsed = time.perf_counter() - started
            db.finish_run(run_id, len(jobs), sum(o.state == "audited" for o in outcomes),
                          sum(o.state.startswith("skipped") for o in outcomes),
                          sum(o.state in ("failed", "skipped_failed") for o in outcomes))
            document = privacy.summary(
                _summary(db, jobs, run_id, config, asr_info, outcomes, elapsed, plan.renamed,
                         executor.cluster))
            write_json(out / "summary.json", document)
        except Exception as error:
            if not output_full(error):
                raise
            left = len(jobs) - len(outcomes)
            raise OutputFull(f"the run stopped: {out} cannot take more writes ({error}); the "
                             f"{recorded} calls recorded in this run are kept, {left} were not "
                             "finished; free space and run again to resume") from None
        finally:
            db.close()
    return RunReport(run_id, out, document, outcomes, elapsed)


def run_status(out: Path, mask_outputs: bool = False) -> dict:
    """What ran, what failed and what is left: `store.stored_status` and `left`, the recordings
    under the last run's paths that have no current state yet (ids masked with `mask_outputs`)."""
    facts = stored_status(out, mask_outputs)
    existing = [Path(r) for r in facts["roots"] if Path(r).exists()]
    jobs = discover(existing, outside=out) if existing else []
    return facts | {"left": [facts["privacy"].id(job.call_id) for job in jobs
                             if job.call_id not in facts["known"]]}


@contextmanager
def _executor(config: Config, options: BatchOptions, out: Path):
    """Where the run's calls are audited: a Ray cluster with `options.ray` (Ray is imported only
    then), else this machine (whose workers also encode the flagged calls' audio for the report
    of `out`)."""
    if options.ray:
        from audit.run.cluster import RayExecutor

        with RayExecutor(config, options.ray, options.asr_mode, options.model, options.device) as executor:
            yield executor
        return
    with _shared_model(config, options) as (service, service_error):
        yield LocalExecutor(config, options, service, service_error, out / REPORT_FOLDER)


class LocalExecutor:
    """This machine: the calls in the run's own process, or on `options.workers` processes."""

    cluster = None  # what a Ray run says about its cluster in the summary

    def __init__(self, config: Config, options: BatchOptions, service: ModelService | None,
                 service_error: AsrUnavailable | None, report_folder: Path):
        self.config, self.options, self.service = config, options, service
        self.report_folder = report_folder
        if service_error is not None:
            self.choice = AsrChoice.without_whisper(options.asr_mode, service_error)
        else:
            self.choice = AsrChoice.prepare(options.asr_mode, config, options.model, options.device,
                                            service.handle if service else None)
        self.asr = self.choice.describe()
        self.workers = options.workers

    def run(self, todo: list[Job], record: Callable[[Outcome], None]) -> None:
        if self.workers > 1 and len(todo) > 1:
            self.choice.transcriber = None  # each worker loads its own model or uses the shared one
            _run_parallel(todo, self.config, self.options, self.service.handle if self.service else None,
                          record, self.report_folder)
        elif todo:
            load_models(self.config)
            for job in todo:
                record(audit_job(job, self.config, self.choice, report_folder=self.report_folder))


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


@dataclass
class Plan:
    """What a run does with each recording it was given."""

    jobs: list[Job]  # every recording, with its final call id
    todo: list[Job]  # to audit now
    settled: list[Outcome]  # already audited (or failed) with the same inputs: skipped
    refused: list[Outcome]  # not files that can be opened (`unusable`): failed without opening
    renamed: list[dict]  # call ids held by another recording in the database, made unique


def _plan(jobs: list[Job], db: ResultsDB, config: Config, model_key: str, options: BatchOptions,
          privacy: Privacy = Privacy()) -> Plan:
    """Decide, for each job, whether it is audited now, skipped or refused; give each a call id
    no other recording holds in the database."""
    plan = Plan([], [], [], [], [])
    for job in jobs:
        holder = db.holder(job.call_id)
        if holder is not None and os.path.realpath(holder) != os.path.realpath(job.path):
            unique = _unique_id(job.call_id, job.path)
            log.warning("call id %s is already used in the results database by %s; %s is audited as %s",
                        privacy.id(job.call_id), holder, job.path, privacy.id(unique))
            plan.renamed.append({"call_id": unique, "wanted": job.call_id, "path": str(job.path),
                                 "held_by": holder})
            job = replace(job, call_id=unique)
        job = replace(job, inputs_sha256=inputs_sha256(job))  # stored with the result, as planned
        plan.jobs.append(job)
        reason = unusable(job.path)
        if reason is not None:
            plan.refused.append(Outcome(job, "failed", reason=reason))
            continue
        digest = file_sha256(job.path)
        if not options.force and digest is not None:
            if db.done_key(job.call_id) == (digest, job.inputs_sha256, config.sha256, model_key):
                plan.settled.append(Outcome(job, "skipped"))
                continue
            failed = db.failed_key(job.call_id)
            if not options.retry_failed and failed == (digest, job.inputs_sha256, config.sha256):
                plan.settled.append(Outcome(job, "skipped_failed"))
                continue
        plan.todo.append(job)
    return plan


def _store(outcome: Outcome, db: ResultsDB, out: Path, run_id: int, config: Config, model_key: str,
           privacy: Privacy = Privacy()):
    """JSON record first, then the database row: the row is the proof the call is done. A failure
    removes the call's earlier record first, then replaces its row by the error. The record file
    is written as the outputs show it (masked with `[privacy] mask_outputs`, under the masked id);
    the database keeps the record in clear."""
    if outcome.state == "audited":
        record = outcome.row
        remove_other_records(out, record["call_id"], privacy)
        write_json(record_path(out, privacy.id(record["call_id"])), privacy.record(record))
        db.save_call(record, run_id, config.sha256, model_key, outcome.job.inputs_sha256)
    else:
        remove_records(out, outcome.job.call_id, privacy)
        db.save_error(outcome.job.call_id, os.path.realpath(outcome.job.path),
                      file_sha256(outcome.job.path), outcome.job.inputs_sha256, config.sha256, run_id,
                      outcome.reason)


# --- worker processes ---------------------------------------------------------------------------

_WORKER: dict = {}


def _worker_start(config_files: tuple[str, ...], options: BatchOptions, threads: int,
                  shared: ServiceHandle | None, parent: int) -> None:
    """Load the config and the ASR model (unless the run shares one) once per worker process;
    exit when the run's process `parent` is gone."""
    _exit_with_parent(parent)
    import torch

    torch.set_num_threads(threads)
    config = load_config(config_files[1] if len(config_files) > 1 else None)
    worker_logging(config.privacy.mask_outputs)
    _WORKER["config"] = config
    _WORKER["asr"] = AsrChoice.prepare(options.asr_mode, config, options.model, options.device, shared)
    load_models(config)


def _exit_with_parent(parent: int, interval_s: float = 0.5) -> None:
    """Exit this process as soon as `parent` is no longer its parent.

    A pool worker waits on its parent's queue; when the parent is killed (kill -9, the OOM killer)
    mid-call, the worker would finish the call and linger with its model in memory.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_audit(job: Job, report_folder: Path) -> Outcome:
    return audit_job(job, _WORKER["config"], _WORKER["asr"], report_folder=report_folder)


def _run_parallel(todo: list[Job], config: Config, options: BatchOptions, shared: ServiceHandle | None,
                  record: Callable[[Outcome], None], report_folder: Path) -> None:
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
            outcome = _run_alone(job, config, options, threads, shared, report_folder)
            record(outcome)
            continue
        with _pool(config, options, options.workers, threads, shared) as pool:
            running = {}
            try:
                while pending or running:
                    while pending and len(running) < options.workers * 2:
                        job = pending.pop(0)
                        running[pool.submit(_worker_audit, job, report_folder)] = job
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
                               initializer=_worker_start,
                               initargs=(config.files, options, threads, shared, os.getpid()))


def _run_alone(job: Job, config: Config, options: BatchOptions, threads: int,
               shared: ServiceHandle | None, report_folder: Path) -> Outcome:
    with _pool(config, options, 1, threads, shared) as pool:
        try:
            return pool.submit(_worker_audit, job, report_folder).result()
        except BrokenProcessPool:
            return Outcome(job, "failed", reason="the worker process died while auditing this recording",
                           node=HOST)


# --- the run summary ----------------------------------------------------------------------------


def _summary(db: ResultsDB, jobs: list[Job], run_id: int, config: Config, asr: dict,
             outcomes: list[Outcome], elapsed: float, renamed: list[dict], cluster: dict | None) -> dict:
    """Every recording given to this run, audited now or before, with what became of it, and
    how many calls each machine audited in this run (on Ray: each node)."""
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
        "id_collisions": renamed,
        "cluster": cluster,
        "nodes": _throughput(outcomes, elapsed),
    }


def _throughput(outcomes: list[Outcome], elapsed: float) -> list[dict]:
    """Per machine: calls audited (and failed) in this run, their audit time and calls per minute
    of the run's wall time."""
    nodes: dict[str, dict] = {}
    for outcome in outcomes:
        if outcome.node:
            node = nodes.setdefault(outcome.node,
                                    {"node": outcome.node, "calls": 0, "failed": 0, "audit_s": 0.0})
            node["calls"] += 1
            node["failed"] += outcome.state == "failed"
            node["audit_s"] += outcome.seconds
    return [node | {"audit_s": round(node["audit_s"], 2),
                    "calls_per_min": round(node["calls"] / max(elapsed, 1e-6) * 60, 1)}
            for _, node in sorted(nodes.items())]
