"""The batch driver in this process (the local executor), on SQLite and on a real PostgreSQL.

The same driver runs Ray actors (tests/batch/test_ray.py); here the work runs in-process so
the skip, resume, bad-input and summary behaviour is checked in seconds.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from rich.console import Console
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import (  # noqa: E402
    BAD,
    GOOD,
    batch_settings,
    close,
    count_results,
    make_inputs,
    stable_rows,
)
from pdfs import write_pages  # noqa: E402
from pg import postgres_server, postgres_url  # noqa: E402, F401

from app.store import ResultStore  # noqa: E402
from batch.run import (  # noqa: E402
    EXIT_OK,
    EXIT_PROBLEMS,
    BatchOptions,
    BatchStartError,
    BatchUsageError,
    run_batch,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh results store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def run(inputs: Path, out: Path, settings: Any, **options: Any) -> tuple[Any, str]:
    """Run a batch in this process; returns the outcome and what it printed."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    outcome = run_batch(
        BatchOptions(
            input_dir=inputs,
            out=out,
            executor="local",
            pages_per_part=options.pop("pages_per_part", 5),
            **options,
        ),
        settings,
        console=console,
    )
    return outcome, buffer.getvalue()


def test_a_batch_writes_every_document_and_a_summary_and_bad_pdfs_do_not_stop_it(
    tmp_path: Path, tiny_model_dir: Path, store_url: str
) -> None:
    names = make_inputs(tmp_path / "in")
    settings = batch_settings(tiny_model_dir, store_url)
    outcome, printed = run(tmp_path / "in", tmp_path / "out", settings)

    assert outcome.exit_code == EXIT_PROBLEMS
    assert outcome.count_line == "6 documents: 4 ok, 0 partial, 2 failed, 0 skipped"
    summary = json.loads(outcome.summary_path.read_text())
    by_source = {d["source"]: d for d in summary["documents"]}
    assert sorted(by_source) == names
    for name in GOOD:
        doc = by_source[name]
        assert doc["status"] == "ok" and doc["row"]["sentences"] > 0
        assert (tmp_path / "out" / doc["outputs"]["workpaper"]).is_file()
        assert (tmp_path / "out" / doc["outputs"]["json"]).is_file()
    assert by_source["long.pdf"]["row"]["pages"] == 12  # read in three parts, merged
    for name in BAD:
        doc = by_source[name]
        assert doc["status"] == "failed"
        assert doc["row"]["errors"][0]["fatal"]
        assert doc["row"]["errors"][0]["message"].startswith(name)
    assert "password-protected" in printed

    workbook = load_workbook(outcome.workpaper_path, read_only=True)
    listed = [row[0] for row in workbook["Documents"].iter_rows(values_only=True)]
    assert all(any(name == cell for cell in listed) for name in names)
    exceptions = " ".join(
        str(c) for row in workbook["Exceptions"].iter_rows(values_only=True) for c in row if c
    )
    assert "password-protected" in exceptions and "HTML" in exceptions

    store = ResultStore(store_url)
    info = store.get_run(outcome.run_id)
    assert info.status == "partial" and info.kind == "batch"
    assert info.document_counts == {"ok": 4, "failed": 2}
    assert sorted(m.path for m in info.manifest) == names
    assert info.stamp.model_digest == summary["stamp"]["model_sha256"]
    assert info.summary["count_line"] == outcome.count_line
    assert all(
        d.attempts == 1 and d.status in ("ok", "failed")
        for d in store.run_documents(outcome.run_id)
    )
    assert set(count_results(store_url).values()) == {1}
    assert len(count_results(store_url)) == 6


def test_a_second_run_skips_what_is_scored_and_analyzes_only_the_new_file(
    tmp_path: Path, tiny_model_dir: Path, store_url: str
) -> None:
    make_inputs(tmp_path / "in")
    settings = batch_settings(tiny_model_dir, store_url)
    first, _ = run(tmp_path / "in", tmp_path / "out", settings)
    rows_before = stable_rows(store_url)

    again, printed = run(tmp_path / "in", tmp_path / "out", settings)
    assert again.run_id != first.run_id  # a finished run is not resumed
    assert again.count_line == "6 documents: 0 ok, 0 partial, 0 failed, 6 skipped"
    assert again.exit_code == EXIT_OK
    assert "6 already analyzed" in printed
    assert stable_rows(store_url) == rows_before

    (tmp_path / "in" / "new").mkdir()
    shutil.copy(tmp_path / "in" / "clean.pdf", tmp_path / "in" / "new" / "renamed_copy.pdf")
    write_pages(tmp_path / "in" / "new" / "fresh.pdf", 2)
    third, _ = run(tmp_path / "in", tmp_path / "out", settings)
    assert third.count_line == "8 documents: 1 ok, 0 partial, 0 failed, 7 skipped"
    documents = ResultStore(store_url).run_documents(third.run_id)
    assert [d.source for d in documents if d.status == "ok"] == ["new/fresh.pdf"]
    assert len(count_results(store_url)) == 7


def test_other_settings_mean_the_documents_are_analyzed_again(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    make_inputs(tmp_path / "in", bad=False)
    run(tmp_path / "in", tmp_path / "out", batch_settings(tiny_model_dir, url))
    settings = batch_settings(tiny_model_dir, url)
    other = settings.model_copy(
        update={"sentences": settings.sentences.model_copy(update={"min_chars": 4})}
    )
    flagged, _ = run(tmp_path / "in", tmp_path / "out", other)
    assert flagged.count_line == "4 documents: 4 ok, 0 partial, 0 failed, 0 skipped"
    assert sorted(count_results(url).values()) == [2, 2, 2, 2]


def test_a_crashed_run_resumes_under_its_id_without_duplicates_or_losses(
    tmp_path: Path, tiny_model_dir: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = make_inputs(tmp_path / "in", bad=True)
    settings = batch_settings(tiny_model_dir, store_url)
    store = ResultStore(store_url)

    class Crash(Exception):
        pass

    # Crash between saving the third document's result and recording it in the run: the
    # narrowest window a killed driver can leave (the kill itself: tests/batch/test_kill.py).
    finished = []
    original = ResultStore.record_run_document

    def crash_on_third(self: ResultStore, run_id: str, source: str, status: str, **kw: Any) -> Any:
        if status in ("ok", "partial", "failed"):
            finished.append(source)
            if len(finished) == 3:
                raise Crash
        return original(self, run_id, source, status, **kw)

    monkeypatch.setattr(ResultStore, "record_run_document", crash_on_third)
    with pytest.raises(Crash):
        run(tmp_path / "in", tmp_path / "out", settings)
    monkeypatch.undo()
    (crashed,) = store.list_runs(kind="batch")
    assert crashed.status == "running"
    assert crashed.document_counts.get("running") == 1
    assert sum(crashed.document_counts.get(k, 0) for k in ("ok", "failed")) == 2

    outcome, printed = run(tmp_path / "in", tmp_path / "out", settings)
    assert outcome.run_id == crashed.run_id
    assert "(resumed)" in printed and "2 done earlier in this run" in printed
    assert outcome.count_line == "6 documents: 4 ok, 0 partial, 2 failed, 0 skipped"
    documents = store.run_documents(outcome.run_id)
    assert sorted(d.source for d in documents) == names
    assert all(d.status in ("ok", "failed") for d in documents)
    # The document saved just before the crash is finished from the store, not redone.
    assert all(d.attempts == 1 for d in documents)
    assert set(count_results(store_url).values()) == {1}
    summary = json.loads(outcome.summary_path.read_text())
    assert sorted(d["source"] for d in summary["documents"]) == names
    assert store.get_run(outcome.run_id).status == "partial"
    assert len(store.list_runs(kind="batch")) == 1


def test_split_documents_give_the_rows_of_documents_read_whole(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    make_inputs(tmp_path / "in", bad=False)
    rows = {}
    for per_part in (0, 2):
        url = f"sqlite:///{tmp_path / f'r{per_part}.db'}"
        outcome, _ = run(
            tmp_path / "in",
            tmp_path / f"out{per_part}",
            batch_settings(tiny_model_dir, url),
            pages_per_part=per_part,
        )
        assert outcome.exit_code == EXIT_OK
        rows[per_part] = stable_rows(url)
    for table in ("sentences", "pages", "stage_errors", "documents"):
        assert rows[2][table] == rows[0][table], table
    # The same sentences in other scoring batches: equal to the last bits of a float.
    assert close(rows[2]["scores"], rows[0]["scores"], 1e-6)


def test_a_busy_output_folder_or_a_bad_input_folder_refuse_to_start(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import fcntl

    make_inputs(tmp_path / "in", bad=False)
    settings = batch_settings(tiny_model_dir, f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(BatchUsageError, match="no such folder"):
        run(tmp_path / "missing", tmp_path / "out", settings)
    with pytest.raises(BatchUsageError, match="inside the input folder"):
        run(tmp_path / "in", tmp_path / "in" / "out", settings)
    lock = tmp_path / "out" / ".sesame-batch" / "lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BatchStartError, match="another batch"):
            run(tmp_path / "in", tmp_path / "out", settings)


def test_cli_batch_run_and_status(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.cli import app
    from app.config import load_settings
    from models.monitoring import make_reference

    make_inputs(tmp_path / "in")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    # a reference profile for the tiny model, so the run is tested for drift at its end
    monkeypatch.setenv("SESAME_SCORING__MODEL_DIR", str(tiny_model_dir))
    (tmp_path / "reference.txt").write_text(
        "\n".join(
            f"Revenue in segment {i} rose {i % 9 + 1}% compared with the prior year."
            for i in range(60)
        ),
        encoding="utf-8",
    )
    make_reference(load_settings(), texts=tmp_path / "reference.txt")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "batch",
            "run",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--executor",
            "local",
            "--model-dir",
            str(tiny_model_dir),
            "--explain",
            "none",
            "--store",
            url,
            "--pages-per-part",
            "5",
        ],
    )
    assert result.exit_code == EXIT_PROBLEMS, result.output
    assert "6 documents: 4 ok, 0 partial, 2 failed, 0 skipped" in result.stdout
    assert re.search(r": (no drift|DRIFT) against reference\.txt", result.output), result.output
    (summary_file,) = (tmp_path / "out").glob("batch-*.json")
    summary = json.loads(summary_file.read_text())
    assert summary["peak_rss_mb"] >= summary["this_invocation"]["driver_peak_rss_mb"] > 50
    # the summary states the verdict the run printed
    assert summary["drift"]["state"] in ("ok", "drift")
    assert summary["drift"]["verdict"].replace(" ", "") in re.sub(r"\s", "", result.output)
    (report,) = ResultStore(url).monitor_reports("drift")
    assert report.run_id == summary["run_id"]

    listed = runner.invoke(app, ["batch", "status", "--store", url, "--json"])
    assert listed.exit_code == 0
    (run_info,) = json.loads(listed.stdout)
    assert run_info["status"] == "partial"

    detail = runner.invoke(app, ["batch", "status", "latest", "--store", url, "--json", "--failed"])
    data = json.loads(detail.stdout)
    assert data["run"]["run_id"] == run_info["run_id"]
    assert sorted(d["source"] for d in data["documents"]) == sorted(BAD)
    assert data["progress"]["done"] == 6 and data["progress"]["pages"] >= 12
    table = runner.invoke(app, ["batch", "status", run_info["run_id"], "--store", url])
    assert table.exit_code == 0 and "encrypted" in table.stdout

    missing = runner.invoke(
        app,
        [
            "batch",
            "run",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o2"),
            "--executor",
            "local",
            "--store",
            url,
        ],
    )
    assert missing.exit_code == 2


def test_cli_batch_run_exits_3_when_the_ray_cluster_does_not_answer(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import socket

    from app.cli import app

    make_inputs(tmp_path / "in", bad=False)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = CliRunner().invoke(
        app,
        [
            "batch",
            "run",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--address",
            f"127.0.0.1:{port}",
            "--model-dir",
            str(tiny_model_dir),
            "--store",
            url,
        ],
    )
    assert result.exit_code == 3, result.output
    assert "no Ray cluster answers" in result.output
    # The run is left resumable, and nothing was analyzed.
    (info,) = ResultStore(url).list_runs(kind="batch")
    assert info.status == "interrupted" and count_results(url) == {}
