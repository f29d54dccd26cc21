"""`kill -9` of the batch driver, for real, in a subprocess: the same command resumes.

The driver runs `sesame batch run` in its own process; once some documents are recorded as
done (polling the store) it is killed with SIGKILL, and the same command is run again.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import BAD, cli, count_results, kill_session, make_inputs, wait_for  # noqa: E402
from pg import postgres_server, postgres_url  # noqa: E402, F401

from app.store import ResultStore  # noqa: E402

_DONE = ("ok", "partial", "failed")


@pytest.fixture(
    params=[
        ("local", "sqlite"),
        pytest.param(("local", "postgresql"), marks=pytest.mark.postgres),
        pytest.param(("ray", "sqlite"), marks=pytest.mark.slow),
    ],
    ids=lambda p: "-".join(p),
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(executor, store URL)."""
    executor, backend = request.param
    if backend == "sqlite":
        yield executor, f"sqlite:///{tmp_path / 'results.db'}"
    else:
        yield executor, request.getfixturevalue("postgres_url")


def test_a_killed_driver_resumes_with_the_same_command_without_duplicates_or_losses(
    tmp_path: Path, tiny_model_dir: Path, setup: tuple[str, str]
) -> None:
    executor, url = setup
    names = make_inputs(tmp_path / "in", extra=6)
    args = [
        "batch",
        "run",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
        "--executor",
        executor,
        "--model-dir",
        str(tiny_model_dir),
        "--explain",
        "flagged",
        "--store",
        url,
        "--pages-per-part",
        "5",
        "--num-cpus",
        "2",
    ]
    store = ResultStore(url)
    store.create_schema()

    def some_but_not_all_done() -> list[str]:
        runs = store.list_runs(kind="batch")
        if not runs:
            return []
        done = [d.source for d in store.run_documents(runs[0].run_id) if d.status in _DONE]
        return done if 0 < len(done) < len(names) - 1 else []

    first = cli(args)
    try:
        done_before = wait_for(some_but_not_all_done, 600, "some documents done", first)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        kill_session(first)
    assert first.returncode == -signal.SIGKILL
    (killed,) = store.list_runs(kind="batch")
    assert killed.status == "running"  # the driver had no chance to say anything
    left = [d for d in store.run_documents(killed.run_id) if d.status not in _DONE]
    assert left, "the kill must leave work to resume"

    second = cli(args)
    try:
        out, err = second.communicate(timeout=600)
    finally:
        kill_session(second)
    assert second.returncode == 1, err[-3000:]  # two bad PDFs among the inputs
    assert f"{len(names)} documents: {len(names) - 2} ok, 0 partial, 2 failed, 0 skipped" in out
    assert "(resumed)" in err

    (resumed,) = store.list_runs(kind="batch")
    assert resumed.run_id == killed.run_id and resumed.status == "partial"
    documents = store.run_documents(resumed.run_id)
    assert sorted(d.source for d in documents) == names
    assert all(d.status in _DONE for d in documents)
    assert {d.source for d in documents if d.status == "failed"} == set(BAD)
    # What was done before the kill was not redone.
    assert all(d.attempts == 1 for d in documents if d.source in done_before)
    counts = count_results(url)
    assert len(counts) == len(names) and set(counts.values()) == {1}
    summary = json.loads((tmp_path / "out" / f"batch-{resumed.run_id}.json").read_text())
    assert sorted(d["source"] for d in summary["documents"]) == names
    for doc in summary["documents"]:
        assert (tmp_path / "out" / doc["outputs"]["workpaper"]).is_file()
    assert (tmp_path / "out" / f"batch-{resumed.run_id}.xlsx").is_file()
