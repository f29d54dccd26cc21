"""How long does the Excel workpaper of a 300-page report take, against a naive openpyxl dump?

    .venv/bin/python -m benchmarks.bench_workpaper [--sentences 10000] [--repeats 3]

Input: a hand-built DocumentResult the size of a long 10-K (10,000 sentences over 300 pages,
SHAP evidence on 40% of them, 30 review actions), with sentence lengths like real report text.
Each variant runs in a fresh process (so peak memory is its own), `--repeats` times; the median
is reported.

- baseline: the Sentences table only (the same 24 values per row), written with openpyxl's
  default in-memory Workbook and no styles: what a first version would do.
- workpaper: `write_workpaper`, all five sheets, streaming mode, styles, rich-text evidence,
  row heights, review columns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_TEXT = (
    "revenue increased strongly in the period while operating costs declined the group "
    "reported a net loss impairment of goodwill of million compared with last year due to "
    "lower demand in Europe and higher energy prices management expects growth"
)
WORDS = tuple(_TEXT.split())


def make_result(n: int, seed: int = 0) -> tuple[Any, list[Any]]:
    """A DocumentResult of `n` sentences with scores, explanations and reviews."""
    from app.records import (
        LABELS,
        Document,
        DocumentResult,
        Explanation,
        ReviewAction,
        Score,
        Sentence,
        Stamp,
        WordWeight,
    )

    rng = random.Random(seed)
    sha = "5e" * 32
    sentences, scores, explanations = [], [], []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(max(4, int(rng.gauss(24, 10))))]
        text = " ".join(words).capitalize() + "."
        sentences.append(
            Sentence(
                doc_id=sha,
                index=i,
                page_no=1 + i * 300 // n,
                start=0,
                end=len(text),
                text=text,
                section=f"Section {i // 150}",
                section_type="md_and_a",
            )
        )
        p = [rng.random() for _ in LABELS]
        total = sum(p)
        probs = {label: v / total for label, v in zip(LABELS, p, strict=True)}
        label = max(probs, key=probs.get)
        scores.append(
            Score(sentence_index=i, label=label, probabilities=probs, confidence=probs[label])
        )
        if rng.random() < 0.4:
            values = tuple(rng.uniform(-0.2, 0.3) for _ in words)
            ranked = sorted(zip(words, values, strict=True), key=lambda wv: -wv[1])
            explanations.append(
                Explanation(
                    sentence_index=i,
                    label=label,
                    words=tuple(words),
                    values=values,
                    base_value=0.33,
                    output_value=probs[label],
                    additivity_error=0.0,
                    top_for=tuple(WordWeight(word=w, weight=v) for w, v in ranked[:5] if v > 0),
                    top_against=tuple(
                        WordWeight(word=w, weight=v) for w, v in ranked[::-1][:5] if v < 0
                    ),
                )
            )
    stamp = Stamp(
        model_name="sesame-sentiment",
        model_version="3",
        model_digest="ab" * 32,
        code_version="0.1.0",
        git_commit="c" * 40,
        run_id="bench",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    result = DocumentResult(
        source="10k.pdf",
        status="ok",
        stamp=stamp,
        sentences=tuple(sentences),
        scores=tuple(scores),
        explanations=tuple(explanations),
        document=Document(doc_id=sha, file_name="10k.pdf", size_bytes=5_000_000, n_pages=300),
    )
    reviews = [
        ReviewAction(
            id=k,
            result_id=1,
            doc_id=sha,
            sentence_index=rng.randrange(n),
            action=rng.choice(["agree", "override", "comment"]),
            reviewer="bench",
            label="neutral",
            comment="checked",
            created_at=datetime(2025, 1, 2, 9, k % 60, tzinfo=UTC),
        )
        for k in range(30)
    ]
    return result, reviews


def write_baseline(result: Any, path: Path) -> None:
    """The Sentences values in openpyxl's default (in-memory) mode, no styles."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    stamp = list(result.stamp.fields().values())
    scores = {s.sentence_index: s for s in result.scores}
    explanations = {e.sentence_index: e for e in result.explanations}
    for s in result.sentences:
        sc = scores[s.index]
        e = explanations.get(s.index)
        evidence = ", ".join(w.word for w in e.top_for) if e else None
        ws.append(
            [
                s.index,
                s.page_no,
                s.section,
                s.kind,
                s.text,
                sc.label,
                *sc.probabilities.values(),
                sc.confidence,
                evidence,
                None,
                None,
                None,
                None,
                None,
                stamp[1],
                *stamp,
                result.doc_id,
            ]
        )
    wb.save(path)


def run_one(variant: str, n: int) -> dict[str, float]:
    """Time one variant in this process; returns seconds, peak RSS and file size."""
    result, reviews = make_result(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wp.xlsx"
        start = time.perf_counter()
        if variant == "baseline":
            write_baseline(result, path)
        else:
            from app.workpaper import write_workpaper

            write_workpaper(result, path, reviews=reviews)
        seconds = time.perf_counter() - start
        size = path.stat().st_size
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": rss_mb, "file_mb": size / 1e6}


def machine() -> dict[str, Any]:
    """Where and when this ran (the machine is shared: the load average says how busy)."""
    import openpyxl

    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "openpyxl": openpyxl.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both variants in fresh processes and write benchmarks/results/workpaper.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", choices=["baseline", "workpaper"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/workpaper.json")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.sentences)))
        return 0

    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "workpaper": []}
    for _ in range(args.repeats):
        for variant in runs:  # interleaved, so a busy spell hits both
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_workpaper",
                    "--one",
                    variant,
                    "--sentences",
                    str(args.sentences),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {
        v: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]}
        for v, rs in runs.items()
    }
    ratio = summary["workpaper"]["seconds"] / summary["baseline"]["seconds"]
    result = {
        "benchmark": "workpaper",
        "machine": machine(),
        "command": "python -m benchmarks.bench_workpaper " + " ".join(argv or sys.argv[1:]),
        "sentences": args.sentences,
        "repeats": args.repeats,
        "median": summary,
        "workpaper_over_baseline_time": round(ratio, 2),
        "workpaper_sentences_per_s": round(args.sentences / summary["workpaper"]["seconds"]),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for variant, s in summary.items():
        print(
            f"{variant:10} {s['seconds']:6.1f} s  peak RSS {s['peak_rss_mb']:6.0f} MB  "
            f"file {s['file_mb']:.1f} MB"
        )
    print(f"workpaper / baseline time: {ratio:.2f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
