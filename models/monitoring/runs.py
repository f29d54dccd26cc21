"""Drift and quality monitoring: profiles, drift tests, reports, model-reviewer agreement.

A `Profile` summarises what a model saw and said on a set of sentences: predicted-label shares,
the confidence distribution, input descriptors (length in words, share of words the tokenizer
splits into several pieces, share of numeric tokens, language) and a capped sample of sentence
embeddings. One is saved with each model version at blessing time (the *reference*, on the
evaluation set); each analyze or batch run builds one for its sentences and `compare` tests it
against the reference:

| what                       | test (scipy / scikit-learn)     | decides on (effect size)     |
|----------------------------|---------------------------------|------------------------------|
| predicted-label shares     | chi-square (`chi2_contingency`) | PSI                          |
| language shares            | chi-square                      | PSI                          |
| confidence, length, split  | Kolmogorov-Smirnov (`ks_2samp`) | Wasserstein distance in      |
| and numeric shares         |                                 | reference standard deviations|
| the text itself            | domain classifier (logistic     | cross-validated ROC AUC      |
|                            | regression, reference vs        |                              |
|                            | current); Mann-Whitney on its   |                              |
|                            | out-of-fold scores              |                              |

Why effect sizes and not p-values: a batch has thousands of sentences, and with that many a
KS or chi-square p-value flags differences too small to matter (a 2-point shift in the neutral
share). A small run (one 4-page press release) has the opposite problem: noise alone moves the
effect size. So a test drifts only when the effect passes its threshold AND the p-value is
below `alpha`: large enough to matter, and unlikely to be noise. The thresholds are calibrated
in `benchmarks/bench_monitoring.py` (false alarms over repeated random halves of one corpus,
detection of tweets, headlines and label-mix shifts).

Profiles hold no sentence text: only numbers, so they may travel with a model version.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from app.errors import SesameError
from app.records import LABELS, Label, RunInfo, Stage

if TYPE_CHECKING:
    from app.config import Settings
    from app.store import ResultStore
    from models.scoring import SentimentScorer

_log = logging.getLogger(__name__)

PROFILE_VERSION = 1
REFERENCE_FILE = "reference_profile.json"
"""The reference profile's name inside a model directory: it travels with the model through
the registry's artifacts, the fetch cache and the bundled default (the weights digest ignores
it)."""

DESCRIPTORS: tuple[str, ...] = ("n_words", "split_share", "numeric_share")
"""Per-sentence input descriptors, in the column order of `Profile.descriptors`."""

Embedder = Callable[[list[str]], np.ndarray]
"""Texts -> (n, d) sentence embeddings."""

_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"[^\W\d_]+")  # alphabetic words: what the split share is measured on
_DIGIT = re.compile(r"\d")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArraySample(_Model):
    """A numeric matrix stored compactly in JSON: float16, base64 (embeddings are large)."""

    shape: tuple[int, int]
    data: str

    @classmethod
    def of(cls, array: np.ndarray) -> ArraySample:
        """Pack a 2-D array."""
        array = np.asarray(array, dtype=np.float16)
        if array.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {array.shape}")
        return cls(
            shape=(int(array.shape[0]), int(array.shape[1])),
            data=base64.b64encode(array.tobytes()).decode("ascii"),
        )

    def array(self) -> np.ndarray:
        """The matrix as float32."""
        raw = np.frombuffer(base64.b64decode(self.data), dtype=np.float16)
        return raw.reshape(self.shape).astype(np.float32)


class Profile(_Model):
    """What a model saw and said on a set of sentences: numbers only, no text."""

    version: int = PROFILE_VERSION
    created_at: datetime
    source: str = ""
    """What the sentences were: "reference: eval set of sesame-sentiment v3", "run 2024...-ab"."""
    model_name: str | None = None
    model_version: str | None = None
    model_digest: str | None = None
    """sha256 of the weights that produced the probabilities and embeddings."""
    n_sentences: int
    label_counts: dict[Label, int]
    """Predicted-label counts over all sentences."""
    confidence: list[float]
    """Top-class probability of each sampled sentence."""
    descriptors: dict[str, list[float | None]]
    """Each of `DESCRIPTORS` for each sampled sentence (same row order as `confidence`); None
    where unknown (the split share without a tokenizer)."""
    language_counts: dict[str, int]
    """langdetect codes over a capped sample; "unknown" where detection failed."""
    embedding_mean: list[float] | None = None
    embeddings: ArraySample | None = None
    """Embeddings of the first rows of the sample (row i = sampled sentence i)."""
    sample_seed: int = 0

    @property
    def n_sample(self) -> int:
        """How many sentences the descriptor sample holds."""
        return len(self.confidence)

    def label_shares(self) -> dict[str, float]:
        """Predicted-label shares in LABELS order."""
        counts = {str(k): v for k, v in self.label_counts.items()}
        total = max(sum(counts.values()), 1)
        return {lab: counts.get(lab, 0) / total for lab in LABELS}

    def descriptor(self, name: str) -> np.ndarray:
        """One descriptor over the sample as floats, NaN where unknown."""
        return np.array(
            [np.nan if v is None else v for v in self.descriptors[name]], dtype=np.float64
        )

    def descriptor_matrix(self, rows: int | None = None) -> np.ndarray:
        """(n, len(DESCRIPTORS)+1) matrix: the descriptors and confidence of the sample."""
        cols = [self.descriptor(d) for d in DESCRIPTORS] + [np.asarray(self.confidence)]
        matrix = np.vstack(cols).T.astype(np.float64)
        return matrix if rows is None else matrix[:rows]


class DriftThresholds(BaseModel):
    """When a test counts as drift. Defaults calibrated by benchmarks/bench_monitoring.py."""

    model_config = ConfigDict(extra="forbid")

    label_psi: float = Field(0.2, gt=0)
    """PSI of predicted-label shares; > 0.2 is the customary "act" band. Benchmark: random
    halves and new reports stay below 0.09, a strong label-mix shift reaches 0.58 and more."""
    language_psi: float = Field(0.5, gt=0)
    """PSI of language shares. langdetect misreads short texts (tweets reach 0.36), so the bar
    sits where a real share of another language starts (20% Dutch is about 0.9)."""
    wasserstein: float = Field(0.75, gt=0)
    """Wasserstein distance of a descriptor in reference standard deviations. Benchmark: random
    halves stay below 0.21 and new reports below 0.65 (a 10-Q's numbers); tweets and headlines
    move length or split share by 1 to 2.8."""
    confidence_wasserstein: float = Field(0.5, gt=0)
    """The same for the top-class confidence: under 0.16 on random halves and new reports."""
    domain_auc: float = Field(0.95, gt=0.5, le=1)
    """Cross-validated ROC AUC of a classifier telling current from reference sentences.
    Benchmark: random halves 0.57 at most, another company's report 0.71-0.83, tweets and
    headlines 0.98 and more."""
    alpha: float = Field(0.01, gt=0, lt=1)
    """The p-value a test must also beat, so that noise in small runs is not called drift."""
    min_sentences: int = Field(30, ge=2)
    """Runs with fewer sentences are reported as too small to test, not as drift."""
    gating: tuple[str, ...] = (
        "label_shares",
        "language",
        "confidence",
        "n_words",
        "split_share",
        "numeric_share",
        "domain_classifier",
    )
    """Tests whose drift makes the whole report drifted (others are shown for information)."""


class DriftTest(_Model):
    """One test of current against reference."""

    name: str
    method: str
    statistic: float | None
    """The test statistic: chi-square, KS D, Mann-Whitney U."""
    p_value: float | None
    effect: float | None
    """The effect size the decision is made on: PSI, Wasserstein/std, AUC."""
    threshold: float
    drifted: bool
    status: Literal["ok", "drift", "skipped"]
    gating: bool = True
    detail: dict[str, Any] = {}


class DriftReport(_Model):
    """Every test of one run against its model version's reference, and the verdict."""

    run_id: str | None
    created_at: datetime
    model_name: str | None = None
    model_version: str | None = None
    model_digest: str | None = None
    reference_source: str
    reference_sentences: int
    current_sentences: int
    tests: tuple[DriftTest, ...]
    drifted: bool
    thresholds: DriftThresholds
    notes: tuple[str, ...] = ()
    """Caveats: a reference from other weights, embeddings that could not be compared."""

    def drifted_tests(self) -> list[DriftTest]:
        """The gating tests that found drift."""
        return [t for t in self.tests if t.drifted and t.gating]

    def summary(self) -> str:
        """One line: verdict and the tests that drifted."""
        names = ", ".join(t.name for t in self.drifted_tests())
        run = self.run_id or "current"
        if self.drifted:
            return f"{run}: DRIFT against {self.reference_source} ({names})"
        return f"{run}: no drift against {self.reference_source}"


# --------------------------------------------------------------------------------------------
# Descriptors and profiles


def describe_texts(texts: Sequence[str], tokenizer: Any | None = None) -> np.ndarray:
    """(n, 3) descriptors per text: words, share of words split into pieces, numeric share.

    The split share is measured on alphabetic words with the model's own tokenizer (a fast
    Hugging Face tokenizer): jargon, misspellings, tickers and foreign languages split more.
    Without a tokenizer the column is NaN.
    """
    tokens = [_TOKEN.findall(t) for t in texts]
    n_words = np.array([len(t) for t in tokens], dtype=np.float64)
    numeric = np.array(
        [sum(1 for w in t if _DIGIT.search(w)) / len(t) if t else 0.0 for t in tokens]
    )
    split = np.full(len(texts), np.nan)
    if tokenizer is not None and len(texts):
        words = [_WORD.findall(t) for t in texts]
        nonempty = [i for i, w in enumerate(words) if w]
        split[[i for i, w in enumerate(words) if not w]] = 0.0
        for start in range(0, len(nonempty), 512):
            chunk = nonempty[start : start + 512]
            enc = tokenizer(
                [words[i] for i in chunk],
                is_split_into_words=True,
                add_special_tokens=False,
                truncation=False,
            )
            for row, i in enumerate(chunk):
                pieces = Counter(w for w in enc.word_ids(row) if w is not None)
                split[i] = sum(1 for c in pieces.values() if c > 1) / len(words[i])
    return np.column_stack([n_words, split, numeric])


def detect_languages(texts: Sequence[str], seed: int = 0) -> list[str]:
    """langdetect's language code per text (seeded, so repeatable); "unknown" when it cannot."""
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = seed
    out = []
    for text in texts:
        try:
            out.append(detect(text))
        except LangDetectException:
            out.append("unknown")
    return out


def mean_pooled_embedder(
    tokenizer: Any, model: Any, *, batch_size: int = 64, max_length: int = 128
) -> Embedder:
    """Sentence embeddings as the attention-masked mean of the encoder's last hidden states.

    `model` is a Hugging Face model; its `base_model` (the encoder without the classification
    head) is used, so a sequence-classification model embeds with the encoder it scores with.
    """
    import torch

    encoder = getattr(model, "base_model", model)

    def embed(texts: list[str]) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                hidden = encoder(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                parts.append(pooled.float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    return embed


def scorer_embedder(scorer: SentimentScorer) -> Embedder:
    """Mean-pooled states of the scorer's own encoder, at its truncation length."""
    return mean_pooled_embedder(scorer.tokenizer, scorer.model, max_length=scorer.max_length)


def build_profile(
    texts: Sequence[str],
    probabilities: np.ndarray,
    *,
    tokenizer: Any | None = None,
    embed: Embedder | None = None,
    source: str = "",
    model_name: str | None = None,
    model_version: str | None = None,
    model_digest: str | None = None,
    sample_size: int = 2000,
    embed_size: int = 500,
    language_size: int = 200,
    languages: Callable[[Sequence[str]], list[str]] | None = None,
    seed: int = 0,
) -> Profile:
    """Profile sentences and the model's (n, 3) probabilities (columns in LABELS order).

    Label counts cover every sentence; descriptors and confidence a random sample of at most
    `sample_size`; embeddings and languages the first `embed_size` / `language_size` of that
    sample, which bounds the extra model and langdetect work for large batches. `languages`
    maps texts to language codes (default: seeded langdetect).
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(LABELS) or probs.shape[0] != len(texts):
        raise ValueError(f"probabilities must be ({len(texts)}, {len(LABELS)}), got {probs.shape}")
    predicted = probs.argmax(axis=1) if len(texts) else np.zeros(0, dtype=int)
    counts = Counter(LABELS[i] for i in predicted)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))[:sample_size]
    sample = [texts[i] for i in order]
    desc = describe_texts(sample, tokenizer)
    conf = probs[order].max(axis=1) if len(order) else np.zeros(0)
    detect = languages or (lambda xs: detect_languages(xs, seed=seed))
    langs = Counter(detect(sample[:language_size]))
    emb_mean = emb_sample = None
    if embed is not None and sample:
        vectors = np.asarray(embed(sample[:embed_size]), dtype=np.float32)
        emb_mean = [round(float(v), 5) for v in vectors.mean(axis=0)]
        emb_sample = ArraySample.of(vectors)
    return Profile(
        created_at=datetime.now(UTC),
        source=source,
        model_name=model_name,
        model_version=model_version,
        model_digest=model_digest,
        n_sentences=len(texts),
        label_counts={lab: int(counts.get(lab, 0)) for lab in LABELS},
        confidence=[round(float(c), 5) for c in conf],
        descriptors={
            name: [round(float(v), 5) if math.isfinite(v) else None for v in desc[:, j]]
            for j, name in enumerate(DESCRIPTORS)
        },
        language_counts=dict(langs.most_common()),
        embedding_mean=emb_mean,
        embeddings=emb_sample,
        sample_seed=seed,
    )


def reference_profile(
    eval_texts: Sequence[str], scorer: SentimentScorer, *, source: str = "evaluation set"
) -> Profile:
    """The reference profile of a model version, for its registry entry at blessing time."""
    texts = list(eval_texts)
    probs = scorer.predict_proba(texts)
    return build_profile(
        texts,
        probs,
        tokenizer=scorer.tokenizer,
        embed=scorer_embedder(scorer),
        source=source,
        model_name=scorer.name,
        model_version=scorer.version,
        model_digest=scorer.digest,
    )


def save_profile(profile: Profile, path: Path) -> Path:
    """Write a profile as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile.model_dump_json())
    return path


def load_profile(path: Path) -> Profile:
    """Read a profile written by `save_profile`."""
    return Profile.model_validate_json(Path(path).read_text())


# --------------------------------------------------------------------------------------------
# Tests


def _skipped(name: str, method: str, threshold: float, reason: str, gating: bool) -> DriftTest:
    return DriftTest(
        name=name,
        method=method,
        statistic=None,
        p_value=None,
        effect=None,
        threshold=threshold,
        drifted=False,
        status="skipped",
        gating=gating,
        detail={"reason": reason},
    )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def categorical_test(
    name: str,
    reference: Mapping[Any, int],
    current: Mapping[Any, int],
    *,
    psi_threshold: float,
    alpha: float,
    gating: bool = True,
) -> DriftTest:
    """Chi-square test of homogeneity and PSI between two sets of category counts.

    PSI is the symmetrised Kullback-Leibler divergence (scipy's `rel_entr` both ways) of the
    shares, with half a count added to every cell so that a category absent on one side stays
    finite.
    """
    from scipy.special import rel_entr
    from scipy.stats import chi2_contingency

    cats = sorted(set(reference) | set(current))
    ref = np.array([reference.get(c, 0) for c in cats], dtype=np.float64)
    cur = np.array([current.get(c, 0) for c in cats], dtype=np.float64)
    if ref.sum() == 0 or cur.sum() == 0:
        return _skipped(name, "chi2+psi", psi_threshold, "no observations on one side", gating)
    p, q = (cur + 0.5) / (cur + 0.5).sum(), (ref + 0.5) / (ref + 0.5).sum()
    psi = float(np.sum(rel_entr(p, q) + rel_entr(q, p)))
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        stat, pval = 0.0, 1.0
    else:
        res = chi2_contingency(table)
        stat, pval = float(res.statistic), float(res.pvalue)
    drifted = psi > psi_threshold and pval < alpha
    ref_sh = dict(zip(cats, (ref / ref.sum()).round(4).tolist(), strict=True))
    cur_sh = dict(zip(cats, (cur / cur.sum()).round(4).tolist(), strict=True))
    return DriftTest(
        name=name,
        method="chi2+psi",
        statistic=_finite(stat),
        p_value=_finite(pval),
        effect=psi,
        threshold=psi_threshold,
        drifted=drifted,
        status="drift" if drifted else "ok",
        gating=gating,
        detail={"reference_shares": ref_sh, "current_shares": cur_sh},
    )


def continuous_test(
    name: str,
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    *,
    threshold: float,
    alpha: float,
    gating: bool = True,
) -> DriftTest:
    """Two-sample KS test plus the Wasserstein distance in reference standard deviations."""
    from scipy.stats import ks_2samp, wasserstein_distance

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) < 2 or len(cur) < 2:
        return _skipped(name, "ks+wasserstein", threshold, "too few values", gating)
    ks = ks_2samp(ref, cur)
    # A constant reference (e.g. all-zero numeric shares) has no spread; fall back to the
    # spread of both samples together so the ratio stays defined.
    scale = float(np.std(ref)) or float(np.std(np.r_[ref, cur])) or 1.0
    w = float(wasserstein_distance(ref, cur)) / scale
    drifted = w > threshold and float(ks.pvalue) < alpha
    return DriftTest(
        name=name,
        method="ks+wasserstein",
        statistic=float(ks.statistic),
        p_value=float(ks.pvalue),
        effect=w,
        threshold=threshold,
        drifted=drifted,
        status="drift" if drifted else "ok",
        gating=gating,
        detail={
            "reference_median": round(float(np.median(ref)), 4),
            "current_median": round(float(np.median(cur)), 4),
            "reference_std": round(float(np.std(ref)), 4),
            "current_std": round(float(np.std(cur)), 4),
        },
    )


def domain_classifier_test(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    threshold: float,
    alpha: float,
    components: int = 8,
    seed: int = 0,
    gating: bool = True,
) -> DriftTest:
    """Can a classifier tell current from reference rows? Cross-validated ROC AUC.

    Standardised features (embeddings and descriptors), their first `components` principal
    components, logistic regression; out-of-fold scores from stratified 5-fold
    cross-validation; AUC 0.5 means indistinguishable. The p-value is the Mann-Whitney U test
    of the out-of-fold scores of the two groups (U/(n1 n2) is that same AUC).

    Why a few principal components: on the full embedding any two companies' reports are told
    apart (AUC 0.84-0.91 in the benchmark: names, products, currencies), so every new client
    would alarm. The leading components carry register (length, style, language), where
    tweets and headlines differ from report prose; topic spreads over the long tail.
    """
    from scipy.stats import mannwhitneyu
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    name, method = "domain_classifier", "logistic-regression AUC (5-fold)"
    n_ref, n_cur = len(reference), len(current)
    if min(n_ref, n_cur) < 10:
        return _skipped(name, method, threshold, "fewer than 10 rows on one side", gating)
    x = np.vstack([reference, current]).astype(np.float64)
    x = np.nan_to_num(x, nan=0.0)
    y = np.r_[np.zeros(n_ref), np.ones(n_cur)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    steps: list[Any] = [StandardScaler()]
    if x.shape[1] > components:
        # Fitted inside each fold, on that fold's training rows only.
        steps.append(PCA(n_components=components, svd_solver="randomized", random_state=seed))
    clf = make_pipeline(*steps, LogisticRegression(C=0.05, max_iter=2000, class_weight="balanced"))
    scores = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    mw = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    drifted = auc > threshold and float(mw.pvalue) < alpha
    return DriftTest(
        name=name,
        method=method,
        statistic=float(mw.statistic),
        p_value=float(mw.pvalue),
        effect=auc,
        threshold=threshold,
        drifted=drifted,
        status="drift" if drifted else "ok",
        gating=gating,
        detail={
            "reference_rows": n_ref,
            "current_rows": n_cur,
            "features": int(x.shape[1]),
            "components": min(components, int(x.shape[1])),
        },
    )


def _domain_features(profile: Profile, use_embeddings: bool) -> np.ndarray:
    """Rows for the domain classifier: embeddings (when both sides have them) + descriptors."""
    if use_embeddings and profile.embeddings is not None:
        emb = profile.embeddings.array()
        return np.hstack([emb, profile.descriptor_matrix(len(emb))])
    return profile.descriptor_matrix()


def compare(
    reference: Profile,
    current: Profile,
    thresholds: DriftThresholds | None = None,
    *,
    run_id: str | None = None,
) -> DriftReport:
    """Test the current profile against the reference; drifted when any gating test drifts."""
    th = thresholds or DriftThresholds()
    gate = set(th.gating)
    tests: list[DriftTest] = []
    notes: list[str] = []
    if (
        reference.model_digest
        and current.model_digest
        and reference.model_digest != current.model_digest
    ):
        notes.append(
            f"the reference was profiled with other weights (sha256 "
            f"{reference.model_digest[:12]}…, current {current.model_digest[:12]}…): "
            "label and confidence tests compare two models, not two inputs"
        )
    too_small = current.n_sentences < th.min_sentences
    if too_small:
        reason = f"{current.n_sentences} sentences; at least {th.min_sentences} are needed"
        tests.append(_skipped("all", "too small to test", float(th.min_sentences), reason, False))
    else:
        tests.append(
            categorical_test(
                "label_shares",
                reference.label_counts,
                current.label_counts,
                psi_threshold=th.label_psi,
                alpha=th.alpha,
                gating="label_shares" in gate,
            )
        )
        tests.append(
            categorical_test(
                "language",
                reference.language_counts,
                current.language_counts,
                psi_threshold=th.language_psi,
                alpha=th.alpha,
                gating="language" in gate,
            )
        )
        tests.append(
            continuous_test(
                "confidence",
                reference.confidence,
                current.confidence,
                threshold=th.confidence_wasserstein,
                alpha=th.alpha,
                gating="confidence" in gate,
            )
        )
        for name in DESCRIPTORS:
            tests.append(
                continuous_test(
                    name,
                    reference.descriptor(name),
                    current.descriptor(name),
                    threshold=th.wasserstein,
                    alpha=th.alpha,
                    gating=name in gate,
                )
            )
        both_embedded = (
            reference.embeddings is not None
            and current.embeddings is not None
            and reference.embeddings.shape[1] == current.embeddings.shape[1]
        )
        if (
            reference.embeddings is not None
            and current.embeddings is not None
            and not both_embedded
        ):
            notes.append(
                f"embedding sizes differ ({reference.embeddings.shape[1]} vs "
                f"{current.embeddings.shape[1]}): the domain classifier used the "
                "descriptors only"
            )
        elif not both_embedded:
            notes.append(
                "no embeddings on one side: the domain classifier used the descriptors only"
            )
        tests.append(
            domain_classifier_test(
                _domain_features(reference, both_embedded),
                _domain_features(current, both_embedded),
                threshold=th.domain_auc,
                alpha=th.alpha,
                gating="domain_classifier" in gate,
            )
        )
    drifted = any(t.drifted and t.gating for t in tests)
    return DriftReport(
        run_id=run_id,
        created_at=datetime.now(UTC),
        model_name=current.model_name or reference.model_name,
        model_version=current.model_version or reference.model_version,
        model_digest=current.model_digest or reference.model_digest,
        reference_source=reference.source or "reference",
        reference_sentences=reference.n_sentences,
        current_sentences=current.n_sentences,
        tests=tuple(tests),
        drifted=drifted,
        thresholds=th,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Reports


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x != 0 and abs(x) < 10**-digits:
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def report_html(report: DriftReport) -> str:
    """The report as a standalone HTML page; every value from the data is escaped."""
    e = html.escape
    verdict = "DRIFT" if report.drifted else "no drift"
    rows = []
    for t in report.tests:
        detail = "; ".join(f"{k}: {v}" for k, v in t.detail.items())
        rows.append(
            f"<tr class='{e(t.status)}'><td>{e(t.name)}</td><td>{e(t.method)}</td>"
            f"<td>{_fmt(t.effect)}</td><td>{_fmt(t.threshold)}</td>"
            f"<td>{_fmt(t.statistic)}</td><td>{_fmt(t.p_value)}</td>"
            f"<td>{e(t.status)}{'' if t.gating else ' (info)'}</td><td>{e(detail)}</td></tr>"
        )
    meta = {
        "run": report.run_id or "–",
        "model": report.model_name or "–",
        "model version": report.model_version or "–",
        "reference": report.reference_source,
        "reference sentences": report.reference_sentences,
        "current sentences": report.current_sentences,
        "created": report.created_at.isoformat(timespec="seconds"),
    }
    notes = "".join(f"<p class='note'>Note: {e(n)}</p>" for n in report.notes)
    meta_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in meta.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sesame drift report {e(report.run_id or "")}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
tr.drift td {{ background: #fdd; }} tr.skipped td {{ color: #888; }}
.verdict {{ font-size: 1.4em; font-weight: bold; }}
</style></head><body>
<h1>Drift report</h1>
<p class="verdict">{e(verdict)}</p>
<table>{meta_rows}</table>
<table><tr><th>test</th><th>method</th><th>effect</th><th>threshold</th><th>statistic</th>
<th>p-value</th><th>status</th><th>detail</th></tr>
{"".join(rows)}
</table>
{notes}
<p>A test drifts when its effect passes the threshold and its p-value is below
{e(_fmt(report.thresholds.alpha))}.</p>
</body></html>
"""


def write_report(
    report: DriftReport, out_dir: Path, *, current: Profile | None = None
) -> dict[str, Path]:
    """Write report.json and report.html (and the current profile) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html"}
    paths["json"].write_text(report.model_dump_json(indent=1))
    paths["html"].write_text(report_html(report), encoding="utf-8")
    if current is not None:
        paths["profile"] = save_profile(current, out_dir / "profile.json")
    return paths


def monitoring_dir(data_dir: Path) -> Path:
    """Where run reports live: data_dir/monitoring/runs/<run_id>/."""
    return data_dir / "monitoring"


def run_report_dir(data_dir: Path, run_id: str) -> Path:
    """The folder of one run's report (the run id is made file-name safe)."""
    safe = re.sub(r"[^\w.-]+", "_", run_id).strip("._") or "run"
    return monitoring_dir(data_dir) / "runs" / safe


def load_reports(data_dir: Path) -> list[DriftReport]:
    """Every saved run report, oldest first (for the UI's Monitoring page)."""
    reports = []
    for path in sorted((monitoring_dir(data_dir) / "runs").glob("*/report.json")):
        try:
            reports.append(DriftReport.model_validate_json(path.read_text()))
        except ValueError as exc:
            _log.warning("%s: unreadable drift report (%s)", path, exc)
    return sorted(reports, key=lambda r: r.created_at)


def stored_reports(store: ResultStore, limit: int = 500) -> list[DriftReport]:
    """The drift reports in the results store, oldest first (what the UI and `sesame monitor
    history` show; the store is shared by every machine of a cluster, unlike report files)."""
    out = []
    for row in store.monitor_reports("drift", limit=limit):
        try:
            out.append(DriftReport.model_validate(row.report))
        except ValueError as exc:
            _log.warning("monitor report %s: unreadable (%s)", row.id, exc)
    return sorted(out, key=lambda r: r.created_at)


# --------------------------------------------------------------------------------------------
# Quality: model-reviewer agreement and feedback for training


class Feedback(_Model):
    """One reviewer decision on one sentence: the model's label and the reviewer's."""

    sentence_key: str
    """Identifies the sentence across reviews (e.g. "<doc_id>:<index>")."""
    model_version: str
    model_label: Label
    reviewer_label: Label
    reviewed_at: datetime
    text: str | None = None


class AgreementRow(_Model):
    """Agreement of one model version with reviewers in one period."""

    model_version: str
    period: str
    n: int
    agreed: int
    rate: float
    ci_low: float
    ci_high: float
    """95% Wilson interval of the rate."""
    kappa: float | None
    """Cohen's kappa of model vs reviewer labels (None when undefined)."""
    below_threshold: bool


class AgreementReport(_Model):
    """Model-reviewer agreement per model version over time, and which fall below threshold."""

    threshold: float
    min_reviews: int
    period: str
    rows: tuple[AgreementRow, ...]
    overall: tuple[AgreementRow, ...]
    """One row per model version over all time."""

    @property
    def alerts(self) -> list[AgreementRow]:
        """Periods and versions whose agreement fell below the threshold."""
        return [r for r in (*self.rows, *self.overall) if r.below_threshold]


def latest_feedback(feedback: Iterable[Feedback]) -> list[Feedback]:
    """The latest review of each sentence (reviews are append-only; the last word counts)."""
    latest: dict[str, Feedback] = {}
    for f in sorted(feedback, key=lambda f: f.reviewed_at):
        latest[f.sentence_key] = f
    return list(latest.values())


def _agreement_row(
    version: str, period: str, items: list[Feedback], threshold: float, min_reviews: int
) -> AgreementRow:
    from scipy.stats import binomtest
    from sklearn.metrics import cohen_kappa_score

    n = len(items)
    agreed = sum(1 for f in items if f.model_label == f.reviewer_label)
    ci = binomtest(agreed, n).proportion_ci(confidence_level=0.95, method="wilson")
    model = [f.model_label for f in items]
    reviewer = [f.reviewer_label for f in items]
    kappa = None
    if len(set(model) | set(reviewer)) > 1:
        k = float(cohen_kappa_score(model, reviewer, labels=list(LABELS)))
        kappa = k if math.isfinite(k) else None
    rate = agreed / n
    return AgreementRow(
        model_version=version,
        period=period,
        n=n,
        agreed=agreed,
        rate=rate,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        kappa=kappa,
        below_threshold=n >= min_reviews and rate < threshold,
    )


def _period(ts: datetime, period: Literal["day", "week", "month"]) -> str:
    if period == "day":
        return ts.date().isoformat()
    if period == "week":
        year, week, _ = ts.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{ts.year}-{ts.month:02d}"


def agreement(
    feedback: Iterable[Feedback],
    *,
    threshold: float = 0.8,
    min_reviews: int = 20,
    period: Literal["day", "week", "month"] = "week",
) -> AgreementReport:
    """Model-reviewer agreement per model version and period; below threshold raises an alert.

    A period counts only with at least `min_reviews` reviews, so one early disagreement does
    not raise an alarm.
    """
    items = latest_feedback(feedback)
    groups: dict[tuple[str, str], list[Feedback]] = {}
    by_version: dict[str, list[Feedback]] = {}
    for f in items:
        groups.setdefault((f.model_version, _period(f.reviewed_at, period)), []).append(f)
        by_version.setdefault(f.model_version, []).append(f)
    rows = tuple(
        _agreement_row(v, p, g, threshold, min_reviews) for (v, p), g in sorted(groups.items())
    )
    overall = tuple(
        _agreement_row(v, "all", g, threshold, min_reviews) for v, g in sorted(by_version.items())
    )
    for r in (*rows, *overall):
        if r.below_threshold:
            _log.warning(
                "model version %s agrees with reviewers on %.0f%% of %d sentences "
                "(%s), below %.0f%%",
                r.model_version,
                100 * r.rate,
                r.n,
                r.period,
                100 * threshold,
            )
    return AgreementReport(
        threshold=threshold, min_reviews=min_reviews, period=period, rows=rows, overall=overall
    )


def feedback_examples(feedback: Iterable[Feedback]) -> list[tuple[str, Label]]:
    """Reviewed sentences as (text, reviewer label) training rows, latest review per sentence.

    Confirmations count as much as overrides: both are a human label. Sorted by text so the
    digest does not depend on review order.
    """
    rows = {(f.text, f.reviewer_label) for f in latest_feedback(feedback) if f.text}
    return sorted(rows)  # type: ignore[arg-type]


def feedback_digest(rows: Iterable[tuple[str, str]]) -> str:
    """sha256 of the feedback training rows (canonical JSON), for the model's lineage."""
    canonical = json.dumps(sorted(rows), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Integration: references with model versions, runs from the results store


class MonitorError(SesameError):
    """Monitoring could not run: no such run, no reference profile, no model to embed with."""

    stage: Stage = "monitor"
    code = "monitor"


def write_reference(
    model_dir: Path,
    eval_texts: Sequence[str],
    scorer: SentimentScorer,
    *,
    source: str = "evaluation set",
) -> Path:
    """Profile the evaluation set and save it as `reference_profile.json` in the model dir.

    Call it at blessing time before the version is registered: the file then travels with the
    model's artifacts (the weights digest does not cover it).
    """
    profile = reference_profile(eval_texts, scorer, source=source)
    return save_profile(profile, Path(model_dir) / REFERENCE_FILE)


def reference_cache_path(data_dir: Path, model_digest: str) -> Path:
    """Where a reference made after registration (`sesame monitor reference`) is kept; it
    takes precedence over the one in the model directory."""
    return monitoring_dir(data_dir) / "reference" / f"{model_digest[:16]}.json"


def find_reference(
    data_dir: Path, *, model_dir: Path | None, model_digest: str | None
) -> Profile | None:
    """The reference profile of a model: one made here (`sesame monitor reference`) first,
    else the one saved in its directory at blessing."""
    candidates = []
    if model_digest:
        candidates.append(reference_cache_path(data_dir, model_digest))
    if model_dir is not None:
        candidates.append(Path(model_dir) / REFERENCE_FILE)
    for path in candidates:
        if path.is_file():
            profile = load_profile(path)
            if model_digest and profile.model_digest and profile.model_digest != model_digest:
                _log.warning(
                    "%s was profiled with weights %s, not %s; ignored",
                    path,
                    profile.model_digest[:12],
                    model_digest[:12],
                )
                continue
            return profile
    return None


def run_sentences(
    store: ResultStore, run_id: str, kinds: Sequence[str] = ("sentence",)
) -> tuple[list[str], np.ndarray]:
    """The scored sentences of a run's results and their (n, 3) probabilities (LABELS order).

    A run's inputs point at their results; a result kept from an earlier run (same document,
    model and settings) belongs to this run all the same. Only units of `kinds` count: the
    reference is profiled on evaluation sentences, and headings or list items beside them
    would read as a shift towards short texts.
    """
    result_ids = sorted(
        {d.result_id for d in store.run_documents(run_id) if d.result_id is not None}
    )
    if not result_ids:
        result_ids = sorted(r.result_id for r in store.list_results(run_id=run_id))
    texts: list[str] = []
    rows: list[list[float]] = []
    for result_id in result_ids:
        for sentence, score in store.sentences(result_id):
            if score is not None and sentence.kind in kinds:
                texts.append(sentence.text)
                probs = {str(k): v for k, v in score.probabilities.items()}
                rows.append([probs.get(lab, 0.0) for lab in LABELS])
    return texts, np.asarray(rows, dtype=np.float64).reshape(len(rows), len(LABELS))


def run_scorer(settings: Settings, run: RunInfo) -> tuple[SentimentScorer, Path]:
    """Load the model that scored a run (its registry version, or its model directory)."""
    from models import registry
    from models.scoring import SentimentScorer

    stamp = run.stamp
    if stamp is None:
        raise MonitorError(f"run {run.run_id} has no model stamp; it cannot be profiled.")
    scoring = settings.scoring
    if stamp.model_version:
        info = registry.get_version(settings, stamp.model_name, stamp.model_version)
        if info is None:
            raise MonitorError(
                f"run {run.run_id}: model {stamp.model_name} version "
                f"{stamp.model_version} is no longer in the registry."
            )
        path = registry.fetch_version(settings, info)
    else:
        recorded = (run.settings.get("scoring") or {}) if isinstance(run.settings, dict) else {}
        model_dir = recorded.get("model_dir") if isinstance(recorded, dict) else None
        if not model_dir:
            raise MonitorError(
                f"run {run.run_id} used an unregistered model whose directory "
                "was not recorded; pass --model-dir."
            )
        path = Path(str(model_dir))
    scorer = SentimentScorer.from_dir(
        path,
        scoring.model_copy(update={"model_dir": None}),
        name=stamp.model_name,
        version=stamp.model_version,
        expected_digest=stamp.model_digest,
    )
    return scorer, path


def monitor_run(
    settings: Settings,
    run_id: str | None = None,
    *,
    store: ResultStore | None = None,
    scorer: SentimentScorer | None = None,
    model_dir: Path | None = None,
    reference: Profile | None = None,
    thresholds: DriftThresholds | None = None,
    save: bool = True,
) -> tuple[DriftReport, dict[str, Path]]:
    """Profile a run's sentences, test them against the model's reference, save the report.

    `run_id` None takes the latest run. The analyze and batch commands call this at the end of
    a run with the scorer they already loaded; `sesame monitor report` calls it afterwards.
    Reports go to data_dir/monitoring/runs/<run_id>/ and the store's monitor_reports (kind
    "drift").
    """
    from app.store import ResultStore

    store = store or ResultStore.from_settings(settings)
    if run_id is None:
        runs = store.list_runs(limit=1)
        if not runs:
            raise MonitorError("the results store holds no runs yet; analyze some reports first.")
        run = runs[0]
    else:
        found = store.get_run(run_id)
        if found is None:
            raise MonitorError(
                f"no run {run_id} in the results store; list runs with "
                "`sesame batch status` or omit RUN for the latest."
            )
        run = found
    texts, probs = run_sentences(store, run.run_id)
    if scorer is None:
        if model_dir is not None:
            from models.scoring import SentimentScorer

            stamp = run.stamp
            scorer = SentimentScorer.from_dir(
                model_dir,
                settings.scoring.model_copy(update={"model_dir": None}),
                name=stamp.model_name if stamp else None,
                version=stamp.model_version if stamp else None,
            )
        else:
            scorer, model_dir = run_scorer(settings, run)
    else:
        model_dir = model_dir or scorer.path
    digest = scorer.digest
    if reference is None:
        reference = find_reference(settings.data_dir, model_dir=model_dir, model_digest=digest)
    if reference is None:
        raise MonitorError(
            f"model {scorer.name} version {scorer.version} "
            f"(sha256 {str(digest)[:12]}…) has no reference profile. Make one with `sesame "
            "monitor reference`, or bless the model again (the reference is saved at blessing)."
        )
    current = build_profile(
        texts,
        probs,
        tokenizer=scorer.tokenizer,
        embed=scorer_embedder(scorer),
        source=f"run {run.run_id}",
        model_name=scorer.name,
        model_version=scorer.version,
        model_digest=digest,
    )
    report = compare(reference, current, thresholds, run_id=run.run_id)
    paths: dict[str, Path] = {}
    if save:
        paths = write_report(report, run_report_dir(settings.data_dir, run.run_id), current=current)
        store.add_monitor_report(
            "drift", report.model_dump(mode="json"), model_digest=digest, run_id=run.run_id
        )
    _log.info("%s", report.summary())
    return report, paths


def drift_verdict(
    settings: Settings, run_id: str, store: ResultStore, scorer: SentimentScorer | None = None
) -> tuple[str, bool, Path | None]:
    """A finished run's drift check for the end of analyze, batch and upload runs: (one line,
    drifted, the report's file). Monitoring that cannot run (no reference profile, no run) is
    said in the line, not raised: drift is a warning there, never a failed analysis."""
    try:
        report, paths = monitor_run(settings, run_id, store=store, scorer=scorer)
    except SesameError as e:
        return f"drift check skipped: {e.message}", False, None
    return report.summary(), report.drifted, paths.get("html") or next(iter(paths.values()), None)


def make_reference(
    settings: Settings,
    *,
    model: str | None = None,
    texts: Path | None = None,
    run_id: str | None = None,
) -> tuple[Profile, Path]:
    """Profile a reference for a model and keep it in the data directory (it then wins).

    From a trusted run's sentences (`run_id`, with the run's model), from a text file of
    sentences, or else from the frozen evaluation set logged with the registered version.
    """
    from app.store import ResultStore
    from models import registry
    from models.scoring import SentimentScorer

    if run_id is not None:
        store = ResultStore.from_settings(settings)
        run = store.get_run(run_id)
        if run is None:
            raise MonitorError(f"no run {run_id} in the results store.")
        scorer, _ = run_scorer(settings, run)
        lines, probs = run_sentences(store, run_id)
        if not lines:
            raise MonitorError(f"run {run_id} has no scored sentences.")
        profile = build_profile(
            lines,
            probs,
            tokenizer=scorer.tokenizer,
            embed=scorer_embedder(scorer),
            source=f"run {run_id}",
            model_name=scorer.name,
            model_version=scorer.version,
            model_digest=scorer.digest,
        )
        return profile, save_profile(
            profile, reference_cache_path(settings.data_dir, scorer.digest)
        )
    if model is not None:
        name, ref = registry.parse_ref(model, settings.scoring.model)
        settings = settings.model_copy(
            update={
                "scoring": settings.scoring.model_copy(
                    update={"model": name, "version": ref, "model_dir": None}
                )
            }
        )
    resolved = registry.resolve_model(settings)
    if texts is not None:
        lines = [
            x.strip() for x in Path(texts).read_text(encoding="utf-8").splitlines() if x.strip()
        ]
        source = Path(texts).name
    else:
        from models.evaluate import read_eval_file

        info = registry.get_version(settings, resolved.name, resolved.version or "")
        eval_csv = registry.eval_set_of(settings, info) if info else None
        if eval_csv is None:
            raise MonitorError(
                f"{resolved.name} v{resolved.version} has no frozen evaluation "
                "set in the registry; give report sentences with --texts."
            )
        lines = [e.text for e in read_eval_file(eval_csv)[0]]
        source = f"evaluation set of {resolved.name} v{resolved.version}"
    if not lines:
        raise MonitorError("no reference sentences")
    scorer = SentimentScorer.from_dir(
        resolved.path,
        settings.scoring,
        name=resolved.name,
        version=resolved.version,
        expected_digest=resolved.digest,
    )
    profile = reference_profile(lines, scorer, source=source)
    return profile, save_profile(profile, reference_cache_path(settings.data_dir, scorer.digest))


def run_figures(store: ResultStore, run_id: str) -> dict[str, Any]:
    """System figures of a run for the Monitoring page: documents, pages, sentences, rates,
    failures, and peak memory when the run recorded it in its summary (`peak_rss_mb`)."""
    run = store.get_run(run_id)
    if run is None:
        raise MonitorError(f"no run {run_id} in the results store.")
    docs = store.run_documents(run_id)
    results = {r.result_id: r for r in store.list_results(run_id=run_id)}
    for d in docs:
        if d.result_id is not None and d.result_id not in results:
            results.update(
                {
                    r.result_id: r
                    for r in store.list_results(doc_id=d.doc_id)
                    if r.result_id == d.result_id
                }
            )
    pages = sum(r.n_pages for r in results.values())
    sentences = sum(r.n_sentences for r in results.values())
    elapsed = None
    if run.finished_at is not None:
        elapsed = (run.finished_at - run.started_at).total_seconds()
    summary = run.summary if isinstance(run.summary, dict) else {}
    peak = summary.get("peak_rss_mb")
    return {
        "run_id": run_id,
        "kind": run.kind,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "model_version": run.stamp.model_version if run.stamp else None,
        "documents": len(docs) or len(results),
        "document_counts": dict(run.document_counts),
        "failed": int(run.document_counts.get("failed", 0)),
        "pages": pages,
        "sentences": sentences,
        "elapsed_s": elapsed,
        "pages_per_s": round(pages / elapsed, 3) if elapsed else None,
        "sentences_per_s": round(sentences / elapsed, 3) if elapsed else None,
        "peak_rss_mb": float(peak) if isinstance(peak, int | float) else None,
        "errors": [d.error for d in docs if d.error],
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (for a run's summary: `peak_rss_mb`)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def feedback_from_store(store: ResultStore) -> list[Feedback]:
    """Every reviewed sentence as feedback: the model's label (its score) vs the reviewer's."""
    out: list[Feedback] = []
    for result in store.list_results():
        actions = [
            a
            for a in store.reviews(result_id=result.result_id)
            if a.action in ("agree", "override")
            and a.sentence_index is not None
            and a.label is not None
        ]
        if not actions:
            continue
        scored = {
            s.index: (s.text, sc) for s, sc in store.sentences(result.result_id) if sc is not None
        }
        version = result.model_version or f"unregistered:{result.model_digest[:12]}"
        for a in actions:
            if a.sentence_index not in scored:
                continue
            text, score = scored[a.sentence_index]
            out.append(
                Feedback(
                    sentence_key=f"{result.result_id}:{a.sentence_index}",
                    model_version=version,
                    model_label=score.label,
                    reviewer_label=a.label,
                    reviewed_at=a.created_at,
                    text=text,
                )
            )
    return out


def export_feedback(settings: Settings, path: Path) -> tuple[Path, int, str]:
    """Write reviewed sentences as a `text,label` CSV for `sesame train --feedback`.

    Returns (path, rows, digest). Rows are sorted, so the same reviews give the same file and
    digest; the file is read like any extra training data and carries its own digest in the
    model's lineage.
    """
    import csv

    from app.store import ResultStore

    rows = feedback_examples(feedback_from_store(ResultStore.from_settings(settings)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path, len(rows), feedback_digest(rows)
