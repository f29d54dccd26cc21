"""The run service: many documents, one way, for `sesame analyze`, the review screen and the batch.

`run_documents` is the only place that decides what starting a run, skipping a document and
finishing a document or a run mean:

1. open (or resume) a run in the results store with its manifest, the model stamp and the
   settings: a request with a `resume_key` (the batch's folders) resumes the newest unfinished
   run of the same key, model and settings, so the same command after a crash carries on;
2. skip inputs already analyzed with this model and settings (by content sha256; their stored
   result is reused and its outputs written when missing), copies of an input seen earlier in
   the run, and inputs this run already finished;
3. analyze the rest, big documents as page-range parts (`batch.plan`, merged by
   `batch.merge`), on an executor: in this process with the caller's loaded `Analyzer`
   (`sesame analyze`, the review screen) or Ray actors (`sesame batch run`);
4. as each document completes, in this order: its workpaper and JSON (written atomically), its
   result in the store, its status in the run, a line in the run's journal. A crash loses at
   most the documents in flight; a rerun finds finished work in the store and does not repeat it;
5. end with a summary (JSON, and for a batch a workpaper listing every document), the count
   line, the drift verdict of the run's new sentences and an exit status (`EXIT_*`).

The driver alone writes results. Workers return `DocumentResult`s: parts of one document must
meet in one place to be merged anyway, the output folder and the store need to be reachable from
the driver only (cluster nodes need neither a shared filesystem nor database credentials), and
one writer keeps SQLite's single write lock uncontended.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from app.config import Settings
from app.errors import ExportError
from app.export import result_to_json
from app.pipeline import result_settings
from app.records import (
    Document,
    DocumentResult,
    ManifestEntry,
    RunDocument,
    RunKind,
    StageError,
    Stamp,
    count_line,
    settings_digest,
)
from app.stamps import make_stamp, new_run_id
from app.store import ResultStore, StoreError
from app.system import peak_rss_mb
from app.workpaper import batch_row, write_batch_workpaper, write_workpaper
from batch.merge import merge_parts
from batch.plan import InputFile, Part, split_parts
from batch.workers import Done, Job, StageHook, WorkerStartError
from explain.service import ExplainerChoice, explainer_choice
from models.monitoring import DriftState, drift_verdict

_log = logging.getLogger(__name__)

EXIT_OK = 0
"""Every document of the run was read fully (skipped documents do not count)."""
EXIT_PROBLEMS = 1
"""At least one document is partial or failed: see the summary's Exceptions."""
EXIT_USAGE = 2
"""The command was wrong (no such input, bad option)."""
EXIT_NOT_STARTED = 3
"""The run could not start: Ray unreachable, the store or model unavailable, or another batch
holds the output folder. Nothing was analyzed; fix the cause and run the same command."""
EXIT_INTERRUPTED = 4
"""The run was stopped (SIGINT/SIGTERM) or lost its workers; run the same command to resume."""

TERMINAL = frozenset({"ok", "partial", "failed", "skipped"})
STATE_DIR = ".sesame-batch"
"""Folder in a batch's output folder holding its lock and the runs' journals."""

OnEvent = Callable[[str, dict[str, Any]], None]
"""Told what happens: run_started, doc_started, stage, doc_finished, run_finished, and the
executor's worker events."""


class RunUsageError(Exception):
    """The run was asked for something impossible (exit status 2)."""


class RunStartError(Exception):
    """The run could not start (exit status 3)."""


class ModelIdentity(Protocol):
    """What a run needs to know of its model: a resolved registry model or a loaded scorer."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def digest(self) -> str: ...


class Executor(Protocol):
    """Where parts are analyzed (`batch.workers`): in this process or on Ray actors."""

    name: str
    workers: list[dict[str, Any]]

    @property
    def slots(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    def put(self, data: bytes) -> Any: ...
    def submit(self, job: Job, payload: Any) -> None: ...
    def wait(self, timeout: float | None = ...) -> list[Done]: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class RunRequest:
    """One run of many documents: what goes in, where outputs go, how it may resume."""

    kind: RunKind
    inputs: list[InputFile]
    out: Path | None = None
    """Folder for each document's workpaper and JSON and the run's summary; None writes none
    (the review screen keeps results in the store only)."""
    layout: Literal["flat", "mirror"] = "flat"
    """flat: `out/<file name>.xlsx`; mirror: the inputs' folders repeated under `out`."""
    summary_prefix: str = "run"
    """The summary is `out/<prefix>-<run id>.json` (`run` for analyze, `batch` for a batch)."""
    batch_workpaper: bool = False
    """Also write `out/<prefix>-<run id>.xlsx` listing every document (the batch's)."""
    journal: bool = False
    """Keep `out/.sesame-batch/<run id>.jsonl`: a finished document's row survives a lost store."""
    run_id: str | None = None
    resume_key: dict[str, Any] | None = None
    """What identifies "the same run" (a batch's folders), stored with the run's settings."""
    resume: bool = False
    """Resume the newest unfinished run with the same `resume_key`, model and settings (unless
    `run_id` names the run)."""
    pages_per_part: int = 0
    max_attempts: int = 1
    reuse: bool = True
    """Skip documents whose result with this model and settings is stored (reusing it); a
    stored failure is analyzed again and replaced, unless `retry_failed` is False."""
    retry_failed: bool = True
    """Analyze a document again when its stored result failed (the user asked again: a password
    given now may open it). The nightly batch sets False: a stored failure counts as skipped."""
    rerun: bool = False
    """A forced re-run: analyze again documents whose result is stored and replace it, saying
    what changed (labels, sentences); refused for a result that has review actions."""
    reused_status: Literal["skipped", "stored"] = "stored"
    """How a reused document counts: as skipped (the batch: nothing new happened to it), or
    with the status of its stored result (analyze, uploads: what the user asked about)."""
    client: str | None = None
    engagement: str | None = None
    title: str | None = None
    """Heading of the batch workpaper (default: the run id and its count line)."""
    monitor: bool = False
    """Test the run's new sentences for drift against the model's reference at the end."""
    progress_every_s: float = 30.0
    extra_settings: dict[str, Any] = field(default_factory=dict)
    """Stored with the run's settings (a batch's folders and executor)."""
    extra_summary: dict[str, Any] = field(default_factory=dict)
    """Stored with the run's summary (who started an upload, from where)."""


@dataclass(slots=True)
class DocRow:
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
    reused: bool = False
    """Not analyzed in this run: a stored result (or an identical input's) was reused."""
    reused_from: str | None = None
    """For a reused stored result: when it was made (ISO time)."""
    error_codes: tuple[str, ...] = ()

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


@dataclass(slots=True)
class RunOutcome:
    """How a run ended."""

    run_id: str | None
    exit_code: int
    count_line: str
    counts: dict[str, int] = field(default_factory=dict)
    summary_path: Path | None = None
    workpaper_path: Path | None = None
    message: str | None = None
    rows: list[DocRow] = field(default_factory=list)
    """Every input's row, in input order."""
    drift: str | None = None
    """The drift check's one-line verdict (`verdict_line`); None when no check was made."""
    drifted: bool = False
    drift_state: DriftState | None = None
    """drift, ok or not_tested (too few sentences, no reference profile)."""
    drift_report: str | None = None
    """Where the drift report was written, when one was."""
    explain: str | None = None
    """How this run's evidence is made, with the reason for a fallback to sampling (None:
    no evidence asked for)."""


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


# --- entry point ------------------------------------------------------------------------------


def run_documents(
    request: RunRequest,
    settings: Settings,
    *,
    model: ModelIdentity,
    make_executor: Callable[[int, StageHook], Executor],
    store: ResultStore | None,
    console: Any = None,
    on_event: OnEvent | None = None,
    scorer: Any = None,
) -> RunOutcome:
    """Run (or resume) a run; never raises for a bad document, only for a run that cannot
    start (RunStartError, RunUsageError). See the module docstring for the steps.

    Args:
        model: the model the run scores with (its stamp); workers must load the same digest.
        make_executor: builds and starts the executor for this many parts, handing in-process
            stage events to the hook it is given (called only when there is work).
        store: the results store; None keeps nothing (no skipping, no resume).
        console: a rich Console for progress and per-document lines; None prints nothing.
        scorer: a loaded scorer for the drift check (None loads the run's model for it).
    """
    if request.out is not None:
        try:
            request.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunStartError(f"{request.out}: the output folder cannot be created ({e})") from e
    service = _Service(request, settings, model, make_executor, store, console, on_event, scorer)
    if request.journal and request.out is not None:
        with exclusive_folder(request.out):
            return service.run()
    return service.run()


@contextlib.contextmanager
def exclusive_folder(out: Path) -> Iterator[None]:
    """Hold the output folder's lock: one batch per folder; the OS drops it when we die."""
    state = out / STATE_DIR
    state.mkdir(exist_ok=True)
    with (state / "lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise RunStartError(
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


def output_stem(name: str, taken: set[str]) -> str:
    """A safe output name from an input's file name, unique among `taken` (which it joins)."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._") or "document"
    candidate, n = stem, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def output_stems(inputs: Sequence[InputFile], layout: Literal["flat", "mirror"]) -> dict[str, Path]:
    """Each input's output path without suffix, relative to the output folder.

    flat: names in input order, made unique; mirror: the inputs' folders repeated, names unique
    per folder, assigned over the sorted sources so a resumed run writes to the same names.
    """
    if layout == "flat":
        taken: set[str] = set()
        return {i.source: Path(output_stem(Path(i.source).name, taken)) for i in inputs}
    per_folder: dict[str, set[str]] = {}
    stems: dict[str, Path] = {}
    for item in sorted(inputs, key=lambda i: i.source):
        rel = Path(item.source)
        folder = Path(*[_safe(p) for p in rel.parent.parts]) if rel.parent.parts else Path()
        used = per_folder.setdefault(folder.as_posix(), set())
        stems[item.source] = folder / output_stem(rel.name, used)
    return stems


def write_atomic(path: Path, text: str) -> None:
    """Write a text file so that a reader never sees it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- the service ------------------------------------------------------------------------------


class _Service:
    def __init__(
        self,
        request: RunRequest,
        settings: Settings,
        model: ModelIdentity,
        make_executor: Callable[[int, StageHook], Executor],
        store: ResultStore | None,
        console: Any,
        on_event: OnEvent | None,
        scorer: Any,
    ) -> None:
        self.r = request
        self.settings = settings
        self.model = model
        self.make_executor = make_executor
        self.store = store
        self.console = console
        self.on_event = on_event
        self.scorer = scorer
        self.settings_data = result_settings(settings)
        self.settings_digest = settings_digest(self.settings_data)
        self.rows: dict[str, DocRow] = {}
        self.executor: Executor | None = None
        self.run_id = ""
        self.stamp: Stamp | None = None
        self.started_at = datetime.now(UTC)
        self.startup_s = self.processing_s = self.write_s = self.worker_cpu_s = 0.0
        self.write_cpu_s = 0.0
        self.worker_peak_rss_mb = 0.0
        self.stems = output_stems(request.inputs, request.layout) if request.out else {}
        self.copies: dict[str, list[InputFile]] = {}
        self.replacing: dict[str, int] = {}
        """sha256 -> the stored result this run's analysis replaces (a failure, or a re-run)."""
        """Inputs skipped as copies of one analyzed in this run, by the original's source."""
        self.journal_path: Path | None = None
        self.progress: _Progress | None = None
        self.explain = self._explain_choice()

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> RunOutcome:
        self.run_id = self._choose_run_id()
        self.stamp = make_stamp(self.model.name, self.model.version, self.model.digest, self.run_id)
        if self.r.journal and self.r.out is not None:
            self.journal_path = self.r.out / STATE_DIR / f"{self.run_id}.jsonl"
        resumed = False
        if self.store is not None:
            resumed = self.store.get_run(self.run_id) is not None
            try:
                self.store.start_run(
                    self.r.kind,
                    run_id=self.run_id,
                    stamp=self.stamp,
                    settings=self._run_settings(),
                    manifest=[
                        ManifestEntry(path=i.source, sha256=i.sha256, size_bytes=i.size_bytes)
                        for i in self.r.inputs
                    ],
                )
            except StoreError as e:  # e.g. --run-id of a run of another kind
                raise RunUsageError(str(e)) from e
        self._print(
            f"{self.r.kind} run {self.run_id}{' (resumed)' if resumed else ''}: "
            f"{len(self.r.inputs)} document{'' if len(self.r.inputs) == 1 else 's'}; model "
            f"{self.stamp.model_name} {self.stamp.model_version or 'unregistered'} "
            f"(sha256 {self.model.digest[:12]}…)"
        )
        if self.explain is not None:
            colour = "yellow" if self.explain.reason else "green"
            self._print(f"[{colour}]{self.explain.line()}[/]")
        self._event("run_started", run_id=self.run_id, resumed=resumed)
        todo = self._triage()
        interrupted = self._execute(todo) if todo else None
        return self._finish(interrupted)

    def _explain_choice(self) -> ExplainerChoice | None:
        """The evidence method the run's workers choose (the same rule, read from the model's
        directory), for the console and the summary; None without evidence."""
        if self.settings.explain.mode == "none":
            return None
        path = getattr(self.model, "path", None)
        return explainer_choice(
            Path(path) if path is not None else None,
            self.model.digest,
            self.settings.explain.method,
        )

    def _choose_run_id(self) -> str:
        if self.r.run_id:
            return self.r.run_id
        if self.r.resume and self.r.resume_key is not None and self.store is not None:
            for run in self.store.list_runs(kind=self.r.kind, limit=200):
                key = run.settings.get(self.r.kind) or {}
                if (
                    run.status in ("running", "interrupted")
                    and isinstance(key, dict)
                    and all(key.get(k) == v for k, v in self.r.resume_key.items())
                    and key.get("settings_digest") == self.settings_digest
                    and key.get("pages_per_part") == self.r.pages_per_part
                    and run.stamp is not None
                    and run.stamp.model_digest == self.model.digest
                ):
                    return run.run_id
        return new_run_id()

    def _run_settings(self) -> dict[str, Any]:
        return {
            **self.settings_data,
            self.r.kind: {
                **(self.r.resume_key or {}),
                **self.r.extra_settings,
                "settings_digest": self.settings_digest,
                "pages_per_part": self.r.pages_per_part,
                "max_attempts": self.r.max_attempts,
                "client": self.r.client,
                "engagement": self.r.engagement,
            },
        }

    # --- what to do -------------------------------------------------------------------------

    def _triage(self) -> list[InputFile]:
        """Rows for what is done or skipped; the inputs still to analyze, longest first."""
        known: dict[str, RunDocument] = {}
        ours: dict[str, Any] = {}
        if self.store is not None:
            known = {d.source: d for d in self.store.run_documents(self.run_id)}
            ours = {r.doc_id: r for r in self.store.list_results(run_id=self.run_id) if r.doc_id}
        journal = self._read_journal()
        todo: list[InputFile] = []
        first_of: dict[str, InputFile] = {}
        for item in self.r.inputs:
            prev = known.pop(item.source, None)
            if prev is not None and prev.status in TERMINAL:
                row = journal.get(item.source) or self._row_from_store(prev)
                row.earlier = True
                self.rows[item.source] = row
                continue
            if item.error is not None:
                self._finish_failed(item, item.error, code=item.error_code, attempts=0)
                continue
            assert item.sha256 is not None
            if item.sha256 in first_of:
                self.copies.setdefault(first_of[item.sha256].source, []).append(item)
                continue
            first_of[item.sha256] = item
            if self.r.reuse and self.store is not None:
                found = self.store.result_key(item.sha256, self.model.digest, self.settings_digest)
                if found is not None:
                    stored, stored_status, n_reviews = found
                    if item.sha256 in ours:
                        # Saved by this run just before a crash, but not yet recorded: finish it.
                        self._recover(item, ours[item.sha256].result_id)
                        continue
                    retry = stored_status == "failed" and self.r.retry_failed
                    if (retry or self.r.rerun) and not n_reviews:
                        self.replacing[item.sha256] = stored
                    else:
                        note = "already analyzed with this model and settings"
                        if self.r.rerun:
                            note = (
                                f"not analyzed again: its stored result has {n_reviews} review "
                                "action(s), which a re-run would detach; the stored one is shown"
                            )
                        self._skip(item, stored, note=note)
                        continue
            todo.append(item)
        for source, originals in list(self.copies.items()):
            if source in self.rows:  # the original was skipped or recovered above
                for copy in originals:
                    self._skip_copy(copy, self.rows[source])
                del self.copies[source]
        if self.store is not None:
            for gone in known.values():
                if gone.status not in TERMINAL:
                    self.store.record_run_document(
                        self.run_id, gone.source, "skipped", error="no longer among the inputs"
                    )
        # Longest first: big documents start early and do not finish last on their own.
        todo.sort(key=lambda i: (-i.n_pages, i.source))
        n_skipped = sum(1 for r in self.rows.values() if r.status == "skipped" and not r.earlier)
        n_earlier = sum(1 for r in self.rows.values() if r.earlier)
        if n_skipped or n_earlier:
            self._print(
                f"{n_skipped} already analyzed with this model and settings, "
                f"{n_earlier} done earlier in this run; {len(todo)} to analyze"
            )
        return todo

    # --- running ----------------------------------------------------------------------------

    def _execute(self, todo: list[InputFile]) -> str | None:
        """Analyze every input; returns why the run was interrupted, or None."""
        docs = {i.source: _Doc(i, split_parts(i, self.r.pages_per_part)) for i in todo}
        queue: deque[Job] = deque(
            Job(
                part,
                docs[part.source].item,
                run_id=self.run_id,
                client=self.r.client,
                engagement=self.r.engagement,
            )
            for item in todo
            for part in docs[item.source].parts
        )
        t0 = time.perf_counter()
        progress = self.progress = _Progress(self.console, docs, self.r.progress_every_s)
        try:
            self.executor = self.make_executor(len(queue), self._stage)
        except WorkerStartError as e:
            if self.store is not None:
                self.store.finish_run(self.run_id, status="interrupted", summary={"error": str(e)})
            raise RunStartError(str(e)) from e
        self.startup_s = time.perf_counter() - t0
        t_work = time.perf_counter()
        stop = _StopSignal()
        executor = self.executor
        try:
            with stop, progress:
                while queue or executor.in_flight:
                    if stop.reason:
                        return stop.reason
                    while queue and executor.slots > 0:
                        self._submit(queue.popleft(), docs)
                    for done in executor.wait(timeout=1.0):
                        self._on_done(done, docs, queue, progress)
                    progress.tick()
                    if not queue and executor.in_flight == 0:
                        break
        except WorkerStartError as e:  # every worker lost, none could be replaced
            self._print(f"[red]{e}[/]")
            return str(e)
        except KeyboardInterrupt:
            return "interrupted"
        finally:
            self.processing_s = time.perf_counter() - t_work
            executor.close()
        return None

    def _stage(self, source: str, stage: str) -> None:
        if self.progress is not None:
            self.progress.stage(source, stage)
        self._event("stage", source=source, stage=stage)

    def _submit(self, job: Job, docs: dict[str, _Doc]) -> None:
        assert self.executor is not None and self.progress is not None
        doc = docs[job.part.source]
        if doc.finished:
            return
        if doc.payload is None:
            try:
                data = doc.item.data if doc.item.data is not None else doc.item.path.read_bytes()
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
            if self.store is not None:
                self.store.record_run_document(
                    self.run_id, doc.item.source, "running", doc_id=doc.item.sha256
                )
            if not doc.started:
                doc.started, doc.t0 = True, time.perf_counter()
                self._event("doc_started", source=doc.item.source)
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
                    doc.item,
                    merged,
                    attempts=None,
                    save=True,
                    wall_s=time.perf_counter() - doc.t0,
                )
                progress.doc_done(doc)
            return
        if done.retryable and done.job.attempt < self.r.max_attempts:
            self._print(
                f"  [yellow]{part.label}: {done.failure}; trying again "
                f"(attempt {done.job.attempt + 1} of {self.r.max_attempts})[/]"
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
            doc.item,
            reason,
            code="worker_died" if done.retryable else "internal",
            attempts=None,
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
    ) -> DocRow:
        """Outputs, store, run record, journal; in that order, so a crash repeats no work."""
        t0, cpu0 = time.perf_counter(), time.thread_time()
        if result.document is None and item.sha256 is not None and item.size_bytes is not None:
            # The bytes were read (here), only not opened as a document: identify the result
            # by them, so the store keys it by content and the next run skips it like any other.
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
        result_id = None
        note = None
        if save and self.store is not None:
            replaced = self.replacing.pop(item.sha256 or "", None)
            if replaced is not None:
                before = self.store.load_result(replaced)
                result_id = self.store.save_result(
                    result, run_id=self.run_id, on_conflict="replace"
                )
                note = what_changed(before, result) if before is not None else None
            else:
                result_id = self.store.save_result(result, run_id=self.run_id)
        errors = [*result.errors, *export_errors]
        status = result.status if not export_errors or result.status == "failed" else "partial"
        n_attempts = 1 if attempts is None else attempts
        if self.store is not None:
            record = self.store.record_run_document(
                self.run_id,
                item.source,
                status,
                doc_id=result.doc_id,
                timings=result.timings,
                error="\n".join(e.message for e in errors) or None,
                result_id=result_id,
            )
            n_attempts = record.attempts if attempts is None else attempts
        row = batch_row(result)
        row["source"] = item.source
        row["status"] = status
        row["errors"] = [e.model_dump(mode="json") for e in errors]
        entry = DocRow(
            item.source,
            status,
            row,
            attempts=n_attempts,
            result_id=result_id,
            outputs=outputs,
            note=note,
            wall_s=round(wall_s, 3) if wall_s is not None else None,
            error_codes=tuple(e.code for e in errors),
        )
        self._journal(entry)
        self.rows[item.source] = entry
        self._print_doc(entry)
        self._event("doc_finished", row=entry)
        for copy in self.copies.pop(item.source, []):
            self._skip_copy(copy, entry, result=result)
        self.write_s += time.perf_counter() - t0
        self.write_cpu_s += time.thread_time() - cpu0
        return entry

    def _finish_failed(
        self, item: InputFile, message: str, *, code: str, attempts: int | None
    ) -> DocRow:
        """A document without a result (unreadable file, dead workers, a bug, a refusal): a
        failed result for the outputs and the run, kept out of the store so the next run
        tries it again."""
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
            client=self.r.client,
            engagement=self.r.engagement,
        )
        return self._finish_result(item, result, attempts=attempts, save=False)

    def _skip(self, item: InputFile, result_id: int, *, note: str) -> None:
        """A document whose result with this model and settings is stored: reuse it."""
        assert self.store is not None and item.sha256 is not None
        self.store.record_run_document(
            self.run_id, item.source, "skipped", doc_id=item.sha256, result_id=result_id
        )
        found = self.store.list_results(doc_id=item.sha256, model_digest=self.model.digest)
        summary = next((s for s in found if s.result_id == result_id), None)
        outputs = self._existing_outputs(item)
        need_outputs = self.r.out is not None and len(outputs) < 2
        errors: list[StageError] = []
        if need_outputs or (summary is not None and summary.n_errors):
            stored = self.store.load_result(result_id)
            if stored is not None:
                errors = list(stored.errors)
                if need_outputs:
                    outputs, _ = self._write_outputs(item, stored)
        status = "skipped"
        if self.r.reused_status == "stored" and summary is not None:
            status = summary.status
        entry = DocRow(
            item.source,
            status,
            _skipped_row(item, summary, status),
            result_id=result_id,
            outputs=outputs,
            note=note,
            reused=True,
            reused_from=summary.created_at.isoformat(timespec="minutes") if summary else None,
            error_codes=tuple(e.code for e in errors),
        )
        entry.row["errors"] = [e.model_dump(mode="json") for e in errors]
        self._journal(entry)
        self.rows[item.source] = entry
        if self.r.reused_status == "stored":  # analyze: say so per file (a batch counts them)
            self._print_doc(entry)
        self._event("doc_finished", row=entry)

    def _skip_copy(
        self, item: InputFile, original: DocRow, *, result: DocumentResult | None = None
    ) -> None:
        """An input with the bytes of one met earlier in the run: skipped, its outputs copied."""
        if self.store is not None:
            self.store.record_run_document(
                self.run_id,
                item.source,
                "skipped",
                doc_id=item.sha256,
                result_id=original.result_id,
            )
        outputs: dict[str, str] = {}
        if self.r.out is not None:
            source = result
            if source is None and original.result_id is not None and self.store is not None:
                source = self.store.load_result(original.result_id)
            if source is not None:
                outputs, _ = self._write_outputs(item, source)
        status = original.status if self.r.reused_status == "stored" else "skipped"
        row = {**original.row, "source": item.source, "file_name": item.source, "status": status}
        entry = DocRow(
            item.source,
            status,
            row,
            result_id=original.result_id,
            outputs=outputs,
            note=f"same content as {original.source}",
            reused=True,
            reused_from=original.reused_from,
            error_codes=original.error_codes,
        )
        self._journal(entry)
        self.rows[item.source] = entry
        self._event("doc_finished", row=entry)

    def _recover(self, item: InputFile, result_id: int) -> None:
        assert self.store is not None
        result = self.store.load_result(result_id)
        if result is None:  # pragma: no cover - deleted between the two reads
            return
        self._finish_result(item, result, attempts=None, save=True)

    def _outputs_exist(self, item: InputFile) -> bool:
        return len(self._existing_outputs(item)) == 2

    def _existing_outputs(self, item: InputFile) -> dict[str, str]:
        if self.r.out is None:
            return {}
        stem = self.r.out / self.stems[item.source]
        found = {}
        for kind, suffix in (("workpaper", ".xlsx"), ("json", ".json")):
            if stem.with_suffix(suffix).is_file():
                found[kind] = stem.with_suffix(suffix).relative_to(self.r.out).as_posix()
        return found

    def _write_outputs(
        self, item: InputFile, result: DocumentResult
    ) -> tuple[dict[str, str], list[StageError]]:
        if self.r.out is None:
            return {}, []
        out = self.r.out
        stem = out / self.stems[item.source]
        outputs: dict[str, str] = {}
        errors: list[StageError] = []
        try:
            write_workpaper(result, stem.with_suffix(".xlsx"))
            outputs["workpaper"] = stem.with_suffix(".xlsx").relative_to(out).as_posix()
            write_atomic(
                stem.with_suffix(".json"),
                json.dumps(result_to_json(result), ensure_ascii=False, indent=1),
            )
            outputs["json"] = stem.with_suffix(".json").relative_to(out).as_posix()
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

    def _print(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)

    def _print_doc(self, row: DocRow) -> None:
        if self.console is None:
            return
        r = row.row
        colour = {"ok": "green", "partial": "yellow", "failed": "red"}.get(row.status, "white")
        self.console.print(
            f"  [{colour}]{row.status:<7}[/] {row.source}: {r.get('pages') or 0} pages, "
            f"{r.get('sentences') or 0} sentences, {r.get('seconds') or 0:.1f} s",
            highlight=False,
        )
        if row.note:
            self.console.print(f"    {row.note}", markup=False, highlight=False)
        for err in r.get("errors") or ():
            self.console.print(
                f"    [{'red' if err.get('fatal') else 'yellow'}]{err.get('message')}[/]",
                markup=True,
                highlight=False,
            )

    # --- journal ----------------------------------------------------------------------------

    def _journal(self, row: DocRow) -> None:
        if self.journal_path is None:
            return
        line = json.dumps(row.to_json(), ensure_ascii=False, default=str)
        with self.journal_path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _read_journal(self) -> dict[str, DocRow]:
        rows: dict[str, DocRow] = {}
        if self.journal_path is None or not self.journal_path.exists():
            return rows
        for line in self.journal_path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            rows[data["source"]] = DocRow(
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

    def _row_from_store(self, doc: RunDocument) -> DocRow:
        """A finished document's row when the journal lacks it (the output folder was lost)."""
        assert self.store is not None
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
        return DocRow(doc.source, doc.status, row, attempts=doc.attempts, result_id=doc.result_id)

    # --- the end ----------------------------------------------------------------------------

    def _finish(self, interrupted: str | None) -> RunOutcome:
        assert self.stamp is not None
        ordered = [self.rows[i.source] for i in self.r.inputs if i.source in self.rows]
        counts = Counter(r.status for r in ordered)
        show_skipped = self.r.kind == "batch" or bool(counts["skipped"])
        line = count_line(counts, skipped=show_skipped)
        by_source = sorted(ordered, key=lambda r: r.source)
        # Tested before the summary is written, so the summary states the verdict too.
        fresh = [
            r for r in ordered if r.status in ("ok", "partial") and not (r.earlier or r.reused)
        ]
        tested = any(r.row.get("sentences") for r in fresh)
        verdict = None
        if self.r.monitor and self.store is not None and tested and not interrupted:
            verdict = drift_verdict(self.settings, self.run_id, self.store, self.scorer)
        summary = self._summary(by_source, counts, line, interrupted)
        summary["drift"] = verdict.to_json() if verdict is not None else None
        summary_path: Path | None = None
        workpaper_path: Path | None = None
        if self.r.out is not None:
            summary_path = self.r.out / f"{self.r.summary_prefix}-{self.run_id}.json"
            write_atomic(
                summary_path, json.dumps(summary, ensure_ascii=False, indent=1, default=str)
            )
        if self.r.out is not None and self.r.batch_workpaper:
            workpaper_path = self.r.out / f"{self.r.summary_prefix}-{self.run_id}.xlsx"
            try:
                write_batch_workpaper(
                    [r.row for r in by_source],
                    workpaper_path,
                    stamp=self.stamp,
                    title=self.r.title
                    or f"sesame {self.r.kind} {self.run_id}: {line}"
                    + (" (INTERRUPTED)" if interrupted else ""),
                    drift=verdict.line if verdict is not None else None,
                )
            except Exception as e:  # the JSON summary stands; say why the workbook does not
                _log.error("batch workpaper not written: %s", e)
                self._print(f"[red]batch workpaper not written: {e}[/]")
                workpaper_path = None
        if self.store is not None:
            stored = {k: v for k, v in summary.items() if k != "documents"}
            if self.r.kind != "batch":  # a few documents: their rows are kept with the run
                stored["documents"] = [
                    {
                        "source": r.source,
                        "sha256": r.row.get("sha256"),
                        "status": r.status,
                        "result_id": r.result_id,
                        "errors": [e.get("message") for e in r.row.get("errors") or ()],
                    }
                    for r in ordered
                ]
            stored["summary_json"] = str(summary_path) if summary_path else None
            stored["workpaper"] = str(workpaper_path) if workpaper_path else None
            self.store.finish_run(
                self.run_id, status="interrupted" if interrupted else None, summary=stored
            )
        self._event("run_finished", run_id=self.run_id, counts=dict(counts))
        if interrupted:
            code = EXIT_INTERRUPTED
            message: str | None = (
                f"run {self.run_id} interrupted ({interrupted}); run the same command to resume"
            )
        else:
            code = EXIT_PROBLEMS if counts["partial"] or counts["failed"] else EXIT_OK
            message = None
        outcome = RunOutcome(
            self.run_id,
            code,
            line,
            dict(counts),
            summary_path,
            workpaper_path,
            message,
            rows=ordered,
            explain=self.explain.line() if self.explain is not None else None,
        )
        if verdict is not None:
            outcome.drift, outcome.drifted = verdict.line, verdict.drifted
            outcome.drift_state = verdict.state
            outcome.drift_report = str(verdict.report) if verdict.report is not None else None
        return outcome

    def _summary(
        self, rows: list[DocRow], counts: Counter[str], line: str, interrupted: str | None
    ) -> dict[str, Any]:
        assert self.stamp is not None
        done_now = [r for r in rows if r.status != "skipped" and not (r.earlier or r.reused)]
        pages = sum(r.row.get("pages") or 0 for r in done_now)
        sentences = sum(r.row.get("sentences") or 0 for r in done_now)
        wall = (datetime.now(UTC) - self.started_at).total_seconds()
        driver_rss = peak_rss_mb()
        executor = self.executor
        return {
            "run_id": self.run_id,
            "kind": self.r.kind,
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
            "explain": None
            if self.explain is None
            else {
                "requested": self.settings.explain.method,
                "method": self.explain.method,
                "note": self.explain.reason or None,
                "line": self.explain.line(),
            },
            "left": max(len(self.r.inputs) - len(rows), 0),
            # the largest process of the run: a worker (Ray) or this one (in-process)
            "peak_rss_mb": max(driver_rss, self.worker_peak_rss_mb),
            **self.r.extra_settings,
            **self.r.extra_summary,
            "out": str(self.r.out) if self.r.out else None,
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
                "kind": executor.name if executor is not None else None,
                "workers": executor.workers if executor is not None else [],
            },
            "stamp": self.stamp.fields(),
            "settings_digest": self.settings_digest,
            "settings": self.settings_data,
            "pages_per_part": self.r.pages_per_part,
            "documents": [r.to_json() for r in rows],
        }

    def _event(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


# --- helpers --------------------------------------------------------------------------------


def _skipped_row(item: InputFile, summary: Any, status: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": item.source,
        "file_name": item.source,
        "sha256": item.sha256,
        "status": status,
        "pages": item.n_pages,
        "errors": [],
    }
    if summary is not None:
        row.update(
            pages=summary.n_pages or item.n_pages,
            sentences=summary.n_sentences,
            scored=summary.n_scored,
            explained=summary.n_explained,
            **summary.label_counts,
        )
    return row


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "folder"


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
        self.live = console is not None and console.is_terminal
        self.quiet = console is None
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not self.live,
        )
        self.task = self.bar.add_task("documents", total=self.total_pages, stats="")

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.tick(force=True)
        self.bar.stop()

    def stage(self, source: str, stage: str) -> None:
        """What an in-process analysis is doing now (shown on a terminal)."""
        if self.live:
            self.bar.update(self.task, description=f"{source}: {stage}")
            self.bar.refresh()

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
        if self.quiet:
            return
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


def what_changed(before: DocumentResult, after: DocumentResult) -> str:
    """One line on what a new analysis of a stored document changed: status, sentences,
    labels (by sentence index and text)."""
    if before.status == "failed" and after.status != "failed":
        return f"replaces the stored failed attempt of {before.stamp.created_at:%Y-%m-%d %H:%M} UTC"
    old = {s.index: s.text for s in before.sentences}
    new = {s.index: s.text for s in after.sentences}
    old_labels = {s.sentence_index: s.label for s in before.scores}
    new_labels = {s.sentence_index: s.label for s in after.scores}
    same_text = [i for i in new if old.get(i) == new[i]]
    relabelled = sum(1 for i in same_text if old_labels.get(i) != new_labels.get(i))
    parts = [f"re-run of the result of {before.stamp.created_at:%Y-%m-%d %H:%M} UTC"]
    if before.status != after.status:
        parts.append(f"status {before.status} -> {after.status}")
    if len(old) != len(new) or len(same_text) != len(new):
        parts.append(
            f"sentences {len(old)} -> {len(new)} ({len(new) - len(same_text)} new or changed)"
        )
    parts.append(f"{relabelled} label(s) changed" if relabelled else "no label changed")
    return "; ".join(parts)
