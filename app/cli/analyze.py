"""`sesame analyze`: reports in, a workpaper and a JSON per input out, a count line at the end."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from app.cli.options import (
    EXIT_OK,
    EXIT_PROBLEMS,
    ClientOpt,
    EngagementOpt,
    ExplainMethodOpt,
    ExplainOpt,
    ModelDirOpt,
    ModelOpt,
    OcrLanguagesOpt,
    OcrOpt,
    PasswordOpt,
    with_overrides,
)
from app.config import load_settings
from app.ingest import INPUT_SUFFIXES
from app.pipeline import Analyzer
from app.runs import RunOutcome, RunRequest, run_documents
from app.store import ResultStore
from batch.plan import InputFile, identify
from batch.workers import LocalExecutor, StageHook

_log = logging.getLogger(__name__)

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "analyze", "expand_inputs", "register", "sources"]


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders become every report below them (*.pdf, *.htm, *.html, *.xhtml,
    *.zip; sorted). Missing paths are errors."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*") if p.suffix.lower() in INPUT_SUFFIXES and p.is_file()
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path}: no such file or folder", param_hint="REPORTS")
    return found


def sources(paths: list[Path]) -> list[str]:
    """What each input is called in messages and the run: its file name, or the path as given
    when two inputs share a name."""
    names = Counter(p.name for p in paths)
    return [p.name if names[p.name] == 1 else str(p) for p in paths]


def analyze(
    reports: Annotated[
        list[Path],
        typer.Argument(
            help="Reports (PDF, HTML/XHTML filings, ESEF .zip packages), or folders searched "
            "for them.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the workpapers and JSON.")
    ] = Path("out"),
    password: PasswordOpt = None,
    explain: ExplainOpt = None,
    explain_method: ExplainMethodOpt = None,
    ocr: OcrOpt = None,
    ocr_languages: OcrLanguagesOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    client: ClientOpt = None,
    engagement: EngagementOpt = None,
    max_pages: Annotated[
        int | None,
        typer.Option(help="Refuse inputs with more pages than this.", show_default=False),
    ] = None,
    max_mb: Annotated[
        float | None,
        typer.Option(help="Refuse inputs larger than this many MB.", show_default=False),
    ] = None,
    store: Annotated[
        bool,
        typer.Option(
            help="Also save results to the results store (for the review UI and monitoring)."
        ),
    ] = True,
    monitor: Annotated[
        bool,
        typer.Option(
            help="Test the run's sentences for drift against the model's reference profile "
            "(needs the store; a warning only: `sesame monitor report` gates on it)."
        ),
    ] = True,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="Analyze again reports whose result with this model and settings is stored, "
            "replacing it and saying what changed (refused for a result with reviews).",
        ),
    ] = False,
    on_error: Annotated[
        Literal["record", "raise"],
        typer.Option(
            help="record: report bad files and go on; raise: stop at the first error (debugging)."
        ),
    ] = "record",
) -> None:
    """Analyze financial reports: sentences, sentiment, evidence, an Excel workpaper per file.

    A report already analyzed with the same model and settings is not analyzed again: its
    stored result (with its reviews) is written out instead (`--rerun` analyzes it again). A
    stored failure is always tried again, and the new result replaces it.

    Exit status: 0 when every document was read fully, 1 when any is partial or failed,
    2 on a usage error.
    """
    console = Console(stderr=True)
    paths = expand_inputs(reports)
    if not paths:
        raise typer.BadParameter(
            "no reports found (*.pdf, *.htm, *.html, *.xhtml, *.zip)", param_hint="REPORTS"
        )
    settings = with_overrides(
        load_settings(),
        explain=explain,
        explain_method=explain_method,
        model=model,
        model_dir=model_dir,
        password=password,
        max_pages=max_pages,
        max_mb=max_mb,
        ocr=ocr,
        ocr_languages=ocr_languages,
    )
    with console.status("loading model…"):
        analyzer = Analyzer.from_settings(settings)
    inputs: list[InputFile] = [
        identify(p, s, settings.ingest.password) for p, s in zip(paths, sources(paths), strict=True)
    ]
    result_store = ResultStore.from_settings(settings) if store else None

    def make_executor(_n_parts: int, on_stage: StageHook) -> LocalExecutor:
        executor = LocalExecutor(settings, analyzer=analyzer, on_stage=on_stage, on_error=on_error)
        executor.start()
        return executor

    outcome = run_documents(
        RunRequest(
            kind="analyze",
            inputs=inputs,
            out=out,
            layout="flat",
            summary_prefix="run",
            client=client,
            engagement=engagement,
            monitor=monitor,
            rerun=rerun,
        ),
        settings,
        model=analyzer.scorer,
        make_executor=make_executor,
        store=result_store,
        console=console,
        scorer=analyzer.scorer,
    )
    say_drift(outcome, console)
    typer.echo(outcome.count_line)
    sys.stdout.flush()
    raise typer.Exit(outcome.exit_code)


def say_drift(outcome: RunOutcome, console: Console) -> None:
    """The run's drift verdict in one line: a warning, never a failed analysis."""
    if outcome.drift is None:
        return
    colour = "green" if outcome.drift_state == "ok" else "yellow"
    where = f" (report: {outcome.drift_report})" if outcome.drift_report else ""
    console.print(f"[{colour}]{outcome.drift}[/]{where}")


def register(app: typer.Typer) -> None:
    """Attach `analyze` to the root app."""
    app.command(no_args_is_help=True)(analyze)
