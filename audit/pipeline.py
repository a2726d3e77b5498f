"""Audit one recording end to end, and a batch of them without letting one bad file stop the rest.

decode -> channels -> speech (VAD) -> transcript (Whisper or sidecar) -> metrics -> checks -> score
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal

from audit import decode as decoding
from audit import sidecar
from audit.asr import WHISPER_SAMPLE_RATE, AsrUnavailable, WhisperTranscriber
from audit.checks import CallContext, run_checks
from audit.config import Config
from audit.records import CallAudit, ChannelSpeech, Transcript
from audit.scoring import score_call
from audit.speech import assign_channels, find_speech
from audit.timing import measure_timing
from audit.store import SUMMARY_SCHEMA, write_call, write_json

log = logging.getLogger(__name__)

AsrMode = Literal["auto", "whisper", "sidecar"]


class AuditError(Exception):
    """This recording cannot be audited; the message says why."""


@dataclass(frozen=True)
class Job:
    path: Path
    call_id: str


@dataclass
class AsrChoice:
    """How transcripts are obtained in this run."""

    mode: AsrMode
    transcriber: WhisperTranscriber | None = None
    whisper_error: str | None = None  # why Whisper is not in use, when it was wanted

    @classmethod
    def prepare(cls, mode: AsrMode, config: Config, model: str | None, device: str | None):
        """Load Whisper once for the whole run when the mode may use it.

        `whisper` mode raises `AsrUnavailable` when the model cannot be loaded; `auto` notes the
        reason and falls back to sidecar transcripts.
        """
        if mode == "sidecar":
            return cls(mode)
        try:
            return cls(mode, WhisperTranscriber(config.asr, model, device))
        except AsrUnavailable as error:
            if mode == "whisper":
                raise
            log.warning("%s; using sidecar transcripts where present", error)
            return cls(mode, whisper_error=str(error))

    def transcript(self, path: Path, audio_16k, speech: tuple[ChannelSpeech, ...]) -> Transcript:
        if self.transcriber is not None:
            return self.transcriber.transcribe(audio_16k, speech)
        found = sidecar.read_transcript(path)
        if found is not None:
            return found
        wanted = sidecar.transcript_path(path).name
        if self.mode == "sidecar":
            raise AuditError(f"no sidecar transcript {wanted} (--asr sidecar)")
        raise AuditError(f"no transcript: Whisper is unavailable ({self.whisper_error}) "
                         f"and there is no sidecar {wanted}")

    def describe(self) -> dict:
        transcriber = self.transcriber
        return {
            "mode": self.mode,
            "whisper_model": transcriber.model_name if transcriber else None,
            "device": transcriber.device if transcriber else None,
            "whisper_error": self.whisper_error,
        }


def audit_call(job: Job, config: Config, asr: AsrChoice) -> CallAudit:
    try:
        recording = decoding.decode(job.path)
        meta = sidecar.read_meta(job.path)
    except (decoding.DecodeError, sidecar.SidecarError) as error:
        raise AuditError(str(error)) from None
    audio_16k = decoding.resample(recording, WHISPER_SAMPLE_RATE)
    channels = assign_channels(recording.info.channels, config.channels)
    speech = find_speech(audio_16k, channels, config.vad)
    try:
        transcript = asr.transcript(job.path, audio_16k, speech)
    except sidecar.SidecarError as error:
        raise AuditError(str(error)) from None
    timing = measure_timing(audio_16k, speech, transcript, meta, config.timing)
    context = CallContext(
        recording=recording.info,
        meta=meta,
        speech=speech,
        transcript=transcript,
        answer_s=timing.answer_s,
        answer_source=timing.answer_source,
        company_names=config.company_names,
        timing=timing,
        events=timing.events(),
    )
    results = run_checks(context, config.rules)
    score, verdict = score_call(results, config.rules, config.scoring)
    return CallAudit(
        call_id=job.call_id,
        recording=recording.info,
        meta=meta,
        speech=speech,
        transcript=transcript,
        metrics=call_metrics(context),
        results=results,
        score=score,
        verdict=verdict,
    )


def call_metrics(call: CallContext) -> dict:
    return {"duration_s": round(call.recording.duration_s, 3), **call.timing.metrics()}


# --- batches ------------------------------------------------------------------------------------


def discover(paths: list[Path]) -> list[Job]:
    """Recordings under `paths` (files as given, folders recursively), each with a stable call id.

    The call id is the path relative to the folder it was found under, with separators turned into
    `__`; two recordings that would share an id both get a short hash of their full path.
    """
    found: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                if path.suffix.lower() in decoding.AUDIO_EXTENSIONS and not sidecar.is_sidecar(path):
                    found.append((path, path.relative_to(root).with_suffix("").as_posix()))
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


def _safe_id(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name.replace("/", "__"))


@dataclass
class RunSummary:
    out: Path
    started_at: str
    asr: dict
    config: Config
    calls: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0

    def document(self) -> dict:
        verdicts = Counter(c["verdict"] for c in self.calls)
        by_rule = Counter(rule for c in self.calls for rule in c["failed_rules"])
        by_agent: dict[str, dict] = {}
        for call in self.calls:
            agent = by_agent.setdefault(call["agent_id"] or "unknown", {"calls": 0, "fails": Counter()})
            agent["calls"] += 1
            agent["fails"].update(call["failed_rules"])
        return {
            "schema": SUMMARY_SCHEMA,
            "started_at": self.started_at,
            "elapsed_s": round(self.elapsed_s, 2),
            "config": {"files": list(self.config.files), "sha256": self.config.sha256},
            "asr": self.asr,
            "counts": {
                "files": len(self.calls) + len(self.errors),
                "audited": len(self.calls),
                "errors": len(self.errors),
                **{v: verdicts.get(v, 0) for v in ("pass", "review", "fail")},
            },
            "fails_by_rule": dict(sorted(by_rule.items())),
            "fails_by_agent": {
                agent: {"calls": row["calls"], "fails": dict(sorted(row["fails"].items()))}
                for agent, row in sorted(by_agent.items())
            },
            "calls": self.calls,
            "errors": self.errors,
        }


def run_batch(
    jobs: list[Job],
    out: Path,
    config: Config,
    asr: AsrChoice,
    on_done: Callable[[Job, dict | None, str | None], None] = lambda job, row, error: None,
) -> RunSummary:
    """Audit every job, write its record, and write `summary.json`; never stop on a bad file."""
    started = time.perf_counter()
    summary = RunSummary(out=out, started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         asr=asr.describe(), config=config)
    for job in jobs:
        row, error = None, None
        try:
            audit = audit_call(job, config, asr)
            write_call(out, audit)
            row = {
                "call_id": audit.call_id,
                "path": str(job.path),
                "agent_id": audit.meta.agent_id,
                "transcript_source": audit.transcript.source,
                "verdict": audit.verdict,
                "score": round(audit.score, 1),
                "failed_rules": [r.rule_id for r in audit.results if r.status == "fail"],
            }
            summary.calls.append(row)
        except AuditError as failure:
            error = str(failure)
        except Exception as failure:  # a bug or an odd file must not cost the other calls
            log.debug("internal error on %s\n%s", job.path, traceback.format_exc())
            error = f"internal error: {type(failure).__name__}: {failure}"
        if error is not None:
            summary.errors.append({"path": str(job.path), "call_id": job.call_id, "reason": error})
        on_done(job, row, error)
    summary.elapsed_s = time.perf_counter() - started
    write_json(out / "summary.json", summary.document())
    return summary
