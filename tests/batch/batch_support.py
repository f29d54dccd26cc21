"""Inputs, settings and row comparisons shared by the batch tests (imported, not collected)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pdfs import (
    RUNNING_BODY,
    write_clean_report,
    write_encrypted,
    write_not_a_pdf,
    write_pages,
    write_running_headers,
    write_two_column_page,
)

REPO = Path(__file__).resolve().parents[2]
GOOD = ("clean.pdf", "clientA/running.pdf", "clientA/two_columns.pdf", "long.pdf")
BAD = ("bad/not_a_pdf.pdf", "encrypted.pdf")


def make_inputs(folder: Path, *, bad: bool = True, extra: int = 0) -> list[str]:
    """A folder of filings: good reports (one of 12 pages, one in a subfolder), plus a page
    that is an HTML file and an encrypted report; `extra` more short reports. Returns the
    relative paths."""
    write_clean_report(_at(folder / "clean.pdf"))
    write_running_headers(_at(folder / "clientA/running.pdf"), n_pages=len(RUNNING_BODY))
    write_two_column_page(_at(folder / "clientA/two_columns.pdf"))
    write_pages(_at(folder / "long.pdf"), 12)
    names = list(GOOD)
    if bad:
        write_not_a_pdf(_at(folder / "bad/not_a_pdf.pdf"))
        write_encrypted(_at(folder / "encrypted.pdf"))
        names += BAD
    for i in range(extra):
        write_running_headers(_at(folder / f"more/report_{i:02d}.pdf"), n_pages=2 + i % 4)
        names.append(f"more/report_{i:02d}.pdf")
    return sorted(names)


def _at(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def batch_settings(
    model_dir: Path,
    store_url: str,
    *,
    explain: str = "none",
    threads: int | None = None,
    data_dir: Path | None = None,
) -> Any:
    """Settings for a batch test: the tiny model, this store, and the explain mode (and a
    data directory: module-scoped fixtures run before the per-test one is set)."""
    from app.config import load_settings

    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    return settings.model_copy(
        update={
            "scoring": settings.scoring.model_copy(
                update={"model_dir": model_dir, "threads": threads}
            ),
            "explain": settings.explain.model_copy(update={"mode": explain}),
            "store": settings.store.model_copy(update={"url": store_url}),
        }
    )


# Columns that differ between two runs of the same inputs by design: ids, times, run ids.
_VOLATILE = {
    "id",
    "result_id",
    "saved_at",
    "created_at",
    "stamp_run_id",
    "run_id",
    "timings",
    "git_commit",
    "first_seen",
    "cached",
}


def stable_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored analysis row (results, pages, sentences, scores, explanations, errors,
    documents), keyed by document instead of result id, without the columns that name a run."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    meta = sa.MetaData()
    meta.reflect(
        engine,
        only=[
            "documents",
            "results",
            "pages",
            "sentences",
            "scores",
            "explanations",
            "stage_errors",
        ],
    )
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        key_of = {rid: key for rid, key in conn.execute(sa.text("SELECT id, doc_key FROM results"))}
        for name, table in meta.tables.items():
            cols = [c.name for c in table.columns if c.name not in _VOLATILE]
            rows = []
            for row in conn.execute(sa.select(table)):
                data = row._mapping
                doc = key_of.get(data["result_id"]) if "result_id" in data else None
                values = tuple(_stable(data[c]) for c in cols)
                rows.append((doc, *values))
            out[name] = sorted(rows, key=repr)
    engine.dispose()
    return out


EXPLANATION_TOLERANCE = 1e-5
"""How far SHAP values of the same sentence may differ between executors: a sentence repeated
across documents is explained once per run and cached, and which part explains it first (in
whose model batches, whose padding changes float32 sums) depends on timing when several workers
run. Seen: 3e-8 to 4.3e-7, in probability units. Everything
else must be identical."""


def assert_same_rows(
    rows: dict[str, list[tuple[Any, ...]]], reference: dict[str, list[tuple[Any, ...]]]
) -> None:
    """Every table identical, SHAP values within EXPLANATION_TOLERANCE (words exactly)."""
    assert {k: v for k, v in rows.items() if k != "explanations"} == {
        k: v for k, v in reference.items() if k != "explanations"
    }
    gap = float_gap(rows["explanations"], reference["explanations"])
    assert gap <= EXPLANATION_TOLERANCE, gap


def close(a: Any, b: Any, tol: float = 1e-6) -> bool:
    """Equal rows, floats (nested ones too) within `tol` (a sentence scored in a batch with
    other sentences differs in the last bits: padding changes the float sums)."""
    return float_gap(a, b) <= tol


def float_gap(a: Any, b: Any) -> float:
    """The largest difference between matching floats of two equal-shaped rows (inf when the
    shapes or any other value differ)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        if len(a) != len(b):
            return float("inf")
        return max((float_gap(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    return 0.0 if a == b else float("inf")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _stable(v)) for k, v in value.items() if k not in ("cached",)))
    if isinstance(value, list):
        return tuple(_stable(v) for v in value)
    return value


def count_results(url: str) -> dict[str, int]:
    """Stored results per document key (a duplicate shows as a count over 1)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT doc_key, count(*) FROM results GROUP BY doc_key"))
        counts = {k: n for k, n in rows}
    engine.dispose()
    return counts


def cli(args: list[str], env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
    """Start `sesame …` in a subprocess (its own session, so the test can clean up after it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
        **kwargs,
    )


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float,
    what: str,
    proc: subprocess.Popen[str] | None = None,
    every_s: float = 0.05,
) -> Any:
    """Poll until `predicate()` is truthy; fail with `what` (and the process's output)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"the process ended ({proc.returncode}) before {what}:\n{out}\n{err[-4000:]}"
            )
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def kill_session(proc: subprocess.Popen[str]) -> None:
    """SIGKILL whatever is left of a process's session (its Ray daemons, say)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def ray_worker_pids(root_pid: int, title: str = "ray::PartWorker.analyze_timed") -> list[int]:
    """Processes below `root_pid` whose title says a batch worker is analyzing a part now."""
    import psutil

    found = []
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for child in children:
        try:
            if child.cmdline()[:1] == [title]:
                found.append(child.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
            continue
    return found
