"""The batch: every PDF under a folder, through the run service, on Ray actors or locally.

`run_batch` is what `sesame batch run` and the nightly entry point call. What is batch-specific
lives here: finding and hashing the PDFs of the input folder (`batch.plan`), holding the output
folder (one batch per folder), mirroring the input folders in the outputs, resuming the newest
unfinished run of the same folders, and starting the executor the settings ask for. Everything
else (skipping what is stored, page-range parts, finishing each document, the summary, the
journal that makes a crash lose nothing) is the run service's, shared with `sesame analyze` and
the review screen: see `app.runs`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.compare.service import compare_new_filings
from app.config import Settings
from app.runs import (
    EXIT_INTERRUPTED,
    EXIT_NOT_STARTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    OnEvent,
    RunOutcome,
    RunRequest,
    RunStartError,
    RunUsageError,
    run_documents,
)
from app.store import ResultStore
from batch.plan import find_inputs, scan_input
from batch.workers import LocalExecutor, RayExecutor, StageHook
from models.registry import ResolvedModel, resolve_model

_log = logging.getLogger(__name__)

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_STARTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "BatchOptions",
    "BatchOutcome",
    "BatchStartError",
    "BatchUsageError",
    "run_batch",
]

BatchUsageError = RunUsageError
"""The batch was asked for something impossible (exit status 2)."""
BatchStartError = RunStartError
"""The batch could not start (exit status 3)."""
BatchOutcome = RunOutcome
"""How a batch ended."""


@dataclass(slots=True)
class BatchOptions:
    """One batch: its folders and identity; None fields take the settings' `batch` options."""

    input_dir: Path
    out: Path
    executor: str | None = None
    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float | None = None
    num_cpus: int | None = None
    pages_per_part: int | None = None
    max_attempts: int | None = None
    task_timeout_s: float | None = None
    run_id: str | None = None
    """Run id to start or resume; None: resume the latest unfinished matching run, or start."""
    resume: bool = True
    client: str | None = None
    engagement: str | None = None
    title: str | None = None
    """Heading of the batch workpaper (default: the run id)."""
    progress_every_s: float | None = None
    monitor: bool = False
    """Test the run's new sentences for drift at the end (the CLI asks for it)."""
    compare_previous: bool | None = None
    """Compare each new filing with the client's previous one in the store; None: settings
    (batch.compare_previous). See `app.compare.service.previous_of` for "previous"."""

    def resolved(self, settings: Settings) -> Settings:
        """The settings with this batch's overrides of their `batch` options."""
        given = {
            k: getattr(self, k)
            for k in (
                "executor",
                "address",
                "workers",
                "cpus_per_worker",
                "num_cpus",
                "pages_per_part",
                "max_attempts",
                "task_timeout_s",
                "progress_every_s",
            )
            if getattr(self, k) is not None
        }
        batch = settings.batch.model_validate({**settings.batch.model_dump(), **given})
        return settings.model_copy(update={"batch": batch})


def run_batch(
    options: BatchOptions,
    settings: Settings,
    *,
    console: Any = None,
    on_event: OnEvent | None = None,
) -> RunOutcome:
    """Run (or resume) a batch; never raises for a bad document, only for a batch that cannot
    start (BatchStartError, BatchUsageError)."""
    from rich.console import Console

    console = console or Console(stderr=True)
    settings = options.resolved(settings)
    b = settings.batch
    input_dir = options.input_dir.expanduser().resolve()
    if not input_dir.is_dir():
        raise BatchUsageError(f"{options.input_dir}: no such folder")
    out = options.out.expanduser().resolve()
    if out == input_dir or input_dir in out.parents:
        raise BatchUsageError(
            f"--out {options.out} lies inside the input folder; its workpapers "
            "would be read as inputs next time. Choose another folder."
        )
    model = _resolve_model(settings)
    try:
        store = ResultStore.from_settings(settings)
    except Exception as e:
        raise BatchStartError(f"the results store could not be opened: {e}") from e
    paths = find_inputs(input_dir)
    with console.status(f"hashing {len(paths)} reports…"):
        items = [scan_input(p, input_dir, settings.ingest.password) for p in paths]
    request = RunRequest(
        kind="batch",
        inputs=items,
        out=out,
        layout="mirror",
        summary_prefix="batch",
        batch_workpaper=True,
        journal=True,
        reused_status="skipped",
        retry_failed=False,
        run_id=options.run_id,
        resume_key={"input_dir": str(input_dir), "out": str(out)},
        resume=options.resume,
        pages_per_part=b.pages_per_part,
        max_attempts=b.max_attempts,
        client=options.client,
        engagement=options.engagement,
        title=options.title,
        monitor=options.monitor,
        progress_every_s=b.progress_every_s,
        extra_settings={
            "executor": b.executor,
            "address": b.address or os.environ.get("RAY_ADDRESS"),
        },
        extra_summary={"input_dir": str(input_dir)},
    )

    def make_executor(n_parts: int, _on_stage: StageHook) -> LocalExecutor | RayExecutor:
        return _start_executor(settings, model, n_parts, console, on_event)

    outcome = run_documents(
        request,
        settings,
        model=model,
        make_executor=make_executor,
        store=store,
        console=console,
        on_event=on_event,
    )
    compare = b.compare_previous if options.compare_previous is None else options.compare_previous
    if compare and outcome.run_id and outcome.exit_code != EXIT_INTERRUPTED:
        compare_new_filings(settings, store, model, outcome, out, console)
    return outcome


def _resolve_model(settings: Settings) -> ResolvedModel:
    try:
        settings.ensure_dirs()
        return resolve_model(settings)
    except Exception as e:
        raise BatchStartError(f"the model could not be resolved: {e}") from e


def _start_executor(
    settings: Settings,
    model: ResolvedModel,
    n_parts: int,
    console: Any,
    on_event: OnEvent | None,
) -> LocalExecutor | RayExecutor:
    b = settings.batch
    if b.executor == "local":
        local = LocalExecutor(settings, model.digest, cpus_per_worker=b.cpus_per_worker)
        with console.status("loading the model…"):
            local.start()
        return local
    executor = RayExecutor(
        settings,
        model.digest,
        address=b.address,
        workers=b.workers,
        cpus_per_worker=b.cpus_per_worker,
        num_cpus=b.num_cpus,
        task_timeout_s=b.task_timeout_s,
        on_event=on_event,
    )
    with console.status("starting Ray workers (each loads the model once)…"):
        executor.start(max_workers=n_parts)
    nodes = {w.get("node_id") for w in executor.workers}
    console.print(f"{len(executor.workers)} Ray workers on {len(nodes)} node(s)")
    return executor
