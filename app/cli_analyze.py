"""`sesame analyze`: PDFs in, one workpaper and one JSON per input out, a count line at the end."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from app.records import DocumentResult

if TYPE_CHECKING:
    from rich.console import Console

    from app.config import Settings
    from app.store import ResultStore
    from models.scoring import SentimentScorer

_log = logging.getLogger(__name__)

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders become every *.pdf below them (sorted). Missing paths are errors."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
            )
        elif path.exists():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path}: no such file or folder", param_hint="REPORTS")
    return found


def output_stem(path: Path, taken: set[str]) -> str:
    """A safe, unique output name from the input's file name."""
    stem = re.sub(r"[^\w.-]+", "_", path.stem).strip("._") or "document"
    candidate, n = stem, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def count_line(results: list[DocumentResult]) -> str:
    """`3 documents: 2 ok, 0 partial, 1 failed`."""
    counts = Counter(r.status for r in results)
    noun = "document" if len(results) == 1 else "documents"
    return (
        f"{len(results)} {noun}: {counts['ok']} ok, {counts['partial']} partial, "
        f"{counts['failed']} failed"
    )


PasswordOpt = Annotated[
    str | None, typer.Option(help="Password for encrypted PDFs (applied to every input).")
]
ExplainOpt = Annotated[
    Literal["none", "flagged", "all"] | None,
    typer.Option(
        help="SHAP evidence for: none, flagged (positive and negative; default) or all.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Registered model as NAME, NAME@ALIAS or NAME/VERSION (default: the champion).",
        show_default=False,
    ),
]
ModelDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="Score with a local Hugging Face model directory instead of the registry.",
        show_default=False,
    ),
]
"""Options `analyze` and `batch run` share."""


def analyze(
    reports: Annotated[
        list[Path],
        typer.Argument(help="PDF files, or folders searched for *.pdf.", show_default=False),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the workpapers and JSON.")
    ] = Path("out"),
    password: PasswordOpt = None,
    explain: ExplainOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    client: Annotated[str | None, typer.Option(help="Client name for the workpaper.")] = None,
    engagement: Annotated[str | None, typer.Option(help="Engagement for the workpaper.")] = None,
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
    on_error: Annotated[
        Literal["record", "raise"],
        typer.Option(
            help="record: report bad files and go on; raise: stop at the first error (debugging)."
        ),
    ] = "record",
) -> None:
    """Analyze financial reports: sentences, sentiment, evidence, an Excel workpaper per file.

    Exit status: 0 when every document was read fully, 1 when any is partial or failed,
    2 on a usage error.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.config import load_settings
    from app.export import write_json
    from app.pipeline import Analyzer, new_run_id
    from app.workpaper import write_workpaper

    console = Console(stderr=True)
    inputs = expand_inputs(reports)
    if not inputs:
        raise typer.BadParameter("no PDF files found", param_hint="REPORTS")

    settings = load_settings()
    ingest = settings.ingest.model_copy(
        update={
            k: v
            for k, v in {
                "password": password,
                "max_pages": max_pages,
                "max_bytes": int(max_mb * 1024 * 1024) if max_mb else None,
            }.items()
            if v is not None
        }
    )
    scoring = settings.scoring
    if model_dir is not None:
        scoring = scoring.model_copy(update={"model_dir": model_dir})
    elif model is not None:
        scoring = scoring.model_copy(update=parse_model_ref(model))
    explain_opts = settings.explain.model_copy(update={"mode": explain} if explain else {})
    settings = settings.model_copy(
        update={"ingest": ingest, "scoring": scoring, "explain": explain_opts}
    )

    run_id = new_run_id()
    with console.status("loading model…"):
        analyzer = Analyzer.from_settings(settings)
    stamp = analyzer.stamp(run_id)
    console.print(
        f"model {stamp.model_name} version {stamp.model_version or 'unregistered'} "
        f"(sha256 {stamp.model_digest[:12]}…), run {run_id}"
    )

    result_store = None
    if store:
        from app.records import ManifestEntry
        from app.store import ResultStore

        result_store = ResultStore.from_settings(settings)
        result_store.start_run(
            "analyze",
            run_id=run_id,
            stamp=stamp,
            settings=analyzer.settings_data,
            manifest=[ManifestEntry(path=str(p), size_bytes=p.stat().st_size) for p in inputs],
        )

    out.mkdir(parents=True, exist_ok=True)
    results: list[DocumentResult] = []
    taken: set[str] = set()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stage]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("analyzing", total=len(inputs), stage="")
        for path in inputs:

            def on_stage(stage: str, _p: Path = path) -> None:
                bar.update(task, stage=f"{_p.name}: {stage}")

            result = analyzer.analyze(
                path,
                file_name=path.name,
                run_id=run_id,
                client=client,
                engagement=engagement,
                on_error=on_error,
                progress=on_stage,
            )
            stem = output_stem(path, taken)
            write_workpaper(result, out / f"{stem}.xlsx")
            write_json(result, out / f"{stem}.json")
            if result_store is not None:
                result_id = result_store.save_result(result, run_id=run_id)
                result_store.record_run_document(
                    run_id,
                    str(path),
                    result.status,
                    doc_id=result.doc_id,
                    timings=result.timings,
                    result_id=result_id,
                    error="; ".join(e.message for e in result.errors) or None,
                )
            results.append(result)
            bar.advance(task)
            for err in result.errors:
                console.print(f"  [{'red' if err.fatal else 'yellow'}]{err.message}[/]")

    from models.monitoring import peak_rss_mb

    all_ok = all(r.status == "ok" for r in results)
    summary = {
        "run_id": run_id,
        "stamp": stamp.fields(),
        "settings": analyzer.settings_data,
        "peak_rss_mb": peak_rss_mb(),
        "documents": [
            {
                "source": r.source,
                "sha256": r.doc_id,
                "status": r.status,
                "sentences": len(r.sentences),
                "errors": [e.message for e in r.errors],
            }
            for r in results
        ],
        "count_line": count_line(results),
    }
    (out / f"run-{run_id}.json").write_text(json.dumps(summary, indent=1, default=str))
    if result_store is not None:
        result_store.finish_run(run_id, summary=summary)
        if monitor:
            check_drift(settings, run_id, result_store, analyzer.scorer, console)
    typer.echo(count_line(results))
    sys.stdout.flush()
    raise typer.Exit(EXIT_OK if all_ok else EXIT_PROBLEMS)


def check_drift(
    settings: Settings,
    run_id: str,
    result_store: ResultStore,
    scorer: SentimentScorer | None,
    console: Console,
) -> None:
    """Profile the run against the model's reference and say the verdict in one line.

    Drift is a warning here, never a failed analysis: the documents were read and scored.
    `scorer` None loads the run's model (the batch driver holds none: its workers do).
    """
    from models.monitoring import drift_verdict

    line, drifted, where = drift_verdict(settings, run_id, result_store, scorer)
    colour = "green" if where is not None and not drifted else "yellow"
    console.print(f"[{colour}]{line}[/]" + (f" (report: {where})" if where else ""))


def parse_model_ref(ref: str) -> dict[str, str]:
    """`NAME`, `NAME@ALIAS` or `NAME/VERSION` as ScoringOptions fields."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return {"model": name, "version": alias}
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        return {"model": name, "version": version}
    return {"model": ref, "version": "champion"}


def register(app: typer.Typer) -> None:
    """Attach `analyze` to the root app."""
    app.command(no_args_is_help=True)(analyze)
