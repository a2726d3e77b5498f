"""Write the per-call record (`OUT/calls/<call-id>.json`) and the run summary (`OUT/summary.json`).

The call record is a contract that dashboards and other tools read: the names in
`call_record` are kept stable under schema `call-audit/1`; new fields are only ever added.
Files are written to a temporary name and renamed, so a reader never sees half a record.
"""

from __future__ import annotations

import json
import os
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
            "path": str(recording.path),
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
        "utterances": [_utterance(u) for u in audit.transcript.utterances],
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
        "verdict": audit.verdict,
    }


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


def write_call(out: Path, audit: CallAudit) -> Path:
    path = out / "calls" / f"{audit.call_id}.json"
    write_json(path, call_record(audit))
    return path
