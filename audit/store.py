"""Write the per-call record (`OUT/calls/<call-id>.json`) and the run summary (`OUT/summary.json`).

The call record is a contract that dashboards and other tools read: the names in
`call_record` are kept stable under schema `call-audit/1`; new fields are only ever added.
Files are written to a temporary name and renamed, so a reader never sees half a record.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from audit.records import CallAudit, Evidence, Utterance

CALL_SCHEMA = "call-audit/1"
SUMMARY_SCHEMA = "audit-run/1"


def _t(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def _utterance(utterance: Utterance) -> dict:
    record = {"speaker": utterance.speaker, "start": _t(utterance.start), "end": _t(utterance.end),
              "text": utterance.text}
    if utterance.words:
        record["words"] = [{"start": _t(w.start), "end": _t(w.end), "text": w.text}
                           for w in utterance.words]
    return record


def _evidence(evidence: Evidence) -> dict:
    record = {"start": _t(evidence.start), "end": _t(evidence.end), "speaker": evidence.speaker,
              "text": evidence.text}
    if evidence.match:
        record["match"] = evidence.match
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
        },
        "meta": asdict(audit.meta),
        "transcript_source": audit.transcript.source,
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
        "metrics": audit.metrics,
        "results": [
            {"rule_id": r.rule_id, "status": r.status, "severity": r.severity, "message": r.message,
             "evidence": [_evidence(e) for e in r.evidence], "details": r.details}
            for r in audit.results
        ],
        "score": round(audit.score, 1),
        "subscores": {k: round(v, 1) for k, v in audit.subscores.items()},
        "verdict": audit.verdict,
    }


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


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
        import sqlite3

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
        self.db.execute(
            "INSERT OR REPLACE INTO errors (call_id, path, audio_sha256, config_sha256, run_id, at, reason,"
            " inputs_sha256) VALUES (?,?,?,?,?,?,?,?)",
            (call_id, path, audio_sha256, config_sha256, run_id, _now(), reason, inputs_sha256),
        )

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


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start: start + size]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def run_status(out: Path) -> dict:
    """What ran, what failed and what is left, read from the results database."""
    from audit.batch import discover

    db = ResultsDB(out)
    try:
        runs = db.db.execute(
            "SELECT run_id, started_at, finished_at, status, files, audited, skipped, errors"
            " FROM runs ORDER BY run_id").fetchall()
        verdicts = dict(db.db.execute("SELECT verdict, count(*) FROM calls GROUP BY verdict").fetchall())
        calls = sum(verdicts.values())
        errors = db.db.execute("SELECT call_id, reason FROM errors ORDER BY call_id").fetchall()
        left: list[str] = []
        if runs:
            roots = json.loads(db.db.execute(
                "SELECT roots FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()[0])
            existing = [Path(r) for r in roots if Path(r).exists()]
            jobs = discover(existing) if existing else []
            done = {row[0] for row in db.db.execute("SELECT call_id FROM calls")}
            failed = {call_id for call_id, _ in errors}
            left = [job.call_id for job in jobs if job.call_id not in done | failed]
    finally:
        db.close()
    return {"runs": runs, "calls": calls, "verdicts": verdicts, "errors": errors, "left": left}


CALL_COLUMNS = ("call_id", "path", "agent_id", "direction", "duration_s", "transcript_source",
                "score", "verdict", "failed_rules", "audited_at", "run_id")
FINDING_COLUMNS = ("call_id", "agent_id", "rule_id", "severity", "message", "start", "end", "speaker",
                   "text")


def export_csv(out: Path, calls_csv: Path, findings_csv: Path | None = None) -> tuple[int, int]:
    """One row per call (and optionally one per finding); UTF-8 with BOM so Excel shows Chinese."""
    import csv

    db = ResultsDB(out)
    try:
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
                writer.writerow((*row[:8], ";".join(failed.get(row[0], [])), *row[8:]))
        findings = 0
        if findings_csv is not None:
            with open(findings_csv, "w", newline="", encoding="utf-8-sig") as handle:
                writer = csv.writer(handle)
                writer.writerow(FINDING_COLUMNS)
                for call_id, agent, rule_id, severity, message, evidence in db.db.execute(
                        "SELECT r.call_id, c.agent_id, r.rule_id, r.severity, r.message, r.evidence"
                        " FROM results r JOIN calls c USING (call_id) WHERE r.status = 'fail'"
                        " ORDER BY r.call_id, r.rule_id"):
                    first = (json.loads(evidence) or [{}])[0]
                    writer.writerow((call_id, agent, rule_id, severity, message, first.get("start"),
                                     first.get("end"), first.get("speaker"), first.get("text")))
                    findings += 1
    finally:
        db.close()
    return len(rows), findings
