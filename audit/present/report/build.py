"""Building `OUT/report/`: which call pages are out of date, building them (in worker processes),
the index, and the cleanup of pages of calls no longer in the run.

Speed: a recording is decoded and encoded only for a call whose page holds its audio (a flagged
one, `[report] audio_verdicts`), and only when its audio is not already there from an earlier
build (`report/audio.json`: encoding is most of a build's time) nor left by the audit worker that
audited the call (`audit.present.report.audio.encode_ahead`: after `audit run` the build only moves
the files into place); a call whose record, options,
neighbours in the worklist, stored decisions and templates have not changed since the last build
is skipped (`report/build.json`); the pages are built in `workers` processes, each page the same
bytes whichever process built it. Faults: the build holds the output folder's lock (one writer at a time,
runs included); a call record that is missing or corrupt is written again from the results
database first; a full disk stops the build with `OutputFull` and leaves no temporary file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from audit.config import Config, DecodeConfig, LabelsConfig, ScoringConfig
from audit.configload import load_config
from audit.privacy import mask_numbers, worker_logging
from audit.present.report.charts import AXIS_HEIGHT, LANE_GAP, LANE_HEIGHT, Bands, TimeAxis, prosody_panels, timeline
from audit.present.report.audio import (PENDING_FOLDER, REPORT_FOLDER, SUFFIX, AudioError, CallAudio, audio_key,
                                        encoder_problem, load_recording, pending_file, write_call_audio)
from audit.present.report.pages import render, sources_digest
from audit.present.report.views import CallContent, RuleName, facts, why_verdict
from audit.present.report.worklist import CallSearch, index_row, neighbours, worklist_order
from audit.present.review import record_findings, stored_reviews
from audit.present.store import (DB_NAME, OutputFull, OutputLock, ResultsDB, output_full, read_record,
                         record_path, write_text)

log = logging.getLogger(__name__)

MANIFEST_NAME = "build.json"  # each page's fingerprint
AUDIO_MANIFEST_NAME = "audio.json"  # what each call's audio file was made of (audio.audio_key)


class ReportError(Exception):
    """The output folder holds nothing a report can be built from; the message says why."""


def run_config(summary: dict) -> Config:
    """The config a run audited with: the defaults with the run's own file laid over them."""
    files = summary["config"]["files"]
    return load_config(files[1] if len(files) > 1 else None)


@dataclass(frozen=True)
class BuildSettings:
    """Everything a call page depends on besides its record; small, so worker processes get it."""

    folder: Path  # OUT/report
    mask_pii: bool
    bands: Bands
    decode: DecodeConfig  # the recordings the run accepted ([decode] of its config)
    labels: LabelsConfig  # each rule's Chinese name and category
    reasons: tuple[str, ...]  # what a reviewer picks from ([review] reasons)
    max_evidence: int  # evidence items per finding on a page ([report] max_evidence)
    weights: tuple[tuple[str, float], ...]  # points each rule takes off when it fails
    scoring: ScoringConfig
    audio_verdicts: tuple[str, ...]  # the calls whose page holds their audio ([report] audio_verdicts)
    audio_kbps: float  # Ogg Opus bit rate per channel ([report] audio_kbps)

    @classmethod
    def of(cls, folder: Path, config: Config, mask_pii: bool) -> "BuildSettings":
        report = config.report
        return cls(folder, mask_pii, Bands.of(config), config.decode, config.labels, config.review.reasons,
                   report.max_evidence, tuple(sorted(config.weights.items())), config.scoring,
                   report.audio_verdicts, report.audio_kbps)

    @property
    def shown(self) -> Callable[[str], str]:
        return mask_numbers if self.mask_pii else str

    def key(self) -> bytes:
        """What, beside the record, makes a page differ: options, bands, labels, templates and scripts."""
        return json.dumps({"mask_pii": self.mask_pii, "audio": [self.audio_verdicts, self.audio_kbps],
                           "max_evidence": self.max_evidence, "weights": self.weights,
                           "scoring": self.scoring.__dict__, "reasons": self.reasons,
                           "labels": [self.labels.categories, {r: [l.name, l.category] for r, l in self.labels.rules.items()},
                                      self.labels.verdicts, self.labels.severities, self.labels.statuses,
                                      self.labels.speakers],
                           "bands": self.bands.__dict__, "decode": self.decode.__dict__,
                           "sources": sources_digest()}, sort_keys=True).encode()


@dataclass(frozen=True)
class Link:
    href: str  # relative to the call pages' folder
    name: str


@dataclass(frozen=True)
class PagePlan:
    record_path: Path
    stem: str
    fingerprint: str  # of the record, the settings and what follows: unchanged means up to date
    audio_path: str | None = None  # the recording in clear, from the database, for a masked record
    call_id: str = ""  # in clear (a masked record's is masked): what its findings' keys hash
    previous: Link | None = None  # flagged calls before and after it in the worklist
    next: Link | None = None
    decisions: tuple[tuple[str, dict], ...] = ()  # imported decisions on its findings, by key
    audio_key: str = ""  # what its audio is made of (audio.audio_key)
    audio_kept: bool = False  # its audio file from an earlier build has that key: not encoded again

    @property
    def href(self) -> str:
        return f"calls/{quote(self.stem)}.html"


@dataclass(frozen=True)
class Stored:
    """What the results database tells the report beyond the records, by the ids the summary uses."""

    clear_ids: dict[str, str] = field(default_factory=dict)  # the id in clear
    audio_paths: dict[str, str] = field(default_factory=dict)  # the recording's path in clear
    decisions: dict[str, dict] = field(default_factory=dict)  # imported decisions by finding key


def page_stem(call_id: str, audio_sha256: str, shown: Callable[[str], str]) -> str:
    """The file name of a call's page and audio: its id as shown, safe in paths and URLs.

    When that changes the id (masked digits, odd characters, great length) a short hash keeps
    calls apart. It hashes the audio's SHA-256 with the id, which the report never shows, so a
    masked phone number cannot be recovered by hashing candidate numbers.
    """
    stem = re.sub(r"[^\w.-]", "_", shown(call_id)).lstrip(".")
    if stem != call_id or len(stem.encode()) > 120:
        digest = hashlib.sha256(f"{audio_sha256}/{call_id}".encode()).hexdigest()[:10]
        stem = f"{stem[:40]}-{digest}"
    return stem


def plan_pages(out: Path, summary: dict, settings: BuildSettings, stored: Stored | None = None
               ) -> tuple[dict[str, PagePlan], dict[str, str], dict[str, CallSearch]]:
    """A page for each call of the run with a readable record; why not, for each call without; and
    what the index searches for each call. `stored` is what the results database adds: where a
    record names calls masked (`[privacy] mask_outputs`), their ids and recordings in clear, and
    the imported decisions."""
    key, plans, problems, searches, raws = settings.key(), {}, {}, {}, {}
    stored = stored or Stored()
    decided = stored.decisions
    for row in summary["calls"]:
        path = record_path(out, row["call_id"])
        record = read_record(path)
        if record is None or record.get("call_id") != row["call_id"]:
            problems[row["call_id"]] = f"its record {path.name} is missing or unreadable"
            continue
        stem = page_stem(record["call_id"], record["recording"]["sha256"], settings.shown)
        masked = bool(record.get("masked"))
        audio = stored.audio_paths.get(row["call_id"]) if masked else None
        clear_id = stored.clear_ids.get(row["call_id"], record["call_id"]) if masked else record["call_id"]
        findings = tuple(f.key for f in record_findings(record, clear_id))
        searches[row["call_id"]] = CallSearch(
            findings, settings.shown(" ".join(str(u.get("text", "")) for u in record.get("utterances", []))))
        raws[row["call_id"]] = path.read_bytes()
        plans[row["call_id"]] = PagePlan(path, stem, "", audio, clear_id,
                                         decisions=tuple((k, decided[k]) for k in findings if k in decided),
                                         audio_key=audio_key(record["recording"]["sha256"], settings.audio_kbps))
    flagged = [r["call_id"] for r in worklist_order(summary["calls"])
               if r["verdict"] in ("fail", "review") and r["call_id"] in plans]
    link = {c: Link(f"{quote(plans[c].stem)}.html", settings.shown(c)) for c in flagged}
    for call_id, (before, after) in neighbours(flagged).items():
        plans[call_id] = replace(plans[call_id], previous=before and link[before], next=after and link[after])
    for call_id, plan in plans.items():
        extra = json.dumps([plan.audio_path, plan.previous and plan.previous.__dict__,
                            plan.next and plan.next.__dict__, plan.decisions], sort_keys=True)
        digest = hashlib.sha256(key + raws[call_id] + extra.encode()).hexdigest()
        plans[call_id] = replace(plan, fingerprint=digest)
    return plans, problems, searches


def call_audio(settings: BuildSettings, plan: PagePlan, record: dict) -> CallAudio:
    """Write the call's audio when its verdict asks for it; where it is, or why the page has none.

    A recording that cannot be encoded costs its page's audio, not the page: the page says why.
    """
    if record["verdict"] not in settings.audio_verdicts:
        remove_audio(settings.folder, plan.stem)
        wanted = "、".join(settings.labels.verdicts[v] for v in settings.audio_verdicts)
        kept = f"报告只保存{wanted}通话的录音" if wanted else "报告不保存录音"
        return CallAudio(problem=f"本页不含录音:{kept}([report] audio_verdicts)。")
    href = f"../audio/{quote(plan.stem)}{SUFFIX}"
    if plan.audio_kept:
        return CallAudio(href=href)
    pending = pending_file(settings.folder, plan.audio_key)
    if pending.exists():  # encoded by the audit worker that audited the call
        _audio_file(settings, plan).parent.mkdir(parents=True, exist_ok=True)
        pending.replace(_audio_file(settings, plan))
        remove_audio(settings.folder, plan.stem, keep=SUFFIX)
        return CallAudio(href=href)
    recording, problem = load_recording(record, settings.decode, plan.audio_path)
    if recording is not None:
        try:
            write_call_audio(_audio_file(settings, plan), recording, settings.audio_kbps)
            remove_audio(settings.folder, plan.stem, keep=SUFFIX)
            return CallAudio(href=href)
        except AudioError as error:
            log.error("report: no audio for %s: %s", plan.record_path.name, error)
            problem = f"录音无法编码为 Ogg Opus({error}),本页没有音频。"
    remove_audio(settings.folder, plan.stem)
    return CallAudio(problem=problem)


def build_call_page(settings: BuildSettings, plan: PagePlan) -> None:
    """Write one call's page and, when it is flagged, its audio (the recording decoded once)."""
    record = json.loads(plan.record_path.read_text(encoding="utf-8"))
    folder, stem, shown = settings.folder, plan.stem, settings.shown
    audio = call_audio(settings, plan, record)
    content = CallContent(record, shown, settings.labels, settings.max_evidence, plan.call_id)
    weights = dict(settings.weights)
    axis = TimeAxis(record["recording"]["duration_s"])
    labels = settings.labels
    lanes = timeline(record, content.findings, axis, labels.speakers)
    html = render(
        "call.html", "call.js",
        name=shown(record["call_id"]), record=record, facts=facts(record, shown),
        audio=audio.href, audio_problem=shown(audio.problem), ticks=axis.ticks(),
        lanes=lanes, timeline_height=len(lanes) * (LANE_HEIGHT + LANE_GAP) + AXIS_HEIGHT,
        panels=prosody_panels(record, settings.bands, axis, shown),
        prosody_recorded=any("prosody" in u for u in record["utterances"]),
        findings=content.findings, others=content.other_results,
        why=why_verdict(record, weights, settings.scoring, settings.labels),
        points={f.rule_id: weights.get(f.rule_id) for f in content.findings},
        verdicts=labels.verdicts, severities=labels.severities, statuses=labels.statuses, speakers=labels.speakers,
        reasons=settings.reasons, decisions={k: {**d, "note": shown(d["note"])} for k, d in plan.decisions}, previous=plan.previous, next=plan.next,
        transcript=content.transcript(), events=sorted(content.events.values(), key=lambda e: e.index), dropped=content.dropped(), corrections=content.corrections())
    write_text(folder / "calls" / f"{stem}.html", html)


def build_page_or_reason(settings: BuildSettings, plan: PagePlan) -> str | None:
    """Build one page; None when done, else why not: one odd record costs its page, not the report."""
    try:
        build_call_page(settings, plan)
    except Exception as error:
        if output_full(error):  # every page after it would fail the same way: stop the build
            raise
        log.exception("report: cannot build the page of %s", plan.record_path)
        return f"{type(error).__name__}: {error}"
    return None


def build_pages(plans: list[PagePlan], settings: BuildSettings, workers: int,
                masked_logs: bool = False) -> dict[str, str]:
    """Build pages in `workers` processes (decoding and encoding audio is most of the work), which
    log masked with `masked_logs` (`[privacy] mask_outputs`). A page is the same whichever process
    builds it, so the report does not depend on `workers`.

    Returns why each page that could not be built was not, by the call's stem.
    """
    if workers <= 1 or len(plans) <= 1:
        reasons = [build_page_or_reason(settings, plan) for plan in plans]
    else:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=worker_logging, initargs=(masked_logs,)) as pool:
            reasons = list(pool.map(partial(build_page_or_reason, settings), plans, chunksize=8))
    return {plan.stem: reason for plan, reason in zip(plans, reasons) if reason}


def write_index(summary: dict, pages: dict[str, str], problems: dict[str, str], settings: BuildSettings,
                searches: dict[str, CallSearch] | None = None, decided: set[str] | frozenset = frozenset()) -> Path:
    """The run's page; `pages` maps call ids to their pages, `problems` to why they have none,
    `searches` to their findings and text, and `decided` holds the findings with imported decisions."""
    shown, searches = settings.shown, searches or {}
    calls = [index_row(row, pages.get(row["call_id"]), problems.get(row["call_id"], "没有记录"),
                       searches.get(row["call_id"], CallSearch()), decided, shown)
             for row in worklist_order(summary["calls"])]
    counts, verdicts = summary["counts"], settings.labels.verdicts
    html = render(
        "index.html", "index.js", masked=settings.mask_pii,
        run={"run_id": summary.get("run_id"), "files": counts["files"], "elapsed": summary.get("elapsed_s"),
             "asr": summary["asr"]["whisper_model"] or summary["asr"]["mode"],
             "config": shown(", ".join(Path(f).name for f in summary["config"]["files"]))},
        counts=[("已质检", counts["audited"], ""), (verdicts["pass"], counts["pass"], "v-pass"),
                (verdicts["review"], counts["review"], "v-review"),
                (verdicts["fail"], counts["fail"], "v-fail"), ("无法质检", counts["errors"], "")],
        fails_by_rule=[(RuleName.of(settings.labels, rule), count) for rule, count in
                       sorted(summary["fails_by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))],
        fails_by_agent=[_agent_row(agent, row, shown, settings.labels)
                        for agent, row in summary["fails_by_agent"].items()],
        calls=calls, verdicts=[(v, verdicts[v]) for v in ("fail", "review", "pass") if any(c["verdict"] == v for c in calls)],
        rules=[(r, RuleName.of(settings.labels, r).name) for r in sorted(summary["fails_by_rule"])],
        agents=[(a, a) for a in sorted({c["agent"] for c in calls})],
        rule_names={r: RuleName.of(settings.labels, r).name for r in sorted({r for c in calls for r in c["rules"]})},
        verdict_names=verdicts,
        errors=[{"name": shown(e["call_id"]), "path": shown(e["path"]), "reason": shown(e["reason"])}
                for e in summary["errors"]])
    index = settings.folder / "index.html"
    write_text(index, html)
    return index


def _agent_row(agent: str, row: dict, shown: Callable[[str], str], labels: LabelsConfig) -> dict:
    most = sorted(row["fails"].items(), key=lambda kv: -kv[1])[:3]
    return {"name": shown(agent), "calls": row["calls"], "fails": sum(row["fails"].values()),
            "top": "、".join(RuleName.of(labels, rule).name for rule, _ in most)}


def remove_audio(folder: Path, stem: str, keep: str = "") -> None:
    """Remove a call's audio but the file ending in `keep`: the Ogg Opus file, and the lossless FLAC
    copy reports held before it."""
    for suffix in (SUFFIX, ".flac"):
        if suffix != keep:
            (folder / "audio" / f"{stem}{suffix}").unlink(missing_ok=True)


def remove_stale(folder: Path, previous: dict[str, str], current: dict[str, str]) -> None:
    """Remove the pages and audio of calls that are no longer in the run."""
    for stem in set(previous) - set(current):
        (folder / "calls" / f"{stem}.html").unlink(missing_ok=True)
        remove_audio(folder, stem)


def write_report(out: Path, config: Config | None = None, *, mask_pii: bool = True, workers: int = 1) -> Path:
    """Build `OUT/report/` from `OUT/summary.json` and `OUT/calls/*.json`; returns index.html.

    `config` gives the bands the prosody pictures draw, the rules' names and the reviewers'
    reasons; by default the config the run audited with (summary.json names its files). A call
    whose record and settings are those of the last build is not built again
    (`report/build.json`), so running this after every resumed run is cheap. `workers` processes
    build the pages (1: this one); the report is the same bytes for any number.

    Raises
    ------
    RunLocked
        When another run or report build holds the output folder.
    ReportError
        When `OUT/summary.json` is missing or unreadable.
    OutputFull
        When the disk fills up (or turns read-only) during the build.
    """
    with OutputLock(out, "audit report"):
        try:
            return _build_report(out, config, mask_pii, workers)
        except Exception as error:
            if not output_full(error):
                raise
            raise OutputFull(f"the report stopped: {out} cannot take more writes ({error}); free "
                             "space and run `audit report` again") from None


def _build_report(out: Path, config: Config | None, mask_pii: bool, workers: int) -> Path:
    summary_path = out / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"{summary_path} cannot be read ({error}); `audit run ... --out {out}` "
                          "writes it again") from None
    config = config or run_config(summary)
    settings = BuildSettings.of(out / REPORT_FOLDER, config, mask_pii)
    if settings.audio_verdicts and (problem := encoder_problem()):
        log.error("report: the pages hold no audio: %s", problem)
    # a WAV file per evidence item, as reports held before the evidence buttons seeked the call's audio
    shutil.rmtree(settings.folder / "clips", ignore_errors=True)
    # the records are in the form the run wrote them: its summary says whether they are masked
    masked = bool((summary.get("privacy") or {}).get("mask_outputs"))
    stored = restore_run_records(out, summary, masked)
    manifest, audio_manifest = settings.folder / MANIFEST_NAME, settings.folder / AUDIO_MANIFEST_NAME
    previous = _previous_build(manifest, "every page is built again")
    encoded = _previous_build(audio_manifest, "every flagged call's audio is encoded again")
    plans, unreadable, searches = plan_pages(out, summary, settings, stored)
    todo = [replace(p, audio_kept=encoded.get(p.stem) == p.audio_key and _audio_file(settings, p).exists())
            for p in plans.values() if previous.get(p.stem) != p.fingerprint
            or not (settings.folder / "calls" / f"{p.stem}.html").exists()]
    failed = build_pages(todo, settings, workers, masked)
    built = {call_id: plan for call_id, plan in plans.items() if plan.stem not in failed}
    problems = unreadable | {call_id: failed[plan.stem] for call_id, plan in plans.items()
                             if plan.stem in failed}
    index = write_index(summary, {call_id: plan.href for call_id, plan in built.items()}, problems, settings,
                        searches, set(stored.decisions))
    current = {plan.stem: plan.fingerprint for plan in built.values()}
    remove_stale(settings.folder, previous, current)
    write_text(manifest, json.dumps(current, indent=0, sort_keys=True))
    audio = {plan.stem: plan.audio_key for plan in built.values() if _audio_file(settings, plan).exists()}
    write_text(audio_manifest, json.dumps(audio, indent=0, sort_keys=True))
    shutil.rmtree(settings.folder / PENDING_FOLDER, ignore_errors=True)  # audio of calls no page took
    log.info("report: %d call pages, %d built now, %d could not be built: %s", len(plans), len(todo),
             len(failed) + len(unreadable), index)
    return index


def restore_run_records(out: Path, summary: dict, masked: bool) -> Stored:
    """Write again from the results database, when there is one, the run's records that are
    missing or corrupt, in the form the run wrote them (masked or not); returns what the database
    knows in clear, and the imported decisions (nothing without a database)."""
    if not (out / DB_NAME).exists():
        return Stored()
    db = ResultsDB(out)
    try:
        privacy = db.privacy(masked)
        paths = db.call_paths()
        clear = {privacy.id(call_id): call_id for call_id in paths}
        wanted = [clear[row["call_id"]] for row in summary["calls"] if row["call_id"] in clear]
        db.restore_records(out, wanted, privacy)
        decided = stored_reviews(db)
    finally:
        db.close()
    return Stored(clear, {shown: paths[call_id] for shown, call_id in clear.items()}, decided)


def _audio_file(settings: BuildSettings, plan: PagePlan) -> Path:
    return settings.folder / "audio" / f"{plan.stem}{SUFFIX}"


def _previous_build(manifest: Path, then: str) -> dict[str, str]:
    """What the last build wrote in `manifest`, by the call's stem; empty when unreadable (`then`)."""
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("report: %s is unreadable (%s); %s", manifest, error, then)
        return {}
    return previous if isinstance(previous, dict) else {}
