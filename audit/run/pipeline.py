"""Audit one recording end to end.

decode -> channels -> speech (VAD) -> transcript (Whisper or sidecar) -> metrics -> checks -> score
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal
from pathlib import Path

from audit.measure import decode as decoding
from audit.measure import sidecar
from audit.measure.agreement import disagreements
from audit.measure.coverage import from_asr, untranscribed
from audit.judge.confidence import weigh_confidence
from audit.measure.asr import AsrUnavailable, Transcriber, load_transcriber
from audit.measure.asr_service import RemoteTranscriber, ServiceHandle, TranscriptionFailed
from audit.judge.checks import CallContext, run_checks
from audit.config import Config
from audit.frames import SAMPLE_RATE
from audit.records import CallAudit, CallMeta, ChannelSpeech, RuleResult, Transcript
from audit.judge.scoring import score_call
from audit.measure.speech import assign_channels, find_speech, load_vad
from audit.measure.prosody import measure_prosody
from audit.measure.terms import correct_terms
from audit.measure.turns import join_continuations
from audit.measure.timing import measure_timing

log = logging.getLogger(__name__)

AsrMode = Literal["auto", "whisper", "sidecar"]


class AuditError(Exception):
    """This recording cannot be audited; the message says why."""


@dataclass(frozen=True)
class Job:
    path: Path
    call_id: str
    meta: CallMeta = CallMeta()  # from a manifest or the file name; the sidecar overrides it
    inputs_sha256: str = ""  # of its sidecars and metadata, taken when the run planned it (batch)


@dataclass
class AsrChoice:
    """How transcripts are obtained in this run."""

    mode: AsrMode
    transcriber: Transcriber | RemoteTranscriber | None = None
    whisper_error: str | None = None  # why Whisper is not in use, when it was wanted

    @classmethod
    def prepare(cls, mode: AsrMode, config: Config, model: str | None, device: str | None,
                shared: ServiceHandle | None = None):
        """Load Whisper once for the whole run (or use the run's shared model processes) when
        the mode may use it. `model` is `[engine:]model` (see `audit.measure.models`), default from `[asr]`.

        `whisper` mode raises `AsrUnavailable` when the model cannot be loaded; `auto` notes the
        reason and falls back to sidecar transcripts.
        """
        if mode == "sidecar":
            return cls(mode)
        if shared is not None:
            return cls(mode, RemoteTranscriber(shared))
        try:
            return cls(mode, load_transcriber(config.asr, model, device))
        except AsrUnavailable as error:
            return cls.without_whisper(mode, error)

    @classmethod
    def without_whisper(cls, mode: AsrMode, error: AsrUnavailable):
        if mode == "whisper":
            raise error
        log.warning("%s; using sidecar transcripts where present", error)
        return cls(mode, whisper_error=str(error))

    def transcript(self, path: Path, audio_16k, speech: tuple[ChannelSpeech, ...]) -> Transcript:
        if self.transcriber is not None:
            try:
                return self.transcriber.transcribe(audio_16k, speech)
            except TranscriptionFailed as error:
                raise AuditError(str(error)) from None
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
            "engine": transcriber.engine if transcriber else None,
            "device": transcriber.device if transcriber else None,
            "shared_model": getattr(transcriber, "shared", False),  # a model process or actor's
            "whisper_error": self.whisper_error,
        }


def load_models(config: Config) -> None:
    """Load what every call needs (the VAD model, the word dictionary) once per process, at start."""
    load_vad()
    config.rulebook.load_dictionary()


def audit_call(job: Job, config: Config, asr: AsrChoice) -> CallAudit:
    """Audit one recording: decode, find speech, transcribe, measure, check and score.

    Parameters
    ----------
    job : Job
        The recording's path, its call id and any metadata the batch already has (a manifest).
    config : Config
        The loaded configuration (`audit.configload.load_config`): every section, rule and the
        rulebook.
    asr : AsrChoice
        Where the transcript comes from: Whisper, the sidecar file, or Whisper falling back to the
        sidecar (`--asr auto|whisper|sidecar`).

    Returns
    -------
    CallAudit
        The call's speech, transcript, metrics, every enabled rule's result, the score (0-100),
        subscores per category and the verdict.

    Raises
    ------
    AuditError
        When the recording cannot be audited: unreadable, refused by `[decode]`, a broken sidecar,
        or a transcript and metadata that do not describe this audio (`audit.measure.agreement`): a call
        is never judged on evidence its recording does not hold.
    """
    try:
        recording = decoding.decode(job.path, config.decode)
        meta = sidecar.read_meta(job.path).filled_from(job.meta)
    except (decoding.DecodeError, sidecar.SidecarError) as error:
        raise AuditError(str(error)) from None
    audio_16k = decoding.resample(recording, SAMPLE_RATE)
    info = recording.info
    del recording  # from here on the 16 kHz copy is all we need (an hour at 8 kHz is 230 MB more)
    channels = assign_channels(info.channels, config.channels)
    speech = find_speech(audio_16k, channels, config.vad)
    try:
        transcript = asr.transcript(job.path, audio_16k, speech)
        if transcript.source == "whisper":
            transcript = join_continuations(transcript, config.text.join_gap_s)
        transcript = correct_terms(transcript, config.key_terms, config.text.numbered_terms)
    except sidecar.SidecarError as error:
        raise AuditError(str(error)) from None
    problems, notes = disagreements(info.duration_s, speech, transcript, meta, config.agreement)
    if problems:
        raise AuditError(f"not judged: {'; '.join(problems)}")
    if notes:
        info = replace(info, notes=info.notes + tuple(notes))
    # what the ASR heard and wrote nothing for (a transcript without word confidences is taken as written)
    unwritten = untranscribed(speech, transcript, config.asr.untranscribed_min_s) if from_asr(transcript) else ()
    timing = measure_timing(audio_16k, speech, transcript, meta, config.timing)
    prosody = measure_prosody(audio_16k, speech, transcript, config.prosody)
    context = CallContext(
        recording=info,
        meta=meta,
        speech=speech,
        transcript=transcript,
        answer_s=timing.answer_s,
        answer_source=timing.answer_source,
        company_names=config.company_names,
        timing=timing,
        prosody=prosody,
        events=tuple(sorted(timing.events() + prosody.events(), key=lambda e: e.start)),
        answer_latest_s=timing.answer_latest_s,
        unwritten=unwritten,
    )
    results = weigh_confidence(capped(run_checks(context, config), config.report.max_evidence),
                               transcript, config.asr, config.rulebook.forbidding,
                               config.rulebook.satisfiable_by(config.asr.omitted), config.rulebook.requiring,
                               unwritten)
    score, subscores, verdict = score_call(results, config.weights, config.scoring)
    return CallAudit(
        call_id=job.call_id,
        recording=info,
        meta=meta,
        speech=speech,
        transcript=transcript,
        metrics=call_metrics(context),
        utterance_metrics=tuple(u.metrics() for u in prosody.utterances),
        results=results,
        score=score,
        subscores=subscores,
        verdict=verdict,
    )


def capped(results: tuple[RuleResult, ...], limit: int) -> tuple[RuleResult, ...]:
    """Each result with its first `limit` evidence items (in the check's own order) and as many of
    the text rules' explanations (`details["matches"]`); `details` keeps how many there were
    (`evidence_total`, `matches_total`), so a call of 50,000 short utterances gives a bounded
    record and report."""
    return tuple(_capped(r, limit) for r in results)


def _capped(result: RuleResult, limit: int) -> RuleResult:
    details = result.details
    matches = details.get("matches")
    if isinstance(matches, list) and len(matches) > limit:
        details = {**details, "matches": matches[:limit], "matches_total": len(matches)}
    if len(result.evidence) > limit:
        details = {**details, "evidence_total": len(result.evidence)}
    if details is result.details:
        return result
    return replace(result, evidence=result.evidence[:limit], details=details,
                   evidence_total=len(result.evidence) if len(result.evidence) > limit else None)


def call_metrics(call: CallContext) -> dict:
    """The record's `metrics`: the duration (s) and the timing and prosody measures, flat."""
    return {"duration_s": round(call.recording.duration_s, 3), **call.timing.metrics(),
            **call.prosody.metrics()}
