"""Drift monitoring against the reference a version now saves: report sentences, not news.

    .venv/bin/python -m benchmarks.bench_drift_reference --model DIR [--repeats 20]

A blessed version profiles sentences of the SEC filings in ../shared/corpus/filings (read with
sesame's ingest and sentence splitter, a seeded sample of 2,000: models/report_data.py), scored
by itself. This benchmark builds that reference with the model under test and measures, like
benchmarks/bench_monitoring.py (whose scenarios and Oracle it reuses):
- false alarms: other filings sentences (disjoint samples, 500 and 200), and each of the five
  English reports of ../shared/corpus (other companies, other years) as a nightly batch would
  bring them;
- detection: tweets, news headlines (SEntFiN, FiQA), PhraseBank news, a Dutch report;
- for comparison, the old reference (PhraseBank, the blessing-time evaluation set) against the
  same five reports, which is what made real reports look drifted by genre alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.config import DriftThresholds, ScoringOptions, load_settings
from benchmarks.bench_monitoring import (
    REPORTS,
    SHARED,
    Bench,
    build_oracle,
    load_data,
    machine,
    pdf_sentences,
)
from models.calibration import apply_calibration
from models.evaluate import load_scorer
from models.report_data import read_report_sentences

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SIZE = 2000


def filings_sentences(shared: Path, seed: int) -> list[str]:
    """The filings' narrative sentences as a version's reference sees them, shuffled."""
    settings = load_settings()
    texts = [
        r.text
        for r in read_report_sentences(
            sorted((shared / "corpus" / "filings").glob("*.pdf")), settings
        )
    ]
    random.Random(seed).shuffle(texts)
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios against the report-sentence reference; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sesame-bench-drift-reference"))
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/monitoring_report_reference.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    data = load_data(args.shared, args.seed, 5000, 2000)
    filings = filings_sentences(args.shared, args.seed)
    # the null pool is the part of the filings sentences the Oracle scores below
    reference = filings[:REFERENCE_SIZE]
    pool = filings[REFERENCE_SIZE : REFERENCE_SIZE + 500 * args.repeats]
    docs = {name: pdf_sentences(args.shared / "corpus" / name) for name in REPORTS}
    texts = list(
        dict.fromkeys(
            filings[: REFERENCE_SIZE + 500 * args.repeats]
            + [t for d in docs.values() for t in d]
            + data["dutch"]
            + [t for t, _ in data["phrasebank"]]
            + data["tweets"]
            + data["fiqa_headlines"]
            + data["sentfin"]
        )
    )
    oracle, model_info = build_oracle(args.model, texts, data["phrasebank"], args.cache, args.seed)
    # the Oracle's one-pass scores are the raw softmax; a version serves calibrated ones
    calibration = load_scorer(args.model, ScoringOptions(threads=1)).calibration
    oracle.probs = apply_calibration(oracle.probs, calibration)
    model_info["calibration"] = calibration.model_dump(mode="json") if calibration else None
    thresholds = DriftThresholds()
    bench = Bench(oracle, thresholds)
    ref = bench.profile(reference, args.seed, source="filings sentences (saved at blessing)")
    pb_texts = [t for t, _ in data["phrasebank"]]
    pb_ref = bench.profile(pb_texts[:968], args.seed, source="PhraseBank (the old reference)")
    for r in range(args.repeats):
        rng = np.random.default_rng(args.seed + r)

        def sample(xs: list[str], n: int, rng: np.random.Generator = rng) -> list[str]:
            return [xs[i] for i in rng.permutation(len(xs))[:n]]

        bench.run("filings_other_sentences_500", "null", ref, sample(pool, 500), args.seed + r)
        bench.run("filings_other_sentences_200", "null", ref, sample(pool, 200), args.seed + r)
        bench.run("tweets_fiqa_posts_300", "drift", ref, sample(data["tweets"], 300), args.seed + r)
        bench.run(
            "headlines_sentfin_500", "drift", ref, sample(data["sentfin"], 500), args.seed + r
        )
        bench.run(
            "headlines_fiqa_300", "drift", ref, sample(data["fiqa_headlines"], 300), args.seed + r
        )
        bench.run("phrasebank_news_500", "drift", ref, sample(pb_texts, 500), args.seed + r)
        bench.run("dutch_report", "drift", ref, data["dutch"], args.seed + r)
    for name, own in docs.items():
        bench.run(
            f"new_report:{name}",
            "null_document",
            ref,
            own,
            args.seed,
            note="another company's report against the filings reference",
        )
        bench.run(
            f"old_reference:{name}",
            "info",
            pb_ref,
            own,
            args.seed,
            note="the same report against PhraseBank, the reference before",
        )
    summary = bench.summary()

    def rate(kind: str) -> tuple[float, int]:
        runs = [s for s in summary.values() if s["kind"] == kind]
        total = sum(s["runs"] for s in runs)
        return sum(s["flag_rate"] * s["runs"] for s in runs) / max(total, 1), total

    false_alarm, n_null = rate("null")
    new_report, n_docs = rate("null_document")
    detection, n_drift = rate("drift")
    old_alarm, n_old = rate("info")
    result = {
        "benchmark": "drift_reference",
        "machine": machine(),
        "command": "python -m benchmarks.bench_drift_reference " + " ".join(argv or sys.argv[1:]),
        "model": model_info,
        "thresholds": thresholds.model_dump(mode="json"),
        "reference": {
            "source": "filings sentences, sesame ingest + splitter",
            "n": ref.n_sentences,
            "label_counts": ref.label_counts,
        },
        "false_alarm_rate": round(false_alarm, 4),
        "false_alarm_runs": n_null,
        "new_report_alarm_rate": round(new_report, 4),
        "new_report_runs": n_docs,
        "detection_rate": round(detection, 4),
        "detection_runs": n_drift,
        "old_reference_report_alarm_rate": round(old_alarm, 4),
        "old_reference_runs": n_old,
        "scenarios": summary,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"against the filings reference: false alarms {false_alarm:.3f} over {n_null} runs; "
        f"other companies' reports {new_report:.3f} over {n_docs}; detection {detection:.3f} "
        f"over {n_drift}; the same reports against PhraseBank: {old_alarm:.3f}"
    )
    for name, s in summary.items():
        flags = {t: v for t, v in s["test_flag_rates"].items() if v}
        print(
            f"  {s['kind']:13} {name:44} n={s['n_current_median']:5} "
            f"flagged {s['flag_rate']:.2f}  {flags}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
