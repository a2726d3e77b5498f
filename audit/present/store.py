"""The output folder: its lock, the per-call records (`OUT/calls/<call-id>.json`), the run summary
(`OUT/summary.json`) and the results database (`OUT/audit.sqlite`).

The call record is a contract that dashboards and other tools read: the names in
`call_record` are kept stable under schema `call-audit/1`; new fields are only ever added.
Files are written to a temporary name and renamed, so a reader never sees half a record. The
database is the truth about each call: a call is either in `calls` (its current verdict) or in
`errors` (why its latest audit failed), never both, and a record file that is missing or corrupt
is written again from the database (`restore_records`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from audit.privacy import Privacy
from audit.records import CallAudit, Evidence, Utterance, finding_key, moment

log = logging.getLogger(__name__)

CALL_SCHEMA = "call-audit/1"
SUMMARY_SCHEMA = "audit-run/1"
LOCK_NAME = ".audit.lock"
# The errors that mean the output folder cannot take more writes: the run stops rather than
# failing every call that follows.
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


class OutputError(Exception):
    """The output folder cannot be used or cannot take more writes; the message says why."""


class OutputFull(OutputError):
    """The output's disk filled up (or turned read-only) during a run."""


class RunLocked(Exception):
    """Another audit process (a run or a report build) is using this output folder."""


def check_output_folder(out: Path) -> None:
    """Create `out` when missing and prove it can be written, before any work is done.

    Raises
    ------
    OutputError
        When `out` is a file, sits under a file, or cannot be written (read-only, no permission).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise OutputError(f"--out {out} is a file, not a folder") from None
    except NotADirectoryError:
        raise OutputError(f"--out {out} lies under a file, not a folder") from None
    except OSError as error:
        raise OutputError(f"--out {out} cannot be written: {error.strerror}") from None


def output_full(error: BaseException) -> bool:
    """Whether `error` says the output's disk is full or read-only (OS or SQLite)."""
    if isinstance(error, OSError):
        return error.errno in FULL_ERRNOS
    return isinstance(error, sqlite3.OperationalError) and any(
        phrase in str(error) for phrase in ("disk is full", "readonly database", "disk I/O error"))


class OutputLock:
    """An exclusive, crash-safe lock on the output folder (released by the OS if the holder dies).

    Held by `audit run` for the whole run and by the report build, so two processes never write
    the same folder at once; the second is refused with `RunLocked` naming the holder.
    """

    def __init__(self, out: Path, purpose: str = "audit run"):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / LOCK_NAME
        self.purpose = purpose
        self.handle = open(self.path, "a+")

    def __enter__(self):
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise RunLocked(f"{self.path.parent} is in use by another audit process ({holder}); "
                            "wait for it to finish or use another --out folder") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{self.purpose}, pid {os.getpid()}, started "
                          f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        self.handle.close()


def _t(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def _utterance(utterance: Utterance) -> dict:
    record = {"speaker": utterance.speaker, "start": _t(utterance.start), "end": _t(utterance.end),
              "text": utterance.text}
    if utterance.words:
        record["words"] = [{"start": _t(w.start), "end": _t(w.end), "text": w.text,
                            **({} if w.probability is None else {"probability": round(w.probability, 3)})}
                           for w in utterance.words]
    return record


def _evidence(evidence: Evidence) -> dict:
    record = {"start": _t(evidence.start), "end": _t(evidence.end), "speaker": evidence.speaker,
              "text": evidence.text}
    if evidence.match:
        record["match"] = evidence.match
    if evidence.utterance is not None:
        record["utterance"] = evidence.utterance
    if evidence.span is not None:
        record["span"] = list(evidence.span)
    return record


def call_record(audit: CallAudit) -> dict:
    recording = audit.recording
    return {
        "schema": CALL_SCHEMA,
        "call_id": audit.call_id,
        "recording": {
            "path": str(recording.path.resolve()),  # absolute: reports and reruns start elsewhere
            "duration_s": _t(recording.duration_s),
            "sample_rate": recording.sample_rate,
            "channels": recording.channels,
            "sha256": recording.sha256,
            "format": recording.format,
            "notes": list(recording.notes),  # what decoding repaired (NaN samples, an open header)
        },
        "meta": asdict(audit.meta),
        "transcript_source": audit.transcript.source,
        "asr_model": audit.transcript.model or None,  # engine:model that transcribed it; None for sidecars
        "speech": [
            {"channel": s.channel.index, "speaker": s.channel.speaker,
             "intervals": [[_t(i.start), _t(i.end)] for i in s.intervals]}
            for s in audit.speech
        ],
        "utterances": [{**_utterance(u), "prosody": m} for u, m in
                       zip(audit.transcript.utterances, audit.utterance_metrics, strict=True)],
        "dropped_utterances": [
            {**_utterance(d.utterance), "reason": d.reason} for d in audit.transcript.dropped
        ],
        "term_corrections": [  # key terms read by sound (audit.measure.terms): what was heard, what is meant
            {"speaker": c.speaker, "utterance_start": _t(c.utterance_start), "heard": c.heard, "term": c.term}
            for c in audit.transcript.corrections
        ],
        "metrics": audit.metrics,
        "results": [
            {"rule_id": r.rule_id, "status": r.status, "severity": r.severity, "message": r.message,
             "evidence": [_evidence(e) for e in r.evidence], "details": r.details,
             "missing": list(r.missing),
             "expected_window": None if r.expected_window is None else [round(t, 2) for t in r.expected_window],
             "evidence_total": r.evidence_total}
            for r in audit.results
        ],
        "score": round(audit.score, 1),
        "subscores": {k: round(v, 1) for k, v in audit.subscores.items()},
        "verdict": audit.verdict,
    }


def write_json(path: Path, document: dict) -> None:
    """Write `document` to `path` atomically; on any failure (a full disk) no temporary file stays."""
    write_text(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    write_file(path, text.encode("utf-8"))


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file renamed over it, so a reader never sees
    half a file; the temporary file is removed when the write fails (a full disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


_UNSAFE = re.compile(r"[^\w.-]")  # in a file name


def record_path(out: Path, call_id: str) -> Path:
    """Where the record of `call_id` (as the outputs name it: masked ids hold `*`) is written."""
    return out / "calls" / f"{_UNSAFE.sub('_', call_id)}.json"


def read_record(path: Path) -> dict | None:
    """The call record at `path`, or None when it is missing or not a readable record."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "call_id" in record else None


# --- the results database -----------------------------------------------------------------------

DB_NAME = "audit.sqlite"

# Each entry upgrades the schema by one version; never edit a shipped step, add a new one.
MIGRATIONS = (
    """
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,              -- running | finished (a run killed mid-way stays running)
        roots TEXT NOT NULL,               -- JSON list of the paths given
        config_sha256 TEXT NOT NULL,
        config_files TEXT NOT NULL,        -- JSON list
        asr TEXT NOT NULL,                 -- JSON: mode, model, device
        workers INTEGER NOT NULL,
        files INTEGER, audited INTEGER, skipped INTEGER, errors INTEGER
    );
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        audio_sha256 TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        model TEXT NOT NULL,               -- whisper model, or "sidecar"
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        audited_at TEXT NOT NULL,
        agent_id TEXT,
        direction TEXT,
        duration_s REAL,
        transcript_source TEXT,
        score REAL,
        verdict TEXT,
        record TEXT NOT NULL               -- the call-audit/1 JSON record
    );
    CREATE INDEX calls_agent ON calls(agent_id, audited_at);
    CREATE TABLE results (
        call_id TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        evidence TEXT NOT NULL,            -- JSON list of {start, end, speaker, text}
        PRIMARY KEY (call_id, rule_id)
    );
    CREATE INDEX results_rule ON results(rule_id, status);
    CREATE TABLE metrics (
        call_id TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value REAL,                        -- numbers
        text TEXT,                         -- everything else, as JSON
        PRIMARY KEY (call_id, name)
    );
    CREATE TABLE errors (
        call_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        audio_sha256 TEXT,
        config_sha256 TEXT NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    """,
    # v2: what else a call's audit reads besides its audio (sidecar transcript and metadata, the
    # manifest's and the file name's metadata), so changing any of it re-audits the call.
    """
    ALTER TABLE calls ADD COLUMN inputs_sha256 TEXT;
    ALTER TABLE errors ADD COLUMN inputs_sha256 TEXT;
    """,
    # v3: a call is in calls or in errors, never both. Earlier versions kept the old verdict of a
    # call whose later audit failed; the failure is the newer fact (a success deleted the error).
    """
    DELETE FROM calls WHERE call_id IN (SELECT call_id FROM errors);
    """,
    # v4: the output folder's secrets, kept with the clear data they protect: the key of masked
    # call ids ([privacy] mask_outputs, audit/privacy.py).
    """
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # v5: reviewers' decisions on findings (audit/present/review.py: `audit review import`). No foreign key to
    # calls: a re-audit replaces a call's row, and a decision on a finding outlives it.
    """
    CREATE TABLE reviews (
        finding_key TEXT PRIMARY KEY,      -- hash of the recording, call, rule and evidence moment
        call_id TEXT,                      -- the call, when its finding was current at import
        rule_id TEXT NOT NULL,
        moment TEXT NOT NULL,              -- whole second of the finding's first evidence, or -
        decision TEXT NOT NULL,            -- confirm | dismiss
        reason TEXT NOT NULL,              -- one of [review] reasons
        note TEXT NOT NULL,                -- the reviewer's free text
        reviewer TEXT NOT NULL,
        decided_at TEXT NOT NULL,          -- in the browser, ISO 8601
        imported_at TEXT NOT NULL,
        source TEXT NOT NULL               -- the file's name
    );
    CREATE INDEX reviews_rule ON reviews(rule_id, decision);
    """,
)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsDB:
    """The SQLite store of every audited call, across nights.

    Every call is written in its own transaction, so a run killed at any moment leaves each call
    either fully recorded or absent, and the next run does the absent ones.
    """

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / DB_NAME
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(f"{self.path} has schema version {version}, newer than this tool "
                               f"({len(MIGRATIONS)}); upgrade the tool")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    def start_run(self, roots: list[str], config, asr: dict, workers: int) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (started_at, status, roots, config_sha256, config_files, asr, workers)"
            " VALUES (?, 'running', ?, ?, ?, ?, ?)",
            (_now(), json.dumps(roots), config.sha256, json.dumps(list(config.files)),
             json.dumps(asr), workers),
        )
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, files: int, audited: int, skipped: int, errors: int) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, status = 'finished', files = ?, audited = ?,"
            " skipped = ?, errors = ? WHERE run_id = ?",
            (_now(), files, audited, skipped, errors, run_id),
        )

    def done_key(self, call_id: str) -> tuple | None:
        """(audio_sha256, inputs_sha256, config_sha256, model) the call was last audited with, if it was."""
        return self.db.execute(
            "SELECT audio_sha256, inputs_sha256, config_sha256, model FROM calls WHERE call_id = ?",
            (call_id,),
        ).fetchone()

    def failed_key(self, call_id: str) -> tuple | None:
        return self.db.execute(
            "SELECT audio_sha256, inputs_sha256, config_sha256 FROM errors WHERE call_id = ?", (call_id,)
        ).fetchone()

    def save_call(self, record: dict, run_id: int, config_sha256: str, model: str,
                  inputs_sha256: str) -> None:
        call_id = record["call_id"]
        with self._transaction():
            self.db.execute("DELETE FROM calls WHERE call_id = ?", (call_id,))
            self.db.execute("DELETE FROM errors WHERE call_id = ?", (call_id,))
            self.db.execute(
                "INSERT INTO calls (call_id, path, audio_sha256, config_sha256, model, run_id, audited_at,"
                " agent_id, direction, duration_s, transcript_source, score, verdict, record, inputs_sha256)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (call_id, record["recording"]["path"], record["recording"]["sha256"], config_sha256,
                 model, run_id, _now(), record["meta"].get("agent_id"), record["meta"].get("direction"),
                 record["recording"]["duration_s"], record["transcript_source"], record["score"],
                 record["verdict"], json.dumps(record, ensure_ascii=False), inputs_sha256),
            )
            self.db.executemany(
                "INSERT INTO results VALUES (?,?,?,?,?,?)",
                [(call_id, r["rule_id"], r["status"], r["severity"], r["message"],
                  json.dumps(r["evidence"], ensure_ascii=False)) for r in record["results"]],
            )
            self.db.executemany(
                "INSERT INTO metrics VALUES (?,?,?,?)",
                [(call_id, name, value if _is_number(value) else None,
                  None if _is_number(value) else json.dumps(value, ensure_ascii=False))
                 for name, value in record["metrics"].items()],
            )

    def save_error(self, call_id: str, path: str, audio_sha256: str | None, inputs_sha256: str,
                   config_sha256: str, run_id: int, reason: str) -> None:
        """Record why the call's latest audit failed; its earlier verdict, if any, is dropped with
        its results and metrics (a call's current state is one thing)."""
        with self._transaction():
            self.db.execute("DELETE FROM calls WHERE call_id = ?", (call_id,))
            self.db.execute(
                "INSERT OR REPLACE INTO errors (call_id, path, audio_sha256, config_sha256, run_id, at,"
                " reason, inputs_sha256) VALUES (?,?,?,?,?,?,?,?)",
                (call_id, path, audio_sha256, config_sha256, run_id, _now(), reason, inputs_sha256),
            )

    def holder(self, call_id: str) -> str | None:
        """The recording path stored under `call_id` (audited or failed), if any."""
        row = self.db.execute("SELECT path FROM calls WHERE call_id = ? UNION ALL "
                              "SELECT path FROM errors WHERE call_id = ?", (call_id, call_id)).fetchone()
        return row[0] if row else None

    def privacy(self, mask_outputs: bool) -> Privacy:
        """How this output folder writes its shared outputs: with `mask_outputs`, call ids masked
        with the folder's key (made on first use and kept here, with the clear data)."""
        row = self.db.execute("SELECT value FROM secrets WHERE name = 'masked_ids'").fetchone()
        if row is None and mask_outputs:
            self.db.execute("INSERT OR IGNORE INTO secrets VALUES ('masked_ids', ?)", (secrets.token_hex(32),))
            row = self.db.execute("SELECT value FROM secrets WHERE name = 'masked_ids'").fetchone()
        return Privacy(mask_outputs, bytes.fromhex(row[0]) if row else b"")

    def call_paths(self) -> dict[str, str]:
        """Every audited call's id and recording path, in clear."""
        return dict(self.db.execute("SELECT call_id, path FROM calls"))

    def restore_records(self, out: Path, call_ids: list[str], privacy: Privacy = Privacy()) -> list[str]:
        """Write again, from the database, each record of `call_ids` whose file is missing or
        corrupt (truncated, deleted, edited into invalid JSON) or was written with the other
        `[privacy] mask_outputs` (its file under the other name is removed); returns the ids
        (as the outputs name them) of the records written."""
        restored, reformed = [], []
        for chunk in _chunks(call_ids):
            marks = ",".join("?" * len(chunk))
            for call_id, text in self.db.execute(
                    f"SELECT call_id, record FROM calls WHERE call_id IN ({marks})", chunk):
                shown = privacy.id(call_id)
                path = record_path(out, shown)
                found = read_record(path)
                stale = remove_other_records(out, call_id, privacy)
                if found is None or found.get("call_id") != shown:
                    (reformed if stale else restored).append(shown)
                elif bool(found.get("masked")) != privacy.enabled:
                    reformed.append(shown)
                else:
                    continue
                write_json(path, privacy.record(json.loads(text)))
        if restored:
            log.warning("rewrote %d call records that were missing or corrupt from the database: %s",
                        len(restored), ", ".join(restored[:10]) + (" ..." if len(restored) > 10 else ""))
        if reformed:
            log.info("rewrote %d call records from the database for [privacy] mask_outputs = %s",
                     len(reformed), str(privacy.enabled).lower())
        return restored + reformed

    @contextmanager
    def _transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def call_rows(self, call_ids: list[str]) -> dict[str, dict]:
        """The summary row of each audited call among `call_ids`."""
        rows = {}
        for chunk in _chunks(call_ids):
            marks = ",".join("?" * len(chunk))
            for call_id, path, agent, source, verdict, score in self.db.execute(
                f"SELECT call_id, path, agent_id, transcript_source, verdict, score FROM calls"
                f" WHERE call_id IN ({marks})", chunk):
                rows[call_id] = {"call_id": call_id, "path": path, "agent_id": agent,
                                 "transcript_source": source, "verdict": verdict, "score": score,
                                 "failed_rules": []}
            for call_id, rule_id in self.db.execute(
                f"SELECT call_id, rule_id FROM results WHERE status = 'fail' AND call_id IN ({marks})"
                " ORDER BY call_id, rule_id", chunk):
                rows[call_id]["failed_rules"].append(rule_id)
        return rows

    def error_rows(self, call_ids: list[str]) -> dict[str, dict]:
        rows = {}
        for chunk in _chunks(call_ids):
            marks = ",".join("?" * len(chunk))
            for call_id, path, reason in self.db.execute(
                f"SELECT call_id, path, reason FROM errors WHERE call_id IN ({marks})", chunk):
                rows[call_id] = {"call_id": call_id, "path": path, "reason": reason}
        return rows


def remove_other_records(out: Path, call_id: str, privacy: Privacy) -> bool:
    """Remove the call's record written under another name (with the other `[privacy]
    mask_outputs`); whether there was one."""
    removed = False
    for name in privacy.names(call_id) - {privacy.id(call_id)}:
        path = record_path(out, name)
        if path.exists():
            path.unlink()
            removed = True
    return removed


def remove_records(out: Path, call_id: str, privacy: Privacy) -> None:
    """Remove the call's record under every name it may have been written under."""
    for name in privacy.names(call_id):
        record_path(out, name).unlink(missing_ok=True)


def last_config_files(out: Path) -> list[str]:
    """The config files the output folder's last run used (defaults first); [] before any run."""
    if not (out / DB_NAME).exists():
        return []
    db = ResultsDB(out)
    try:
        row = db.db.execute("SELECT config_files FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else []


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start: start + size]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stored_status(out: Path, mask_outputs: bool = False) -> dict:
    """What ran and what became of each call, read from the results database: `runs`, `calls`
    (how many have a current verdict), `verdicts`, `errors` (masked with `mask_outputs`), `known`
    (every call id with a current state), `roots` (the paths the last run was given) and
    `privacy` (how the outputs name calls)."""
    db = ResultsDB(out)
    try:
        privacy = db.privacy(mask_outputs)
        runs = db.db.execute(
            "SELECT run_id, started_at, finished_at, status, files, audited, skipped, errors"
            " FROM runs ORDER BY run_id").fetchall()
        verdicts = dict(db.db.execute("SELECT verdict, count(*) FROM calls GROUP BY verdict").fetchall())
        errors = db.db.execute("SELECT call_id, reason FROM errors ORDER BY call_id").fetchall()
        known = {row[0] for row in db.db.execute("SELECT call_id FROM calls UNION SELECT call_id FROM errors")}
        last = db.db.execute("SELECT roots FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    finally:
        db.close()
    errors = [(privacy.id(call_id), privacy.text(reason)) for call_id, reason in errors]
    return {"runs": runs, "calls": sum(verdicts.values()), "verdicts": verdicts, "errors": errors,
            "known": known, "roots": json.loads(last[0]) if last else [], "privacy": privacy}


CALL_COLUMNS = ("call_id", "path", "agent_id", "direction", "duration_s", "transcript_source",
                "score", "verdict", "failed_rules", "audited_at", "run_id")
FINDING_COLUMNS = ("call_id", "agent_id", "rule_id", "severity", "message", "start", "end", "speaker",
                   "text", "finding_key", "decision", "reason", "note", "reviewer", "decided_at")


def export_csv(out: Path, calls_csv: Path, findings_csv: Path | None = None,
               mask_outputs: bool = False) -> tuple[int, int]:
    """One row per call (and optionally one per finding, with the reviewer's decision on it); UTF-8
    with BOM so Excel shows Chinese. With `mask_outputs`, call ids and texts as the masked records
    have them."""
    import csv

    db = ResultsDB(out)
    try:
        privacy = db.privacy(mask_outputs)
        shown = privacy.text
        failed: dict[str, list[str]] = {}
        for call_id, rule_id in db.db.execute(
                "SELECT call_id, rule_id FROM results WHERE status = 'fail' ORDER BY rule_id"):
            failed.setdefault(call_id, []).append(rule_id)
        rows = db.db.execute(
            "SELECT call_id, path, agent_id, direction, duration_s, transcript_source, score, verdict,"
            " audited_at, run_id FROM calls ORDER BY call_id").fetchall()
        with open(calls_csv, "w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow(CALL_COLUMNS)
            for row in rows:
                call_id, path, agent, direction = row[:4]
                writer.writerow((privacy.id(call_id), shown(path), agent and shown(agent),
                                 direction and shown(direction), *row[4:8],
                                 ";".join(failed.get(call_id, [])), *row[8:]))
        findings = 0
        if findings_csv is not None:
            reviews = {row[0]: row[1:] for row in db.db.execute(
                "SELECT finding_key, decision, reason, note, reviewer, decided_at FROM reviews")}
            with open(findings_csv, "w", newline="", encoding="utf-8-sig") as handle:
                writer = csv.writer(handle)
                writer.writerow(FINDING_COLUMNS)
                for call_id, agent, sha, rule_id, severity, message, evidence in db.db.execute(
                        "SELECT r.call_id, c.agent_id, c.audio_sha256, r.rule_id, r.severity, r.message,"
                        " r.evidence FROM results r JOIN calls c USING (call_id) WHERE r.status = 'fail'"
                        " ORDER BY r.call_id, r.rule_id"):
                    items = json.loads(evidence)
                    first = (items or [{}])[0]
                    text = first.get("text")
                    key = finding_key(sha, call_id, rule_id, moment(items))
                    decision, reason, note, reviewer, at = reviews.get(key, ("", "", "", "", ""))
                    writer.writerow((privacy.id(call_id), agent and shown(agent), rule_id, severity,
                                     shown(message), first.get("start"), first.get("end"),
                                     first.get("speaker"), text and shown(text), key, decision, reason,
                                     shown(note), shown(reviewer), at))
                    findings += 1
    finally:
        db.close()
    return len(rows), findings
