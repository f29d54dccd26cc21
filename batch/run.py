"""The batch driver: plan, skip what is done, run the rest, write each result as it completes.

`run_batch` is what `sesame batch run` and the nightly entry point call:

1. find every PDF under the input folder, hash it and count its pages (`batch.plan`);
2. open (or resume) a batch run in the results store with the manifest, the model stamp and the
   settings: without `--run-id`, the newest unfinished run of the same input folder, output
   folder, model and settings is resumed, so the same command after a crash carries on;
3. skip inputs already analyzed with this model and settings (by content sha256), and inputs
   this run already finished;
4. analyze the rest, big documents as page-range parts, on an executor (`batch.workers`):
   Ray actors (a local instance, or a cluster through an address) or this process;
5. as each document completes, in this order: its workpaper and JSON, its result in the store,
   its status in the run, a line in the run's journal. A crash loses at most the documents in
   flight; a rerun finds finished work in the store and does not repeat it;
6. end with a summary (JSON and a batch workpaper listing every document), a count line and
   an exit status (`EXIT_*`).

The driver alone writes results. Workers return `DocumentResult`s: parts of one document must
meet in one place to be merged anyway, the output folder and the store need to be reachable from
the driver only (cluster nodes need neither a shared filesystem nor database credentials), and
one writer keeps SQLite's single write lock uncontended. Writing costs the driver well under a
second per document while each worker has a second job queued, so workers do not wait on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from app.config import Settings
from app.records import (
    Document,
    DocumentResult,
    ManifestEntry,
    RunDocument,
    StageError,
    Stamp,
    settings_digest,
)
from app.store import StoreError
from batch.merge import merge_parts
from batch.plan import DEFAULT_PAGES_PER_PART, InputFile, Part, find_pdfs, scan_input, split_parts
from batch.workers import Done, Job, LocalExecutor, RayExecutor, WorkerStartError

_log = logging.getLogger(__name__)

EXIT_OK = 0
"""Every document of the run was read fully (skipped documents do not count)."""
EXIT_PROBLEMS = 1
"""At least one document is partial or failed: see the summary's Exceptions."""
EXIT_USAGE = 2
"""The command was wrong (no such input folder, bad option)."""
EXIT_NOT_STARTED = 3
"""The run could not start: Ray unreachable, the store or model unavailable, or another batch
holds the output folder. Nothing was analyzed; fix the cause and run the same command."""
EXIT_INTERRUPTED = 4
"""The run was stopped (SIGINT/SIGTERM) or lost its workers; run the same command to resume."""

ExecutorKind = Literal["ray", "local"]
_TERMINAL = frozenset({"ok", "partial", "failed", "skipped"})
_STATE_DIR = ".sesame-batch"


class BatchUsageError(Exception):
    """The batch was asked for something impossible (exit status 2)."""


class BatchStartError(Exception):
    """The batch could not start (exit status 3)."""


@dataclass(slots=True)
class BatchOptions:
    """How a batch runs (the settings say how each document is analyzed)."""

    input_dir: Path
    out: Path
    executor: ExecutorKind = "ray"
    address: str | None = None
    """Ray cluster address; None: `RAY_ADDRESS`, else a new local Ray instance."""
    workers: int | None = None
    """Actors to start; None: one per `cpus_per_worker` CPUs of the cluster."""
    cpus_per_worker: float = 1.0
    """CPUs (and torch threads) per worker; the local executor uses as many threads."""
    num_cpus: int | None = None
    """CPUs of a new local Ray instance; None: all of this machine's."""
    pages_per_part: int = DEFAULT_PAGES_PER_PART
    """Documents longer than this are analyzed in page-range parts; 0 never splits."""
    max_attempts: int = 2
    """Tries per part when its worker dies; then the document is recorded as failed."""
    task_timeout_s: float | None = None
    """Stop a worker whose part runs longer than this (then retried, as if it had died)."""
    run_id: str | None = None
    """Run id to start or resume; None: resume the latest unfinished matching run, or start."""
    resume: bool = True
    client: str | None = None
    engagement: str | None = None
    title: str | None = None
    """Heading of the batch workpaper (default: the run id)."""
    progress_every_s: float = 30.0
    """When the console is not a terminal (cron, Ray Jobs): a progress line this often."""


@dataclass(slots=True)
class BatchOutcome:
    """How a batch ended."""

    run_id: str | None
    exit_code: int
    count_line: str
    counts: dict[str, int] = field(default_factory=dict)
    summary_path: Path | None = None
    workpaper_path: Path | None = None
    message: str | None = None


@dataclass(slots=True)
class _Doc:
    """A document being analyzed: its parts and the results of those done."""

    item: InputFile
    parts: list[Part]
    payload: Any = None
    results: dict[int, DocumentResult] = field(default_factory=dict)
    started: bool = False
    finished: bool = False
    t0: float = 0.0


@dataclass(slots=True)
class _Row:
    """One line of the summary: a document's outcome in this run."""

    source: str
    status: str
    row: dict[str, Any]
    attempts: int = 0
    result_id: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    wall_s: float | None = None
    """Seconds from the document's first submission to its merged result (its parts ran in
    parallel, so this can be less than the sum of its stage timings)."""
    earlier: bool = False
    """Finished before this invocation (the run was resumed)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "attempts": self.attempts,
            "result_id": self.result_id,
            "outputs": self.outputs,
            "note": self.note,
            "wall_s": self.wall_s,
            "row": self.row,
        }


# --- entry point ------------------------------------------------------------------------------


def run_batch(
    options: BatchOptions,
    settings: Settings,
    *,
    console: Any = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> BatchOutcome:
    """Run (or resume) a batch; never raises for a bad document, only for a batch that cannot
    start (BatchStartError, BatchUsageError). See the module docstring for the steps."""
    from rich.console import Console

    console = console or Console(stderr=True)
    input_dir = options.input_dir.expanduser().resolve()
    if not input_dir.is_dir():
        raise BatchUsageError(f"{options.input_dir}: no such folder")
    out = options.out.expanduser().resolve()
    if out == input_dir or input_dir in out.parents:
        raise BatchUsageError(
            f"--out {options.out} lies inside the input folder; its workpapers "
            "would be read as inputs next time. Choose another folder."
        )
    if options.pages_per_part < 0 or options.max_attempts < 1:
        raise BatchUsageError("pages per part must be >= 0 and attempts >= 1")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatchStartError(f"{out}: the output folder cannot be created ({e})") from e
    with _exclusive(out):
        return _Driver(options, settings, input_dir, out, console, on_event).run()


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold the output folder's lock: one batch per folder; the OS drops it when we die."""
    state = out / _STATE_DIR
    state.mkdir(exist_ok=True)
    with (state / "lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise BatchStartError(
                f"another batch is writing to {out} right now; wait for it "
                "or choose another --out folder"
            ) from e
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- the driver -------------------------------------------------------------------------------


class _Driver:
    def __init__(
        self,
        options: BatchOptions,
        settings: Settings,
        input_dir: Path,
        out: Path,
        console: Any,
        on_event: Callable[[str, dict[str, Any]], None] | None,
    ) -> None:
        from app.pipeline import result_settings

        self.o = options
        self.settings = settings
        self.input_dir = input_dir
        self.out = out
        self.console = console
        self.on_event = on_event
        self.settings_data = result_settings(settings)
        self.settings_digest = settings_digest(self.settings_data)
        self.rows: dict[str, _Row] = {}
        self.executor: LocalExecutor | RayExecutor | None = None
        self.run_id: str | None = None
        self.stamp: Stamp | None = None
        self.started_at = datetime.now(UTC)
        self.startup_s = self.processing_s = self.write_s = self.worker_cpu_s = 0.0
        self.write_cpu_s = 0.0
        self.worker_peak_rss_mb = 0.0
        self.n_inputs = 0

    # --- the whole run --------------------------------------------------------------------

    def run(self) -> BatchOutcome:
        from app.store import ResultStore

        model = self._resolve_model()
        try:
            self.store = ResultStore.from_settings(self.settings)
        except Exception as e:
            raise BatchStartError(f"the results store could not be opened: {e}") from e

        items = self._scan()
        self.run_id = self._choose_run_id(model.digest)
        self.stamp = self._stamp(model)
        self.stem = _output_stems(items)
        self.journal = self.out / _STATE_DIR / f"{self.run_id}.jsonl"
        resumed = self.store.get_run(self.run_id) is not None
        try:
            self.store.start_run(
                "batch",
                run_id=self.run_id,
                stamp=self.stamp,
                settings=self._run_settings(),
                manifest=[
                    ManifestEntry(path=i.source, sha256=i.sha256, size_bytes=i.size_bytes)
                    for i in items
                ],
            )
        except StoreError as e:  # e.g. --run-id of an analyze run
            raise BatchUsageError(str(e)) from e
        self.n_inputs = len(items)
        self.console.print(
            f"batch run {self.run_id}{' (resumed)' if resumed else ''}: {len(items)} PDFs in "
            f"{self.input_dir}; model {self.stamp.model_name} "
            f"{self.stamp.model_version or 'unregistered'} (sha256 {model.digest[:12]}…)"
        )
        self._event("run_started", run_id=self.run_id, resumed=resumed)

        todo = self._triage(items)
        interrupted = self._execute(todo) if todo else None
        return self._finish(interrupted)

    def _resolve_model(self) -> Any:
        from models.registry import resolve_model

        try:
            self.settings.ensure_dirs()
            return resolve_model(self.settings)
        except Exception as e:
            raise BatchStartError(f"the model could not be resolved: {e}") from e

    def _scan(self) -> list[InputFile]:
        paths = find_pdfs(self.input_dir)
        password = self.settings.ingest.password
        with self.console.status(f"hashing {len(paths)} PDFs…"):
            return [scan_input(p, self.input_dir, password) for p in paths]

    def _choose_run_id(self, model_digest: str) -> str:
        from app.pipeline import new_run_id

        if self.o.run_id:
            return self.o.run_id
        if self.o.resume:
            for run in self.store.list_runs(kind="batch", limit=200):
                batch = run.settings.get("batch") or {}
                if (
                    run.status in ("running", "interrupted")
                    and isinstance(batch, dict)
                    and batch.get("input_dir") == str(self.input_dir)
                    and batch.get("out") == str(self.out)
                    and batch.get("settings_digest") == self.settings_digest
                    and batch.get("pages_per_part") == self.o.pages_per_part
                    and run.stamp is not None
                    and run.stamp.model_digest == model_digest
                ):
                    return run.run_id
        return new_run_id()

    def _stamp(self, model: Any) -> Stamp:
        from app.version import git_commit, package_version

        return Stamp(
            model_name=model.name,
            model_version=model.version,
            model_digest=model.digest,
            code_version=package_version(),
            git_commit=git_commit(),
            run_id=self.run_id or "",
            created_at=datetime.now(UTC),
        )

    def _run_settings(self) -> dict[str, Any]:
        return {
            **self.settings_data,
            "batch": {
                "input_dir": str(self.input_dir),
                "out": str(self.out),
                "settings_digest": self.settings_digest,
                "executor": self.o.executor,
                "address": self.o.address or os.environ.get("RAY_ADDRESS"),
                "pages_per_part": self.o.pages_per_part,
                "max_attempts": self.o.max_attempts,
                "client": self.o.client,
                "engagement": self.o.engagement,
            },
        }

    # --- what to do -----------------------------------------------------------------------

    def _triage(self, items: list[InputFile]) -> list[InputFile]:
        """Rows for what is done or skipped; the inputs still to analyze, longest first."""
        assert self.run_id is not None and self.stamp is not None
        known = {d.source: d for d in self.store.run_documents(self.run_id)}
        journal = self._read_journal()
        ours = {r.doc_id: r for r in self.store.list_results(run_id=self.run_id) if r.doc_id}
        todo: list[InputFile] = []
        first_of: dict[str, str] = {}
        for item in items:
            prev = known.pop(item.source, None)
            if prev is not None and prev.status in _TERMINAL:
                self.rows[item.source] = journal.get(item.source) or self._row_from_store(prev)
                self.rows[item.source].earlier = True
                continue
            if item.error is not None:
                self._finish_failed(item, item.error, code="unreadable", attempts=0)
                continue
            assert item.sha256 is not None
            if item.sha256 in first_of:
                self._skip(item, note=f"same content as {first_of[item.sha256]}")
                continue
            first_of[item.sha256] = item.source
            if self.store.has_result(item.sha256, self.stamp.model_digest, self.settings_digest):
                if item.sha256 in ours:
                    # Saved by this run just before a crash, but not yet recorded: finish it.
                    self._recover(item, ours[item.sha256].result_id)
                else:
                    self._skip(item, note="already analyzed with this model and settings")
                continue
            todo.append(item)
        for gone in known.values():
            if gone.status not in _TERMINAL:
                self.store.record_run_document(
                    self.run_id, gone.source, "skipped", error="no longer in the input folder"
                )
        # Longest first: big documents start early and do not finish last on their own.
        todo.sort(key=lambda i: (-i.n_pages, i.source))
        n_skipped = sum(1 for r in self.rows.values() if r.status == "skipped" and not r.earlier)
        n_earlier = sum(1 for r in self.rows.values() if r.earlier)
        if n_skipped or n_earlier:
            self.console.print(
                f"{n_skipped} already analyzed with this model and settings, "
                f"{n_earlier} done earlier in this run; {len(todo)} to analyze"
            )
        return todo

    # --- running --------------------------------------------------------------------------

    def _make_executor(self, n_parts: int) -> LocalExecutor | RayExecutor:
        assert self.stamp is not None
        if self.o.executor == "local":
            executor: LocalExecutor | RayExecutor = LocalExecutor(
                self.settings, self.stamp.model_digest, cpus_per_worker=self.o.cpus_per_worker
            )
            with self.console.status("loading the model…"):
                executor.start()
            return executor
        executor = RayExecutor(
            self.settings,
            self.stamp.model_digest,
            address=self.o.address,
            workers=self.o.workers,
            cpus_per_worker=self.o.cpus_per_worker,
            num_cpus=self.o.num_cpus,
            task_timeout_s=self.o.task_timeout_s,
            on_event=self._event,
        )
        with self.console.status("starting Ray workers (each loads the model once)…"):
            executor.start(max_workers=n_parts)
        nodes = {w.get("node_id") for w in executor.workers}
        self.console.print(f"{len(executor.workers)} Ray workers on {len(nodes)} node(s)")
        return executor

    def _execute(self, todo: list[InputFile]) -> str | None:
        """Analyze every input; returns why the run was interrupted, or None."""
        assert self.run_id is not None
        docs = {i.source: _Doc(i, split_parts(i, self.o.pages_per_part)) for i in todo}
        queue: deque[Job] = deque(
            Job(
                part,
                docs[part.source].item,
                run_id=self.run_id,
                client=self.o.client,
                engagement=self.o.engagement,
            )
            for item in todo
            for part in docs[item.source].parts
        )
        t0 = time.perf_counter()
        try:
            self.executor = self._make_executor(len(queue))
        except WorkerStartError as e:
            assert self.run_id is not None
            self.store.finish_run(self.run_id, status="interrupted", summary={"error": str(e)})
            raise BatchStartError(str(e)) from e
        self.startup_s = time.perf_counter() - t0
        self.t_work = time.perf_counter()
        progress = self.progress = _Progress(self.console, docs, self.o.progress_every_s)
        stop = _StopSignal()
        try:
            with stop, progress:
                while queue or self.executor.in_flight:
                    if stop.reason:
                        return stop.reason
                    while queue and self.executor.slots > 0:
                        self._submit(queue.popleft(), docs)
                    for done in self.executor.wait(timeout=1.0):
                        self._on_done(done, docs, queue, progress)
                    progress.tick()
                    if not queue and self.executor.in_flight == 0:
                        break
        except WorkerStartError as e:  # every worker lost, none could be replaced
            self.console.print(f"[red]{e}[/]")
            return str(e)
        except KeyboardInterrupt:
            return "interrupted"
        finally:
            self.processing_s = time.perf_counter() - self.t_work
            self.executor.close()
        return None

    def _submit(self, job: Job, docs: dict[str, _Doc]) -> None:
        assert self.executor is not None and self.run_id is not None
        doc = docs[job.part.source]
        if doc.finished:
            return
        if doc.payload is None:
            try:
                data = doc.item.path.read_bytes()
            except OSError as e:
                self._finish_failed(
                    doc.item,
                    f"{doc.item.source}: could not be read "
                    f"({e.strerror or e}); check that it is still there.",
                    code="unreadable",
                    attempts=1,
                )
                doc.finished = True
                self.progress.doc_done(doc)
                return
            doc.payload = self.executor.put(data)
        if not doc.started or job.attempt > 1:
            self.store.record_run_document(
                self.run_id, doc.item.source, "running", doc_id=doc.item.sha256
            )
            if not doc.started:
                doc.started, doc.t0 = True, time.perf_counter()
        self.executor.submit(job, doc.payload)

    def _on_done(
        self, done: Done, docs: dict[str, _Doc], queue: deque[Job], progress: _Progress
    ) -> None:
        doc = docs[done.job.part.source]
        if doc.finished:
            return
        part = done.job.part
        self.worker_cpu_s += done.cpu_s
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, done.peak_rss_mb)
        if done.result is not None:
            doc.results[part.index] = done.result
            progress.part_done(part, done.result)
            if len(doc.results) == len(doc.parts):
                merged = merge_parts([doc.results[p.index] for p in doc.parts], doc.parts)
                doc.finished, doc.payload, doc.results = True, None, {}
                self._finish_result(
                    doc.item, merged, attempts=None, save=True, wall_s=time.perf_counter() - doc.t0
                )
                progress.doc_done(doc)
            return
        if done.retryable and done.job.attempt < self.o.max_attempts:
            self.console.print(
                f"  [yellow]{part.label}: {done.failure}; trying again "
                f"(attempt {done.job.attempt + 1} of {self.o.max_attempts})[/]"
            )
            done.job.attempt += 1
            queue.appendleft(done.job)
            return
        reason = done.failure or "no result"
        if done.retryable:
            reason = (
                f"{part.label}: {reason}, {done.job.attempt} time(s); not analyzed. "
                "The next run tries it again; if it keeps failing, check the file and "
                "the workers' memory."
            )
        doc.finished, doc.payload, doc.results = True, None, {}
        self._finish_failed(
            doc.item, reason, code="worker_died" if done.retryable else "internal", attempts=None
        )
        progress.doc_done(doc)

    # --- finishing one document -------------------------------------------------------------

    def _finish_result(
        self,
        item: InputFile,
        result: DocumentResult,
        *,
        attempts: int | None,
        save: bool,
        wall_s: float | None = None,
    ) -> _Row:
        """Outputs, store, run record, journal; in that order, so a crash repeats no work."""
        assert self.run_id is not None
        t0, cpu0 = time.perf_counter(), time.thread_time()
        if result.document is None and item.sha256 is not None and item.size_bytes is not None:
            # The bytes were read (here), only not opened as a PDF: identify the result by
            # them, so the store keys it by content and the next run skips it like any other.
            result = result.model_copy(
                update={
                    "document": Document(
                        doc_id=item.sha256,
                        file_name=item.source,
                        size_bytes=item.size_bytes,
                        encrypted=any(e.code == "encrypted" for e in result.errors),
                    )
                }
            )
        outputs, export_errors = self._write_outputs(item, result)
        result_id = self.store.save_result(result, run_id=self.run_id) if save else None
        errors = [*result.errors, *export_errors]
        status = result.status if not export_errors or result.status == "failed" else "partial"
        record = self.store.record_run_document(
            self.run_id,
            item.source,
            status,
            doc_id=result.doc_id,
            timings=result.timings,
            error="\n".join(e.message for e in errors) or None,
            result_id=result_id,
        )
        from app.workpaper import batch_row

        row = batch_row(result)
        row["source"] = item.source
        row["status"] = status
        row["errors"] = [e.model_dump(mode="json") for e in errors]
        entry = _Row(
            item.source,
            status,
            row,
            attempts=record.attempts if attempts is None else attempts,
            result_id=result_id,
            outputs=outputs,
            wall_s=round(wall_s, 3) if wall_s is not None else None,
        )
        self._journal(entry)
        self.rows[item.source] = entry
        self._print_doc(entry)
        self.write_s += time.perf_counter() - t0
        self.write_cpu_s += time.thread_time() - cpu0
        return entry

    def _finish_failed(
        self, item: InputFile, message: str, *, code: str, attempts: int | None
    ) -> _Row:
        """A document without a result (unreadable file, dead workers, a bug): a failed result
        for the outputs and the run, kept out of the store so the next run tries it again."""
        assert self.stamp is not None
        document = None
        if item.sha256 is not None and item.size_bytes is not None:
            document = Document(
                doc_id=item.sha256,
                file_name=item.source,
                size_bytes=item.size_bytes,
                n_pages=item.n_pages,
            )
        result = DocumentResult(
            source=item.source,
            document=document,
            status="failed",
            errors=(StageError(stage="ingest", code=code, message=message, fatal=True),),
            stamp=self.stamp.model_copy(update={"created_at": datetime.now(UTC)}),
            settings=self.settings_data,
            client=self.o.client,
            engagement=self.o.engagement,
        )
        return self._finish_result(item, result, attempts=attempts, save=False)

    def _skip(self, item: InputFile, *, note: str) -> None:
        assert self.run_id is not None and self.stamp is not None and item.sha256 is not None
        result_id = self.store.result_id(item.sha256, self.stamp.model_digest, self.settings_digest)
        self.store.record_run_document(
            self.run_id, item.source, "skipped", doc_id=item.sha256, result_id=result_id, error=None
        )
        summary = None
        if result_id is not None:
            found = self.store.list_results(
                doc_id=item.sha256, model_digest=self.stamp.model_digest
            )
            summary = next((s for s in found if s.result_id == result_id), None)
        row = _skipped_row(item, summary)
        entry = _Row(item.source, "skipped", row, result_id=result_id, note=note)
        self._journal(entry)
        self.rows[item.source] = entry

    def _recover(self, item: InputFile, result_id: int) -> None:
        result = self.store.load_result(result_id)
        if result is None:  # pragma: no cover - deleted between the two reads
            return
        self._finish_result(item, result, attempts=None, save=True)

    def _write_outputs(
        self, item: InputFile, result: DocumentResult
    ) -> tuple[dict[str, str], list[StageError]]:
        from app.errors import ExportError
        from app.export import result_to_json
        from app.workpaper import write_workpaper

        stem = self.out / self.stem[item.source]
        outputs: dict[str, str] = {}
        errors: list[StageError] = []
        try:
            write_workpaper(result, stem.with_suffix(".xlsx"))
            outputs["workpaper"] = stem.with_suffix(".xlsx").relative_to(self.out).as_posix()
            _write_atomic(
                stem.with_suffix(".json"),
                json.dumps(result_to_json(result), ensure_ascii=False, indent=1),
            )
            outputs["json"] = stem.with_suffix(".json").relative_to(self.out).as_posix()
        except ExportError as e:
            errors.append(e.to_record())
        except OSError as e:
            errors.append(
                StageError(
                    stage="export",
                    code="export",
                    message=(
                        f"{stem.with_suffix('.json')}: could not be written ({e.strerror or e}); "
                        "check the output folder's space and permissions."
                    ),
                )
            )
        return outputs, errors

    def _print_doc(self, row: _Row) -> None:
        r = row.row
        colour = {"ok": "green", "partial": "yellow", "failed": "red"}.get(row.status, "white")
        self.console.print(
            f"  [{colour}]{row.status:<7}[/] {row.source}: {r.get('pages') or 0} pages, "
            f"{r.get('sentences') or 0} sentences, {r.get('seconds') or 0:.1f} s"
        )
        for err in r.get("errors") or ():
            self.console.print(
                f"    [{'red' if err.get('fatal') else 'yellow'}]{err.get('message')}[/]",
                markup=True,
                highlight=False,
            )

    # --- journal --------------------------------------------------------------------------

    def _journal(self, row: _Row) -> None:
        line = json.dumps(row.to_json(), ensure_ascii=False, default=str)
        with self.journal.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _read_journal(self) -> dict[str, _Row]:
        rows: dict[str, _Row] = {}
        if not self.journal.exists():
            return rows
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            rows[data["source"]] = _Row(
                data["source"],
                data["status"],
                data["row"],
                attempts=data.get("attempts", 0),
                result_id=data.get("result_id"),
                outputs=data.get("outputs") or {},
                note=data.get("note"),
                wall_s=data.get("wall_s"),
            )
        return rows

    def _row_from_store(self, doc: RunDocument) -> _Row:
        """A finished document's row when the journal lacks it (the output folder was lost)."""
        from app.workpaper import batch_row

        result = self.store.load_result(doc.result_id) if doc.result_id is not None else None
        if result is not None:
            row = batch_row(result)
            row["status"] = doc.status
        else:
            row = {
                "source": doc.source,
                "file_name": doc.source,
                "sha256": doc.doc_id,
                "status": doc.status,
                "timings": doc.timings,
                "errors": [
                    {
                        "stage": "ingest",
                        "code": "recorded",
                        "message": doc.error,
                        "fatal": doc.status == "failed",
                    }
                ]
                if doc.error
                else [],
            }
        row["source"] = doc.source
        return _Row(doc.source, doc.status, row, attempts=doc.attempts, result_id=doc.result_id)

    # --- the end --------------------------------------------------------------------------

    def _finish(self, interrupted: str | None) -> BatchOutcome:
        from app.workpaper import write_batch_workpaper

        assert self.run_id is not None and self.stamp is not None
        rows = [self.rows[k] for k in sorted(self.rows)]
        counts = Counter(r.status for r in rows)
        line = batch_count_line(counts)
        summary = self._summary(rows, counts, line, interrupted)
        summary_path = self.out / f"batch-{self.run_id}.json"
        _write_atomic(summary_path, json.dumps(summary, ensure_ascii=False, indent=1, default=str))
        workbook = self.out / f"batch-{self.run_id}.xlsx"
        workpaper_path: Path | None = workbook
        try:
            write_batch_workpaper(
                [r.row for r in rows],
                workbook,
                stamp=self.stamp,
                title=self.o.title
                or f"sesame batch {self.run_id}: {line}"
                + (" (INTERRUPTED)" if interrupted else ""),
            )
        except Exception as e:  # the JSON summary stands; say why the workbook does not
            _log.error("batch workpaper not written: %s", e)
            self.console.print(f"[red]batch workpaper not written: {e}[/]")
            workpaper_path = None
        stored = {k: v for k, v in summary.items() if k != "documents"}
        stored["summary_json"] = str(summary_path)
        stored["workpaper"] = str(workpaper_path) if workpaper_path else None
        self.store.finish_run(
            self.run_id, status="interrupted" if interrupted else None, summary=stored
        )
        self._event("run_finished", run_id=self.run_id, counts=dict(counts))
        if interrupted:
            code, message = (
                EXIT_INTERRUPTED,
                (f"run {self.run_id} interrupted ({interrupted}); run the same command to resume"),
            )
        else:
            code = EXIT_PROBLEMS if counts["partial"] or counts["failed"] else EXIT_OK
            message = None
        return BatchOutcome(
            self.run_id, code, line, dict(counts), summary_path, workpaper_path, message
        )

    def _summary(
        self, rows: list[_Row], counts: Counter[str], line: str, interrupted: str | None
    ) -> dict[str, Any]:
        assert self.stamp is not None
        done_now = [r for r in rows if r.status != "skipped" and not r.earlier]
        pages = sum(r.row.get("pages") or 0 for r in done_now)
        sentences = sum(r.row.get("sentences") or 0 for r in done_now)
        wall = (datetime.now(UTC) - self.started_at).total_seconds()
        executor = self.executor
        from models.monitoring import peak_rss_mb

        driver_rss = peak_rss_mb()
        return {
            "run_id": self.run_id,
            "status": "interrupted"
            if interrupted
            else (
                "failed"
                if counts["failed"] and counts["failed"] == len(done_now)
                else "partial"
                if counts["partial"] or counts["failed"]
                else "ok"
            ),
            "interrupted": interrupted,
            "count_line": line,
            "counts": {k: counts.get(k, 0) for k in ("ok", "partial", "failed", "skipped")},
            "left": max(self.n_inputs - len(rows), 0),
            # the largest process of the run: a worker (Ray) or this one (local executor)
            "peak_rss_mb": max(driver_rss, self.worker_peak_rss_mb),
            "input_dir": str(self.input_dir),
            "out": str(self.out),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "this_invocation": {
                "documents": len(done_now),
                "pages": pages,
                "sentences": sentences,
                "wall_s": round(wall, 2),
                "worker_startup_s": round(self.startup_s, 2),
                "processing_s": round(self.processing_s, 2),
                "driver_write_s": round(self.write_s, 2),
                "driver_write_cpu_s": round(self.write_cpu_s, 2),
                "worker_cpu_s": round(self.worker_cpu_s, 2),
                "worker_cpu_s_per_page": round(self.worker_cpu_s / pages, 4) if pages else None,
                "driver_peak_rss_mb": driver_rss,
                "worker_peak_rss_mb": self.worker_peak_rss_mb or None,
                "pages_per_s": round(pages / wall, 3) if wall else None,
                "sentences_per_s": round(sentences / wall, 3) if wall else None,
                "processing_pages_per_s": round(pages / self.processing_s, 3)
                if self.processing_s
                else None,
                "processing_sentences_per_s": round(sentences / self.processing_s, 3)
                if self.processing_s
                else None,
            },
            "executor": {
                "kind": self.o.executor,
                "workers": executor.workers if executor is not None else [],
            },
            "stamp": self.stamp.fields(),
            "settings_digest": self.settings_digest,
            "settings": self.settings_data,
            "pages_per_part": self.o.pages_per_part,
            "documents": [r.to_json() for r in rows],
        }

    def _event(self, kind: str, data: dict[str, Any] | None = None, **more: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, {**(data or {}), **more})


# --- helpers --------------------------------------------------------------------------------


def batch_count_line(counts: Counter[str] | dict[str, int]) -> str:
    """`340 documents: 12 ok, 1 partial, 1 failed, 326 skipped`."""
    n = sum(counts.get(k, 0) for k in ("ok", "partial", "failed", "skipped"))
    noun = "document" if n == 1 else "documents"
    return (
        f"{n} {noun}: {counts.get('ok', 0)} ok, {counts.get('partial', 0)} partial, "
        f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped"
    )


def _skipped_row(item: InputFile, summary: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": item.source,
        "file_name": item.source,
        "sha256": item.sha256,
        "status": "skipped",
        "pages": item.n_pages,
        "errors": [],
    }
    if summary is not None:
        row.update(
            sentences=summary.n_sentences,
            scored=summary.n_scored,
            explained=summary.n_explained,
            **summary.label_counts,
        )
    return row


def _output_stems(items: list[InputFile]) -> dict[str, Path]:
    """Each input's output path without suffix, mirroring the input folders, unique per folder
    (assigned over the sorted input list, so a resumed run writes to the same names)."""
    from app.cli_analyze import output_stem

    taken: dict[str, set[str]] = {}
    stems: dict[str, Path] = {}
    for item in sorted(items, key=lambda i: i.source):
        rel = Path(item.source)
        folder = Path(*[_safe(p) for p in rel.parent.parts]) if rel.parent.parts else Path()
        stems[item.source] = folder / output_stem(rel, taken.setdefault(folder.as_posix(), set()))
    return stems


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "folder"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class _StopSignal:
    """SIGTERM (systemd stop, Ray Jobs stop) ends the run cleanly, like Ctrl-C."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old: Any = None

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def _on_term(self, signum: int, _frame: Any) -> None:
        self.reason = f"signal {signal.Signals(signum).name}"

    def __exit__(self, *_exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


class _Progress:
    """Documents, pages, sentences, rate and ETA: a live bar on a terminal, lines in a log."""

    def __init__(self, console: Any, docs: dict[str, _Doc], every_s: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.total_docs = len(docs)
        self.total_pages = sum(max(d.item.n_pages, 1) for d in docs.values())
        self.docs = self.pages = self.sentences = 0
        self.doc_pages: dict[str, int] = {}
        self.t0 = time.perf_counter()
        self.every_s = every_s
        self.last_line = self.t0
        self.live = console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not self.live,
        )
        self.task = self.bar.add_task("batch", total=self.total_pages, stats="")

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.tick(force=True)
        self.bar.stop()

    def part_done(self, part: Part, result: DocumentResult) -> None:
        pages = part.n_pages or max(result.document.n_pages if result.document else 1, 1)
        self.pages += pages
        self.doc_pages[part.source] = self.doc_pages.get(part.source, 0) + pages
        self.sentences += len(result.sentences)

    def doc_done(self, doc: _Doc) -> None:
        self.docs += 1
        # Pages of parts that never finished (a failed document) count as done for the ETA.
        self.pages += max(max(doc.item.n_pages, 1) - self.doc_pages.pop(doc.item.source, 0), 0)

    def stats(self) -> str:
        wall = max(time.perf_counter() - self.t0, 1e-6)
        rate = self.pages / wall
        left = max(self.total_pages - self.pages, 0)
        eta = _clock(left / rate) if rate > 0 else "?"
        return (
            f"docs {self.docs}/{self.total_docs} · pages {self.pages}/{self.total_pages} · "
            f"{self.sentences:,} sentences · {rate:.1f} pages/s, "
            f"{self.sentences / wall:.1f} sentences/s · ETA {eta}"
        )

    def tick(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.live:
            self.bar.update(
                self.task, completed=min(self.pages, self.total_pages), stats=self.stats()
            )
        elif force or now - self.last_line >= self.every_s:
            self.console.print(f"progress: {self.stats()}", highlight=False)
            self.last_line = now


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
