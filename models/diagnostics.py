"""How sure a measurement is and where a model goes wrong: bootstrap intervals, confident errors.

Evaluation sets of report sentences are small (reports_dev has 255), so every headline figure
carries a percentile bootstrap interval (resampling sentences with replacement). The most
confident mistakes steer the work: they show what a model believes wrongly, not what it is
unsure of.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.records import LABELS, Label, Record

BOOTSTRAP_METRICS = ("accuracy", "macro_f1", "negative_recall", "calibration_error")
NEGATIVE = LABELS.index("negative")
CALIBRATION_BINS = 10


def calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: |confidence - accuracy| per bin, weighted by the bin's size."""
    if len(y) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(conf[mask].mean() - correct[mask].mean())
    return float(ece)


class Interval(Record):
    """A percentile bootstrap confidence interval of one metric."""

    low: float
    high: float


class Mistake(Record):
    """One sentence the model got wrong, with both labels and its probabilities."""

    text: str
    label: Label
    predicted: Label
    confidence: float
    probabilities: dict[Label, float]


def _confusions(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Confusion matrices (B, k, k) of B resamples given as index rows (B, n)."""
    k = len(LABELS)
    cells = y[idx] * k + pred[idx]
    offsets = np.arange(idx.shape[0])[:, None] * k * k
    flat = np.bincount((cells + offsets).ravel(), minlength=idx.shape[0] * k * k)
    return flat.reshape(idx.shape[0], k, k)


def _macro_f1(m: np.ndarray) -> np.ndarray:
    tp = np.diagonal(m, axis1=1, axis2=2).astype(float)
    predicted, actual = m.sum(axis=1), m.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(predicted > 0, tp / predicted, 0.0)
        r = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return f1.mean(axis=1)


def _ece(conf: np.ndarray, correct: np.ndarray, idx: np.ndarray, bins: int) -> np.ndarray:
    """Expected calibration error per resample (equal-width bins, as `calibration_error`)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)[idx]
    c, ok = conf[idx], correct[idx]
    n = idx.shape[1]
    total = np.zeros(idx.shape[0])
    for b in range(bins):
        mask = which == b
        count = mask.sum(axis=1)
        gap = np.abs((c * mask).sum(axis=1) - (ok * mask).sum(axis=1))
        total += np.where(count > 0, gap, 0.0)
    return total / n


def bootstrap_intervals(
    labels: Sequence[str],
    proba: np.ndarray,
    *,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    bins: int = 10,
) -> dict[str, Interval]:
    """Percentile bootstrap intervals of accuracy, macro-F1, negative recall and ECE."""
    y = np.array([LABELS.index(lab) for lab in labels], dtype=int)
    proba = np.asarray(proba, dtype=float)
    if len(y) == 0 or samples <= 0:
        return {}
    pred = proba.argmax(axis=1)
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {m: [] for m in BOOTSTRAP_METRICS}
    conf, correct = proba.max(axis=1), (pred == y).astype(float)
    for start in range(0, samples, 250):  # bounded memory: 250 resamples at a time
        idx = rng.integers(0, len(y), size=(min(250, samples - start), len(y)))
        m = _confusions(y, pred, idx)
        n_neg = m[:, NEGATIVE, :].sum(axis=1)
        out["accuracy"] += list(np.trace(m, axis1=1, axis2=2) / len(y))
        out["macro_f1"] += list(_macro_f1(m))
        out["negative_recall"] += list(
            np.where(n_neg > 0, m[:, NEGATIVE, NEGATIVE] / np.maximum(n_neg, 1), 0.0)
        )
        out["calibration_error"] += list(_ece(conf, correct, idx, bins))
    tail = (1 - confidence) / 2 * 100
    return {
        name: Interval(
            low=round(float(np.percentile(v, tail)), 4),
            high=round(float(np.percentile(v, 100 - tail)), 4),
        )
        for name, v in out.items()
    }


def confident_mistakes(
    texts: Sequence[str], labels: Sequence[str], proba: np.ndarray, n: int
) -> list[Mistake]:
    """The `n` mistakes made with the highest confidence, most confident first."""
    proba = np.asarray(proba, dtype=float)
    rows = []
    for text, label, p in zip(texts, labels, proba, strict=True):
        best = int(p.argmax())
        if LABELS[best] != label:
            rows.append(
                Mistake(
                    text=text,
                    label=label,
                    predicted=LABELS[best],  # type: ignore[arg-type]
                    confidence=round(float(p[best]), 4),
                    probabilities={
                        lab: round(float(v), 4) for lab, v in zip(LABELS, p, strict=True)
                    },
                )
            )
    # stable: equal confidences keep the file's order
    rows.sort(key=lambda m: -m.confidence)
    return rows[: max(n, 0)]
