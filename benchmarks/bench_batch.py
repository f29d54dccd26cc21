"""Pages/s and sentences/s of the batch with 1 and 2 workers, against a plain sequential loop.

Configurations, all on the same PDFs in the same run (each with a fresh store, so nothing is
skipped):

- `plain_loop`: the baseline: for each PDF, pdfplumber `extract_text` per page, a regex
  sentence split, and a transformers `pipeline("text-classification")` (batch 64) on the
  sentences; one process, torch's default threads.
- `batch_local_1`: `sesame batch run --executor local` (this process, 1 torch thread).
- `batch_ray_1` / `batch_ray_2`: `sesame batch run` on one local Ray instance (2 CPUs, started
  once for the benchmark) with 1 and 2 actors of 1 CPU each.

The batch configurations run `--rounds` times, interleaved (a busy neighbour on the shared
machine slows all alike), and the best round counts. Rates are over the processing phase
(first part submitted to last document written: the figure that scales a night), and over the
whole invocation (with the actors' start and model loads). `worker_cpu_s` is the CPU time the
workers spent (all threads), the load-independent cost per page for the cost model. SHAP is off
(`--explain none`) so the comparison with the loop, which has none, is fair; `--explain-sample`
also times SHAP on the flagged sentences of one report for the cost model.

    .venv/bin/python -m benchmarks.bench_batch [--model-dir models/default] [--rounds 2]

Inputs are corpus reports (../shared/corpus) when present, else generated reports.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "benchmarks" / "results" / "batch.json"
CORPUS_FILES = (
    "apple_2023q3_10q.pdf",
    "kramp_2017_jaarverslag_nl.pdf",
    "costco_2023q3_earnings_release.pdf",
    "amd_2022_annual_report.pdf",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")

_log = logging.getLogger(__name__)


def make_inputs(folder: Path, files: tuple[str, ...]) -> str:
    """Copy corpus reports (or write generated ones) into `folder`; returns their origin."""
    folder.mkdir(parents=True, exist_ok=True)
    if CORPUS.is_dir():
        for name in files:
            shutil.copy(CORPUS / name, folder / name)
        return f"corpus: {', '.join(files)}"
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfs import write_clean_report, write_running_headers

    for i in range(12):
        write_running_headers(folder / f"report_{i:02d}.pdf", n_pages=6)
        write_clean_report(folder / f"clean_{i:02d}.pdf")
    return "generated: 12 six-page and 12 one-page reports (corpus not present)"


def plain_loop(folder: Path, model_dir: Path) -> dict[str, Any]:
    """The baseline: pdfplumber text, a regex split, a transformers pipeline; one process."""
    import pdfplumber
    import torch
    from transformers import pipeline

    classify = pipeline(
        "text-classification",
        model=str(model_dir),
        tokenizer=str(model_dir),
        device=-1,
        dtype=torch.float32,
        truncation=True,
        max_length=128,
    )
    t0 = time.perf_counter()
    pages = sentences = 0
    for pdf_path in sorted(folder.glob("*.pdf")):
        try:
            with pdfplumber.open(pdf_path) as pdf:
                texts = [page.extract_text() or "" for page in pdf.pages]
        except Exception as e:  # the loop has no error handling worth the name: skip
            _log.warning("plain loop: %s: %s", pdf_path.name, e)
            continue
        pages += len(texts)
        units = [
            s.strip()
            for text in texts
            for s in _SENTENCE_END.split(" ".join(text.split()))
            if len(s.strip()) >= 3
        ]
        if units:
            classify(units, batch_size=64)
        sentences += len(units)
    wall = time.perf_counter() - t0
    return {
        "pages": pages,
        "sentences": sentences,
        "processing_s": round(wall, 2),
        "wall_s": round(wall, 2),
        "processing_pages_per_s": round(pages / wall, 3),
        "processing_sentences_per_s": round(sentences / wall, 3),
        "note": "pdfplumber extract_text, regex sentences, transformers pipeline batch 64",
    }


def sesame_batch(
    folder: Path,
    model_dir: Path,
    work: Path,
    *,
    executor: str,
    workers: int | None,
    pages_per_part: int,
    explain: str = "none",
) -> dict[str, Any]:
    """One `sesame batch run` in this process with a fresh data directory and store."""
    from rich.console import Console

    from app.config import load_settings
    from batch.run import BatchOptions, run_batch

    settings = load_settings(data_dir=work / "data")
    settings = settings.model_copy(
        update={
            "scoring": settings.scoring.model_copy(update={"model_dir": model_dir}),
            "explain": settings.explain.model_copy(update={"mode": explain}),
            "store": settings.store.model_copy(update={"url": f"sqlite:///{work / 'results.db'}"}),
        }
    )
    outcome = run_batch(
        BatchOptions(
            input_dir=folder,
            out=work / "out",
            executor=executor,  # type: ignore[arg-type]
            workers=workers,
            num_cpus=2,
            pages_per_part=pages_per_part,
        ),
        settings,
        console=Console(file=io.StringIO(), width=200),
    )
    summary = json.loads(outcome.summary_path.read_text())
    figures = dict(summary["this_invocation"])
    figures["count_line"] = outcome.count_line
    figures["workers"] = len(summary["executor"]["workers"])
    stages: dict[str, float] = {}
    for doc in summary["documents"]:
        for stage, seconds in (doc["row"].get("timings") or {}).items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    # Worker-seconds per stage: with the page and sentence counts, the cost model's inputs.
    figures["stage_seconds"] = {k: round(v, 2) for k, v in stages.items()}
    flagged = sum(
        (d["row"].get("positive") or 0) + (d["row"].get("negative") or 0)
        for d in summary["documents"]
    )
    figures["flagged_share"] = (
        round(flagged / figures["sentences"], 3) if figures.get("sentences") else None
    )
    if explain != "none":
        explained = sum((d["row"].get("explained") or 0) for d in summary["documents"])
        explain_s = sum(
            (d["row"].get("timings") or {}).get("explain", 0.0) for d in summary["documents"]
        )
        figures.update(
            explained=explained,
            explain_s=round(explain_s, 2),
            explain_s_per_sentence=round(explain_s / explained, 3) if explained else None,
        )
    return figures


def main() -> None:
    """Run every configuration and write benchmarks/results/batch.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--pages-per-part", type=int, default=15)
    parser.add_argument("--files", nargs="*", default=list(CORPUS_FILES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--explain-sample",
        default=CORPUS_FILES[2],
        help="corpus report timed with SHAP on flagged sentences ('' skips)",
    )
    parser.add_argument("--skip-plain", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.basicConfig(level=logging.WARNING)

    import ray
    import torch
    import transformers

    from batch.workers import WORKER_ENV

    root = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    inputs = root / "in"
    origin = make_inputs(inputs, tuple(args.files))
    results: dict[str, Any] = {}
    load: dict[str, list[float]] = {}

    rounds: dict[str, list[dict[str, Any]]] = {}

    def timed(name: str, fn: Any, *a: Any, **kw: Any) -> None:
        before = os.getloadavg()[0]
        print(f"{name}…", file=sys.stderr, flush=True)
        figures = fn(*a, **kw)
        figures["load_average_before_after"] = [round(before, 2), round(os.getloadavg()[0], 2)]
        rounds.setdefault(name, []).append(figures)
        best = max(rounds[name], key=lambda f: f.get("processing_pages_per_s") or 0)
        results[name] = {
            **best,
            "rounds": len(rounds[name]),
            "processing_pages_per_s_rounds": [
                f.get("processing_pages_per_s") for f in rounds[name]
            ],
        }
        load[name] = [f["load_average_before_after"] for f in rounds[name]]
        print(f"  {json.dumps(figures)}", file=sys.stderr, flush=True)

    if not args.skip_plain:
        timed("plain_loop", plain_loop, inputs, args.model_dir)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": WORKER_ENV},
    )
    for r in range(args.rounds):
        for name, executor, workers in (
            ("batch_local_1", "local", None),
            ("batch_ray_1", "ray", 1),
            ("batch_ray_2", "ray", 2),
        ):
            timed(
                name,
                sesame_batch,
                inputs,
                args.model_dir,
                root / f"{name}-{r}",
                executor=executor,
                workers=workers,
                pages_per_part=args.pages_per_part,
            )
    if args.explain_sample and CORPUS.is_dir():
        sample = root / "explain-in"
        make_inputs(sample, (args.explain_sample,))
        timed(
            "batch_ray_2_explain_flagged",
            sesame_batch,
            sample,
            args.model_dir,
            root / "explain",
            executor="ray",
            workers=2,
            pages_per_part=args.pages_per_part,
            explain="flagged",
        )

    def ratio(a: str, b: str, key: str) -> float | None:
        if a in results and b in results and results[b].get(key):
            return round(results[a][key] / results[b][key], 2)
        return None

    speedups = {
        "ray_2_vs_ray_1_pages": ratio("batch_ray_2", "batch_ray_1", "processing_pages_per_s"),
        "ray_2_vs_ray_1_sentences": ratio(
            "batch_ray_2", "batch_ray_1", "processing_sentences_per_s"
        ),
        "ray_2_vs_plain_loop_pages": ratio("batch_ray_2", "plain_loop", "processing_pages_per_s"),
        "local_1_vs_plain_loop_pages": ratio(
            "batch_local_1", "plain_loop", "processing_pages_per_s"
        ),
        "target_ray_2_vs_ray_1": 1.7,
    }
    report = {
        "command": "python -m benchmarks.bench_batch " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "note": "shared 2-core machine: other engineers' jobs ran alongside; load average "
            "before/after each configuration in load_average",
        },
        "inputs": origin,
        "model_dir": str(args.model_dir),
        "pages_per_part": args.pages_per_part,
        "results": results,
        "speedups": speedups,
        "load_average": load,
    }
    ray.shutdown()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(speedups, indent=1))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
