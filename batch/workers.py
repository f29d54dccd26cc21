"""Where parts are analyzed: in this process, or in Ray actors that load the model once each.

Both executors take `Job`s and hand back `Done`s in completion order; the driver (`batch.run`)
decides what a failure means. The Ray executor keeps up to `max_in_flight` jobs queued on each
actor so workers stay busy while the driver writes results, and tells apart:

- a job whose analysis raised (a sesame bug; `Analyzer.analyze` never raises in record mode):
  not retried, the document is failed with the exception;
- an actor that died (killed, out of memory, a crash in a native library, a lost node, or
  stopped here for running past `task_timeout_s`): the job it was running is handed back as
  retryable, the jobs queued behind it go back to the queue unharmed, and a new actor replaces
  it. Ray's own actor restarts and task retries are off, so every attempt is counted in the
  run's record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.errors import OnError
from app.pipeline import Analyzer, ProgressHook
from app.records import DocumentResult
from app.system import peak_rss_mb
from batch.merge import trim_part
from batch.plan import InputFile, Part

_log = logging.getLogger(__name__)

WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
}
"""Set in every Ray worker: models load from local directories only, even on a cluster."""


def worker_settings(settings: Settings, cpus_per_worker: float) -> Settings:
    """The settings a worker analyzes with: torch (and OCR) threads pinned to the worker's CPUs.

    Every executor pins them the same way because the thread count can change the last bits
    of a probability (a matrix product summed in another order), and the batch promises the
    same rows whatever runs it. Threads are not part of the settings digest.
    """
    threads = max(1, int(cpus_per_worker))
    return settings.model_copy(
        update={
            "scoring": settings.scoring.model_copy(update={"threads": threads}),
            # OCR's page threads too: a one-CPU actor reads one page at a time
            "ingest": settings.ingest.model_copy(
                update={"ocr_workers": min(settings.ingest.ocr_workers, threads)}
            ),
        }
    )


class WorkerStartError(RuntimeError):
    """Workers could not be started (Ray unreachable, or the model failed to load in them)."""


@dataclass(slots=True)
class Job:
    """One part to analyze, with the document it belongs to and its attempt number."""

    part: Part
    item: InputFile
    attempt: int = 1
    run_id: str = ""
    client: str | None = None
    engagement: str | None = None


@dataclass(slots=True)
class Done:
    """A job's outcome: a trimmed part result, or why there is none."""

    job: Job
    result: DocumentResult | None = None
    failure: str | None = None
    retryable: bool = False
    worker: str = ""
    cpu_s: float = 0.0
    """CPU seconds the worker process spent on the part (all its threads)."""
    peak_rss_mb: float = 0.0
    """The worker process's peak resident memory so far (MB)."""


class PartWorker:
    """Builds the Analyzer once and analyzes parts; the body of each Ray actor."""

    def __init__(
        self,
        settings: Settings,
        expected_digest: str | None = None,
        *,
        analyzer: Analyzer | None = None,
        on_error: OnError = "record",
    ) -> None:
        self.analyzer: Analyzer = analyzer or Analyzer.from_settings(settings)
        self.on_error: OnError = on_error
        digest = self.analyzer.scorer.digest
        if expected_digest is not None and digest != expected_digest:
            # The registry's champion moved between the driver's look-up and this load: the run
            # must not mix two models.
            raise WorkerStartError(
                f"the worker loaded model weights {digest[:12]}…, but the run uses "
                f"{expected_digest[:12]}…; the registry changed during the run. Run it again."
            )

    def info(self) -> dict[str, Any]:
        """Where this worker runs, for logs and tests."""
        node_id = None
        try:
            import ray

            if ray.is_initialized():
                node_id = ray.get_runtime_context().get_node_id()
        except ImportError:  # pragma: no cover - ray is a dependency
            pass
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node_id": node_id,
            "model_digest": self.analyzer.scorer.digest,
        }

    def analyze(
        self,
        data: bytes,
        part: Part,
        file_name: str,
        run_id: str,
        client: str | None = None,
        engagement: str | None = None,
        progress: ProgressHook | None = None,
    ) -> DocumentResult:
        """Analyze one part (its pages plus context) and keep what lies on its own pages."""
        result = self.analyzer.analyze(
            data,
            file_name=file_name,
            run_id=run_id,
            client=client,
            engagement=engagement,
            page_range=part.read,
            on_error=self.on_error,
            progress=progress,
        )
        return trim_part(result, part)

    def analyze_timed(
        self,
        data: bytes,
        part: Part,
        file_name: str,
        run_id: str,
        client: str | None = None,
        engagement: str | None = None,
        progress: ProgressHook | None = None,
    ) -> tuple[DocumentResult, float, float]:
        """`analyze`, the CPU seconds this process spent on it (the cost model's unit) and the
        process's peak memory in MB (the run's system figures)."""
        cpu0 = time.process_time()
        result = self.analyze(data, part, file_name, run_id, client, engagement, progress)
        return result, time.process_time() - cpu0, peak_rss_mb()


StageHook = Callable[[str, str], None]
"""Told (document source, stage name) as a document moves through an in-process analysis."""


class LocalExecutor:
    """Analyzes jobs one at a time in this process (no Ray): the reference for every other.

    With `analyzer`, the caller's loaded models are used (the CLI, the review screen) and no
    model is loaded here; `lock` is then held around each analysis (the review screen shares
    one analyzer between sessions) and `on_stage` hears each stage of each document.
    """

    name = "local"

    def __init__(
        self,
        settings: Settings,
        expected_digest: str | None = None,
        *,
        cpus_per_worker: float = 1.0,
        analyzer: Analyzer | None = None,
        lock: threading.Lock | None = None,
        on_stage: StageHook | None = None,
        on_error: OnError = "record",
    ) -> None:
        self.settings = worker_settings(settings, cpus_per_worker)
        self.expected_digest = expected_digest
        self.analyzer = analyzer
        self.on_error: OnError = on_error
        self.lock = lock
        self.on_stage = on_stage
        self._queue: deque[tuple[Job, bytes]] = deque()
        self._worker: PartWorker | None = None
        self.workers: list[dict[str, Any]] = []

    def start(self) -> None:
        """Load the model (or take the caller's analyzer)."""
        try:
            self._worker = PartWorker(
                self.settings, self.expected_digest, analyzer=self.analyzer, on_error=self.on_error
            )
        except WorkerStartError:
            raise
        except Exception as e:
            raise WorkerStartError(f"the model could not be loaded: {e}") from e
        self.workers = [self._worker.info()]

    @property
    def slots(self) -> int:
        """Jobs that can be submitted now."""
        return 0 if self._queue else 1

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not yet handed back."""
        return len(self._queue)

    def put(self, data: bytes) -> bytes:
        """A document's bytes as jobs take them."""
        return data

    def submit(self, job: Job, payload: bytes) -> None:
        """Queue a job."""
        self._queue.append((job, payload))

    def wait(self, timeout: float | None = None) -> list[Done]:
        """Run the next job."""
        if not self._queue or self._worker is None:
            return []
        job, data = self._queue.popleft()
        hook = self.on_stage
        progress = (lambda stage: hook(job.item.source, stage)) if hook else None
        try:
            with self.lock or contextlib.nullcontext():
                result, cpu_s, rss = self._worker.analyze_timed(
                    data,
                    job.part,
                    job.item.source,
                    job.run_id,
                    job.client,
                    job.engagement,
                    progress,
                )
        except Exception as e:
            if self.on_error == "raise":
                raise
            _log.exception("analysis of %s raised", job.part.label)
            return [Done(job, failure=_bug_message(job, e))]
        return [Done(job, result=result, worker=f"pid {os.getpid()}", cpu_s=cpu_s, peak_rss_mb=rss)]

    def close(self) -> None:
        """Drop the model."""
        self._worker = None


@dataclass(slots=True)
class _Actor:
    handle: Any
    name: str
    ready: bool = False
    info_ref: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    jobs: deque[tuple[Job, Any, Any]] = field(default_factory=deque)
    """(job, payload ref, result ref) in submission order: the head is the one running."""
    head_since: float = 0.0
    kill_reason: str | None = None


class RayExecutor:
    """Analyzes jobs in Ray actors: a local Ray instance, or a cluster given by address."""

    name = "ray"

    def __init__(
        self,
        settings: Settings,
        expected_digest: str | None = None,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        num_cpus: int | None = None,
        max_in_flight: int = 2,
        task_timeout_s: float | None = None,
        max_replacements: int | None = None,
        connect_timeout_s: float = 15.0,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        # Torch threads follow the CPUs Ray gives each actor, so actors do not oversubscribe
        # the node.
        self.settings = worker_settings(settings, cpus_per_worker)
        self.expected_digest = expected_digest
        self.address = address
        self.n_workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight
        self.task_timeout_s = task_timeout_s
        self.max_replacements = max_replacements
        self.connect_timeout_s = connect_timeout_s
        self.on_event = on_event
        self._actors: list[_Actor] = []
        self._actor_cls: Any = None
        self._started_ray = False
        self._replacements = 0
        self._counter = 0
        self._requeue: deque[tuple[Job, Any]] = deque()
        self.workers: list[dict[str, Any]] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, max_workers: int | None = None) -> None:
        """Connect to (or start) Ray and start the actors; each loads the model once."""
        import ray

        if not ray.is_initialized():
            # No address: a new local instance ("local"), never a cluster that `ray start`
            # happened to leave on this machine; `--address auto` asks for that one.
            address = self.address or os.environ.get("RAY_ADDRESS") or "local"
            check_reachable(address, self.connect_timeout_s)
            kwargs: dict[str, Any] = dict(
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            env_vars = _worker_env_vars()
            if env_vars:
                kwargs["runtime_env"] = {"env_vars": env_vars}
            if address == "local":
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            try:
                ray.init(address=address, **kwargs)
            except Exception as e:
                where = "a new local instance" if address == "local" else address
                raise WorkerStartError(
                    f"Ray could not be started or reached at {where}: {e}"
                ) from e
            self._started_ray = True
        cpus = float(ray.cluster_resources().get("CPU", 1))
        n = self.n_workers or max(1, int(cpus // self.cpus_per_worker))
        if max_workers is not None:
            n = max(1, min(n, max_workers))
        if self.max_replacements is None:
            self.max_replacements = 2 * n + 4
        self._actor_cls = ray.remote(PartWorker).options(
            num_cpus=self.cpus_per_worker,
            max_restarts=0,
            max_task_retries=0,
            scheduling_strategy="SPREAD",
        )
        for _ in range(n):
            self._spawn()
        # Wait for every actor's model: a model that cannot load stops the run before any work.
        for actor in list(self._actors):
            try:
                actor.info = ray.get(actor.info_ref)
            except Exception as e:
                self.close()
                raise WorkerStartError(f"a Ray worker could not load the model: {_short(e)}") from e
            actor.ready, actor.info_ref = True, None
        self.workers = [a.info for a in self._actors]
        self._event("started", workers=self.workers)

    def _spawn(self) -> _Actor:
        self._counter += 1
        handle = self._actor_cls.remote(self.settings, self.expected_digest)
        actor = _Actor(handle=handle, name=f"worker-{self._counter}", info_ref=handle.info.remote())
        self._actors.append(actor)
        return actor

    def close(self) -> None:
        """Stop the actors, and Ray when this executor started it."""
        import ray

        for actor in self._actors:
            with contextlib.suppress(Exception):  # the actor may be gone already
                ray.kill(actor.handle, no_restart=True)
        self._actors.clear()
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False

    # --- jobs ---------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        """Jobs that can be submitted now without overfilling an actor."""
        if self._requeue:
            return 0  # jobs of a dead actor go first
        return sum(max(0, self.max_in_flight - len(a.jobs)) for a in self._actors if a.ready)

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not yet handed back (including those waiting to be resubmitted)."""
        return sum(len(a.jobs) for a in self._actors) + len(self._requeue)

    def put(self, data: bytes) -> Any:
        """Put a document's bytes in the object store once for all its parts."""
        import ray

        return ray.put(data)

    def submit(self, job: Job, payload: Any) -> None:
        """Queue a job on the least busy ready actor."""
        ready = [a for a in self._actors if a.ready]
        if not ready:
            self._requeue.append((job, payload))
            return
        actor = min(ready, key=lambda a: len(a.jobs))
        ref = actor.handle.analyze_timed.remote(
            payload, job.part, job.item.source, job.run_id, job.client, job.engagement
        )
        if not actor.jobs:
            actor.head_since = time.monotonic()
        actor.jobs.append((job, payload, ref))

    def wait(self, timeout: float | None = 1.0) -> list[Done]:
        """Outcomes of the jobs that finished (or failed) within `timeout` seconds."""
        import ray

        self._resubmit()
        refs: dict[Any, _Actor] = {}
        for actor in self._actors:
            if actor.info_ref is not None:
                refs[actor.info_ref] = actor
            for _, _, ref in actor.jobs:
                refs[ref] = actor
        if not refs:
            if self._requeue and not self._actors:
                raise WorkerStartError(
                    "every Ray worker died and none could be replaced; "
                    "the remaining documents were not analyzed"
                )
            return []
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=timeout)
        # Collect everything else that is ready too, without waiting.
        rest = [r for r in refs if r not in ready]
        more = ray.wait(rest, num_returns=len(rest), timeout=0)[0] if rest else []
        done: list[Done] = []
        for ref in [*ready, *more]:
            actor = refs[ref]
            if actor not in self._actors:
                continue  # already handled as dead in this round
            if ref is actor.info_ref:
                self._on_started(actor)
                continue
            try:
                result, cpu_s, rss = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                done.extend(self._on_actor_died(actor, e))
                continue
            except ray.exceptions.RayTaskError as e:
                job = self._pop(actor, ref)
                done.append(Done(job, failure=_bug_message(job, e.cause or e), worker=actor.name))
                continue
            job = self._pop(actor, ref)
            done.append(Done(job, result=result, worker=actor.name, cpu_s=cpu_s, peak_rss_mb=rss))
        self._check_timeouts()
        return done

    def _pop(self, actor: _Actor, ref: Any) -> Job:
        for i, (job, _, r) in enumerate(actor.jobs):
            if r == ref:
                del actor.jobs[i]
                if i == 0:
                    actor.head_since = time.monotonic()
                return job
        raise KeyError(ref)

    def _on_started(self, actor: _Actor) -> None:
        import ray

        try:
            actor.info = ray.get(actor.info_ref)
        except Exception as e:
            _log.warning("a replacement Ray worker could not start: %s", _short(e))
            self._actors.remove(actor)
            self._event("start_failed", worker=actor.name, error=_short(e))
            self._replace()
            return
        actor.ready, actor.info_ref = True, None
        self.workers.append(actor.info)
        self._event("started", workers=[actor.info])

    def _on_actor_died(self, actor: _Actor, error: Exception) -> list[Done]:
        """The running job is handed back as retryable; the queued ones go back to the queue."""
        self._actors.remove(actor)
        reason = actor.kill_reason or _death_reason(error)
        _log.warning("Ray %s (pid %s) died: %s", actor.name, actor.info.get("pid"), reason)
        self._event("worker_died", worker=actor.name, pid=actor.info.get("pid"), reason=reason)
        done: list[Done] = []
        for i, (job, payload, _) in enumerate(actor.jobs):
            if i == 0:
                done.append(Done(job, failure=reason, retryable=True, worker=actor.name))
            else:
                self._requeue.append((job, payload))
        actor.jobs.clear()
        self._replace()
        return done

    def _replace(self) -> None:
        if self.max_replacements is not None and self._replacements >= self.max_replacements:
            _log.error("not replacing the dead worker: %d replacements already", self._replacements)
            return
        self._replacements += 1
        self._spawn()

    def _resubmit(self) -> None:
        pending = list(self._requeue)
        self._requeue.clear()
        if pending and not any(a.ready for a in self._actors):
            self._requeue.extend(pending)
            return
        for job, payload in pending:
            self.submit(job, payload)

    def _check_timeouts(self) -> None:
        import ray

        if self.task_timeout_s is None:
            return
        now = time.monotonic()
        for actor in self._actors:
            if (
                actor.jobs
                and actor.kill_reason is None
                and now - actor.head_since > self.task_timeout_s
            ):
                job = actor.jobs[0][0]
                actor.kill_reason = (
                    f"{job.part.label}: still running after "
                    f"{self.task_timeout_s:.0f} s; the worker was stopped"
                )
                _log.warning("%s", actor.kill_reason)
                ray.kill(actor.handle, no_restart=True)

    def _event(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


def _worker_env_vars() -> dict[str, str]:
    """WORKER_ENV without what a Ray Job's own runtime env sets: as a Job's driver, Ray refuses
    a ray.init runtime env that repeats one of the Job's keys (and the Job's reach the
    workers anyway)."""
    job_config = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    taken: set[str] = set()
    if job_config:
        try:
            runtime_env = json.loads(job_config).get("runtime_env") or {}
            taken = set((runtime_env.get("env_vars") or {}).keys())
        except (ValueError, AttributeError):
            _log.warning("RAY_JOB_CONFIG_JSON_ENV_VAR is not JSON; passing no worker env")
            return {}
    return {k: v for k, v in WORKER_ENV.items() if k not in taken}


def check_reachable(address: str | None, timeout_s: float) -> None:
    """Fail fast when a `host:port` Ray address does not answer (Ray itself retries for
    minutes); other forms (None, "auto", "local", ray://) are left to ray.init."""
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise WorkerStartError(f"Ray address {address!r} is not host:port, auto or ray://…")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise WorkerStartError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start it with "
            f"`ray start --head` there, or check --address / RAY_ADDRESS"
        ) from e


def _death_reason(error: Exception) -> str:
    text = str(error)
    if "running low on memory" in text or "OutOfMemoryError" in type(error).__name__:
        why = "was stopped by Ray: its node ran low on memory"
    elif (
        "node" in text.lower()
        and ("died" in text.lower() or "dead" in text.lower())
        and "worker process has died" not in text
    ):
        why = "lost its node"
    else:
        exit_type = re.search(r"Worker exit type: (\w+)", text)
        why = (
            "died (killed, out of memory, or crashed in a native library"
            + (f"; Ray says {exit_type.group(1)}" if exit_type else "")
            + ")"
        )
    return f"the Ray worker analyzing it {why}"


def _bug_message(job: Job, error: BaseException) -> str:
    return (
        f"{job.part.label}: analysis failed unexpectedly: {type(error).__name__}: "
        f"{_short(error)}. This is a sesame bug; please report it with the file."
    )


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
