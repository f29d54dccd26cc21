"""Evaluator: metrics of a model on labelled examples, and the gate that blesses a candidate.

Metrics: accuracy, macro-F1 (the primary metric), per-class precision/recall/F1, the confusion
matrix, expected calibration error, and slices by sentence length. A candidate is blessed only
above absolute floors and when it is not worse than the champion, measured on the same frozen
evaluation set, beyond a set tolerance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from app.config import GateOptions, ScoringOptions
from app.errors import DataValidationError
from app.records import LABELS, Record
from models.data import Example, deduplicate, examples_digest, load_examples
from models.diagnostics import Interval, calibration_error
from models.scoring import SentimentScorer

__all__ = ["GateOptions", "calibration_error"]  # re-exported: their callers import them here

_log = logging.getLogger(__name__)

PredictProba = Callable[[Sequence[str]], np.ndarray]
"""texts -> probabilities (n, 3) with columns in LABELS order."""

LENGTH_SLICES: tuple[tuple[str, int, int], ...] = (
    ("short (<=12 words)", 0, 12),
    ("medium (13-25 words)", 13, 25),
    ("long (>25 words)", 26, 10_000),
)


class ClassMetrics(Record):
    """Precision, recall and F1 of one label."""

    precision: float
    recall: float
    f1: float
    support: int


class SliceMetrics(Record):
    """Accuracy and macro-F1 on one slice of the evaluation set."""

    n: int
    accuracy: float
    macro_f1: float


class EvalMetrics(Record):
    """Everything measured about a model on one evaluation set."""

    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: tuple[tuple[int, ...], ...]
    """Rows: true label, columns: predicted label, both in LABELS order."""
    calibration_error: float
    """Expected calibration error of the top-class confidence (10 equal-width bins)."""
    slices: dict[str, SliceMetrics] = {}
    eval_digest: str = ""

    def flat(self, prefix: str = "") -> dict[str, float]:
        """Scalar metrics as flat names, for MLflow."""
        out = {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}macro_f1": self.macro_f1,
            f"{prefix}calibration_error": self.calibration_error,
        }
        for label, m in self.per_class.items():
            out |= {
                f"{prefix}{label}_precision": m.precision,
                f"{prefix}{label}_recall": m.recall,
                f"{prefix}{label}_f1": m.f1,
            }
        for name, s in self.slices.items():
            key = name.split(" ")[0]
            out |= {
                f"{prefix}slice_{key}_accuracy": s.accuracy,
                f"{prefix}slice_{key}_macro_f1": s.macro_f1,
            }
        return out

    def table(self) -> str:
        """A small plain-text report: headline numbers, per-class rows, confusion matrix."""
        lines = [
            f"n={self.n}  accuracy={self.accuracy:.3f}  macro-F1={self.macro_f1:.3f}  "
            f"ECE={self.calibration_error:.3f}",
            f"{'label':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}",
        ]
        for label, m in self.per_class.items():
            lines.append(
                f"{label:<10}{m.precision:>10.3f}{m.recall:>8.3f}{m.f1:>8.3f}{m.support:>9}"
            )
        lines.append("confusion (rows true, columns predicted): " + " ".join(LABELS))
        for label, row in zip(LABELS, self.confusion, strict=True):
            lines.append(f"  {label:<10}" + "".join(f"{v:>9}" for v in row))
        for name, s in self.slices.items():
            lines.append(
                f"slice {name:<22} n={s.n:<5} accuracy={s.accuracy:.3f} macro-F1={s.macro_f1:.3f}"
            )
        return "\n".join(lines)


class Blessing(Record):
    """The Evaluator's verdict on one candidate, with every reason."""

    blessed: bool
    reasons: tuple[str, ...]
    primary_metric: str
    candidate: float
    champion: float | None = None
    champion_version: str | None = None
    gate: dict[str, float | str] = {}
    slices: dict[str, str] = {}
    """Each evaluation slice's verdict: passed, failed or skipped (not measured)."""

    def summary(self) -> str:
        """One paragraph a person reads."""
        verdict = "BLESSED" if self.blessed else "NOT BLESSED"
        return f"{verdict}: " + "; ".join(self.reasons)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    m = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(m, (y, pred), 1)
    return m


def _macro_f1(m: np.ndarray) -> float:
    f1s = []
    for i in range(len(LABELS)):
        tp, predicted, actual = m[i, i], m[:, i].sum(), m[i, :].sum()
        f1s.append(_f1(tp / predicted if predicted else 0.0, tp / actual if actual else 0.0))
    return float(np.mean(f1s))


def compute_metrics(
    labels: Sequence[str], proba: np.ndarray, texts: Sequence[str] | None = None
) -> EvalMetrics:
    """Metrics from true labels and predicted probabilities (columns in LABELS order)."""
    unknown = sorted({lab for lab in labels if lab not in LABELS})
    if unknown:
        raise DataValidationError(f"labels {unknown} are not among {list(LABELS)}; map them first.")
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (len(labels), len(LABELS)):
        raise ValueError(
            f"probabilities have shape {proba.shape}; expected ({len(labels)}, {len(LABELS)})."
        )
    y = np.array([LABELS.index(lab) for lab in labels], dtype=int)
    pred = proba.argmax(axis=1) if len(y) else np.zeros(0, dtype=int)
    m = _confusion(y, pred)
    per_class = {}
    for i, label in enumerate(LABELS):
        tp, predicted, actual = int(m[i, i]), int(m[:, i].sum()), int(m[i, :].sum())
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        per_class[label] = ClassMetrics(
            precision=round(p, 4), recall=round(r, 4), f1=round(_f1(p, r), 4), support=actual
        )
    slices: dict[str, SliceMetrics] = {}
    if texts is not None:
        words = np.array([len(t.split()) for t in texts])
        for name, lo, hi in LENGTH_SLICES:
            mask = (words >= lo) & (words <= hi)
            if mask.any():
                sm = _confusion(y[mask], pred[mask])
                slices[name] = SliceMetrics(
                    n=int(mask.sum()),
                    accuracy=round(float(np.trace(sm) / mask.sum()), 4),
                    macro_f1=round(_macro_f1(sm), 4),
                )
    return EvalMetrics(
        n=len(y),
        accuracy=round(float(np.trace(m) / len(y)), 4) if len(y) else 0.0,
        macro_f1=round(_macro_f1(m), 4),
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in m),
        calibration_error=round(calibration_error(proba, y), 4),
        slices=slices,
    )


def evaluate_predict(
    predict_proba: PredictProba, examples: Sequence[Example], eval_digest: str = ""
) -> EvalMetrics:
    """Metrics of any predict function (texts -> (n, 3) probabilities) on labelled examples."""
    texts = [e.text for e in examples]
    metrics = compute_metrics([e.label for e in examples], predict_proba(texts), texts)
    return metrics.model_copy(update={"eval_digest": eval_digest})


def load_scorer(
    model_dir: Path,
    options: ScoringOptions | None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    expected_digest: str | None = None,
) -> SentimentScorer:
    """A SentimentScorer over a model directory (scoring options default to production's)."""
    return SentimentScorer.from_dir(
        Path(model_dir),
        options or ScoringOptions(),
        name=name,
        version=version,
        expected_digest=expected_digest,
    )


def evaluate_dir(
    model_dir: Path,
    examples: Sequence[Example],
    eval_digest: str = "",
    options: ScoringOptions | None = None,
) -> EvalMetrics:
    """Metrics of a Hugging Face model directory on labelled examples."""
    scorer = load_scorer(model_dir, options)
    return evaluate_predict(scorer.predict_proba, examples, eval_digest)


def bless(
    candidate: EvalMetrics,
    champion: EvalMetrics | None,
    gate: GateOptions | None = None,
    champion_version: str | None = None,
) -> Blessing:
    """The gate: absolute floors, then no regression against the champion beyond the tolerance."""
    gate = gate or GateOptions()
    key = gate.primary_metric
    value = float(getattr(candidate, key))
    reasons: list[str] = []
    ok = True
    if candidate.accuracy < gate.min_accuracy:
        ok = False
        reasons.append(
            f"accuracy {candidate.accuracy:.3f} is below the floor {gate.min_accuracy:.3f}"
        )
    if candidate.macro_f1 < gate.min_macro_f1:
        ok = False
        reasons.append(
            f"macro-F1 {candidate.macro_f1:.3f} is below the floor {gate.min_macro_f1:.3f}"
        )
    if ok:
        reasons.append(
            f"accuracy {candidate.accuracy:.3f} and macro-F1 "
            f"{candidate.macro_f1:.3f} clear the floors ({gate.min_accuracy:.2f} / "
            f"{gate.min_macro_f1:.2f})"
        )
    champ_value = None
    if champion is None:
        reasons.append("no champion to compare with")
    else:
        if (
            champion.eval_digest
            and candidate.eval_digest
            and champion.eval_digest != candidate.eval_digest
        ):
            raise ValueError("candidate and champion were measured on different evaluation sets")
        champ_value = float(getattr(champion, key))
        delta = value - champ_value
        if delta < -gate.tolerance:
            ok = False
            reasons.append(
                f"{key} {value:.3f} is worse than the champion's {champ_value:.3f} "
                f"(v{champion_version}) by {-delta:.3f}, more than the tolerance "
                f"{gate.tolerance:.3f}"
            )
        else:
            reasons.append(
                f"{key} {value:.3f} vs the champion's {champ_value:.3f} "
                f"(v{champion_version}): {delta:+.3f}, within tolerance "
                f"{gate.tolerance:.3f}"
            )
    return Blessing(
        blessed=ok,
        reasons=tuple(reasons),
        primary_metric=key,
        candidate=value,
        champion=champ_value,
        champion_version=champion_version,
        gate={
            "min_accuracy": gate.min_accuracy,
            "min_macro_f1": gate.min_macro_f1,
            "tolerance": gate.tolerance,
            "primary_metric": key,
        },
    )


class SliceResult(Record):
    """Candidate and champion on one named evaluation slice, with intervals and the verdict."""

    name: str
    source: str
    """The slice's file, or the run's frozen split."""
    description: str = ""
    status: Literal["passed", "failed", "skipped"]
    reasons: tuple[str, ...]
    eval_digest: str = ""
    metrics: EvalMetrics | None = None
    intervals: dict[str, Interval] = {}
    """Percentile bootstrap intervals of accuracy, macro-F1, negative recall and ECE."""
    champion: EvalMetrics | None = None
    champion_intervals: dict[str, Interval] = {}
    gate: dict[str, float | str] = {}


class GateResult(Record):
    """Candidate and champion measured on one frozen evaluation set, and the verdict."""

    candidate: EvalMetrics
    champion: EvalMetrics | None
    champion_version: str | None
    blessing: Blessing
    slices: dict[str, SliceResult] = {}
    """Every evaluation slice by name, the run's own split ("split") first."""


def read_eval_file(path: Path) -> tuple[list[Example], str]:
    """A frozen evaluation set from a `text,label` CSV (or any format sesame reads), with digest."""
    examples, _ = deduplicate(load_examples([Path(path)]).examples)
    return examples, examples_digest(examples)
