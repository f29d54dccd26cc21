"""Evidence in seconds: the amortized explainer against the sampled default and SHAP's default.

    .venv/bin/python -m benchmarks.bench_amortized          # models/default, 100 sentences
    .venv/bin/python -m benchmarks.bench_amortized \
        --report ../shared/corpus/filings/adobe_2022_10k.pdf
    .venv/bin/python -m benchmarks.bench_amortized --cache-dir DIR   # the gate's Owen cache

One model, the same held-out report sentences (reports_dev, never training data for the model
or its explainer), in one run:
- reference: Owen values over shap's token tree at a high budget (`--reference-evals`, 2,000 by
  default), the same recursion as shap's PartitionExplainer (explain.owen). On 2 cores this is
  the slow part (about 15 s a sentence at 2,000), so the values come from, and go to, the
  same cache as `sesame explainer train`'s gate (`models.explainer.owen_values`);
- SHAP's default: shap.Explainer(f, shap.maskers.Text(tokenizer)) at its defaults, on the first
  `--baseline-n` sentences;
- sampled: sesame's sampled explainer at today's default budget (3 evaluations per word);
- amortized: the model's explainer network (one pass per sentence, plus the base value).
Fidelity is measured as the explainer's training gate measures it (`explain.amortized.fidelity`:
mean Spearman, top-1, top-3, sign); speed is wall-clock seconds per sentence, with the ratios
computed against the sampled default and SHAP's default timed in the same run. With `--report`
a whole report goes through `sesame analyze` once per `--report-methods` entry (default: no
evidence, the baseline, then `--explain-method amortized`; sampled takes many minutes). Writes
benchmarks/results/amortized.json. The machine is shared: load averages are recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_explain import loadavg, shap_word_values
from explain.amortized import fidelity

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
REPORTS_DEV = ROOT.parent / "shared" / "data" / "reports_dev" / "reports_dev.csv"
RESULTS = ROOT / "benchmarks" / "results" / "amortized.json"


def report_sentences(path: Path, n: int, seed: int) -> list[str]:
    """n report sentences, shuffled with `seed` (the texts only; the labels are not used)."""
    with path.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def records(texts: list[str], probs: np.ndarray) -> tuple[list[Any], list[Any]]:
    """Sentence and Score records for texts scored `probs` (as the pipeline makes them)."""
    from app.records import LABELS, Score, Sentence

    sentences = [
        Sentence(doc_id="bench", index=i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]
    scores = []
    for i, p in enumerate(probs):
        label = LABELS[int(np.argmax(p))]
        scores.append(
            Score(
                sentence_index=i,
                label=label,
                probabilities={lab: float(x) for lab, x in zip(LABELS, p, strict=True)},
                confidence=float(np.max(p)),
            )
        )
    return sentences, scores


def reference_values(
    texts: list[str], scorer: Any, evals: int, cache_dir: Path
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """High-budget Owen values per sentence, from the explainer gate's own cache when it has
    them (`sesame explainer train` with the same sentences and budget), else computed there."""
    from models.explainer import owen_values

    targets, seconds, hit = owen_values(
        scorer,
        texts,
        evals_per_word=0,
        max_evals=evals,
        mask_token=scorer.tokenizer.mask_token,
        cache_dir=cache_dir,
        what="reference",
    )
    info = {
        "method": "Owen values over shap's token tree (explain.owen, shap's Partition recursion)",
        "max_evals": evals,
        "from_cache": hit,
        "seconds_computed": seconds,
        "s_per_sentence_computed": None if hit else round(seconds / max(len(texts), 1), 2),
    }
    return [t.values for t in targets], info


def timed_explain(explainer: Any, sentences: list[Any], scores: list[Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    exps = explainer.explain(sentences, scores)
    return exps, time.perf_counter() - t0


def analyze_report(report: Path, method: str, work: Path) -> dict[str, Any]:
    """`sesame analyze REPORT` with evidence by `method` (none: no evidence); its figures."""
    out = work / f"analyze-{method}"
    cmd = [sys.executable, "-m", "app.cli", "analyze", str(report), "--out", str(out)]
    cmd += ["--explain", "none"] if method == "none" else ["--explain-method", method]
    env = dict(os.environ, SESAME_DATA_DIR=str(work / f"data-{method}"))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "command": " ".join(["sesame", *cmd[3:]]),
        "exit": done.returncode,
        "wall_s": round(wall, 1),
    }
    outputs = sorted(out.glob("*.json"))
    if outputs:
        data = json.loads(outputs[0].read_text(encoding="utf-8"))
        rows = data.get("sentences", [])
        explained = [r for r in rows if r.get("explanation")]
        result["pages"] = len(data.get("pages", []))
        result["sentences"] = len(rows)
        result["explained"] = len(explained)
        result["methods"] = sorted({str(r.get("evidence_method")) for r in explained})
        result["timings_s"] = data.get("timings")
    else:
        result["stderr_tail"] = done.stderr[-2000:]
    return result


def main() -> None:  # noqa: PLR0915 - one linear script
    """Run the benchmark and write benchmarks/results/amortized.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--sentences", type=Path, default=REPORTS_DEV)
    ap.add_argument("--n", type=int, default=100, help="sentences for fidelity")
    ap.add_argument("--baseline-n", type=int, default=10, help="sentences for SHAP's default")
    ap.add_argument("--reference-evals", type=int, default=2000)
    ap.add_argument(
        "--cache-dir", type=Path, default=None, help="Owen value cache (default: data dir's)"
    )
    ap.add_argument("--report", type=Path, default=None, help="a whole report through analyze")
    ap.add_argument(
        "--report-methods",
        default="none,amortized",
        help="evidence methods for the whole report (none, amortized, sampled, auto)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import shap
    import torch

    from app.config import ExplainOptions, ScoringOptions, load_settings
    from app.pipeline import make_explainer
    from models.scoring import SentimentScorer

    torch.set_num_threads(args.threads)
    if not args.sentences.exists():
        raise SystemExit(f"{args.sentences} not found (../shared is not here)")
    work = Path(tempfile.mkdtemp(prefix="bench-amortized-"))
    scorer = SentimentScorer.from_dir(args.model_dir, ScoringOptions())
    result: dict[str, Any] = {
        "benchmark": "amortized",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "shared_machine": True,
            "loadavg_start": loadavg(),
        },
        "versions": {"shap": shap.__version__, "torch": torch.__version__},
        "model": {"dir": str(args.model_dir), "sha256": scorer.digest},
        "command": "python -m benchmarks.bench_amortized "
        + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (None, False)
        ),
    }
    texts = report_sentences(args.sentences, args.n, args.seed)
    probs = scorer.predict_proba(texts)
    columns = [int(i) for i in probs.argmax(1)]
    sentences, scores = records(texts, probs)
    n_words = [len(t.split()) for t in texts]
    result["sentences"] = {
        "source": f"{args.sentences.name}, seeded shuffle, first {len(texts)}",
        "n": len(texts),
        "mean_words": round(float(np.mean(n_words)), 1),
        "max_words": max(n_words),
        "labels": {
            lab: sum(s.label == lab for s in scores) for lab in sorted({s.label for s in scores})
        },
    }

    cache_dir = args.cache_dir or load_settings().data_dir / "cache"
    reference, result["reference"] = reference_values(
        texts, scorer, args.reference_evals, cache_dir
    )
    print("reference", result["reference"], flush=True)

    # SHAP's default explainer, on the first baseline_n sentences
    nb = min(args.baseline_n, len(texts))

    def f(x: Any) -> np.ndarray:
        return scorer.predict_proba([str(s) for s in x])

    shap_explainer = shap.Explainer(f, shap.maskers.Text(scorer.tokenizer))
    t0 = time.perf_counter()
    shap_values = [
        shap_word_values(shap_explainer, scorer.tokenizer, t, c)
        for t, c in zip(texts[:nb], columns[:nb], strict=True)
    ]
    shap_s = (time.perf_counter() - t0) / nb
    result["shap_default"] = {
        "explainer": "shap.Explainer(f, shap.maskers.Text(tokenizer)) at defaults "
        "(Partition, max_evals 500, batch_size 5)",
        "n": nb,
        "s_per_sentence": round(shap_s, 4),
        "fidelity": fidelity(shap_values, reference[:nb]),
    }
    print("shap default", result["shap_default"], flush=True)

    base = load_settings(data_dir=work / "data")
    timings: dict[str, float] = {}
    for method in ("sampled", "amortized"):
        options = ExplainOptions(method=method, cache=False)
        settings = base.model_copy(update={"explain": options})
        explainer = make_explainer(settings, scorer)
        exps, seconds = timed_explain(explainer, sentences, scores)
        used = sorted({e.method for e in exps})
        entry: dict[str, Any] = {
            "method_requested": method,
            "methods_used": used,
            "note": getattr(explainer, "note", None),
            "n": len(exps),
            "s_per_sentence": round(seconds / len(exps), 4),
            "fidelity": fidelity([np.asarray(e.values) for e in exps], reference),
            "fidelity_first_baseline_n": fidelity(
                [np.asarray(e.values) for e in exps[:nb]], reference[:nb]
            ),
            "max_additivity_error": max(e.additivity_error for e in exps),
        }
        if method == "sampled":
            entry["evals_per_word"] = options.evals_per_word
        else:
            entry["stated_fidelity"] = exps[0].fidelity if exps else None
        timings[method] = seconds / len(exps)
        result[method] = entry
        print(method, entry, flush=True)
    result["speedup"] = {
        "sampled_over_amortized": round(timings["sampled"] / timings["amortized"], 1),
        "shap_default_over_amortized": round(shap_s / timings["amortized"], 1),
        "shap_default_over_sampled": round(shap_s / timings["sampled"], 1),
    }
    print("speedup", result["speedup"], flush=True)

    if args.report:
        result["report"] = {"file": args.report.name}
        for method in args.report_methods.split(","):
            result["report"][method] = analyze_report(args.report, method, work)
            print("report", method, result["report"][method], flush=True)

    result["machine"]["loadavg_end"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
