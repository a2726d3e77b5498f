"""The `audit` command line: a thin layer over `audit.pipeline`.

Exit codes (for cron): 0 every file was audited; 1 some files could not be audited (see
summary.json "errors"); 2 the invocation or the config is wrong and nothing was audited.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from audit.asr import AsrUnavailable
from audit.config import ConfigError, load_config
from audit.pipeline import AsrChoice, discover, run_batch

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    help="Audit recorded Chinese customer-service calls against service norms.",
    no_args_is_help=True,
    add_completion=False,
)
out_console = Console()
err_console = Console(stderr=True)


class AsrOption(str, Enum):
    auto = "auto"
    whisper = "whisper"
    sidecar = "sidecar"


class DeviceOption(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _fail(message: str) -> typer.Exit:
    err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False):
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Recordings or folders (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for calls/*.json and summary.json.")],
    config: Annotated[Optional[Path], typer.Option(help="TOML laid over configs/default.toml.")] = None,
    asr: Annotated[AsrOption, typer.Option(
        help="Transcripts from Whisper, from NAME.transcript.json sidecars, or auto: Whisper when "
             "the model loads, else the sidecar.")] = AsrOption.auto,
    model: Annotated[Optional[str], typer.Option(
        help="Whisper model name (downloaded to whisper's cache) or checkpoint path; "
             "default from [asr] model.")] = None,
    device: Annotated[Optional[DeviceOption], typer.Option(
        help="auto = CUDA with fp16 when a GPU is present, else CPU; default from [asr] device.")] = None,
):
    """Audit recordings and write one JSON record per call plus a run summary."""
    try:
        settings = load_config(config)
    except ConfigError as error:
        raise _fail(f"invalid config: {error}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(missing)}")
    jobs = discover(paths)
    if not jobs:
        raise _fail(f"no recordings (.wav .flac .ogg .mp3) under {', '.join(map(str, paths))}")
    try:
        choice = AsrChoice.prepare(asr.value, settings, model, device.value if device else None)
    except AsrUnavailable as error:
        raise _fail(str(error))

    summary = _run_with_progress(jobs, out, settings, choice)
    _print_summary(summary.document(), out)
    raise typer.Exit(EXIT_SOME_FAILED if summary.errors else EXIT_OK)


def _run_with_progress(jobs, out, settings, choice):
    log = logging.getLogger("audit")
    if not err_console.is_terminal:
        def log_line(job, row, error):
            outcome = f"ERROR {error}" if error else f"{row['verdict']} {row['score']:g}"
            log.info("audited %s: %s", job.call_id, outcome)

        return run_batch(jobs, out, settings, choice, log_line)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), TextColumn("{task.description}"),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("", total=len(jobs))

        def advance(job, row, error):
            progress.update(task, advance=1, description=job.call_id)

        return run_batch(jobs, out, settings, choice, advance)


VERDICT_STYLE = {"pass": "green", "review": "yellow", "fail": "red"}


def _print_summary(document: dict, out: Path) -> None:
    table = Table(title="Call audit", title_justify="left")
    for column in ("call", "verdict", "score", "transcript", "failed rules"):
        table.add_column(column, justify="right" if column == "score" else "left")
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
        f"(pass {counts['pass']}, review {counts['review']}, fail {counts['fail']}; "
        f"errors {counts['errors']}). Records in {out / 'calls'}, summary in {out / 'summary.json'}",
        highlight=False,
    )
