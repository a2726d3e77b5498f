"""One call's work and what became of it, wherever the call runs: in the run's own process, in a
local worker process or in a Ray actor (`audit.run.cluster`).

Every executor calls `audit_job`, so a call's record is the same however the night is spread.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from audit.config import Config
from audit.present.report.audio import AudioError, encode_ahead
from audit.present.store import call_record
from audit.run.pipeline import AsrChoice, AuditError, Job, audit_call

log = logging.getLogger(__name__)

HOST = socket.gethostname()


class ClusterError(Exception):
    """The cluster a run was to audit on cannot be reached or cannot take its calls; the message
    says why (`audit.run.cluster`; defined here so that catching it imports nothing of Ray)."""


@dataclass
class Outcome:
    """What became of one recording in this run."""

    job: Job
    state: str  # "audited", "skipped", "failed", "skipped_failed"
    row: dict | None = None  # the call record of an audited call
    reason: str | None = None
    seconds: float = 0.0  # time spent auditing it (zero when skipped)
    shown_id: str = ""  # the call id as the outputs name it ([privacy] mask_outputs)
    node: str = ""  # the machine that audited it (empty when it was not audited in this run)


def audit_job(job: Job, config: Config, asr: AsrChoice, node: str = HOST,
              report_folder: Path | None = None) -> Outcome:
    """Audit one call; any failure becomes the call's reason, so one call never costs the others.

    With `report_folder` (OUT/report, where the run's report will be built on this machine), a
    flagged call's audio for the report is encoded here too, while the worker has the call.
    """
    started = time.perf_counter()
    try:
        record = call_record(audit_call(job, config, asr))
        if report_folder is not None:
            _audio_ahead(record, config, report_folder)
        return Outcome(job, "audited", record, seconds=time.perf_counter() - started, node=node)
    except AuditError as failure:
        reason = str(failure)
    except Exception as failure:  # a bug or an odd file must not cost the other calls
        log.exception("internal error on %s", job.path)
        reason = f"internal error: {type(failure).__name__}: {failure}"
    return Outcome(job, "failed", reason=reason, seconds=time.perf_counter() - started, node=node)


def _audio_ahead(record: dict, config: Config, report_folder: Path) -> None:
    """The report's audio of a flagged call; a failure costs nothing but time (the build tries again
    and says on the page why it could not)."""
    try:
        encode_ahead(record, config.decode, report_folder, config.report.audio_verdicts, config.report.audio_kbps)
    except (AudioError, OSError) as error:
        log.warning("audio for the report of %s not encoded now: %s", record["call_id"], error)
