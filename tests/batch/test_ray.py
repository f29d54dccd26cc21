"""The batch on a real local Ray instance: same rows as one process, killed workers.

One Ray instance serves the module (starting Ray takes seconds); the batches reuse it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import (  # noqa: E402
    assert_same_rows,
    batch_settings,
    count_results,
    make_inputs,
    ray_worker_pids,
    stable_rows,
)

from app.store import ResultStore  # noqa: E402
from batch.run import EXIT_OK, EXIT_PROBLEMS, BatchOptions, run_batch  # noqa: E402
from batch.workers import WORKER_ENV  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A two-CPU Ray instance for the module."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024 * 1024,
        runtime_env={"env_vars": WORKER_ENV},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good reports only, one long enough to be split into parts."""
    folder = tmp_path_factory.mktemp("inputs")
    make_inputs(folder, bad=False)
    return folder


def run(inputs: Path, out: Path, settings: Any, executor: str, **options: Any) -> Any:
    """A batch with small parts, quietly."""
    return run_batch(
        BatchOptions(
            input_dir=inputs,
            out=out,
            executor=executor,  # type: ignore[arg-type]
            pages_per_part=5,
            **options,
        ),
        settings,
        console=Console(file=io.StringIO(), width=200),
    )


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, inputs: Path, tiny_model_dir: Path
) -> dict[str, Any]:
    """The rows one process gives (SHAP evidence included)."""
    tmp = tmp_path_factory.mktemp("reference")
    url = f"sqlite:///{tmp / 'r.db'}"
    settings = batch_settings(tiny_model_dir, url, explain="flagged", data_dir=tmp / "data")
    outcome = run(inputs, tmp / "out", settings, "local")
    assert outcome.exit_code == EXIT_OK
    return stable_rows(url)


def test_ray_actors_give_the_rows_of_a_single_process(
    local_ray: None, inputs: Path, tiny_model_dir: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    outcome = run(
        inputs, tmp_path / "out", batch_settings(tiny_model_dir, url, explain="flagged"), "ray"
    )
    assert outcome.exit_code == EXIT_OK
    assert_same_rows(stable_rows(url), reference)
    assert reference["explanations"], "the comparison must cover SHAP evidence"
    summary = json.loads(outcome.summary_path.read_text())
    workers = summary["executor"]["workers"]
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2
    assert os.getpid() not in {w["pid"] for w in workers}


class _Killer(threading.Thread):
    """Kills the first Ray worker seen analyzing a part (SIGKILL, mid-task), once."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = ray_worker_pids(os.getpid())
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                self.killed = pids[0]
                return
            self.stop.wait(0.02)


def test_a_worker_killed_mid_task_is_replaced_and_its_part_retried(
    local_ray: None, inputs: Path, tiny_model_dir: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    events: list[tuple[str, dict[str, Any]]] = []
    killer = _Killer()
    killer.start()
    try:
        outcome = run_batch(
            BatchOptions(input_dir=inputs, out=tmp_path / "out", executor="ray", pages_per_part=5),
            batch_settings(tiny_model_dir, url, explain="flagged"),
            console=Console(file=io.StringIO(), width=200),
            on_event=lambda kind, data: events.append((kind, data)),
        )
    finally:
        killer.stop.set()
    assert killer.killed is not None
    assert outcome.exit_code == EXIT_OK
    died = [data for kind, data in events if kind == "worker_died"]
    assert [d["pid"] for d in died] == [killer.killed]
    retried = [d for d in ResultStore(url).run_documents(outcome.run_id) if d.attempts == 2]
    assert len(retried) == 1 and retried[0].status == "ok"
    # The retry changed nothing beyond float32 noise: sentences the killed attempt had already
    # explained come from the explanation cache, the others are then evaluated in other batches.
    assert_same_rows(stable_rows(url), reference)


def test_a_worker_killed_on_the_last_attempt_fails_its_document_with_the_reason(
    local_ray: None, inputs: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    settings = batch_settings(tiny_model_dir, url)
    killer = _Killer()
    killer.start()
    try:
        outcome = run(inputs, tmp_path / "out", settings, "ray", max_attempts=1)
    finally:
        killer.stop.set()
    assert killer.killed is not None
    assert outcome.exit_code == EXIT_PROBLEMS
    assert outcome.counts == {"ok": 3, "failed": 1}
    summary = json.loads(outcome.summary_path.read_text())
    (failed,) = [d for d in summary["documents"] if d["status"] == "failed"]
    (error,) = failed["row"]["errors"]
    assert error["code"] == "worker_died" and "Ray worker analyzing it died" in error["message"]
    assert (tmp_path / "out" / failed["outputs"]["workpaper"]).is_file()
    # A worker's death is no verdict on the document: it is not stored, so the next run
    # analyzes it again (and only it).
    assert len(count_results(url)) == 3
    again = run(inputs, tmp_path / "out", settings, "ray")
    assert again.counts == {"ok": 1, "skipped": 3}
    assert again.exit_code == EXIT_OK


def test_a_part_running_past_the_task_timeout_is_stopped_and_reported(
    local_ray: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from pdfs import write_clean_report
    from reportlab.pdfgen.canvas import Canvas
    from tiny_model import template_sentences

    # 200 pages of distinct sentences, each explained: minutes on any machine, unless stopped
    (tmp_path / "in").mkdir()
    canvas = Canvas(str(tmp_path / "in" / "huge.pdf"))
    sentences = [text for text, _ in template_sentences(n_per_class=2000, seed=1)]
    for page in range(200):
        canvas.setFont("Helvetica", 10)
        for line in range(25):
            canvas.drawString(72, 770 - 26 * line, sentences[(page * 25 + line) % len(sentences)])
        canvas.showPage()
    canvas.save()
    write_clean_report(tmp_path / "in" / "small.pdf")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    outcome = run_batch(
        BatchOptions(
            input_dir=tmp_path / "in",
            out=tmp_path / "out",
            executor="ray",
            pages_per_part=0,
            task_timeout_s=1.0,
            max_attempts=2,
        ),
        batch_settings(tiny_model_dir, url, explain="all"),
        console=Console(file=io.StringIO(), width=200),
    )
    assert outcome.exit_code == EXIT_PROBLEMS
    summary = json.loads(outcome.summary_path.read_text())
    by_source = {d["source"]: d for d in summary["documents"]}
    huge = by_source["huge.pdf"]
    assert huge["status"] == "failed" and huge["attempts"] == 2, huge
    message = huge["row"]["errors"][0]["message"]
    assert "still running after 1 s; the worker was stopped" in message
    assert by_source["small.pdf"]["status"] == "ok"
