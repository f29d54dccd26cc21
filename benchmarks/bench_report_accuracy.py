"""Accuracy on the sentences auditors read: report language and PhraseBank, with intervals.

    .venv/bin/python -m benchmarks.bench_report_accuracy \
        [--model NAME=DIR --lever NAME="what changed"]... [--out FILE] [--errors 10]

Every model is measured in the same run as the baseline (models/default, the shipped
champion) on two frozen slices: reports_dev (255 report sentences labelled by hand under the
PhraseBank guideline with report rules; an evaluation set only, never trained on) and
PhraseBank 50Agree's 80/20 seed-42 evaluation split (968 news sentences, the split every
sesame model is gated on). Figures carry percentile bootstrap 95% intervals (1,000
resamples); reports_dev is small and single-annotator, so differences inside the intervals are
noise. Each lever is a model directory and a line saying what it changed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import EvaluationOptions, ScoringOptions
from models.data import deduplicate, load_examples, split_examples
from models.diagnostics import confident_mistakes
from models.evaluate import load_scorer, read_eval_file
from models.scoring import weights_digest
from models.slices import measure, negative_recall

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REPORTS = Path("reports_dev") / "reports_dev.csv"
RESULTS = ROOT / "benchmarks" / "results" / "report_accuracy.json"
GOAL = {
    "reports": {"macro_f1": 0.82, "negative_recall": 0.85, "calibration_error_max": 0.05},
    "phrasebank": {"accuracy": 0.86, "macro_f1": 0.84},
}


def file_rows(path: Path) -> dict[str, int]:
    """Each text of a `text,label` CSV and its row number (1 = the first row after the header)."""
    out: dict[str, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for i, r in enumerate(csv.DictReader(f), 1):
            out.setdefault((r["text"] or "").strip(), i)  # as read_eval_file: first one kept
    return out


def slices(data: Path) -> dict[str, tuple[list, str]]:
    """The two frozen slices: reports_dev and PhraseBank's 80/20 seed-42 evaluation split."""
    out = {}
    reports = data / REPORTS
    phrasebank = data / "financial_phrasebank" / "Sentences_50Agree.txt"
    if reports.is_file():
        out["reports"] = read_eval_file(reports)
    if phrasebank.is_file():
        examples, _ = deduplicate(load_examples([phrasebank]).examples)
        split = split_examples(examples, 0.2, 42)
        out["phrasebank"] = (list(split.eval), split.eval_digest)
    return out


def measure_model(
    model_dir: Path,
    sets: dict[str, tuple[list, str]],
    threads: int,
    errors: int,
    file_row: dict[str, int],
) -> dict[str, Any]:
    """One model on every slice: metrics, intervals, its most confident mistakes on reports
    (by their row in reports_dev.csv, `file_row`, never their text)."""
    options = EvaluationOptions()
    scorer = load_scorer(model_dir, ScoringOptions(threads=threads))
    row: dict[str, Any] = {
        "dir": str(model_dir),
        "sha256": weights_digest(model_dir),
        "calibration": (scorer.calibration.model_dump(mode="json") if scorer.calibration else None),
        "slices": {},
    }
    timed = {"seconds": 0.0, "sentences": 0}

    def predict(texts: Sequence[str]) -> Any:
        # scoring time alone (no bootstrap): the cost per sentence the other issues budget on
        started = time.perf_counter()
        proba = scorer.predict_proba(texts)
        timed["seconds"] += time.perf_counter() - started
        timed["sentences"] += len(texts)
        return proba

    for name, (examples, digest) in sets.items():
        started = time.perf_counter()
        metrics, intervals = measure(predict, examples, digest, options)
        row["slices"][name] = {
            "n": metrics.n,
            "accuracy": metrics.accuracy,
            "macro_f1": metrics.macro_f1,
            "negative_recall": negative_recall(metrics),
            "calibration_error": metrics.calibration_error,
            "intervals": {k: [v.low, v.high] for k, v in intervals.items()},
            "per_class": {k: v.model_dump() for k, v in metrics.per_class.items()},
            "confusion": metrics.confusion,
            "eval_digest": digest,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if name == "reports" and errors:
            texts = [e.text for e in examples]
            proba = predict(texts)
            # by row number, not text: the set's sentences stay in ../shared, not in results
            row["slices"][name]["most_confident_errors"] = [
                {"row": file_row[m.text]} | m.model_dump(exclude={"text"})
                for m in confident_mistakes(texts, [e.label for e in examples], proba, errors)
            ]
    row["scoring"] = timed | {
        "sentences_per_second": round(timed["sentences"] / timed["seconds"], 1)
        if timed["seconds"]
        else None
    }
    return row


def meets_goal(row: dict[str, Any]) -> dict[str, bool]:
    """Which of the issue's targets a model reaches (point estimates)."""
    rep, pb = row["slices"].get("reports"), row["slices"].get("phrasebank")
    out = {}
    if rep:
        out |= {
            "reports_macro_f1": rep["macro_f1"] >= GOAL["reports"]["macro_f1"],
            "reports_negative_recall": rep["negative_recall"] >= GOAL["reports"]["negative_recall"],
            "reports_calibration_error": rep["calibration_error"]
            <= GOAL["reports"]["calibration_error_max"],
        }
    if pb:
        out |= {
            "phrasebank_accuracy": pb["accuracy"] >= GOAL["phrasebank"]["accuracy"],
            "phrasebank_macro_f1": pb["macro_f1"] >= GOAL["phrasebank"]["macro_f1"],
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the baseline and every --model on both slices; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument(
        "--lever",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="What the model NAME changed against the baseline.",
    )
    parser.add_argument("--baseline", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--data", type=Path, default=DATA, help="The shared data folder.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--errors", type=int, default=10, help="Most confident reports_dev mistakes kept per model."
    )
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sets = slices(args.data)
    if not sets:
        print(
            f"no slices: {args.data} (reports_dev, PhraseBank) is not on this machine",
            file=sys.stderr,
        )
        return 2
    file_row = file_rows(args.data / REPORTS) if "reports" in sets else {}
    levers = dict(x.split("=", 1) for x in args.lever)
    models = {"baseline (models/default)": args.baseline}
    models |= {name: Path(d) for name, d in (x.split("=", 1) for x in args.model)}
    results = {}
    for name, model_dir in models.items():
        row = measure_model(model_dir, sets, args.threads, args.errors, file_row)
        row["lever"] = levers.get(
            name, "the shipped default" if name.startswith("baseline") else ""
        )
        row["meets_goal"] = meets_goal(row)
        base_rate = (
            next(iter(results.values()))["scoring"]["sentences_per_second"] if results else None
        )
        rate = row["scoring"]["sentences_per_second"]
        # cost per sentence against the baseline measured in this run (the goal: within 1.5x)
        row["scoring"]["cost_vs_baseline"] = (
            round(base_rate / rate, 3) if base_rate and rate else 1.0 if not results else None
        )
        results[name] = row
        rep = row["slices"].get("reports", {})
        interval = rep.get("intervals", {}).get("macro_f1")
        print(
            f"{name}: reports macro-F1 {rep.get('macro_f1')} {interval}"
            f" neg recall {rep.get('negative_recall')} ECE {rep.get('calibration_error')}; "
            f"phrasebank {row['slices'].get('phrasebank', {}).get('accuracy')} / "
            f"{row['slices'].get('phrasebank', {}).get('macro_f1')}",
            flush=True,
        )
    out = {
        "benchmark": "report_accuracy",
        "goal": GOAL,
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": args.note,
        },
        "command": "python -m benchmarks.bench_report_accuracy " + " ".join(argv or sys.argv[1:]),
        "slices": {k: {"n": len(v[0]), "eval_digest": v[1]} for k, v in sets.items()},
        "bootstrap": {"samples": EvaluationOptions().bootstrap_samples, "confidence": 0.95},
        "errors_by_row": f"most_confident_errors[].row: the sentence's row in {REPORTS} (1 = the "
        "first row after the header); the set's texts stay in the shared data folder",
        "models": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
