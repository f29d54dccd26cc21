"""`sesame batch run` (score a folder of filings on Ray, resumably) and `sesame batch status`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from app.cli.analyze import say_drift
from app.cli.options import (
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
from app.store import ResultStore
from batch.run import (
    EXIT_INTERRUPTED,
    EXIT_NOT_STARTED,
    EXIT_USAGE,
    BatchOptions,
    BatchStartError,
    BatchUsageError,
    run_batch,
)

_log = logging.getLogger(__name__)

batch_app = typer.Typer(
    name="batch",
    help="Score every report (PDF, HTML/XHTML filing, ESEF .zip) of a folder on Ray (nightly), "
    "resume after a crash, list runs.",
    no_args_is_help=True,
)


@batch_app.command("run", no_args_is_help=True)
def run(
    input_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder searched (with its subfolders) for *.pdf, *.htm, *.html, *.xhtml and "
            "*.zip (ESEF) reports.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the workpapers, JSON and batch summary.")
    ],
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster address (host:port, auto, ray://…). Default: RAY_ADDRESS, else a new "
            "local Ray instance.",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        Literal["ray", "local"] | None,
        typer.Option(
            help="ray: Ray actors; local: this process only, no Ray (same results). "
            "Default: settings (batch.executor, ray).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ray actors to start (default: one per CPU of the cluster).",
            show_default=False,
        ),
    ] = None,
    cpus_per_worker: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="CPUs Ray reserves per actor, and torch threads per worker (also with "
            "--executor local). Default: settings (1).",
            show_default=False,
        ),
    ] = None,
    num_cpus: Annotated[
        int | None,
        typer.Option(
            min=1, help="CPUs of a new local Ray instance (default: all).", show_default=False
        ),
    ] = None,
    pages_per_part: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Split documents longer than this into page-range parts (0: never). "
            "Default: settings (50).",
            show_default=False,
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Tries per part when its worker dies, before the document is failed. "
            "Default: settings (2).",
            show_default=False,
        ),
    ] = None,
    task_timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Stop a worker whose part runs longer than this many seconds (retried).",
            show_default=False,
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            help="Run id to start or resume (default: resume the last unfinished run of the same "
            "folders, model and settings, else a new id).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Resume the last unfinished matching run (finished documents are always "
            "skipped by content, either way)."
        ),
    ] = True,
    explain: ExplainOpt = None,
    explain_method: ExplainMethodOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    password: PasswordOpt = None,
    ocr: OcrOpt = None,
    ocr_languages: OcrLanguagesOpt = None,
    client: ClientOpt = None,
    engagement: EngagementOpt = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="Results-store URL (sqlite:///… or postgresql+psycopg://…); default: settings.",
            show_default=False,
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option(help="Heading of the batch workpaper.", show_default=False)
    ] = None,
    monitor: Annotated[
        bool | None,
        typer.Option(
            help="Test the run's new sentences for drift against the model's reference profile "
            "(a warning only: `sesame monitor report RUN` gates on it). Default: settings "
            "(batch.monitor, on).",
            show_default=False,
        ),
    ] = None,
    compare_previous: Annotated[
        bool | None,
        typer.Option(
            help="Compare each new filing with the client's previous one in the store (same "
            "client, or the same first folder when no --client; the latest earlier period) into "
            "OUT/compare/. Default: settings (batch.compare_previous, off).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Analyze every report under INPUT_DIR not yet scored with this model and settings.

    Exit status: 0 every document read fully; 1 any partial or failed (see the batch
    workpaper's Exceptions); 2 usage error; 3 the run could not start (Ray unreachable, store or
    model unavailable, another batch writing to OUT); 4 interrupted (run it again to resume).
    """
    console = Console(stderr=True)
    settings = with_overrides(
        load_settings(),
        explain=explain,
        explain_method=explain_method,
        model=model,
        model_dir=model_dir,
        password=password,
        store=store,
        ocr=ocr,
        ocr_languages=ocr_languages,
    )
    options = BatchOptions(
        input_dir=input_dir,
        out=out,
        executor=executor,
        address=address,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        num_cpus=num_cpus,
        pages_per_part=pages_per_part,
        max_attempts=max_attempts,
        task_timeout_s=task_timeout,
        run_id=run_id,
        resume=resume,
        client=client,
        engagement=engagement,
        title=title,
    )
    options.monitor = settings.batch.monitor if monitor is None else monitor
    options.compare_previous = compare_previous
    try:
        outcome = run_batch(options, settings, console=console)
    except BatchUsageError as e:
        console.print(f"[red]usage: {e}[/]")
        raise typer.Exit(EXIT_USAGE) from e
    except BatchStartError as e:
        console.print(f"[red]the batch could not start: {e}[/]")
        raise typer.Exit(EXIT_NOT_STARTED) from e
    except Exception as e:  # the store or cluster went away mid-run: the run is resumable
        _log.exception("the batch stopped")
        console.print(
            f"[red]the batch stopped: {type(e).__name__}: {e}. Run the same "
            "command again to resume.[/]"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from e
    if outcome.message:
        console.print(f"[yellow]{outcome.message}[/]")
    if outcome.summary_path:
        console.print(
            f"summary: {outcome.summary_path}"
            + (f" and {outcome.workpaper_path.name}" if outcome.workpaper_path else "")
        )
    say_drift(outcome, console)
    typer.echo(outcome.count_line)
    sys.stdout.flush()
    raise typer.Exit(outcome.exit_code)


@batch_app.command("status")
def status(
    run_id: Annotated[
        str | None,
        typer.Argument(
            help="A run id (or 'latest'); without it, list the batch runs.", show_default=False
        ),
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="List only documents that are partial or failed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Runs to list.")] = 20,
    store: Annotated[
        str | None, typer.Option(help="Results-store URL; default: settings.", show_default=False)
    ] = None,
) -> None:
    """List batch runs, or one run's progress and documents (works while a run is going)."""
    settings = with_overrides(load_settings(), store=store)
    console = Console()
    with ResultStore.from_settings(settings) as result_store:
        if run_id is None:
            runs = result_store.list_runs(kind="batch", limit=limit)
            if as_json:
                typer.echo(
                    json.dumps(
                        [r.model_dump(mode="json", exclude={"manifest", "settings"}) for r in runs],
                        indent=1,
                        default=str,
                    )
                )
                return
            _print_runs(console, runs)
            return
        if run_id == "latest":
            runs = result_store.list_runs(kind="batch", limit=1)
            if not runs:
                console.print("no batch runs yet")
                raise typer.Exit(2)
            run_id = runs[0].run_id
        info = result_store.get_run(run_id)
        if info is None:
            console.print(f"[red]no run {run_id}[/]; `sesame batch status` lists them")
            raise typer.Exit(2)
        docs = result_store.run_documents(run_id)
        results = {r.result_id: r for r in result_store.list_results(run_id=run_id)}
        if failed:
            docs = [d for d in docs if d.status in ("partial", "failed")]
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "run": info.model_dump(mode="json", exclude={"manifest"}),
                        "progress": run_progress(info, docs, results),
                        "documents": [d.model_dump(mode="json") for d in docs],
                    },
                    indent=1,
                    default=str,
                )
            )
            return
        _print_run(console, info, docs, results)


def run_progress(info: Any, docs: list[Any], results: dict[int, Any]) -> dict[str, Any]:
    """Documents, pages and sentences done, rate and ETA of a run, from the store."""
    total = len(info.manifest) or sum(info.document_counts.values())
    counts = info.document_counts
    done = sum(counts.get(k, 0) for k in ("ok", "partial", "failed"))
    skipped = counts.get("skipped", 0)
    pages = sum(r.n_pages for r in results.values())
    sentences = sum(r.n_sentences for r in results.values())
    end = info.finished_at or datetime.now(UTC)
    elapsed = max((end - info.started_at).total_seconds(), 1e-6)
    left = max(total - done - skipped, 0)
    rate = done / elapsed
    return {
        "documents": total,
        "done": done,
        "skipped": skipped,
        "left": left,
        "pages": pages,
        "sentences": sentences,
        "elapsed_s": round(elapsed, 1),
        "documents_per_min": round(rate * 60, 2),
        "pages_per_s": round(pages / elapsed, 2),
        "sentences_per_s": round(sentences / elapsed, 2),
        "eta_s": round(left / rate) if info.status == "running" and rate > 0 else None,
    }


def _print_runs(console: Any, runs: list[Any]) -> None:
    if not runs:
        console.print("no batch runs yet")
        return
    table = Table(title="batch runs (newest first)")
    for name in (
        "run",
        "status",
        "started (UTC)",
        "finished",
        "ok",
        "partial",
        "failed",
        "skipped",
        "left",
        "model",
    ):
        table.add_column(name)
    for r in runs:
        c = r.document_counts
        left = c.get("pending", 0) + c.get("running", 0)
        model = f"{r.stamp.model_name} {r.stamp.model_version or 'unreg.'}" if r.stamp else "?"
        table.add_row(
            r.run_id,
            r.status,
            f"{r.started_at:%Y-%m-%d %H:%M}",
            f"{r.finished_at:%H:%M}" if r.finished_at else "",
            *(str(c.get(k, 0)) for k in ("ok", "partial", "failed", "skipped")),
            str(left),
            model,
        )
    console.print(table)


def _print_run(console: Any, info: Any, docs: list[Any], results: dict[int, Any]) -> None:
    p = run_progress(info, docs, results)
    batch = info.settings.get("batch") or {}
    console.print(
        f"run {info.run_id}: [bold]{info.status}[/] · started "
        f"{info.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f" · finished {info.finished_at:%H:%M:%S}" if info.finished_at else "")
    )
    if batch:
        console.print(f"input {batch.get('input_dir')} → {batch.get('out')}")
    if info.stamp:
        console.print(
            f"model {info.stamp.model_name} {info.stamp.model_version or 'unregistered'}"
            f" (sha256 {info.stamp.model_digest[:12]}…)"
        )
    eta = f" · ETA {p['eta_s'] // 60} min" if p["eta_s"] is not None else ""
    console.print(
        f"{p['done']} of {p['documents']} documents done, {p['skipped']} skipped, "
        f"{p['left']} left · {p['pages']:,} pages · {p['sentences']:,} sentences · "
        f"{p['pages_per_s']} pages/s{eta}"
    )
    if info.summary.get("count_line"):
        console.print(str(info.summary["count_line"]))
    drift = info.summary.get("drift")
    if isinstance(drift, dict) and drift.get("verdict"):
        console.print(f"drift: {drift['verdict']}", markup=False)
    table = Table()
    for name in ("document", "status", "attempts", "pages", "sentences", "seconds", "error"):
        table.add_column(name)
    for d in docs:
        r = results.get(d.result_id) if d.result_id is not None else None
        seconds = sum(d.timings.values())
        error = (d.error or "").splitlines()[0] if d.error else ""
        table.add_row(
            d.source,
            d.status,
            str(d.attempts),
            str(r.n_pages) if r else "",
            str(r.n_sentences) if r else "",
            f"{seconds:.1f}" if seconds else "",
            error[:120],
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach the `batch` group to the root app."""
    app.add_typer(batch_app, name="batch")
