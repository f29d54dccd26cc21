"""Evaluation slices: the gate measures a candidate on named frozen sets, not one number.

A model can gain on news (PhraseBank's split) and lose on report language; a single metric
hides it. `models.gate.gate_with_slices()` measures candidate and champion on the run's own
frozen split and on every slice of `EvaluationOptions` (report language by default), each with
its own floors and no-regression tolerance, every figure with a bootstrap interval, using the
measures and verdicts here. The candidate is blessed only when the split and every measured
slice pass. A slice whose file is absent is skipped with a note that says so (or blocks the
blessing with `if_missing="block"`); it is never counted as passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.config import EvaluationOptions, SliceSpec
from app.errors import DataValidationError
from models.data import Example, deduplicate, load_examples, split_examples
from models.diagnostics import Interval, bootstrap_intervals
from models.evaluate import (
    EvalMetrics,
    PredictProba,
    SliceResult,
    compute_metrics,
    read_eval_file,
)

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SPLIT = "split"
"""The name of the run's own frozen evaluation split among the slices."""


def resolve_path(path: Path) -> Path:
    """A slice file: absolute as given; relative from the working directory, else the project."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return ROOT / path


def load_slice(spec: SliceSpec) -> tuple[list[Example], str] | None:
    """The slice's examples and digest; None when its file is absent."""
    path = resolve_path(spec.path)
    if not path.is_file():
        return None
    if spec.eval_share is None:
        return read_eval_file(path)
    examples, _ = deduplicate(load_examples([path]).examples)
    split = split_examples(examples, spec.eval_share, spec.split_seed)
    return list(split.eval), split.eval_digest


def read_set(path_or_slice: Path, options: EvaluationOptions) -> tuple[list[Example], str, str]:
    """A labelled file, or the evaluation slice of that name: (examples, digest, what it is)."""
    named = {spec.name: spec for spec in options.slices}
    name = str(path_or_slice)
    if not Path(path_or_slice).is_file() and name in named:
        found = load_slice(named[name])
        if found is None:
            raise DataValidationError(
                f"the evaluation slice {name}'s file {named[name].path} is not on this machine; "
                "give a labelled file (text,label CSV) instead."
            )
        return found[0], found[1], f"the evaluation slice {name}"
    examples, digest = read_eval_file(Path(path_or_slice))
    return examples, digest, name


def slice_examples(settings: Any) -> list[Example]:
    """Every example of the settings' evaluation slices that are present (held out of training,
    distillation and calibration, whatever the run's own data)."""
    out: list[Example] = []
    for spec in settings.evaluation.slices:
        loaded = load_slice(spec)
        if loaded is not None:
            out += loaded[0]
    return out


def measure(
    predict: PredictProba, examples: Sequence[Example], digest: str, options: EvaluationOptions
) -> tuple[EvalMetrics, dict[str, Any]]:
    """Metrics of a predict function on a slice, and their bootstrap intervals."""
    texts = [e.text for e in examples]
    labels = [e.label for e in examples]
    proba = predict(texts)
    metrics = compute_metrics(labels, proba, texts).model_copy(update={"eval_digest": digest})
    intervals = bootstrap_intervals(
        labels,
        proba,
        samples=options.bootstrap_samples,
        confidence=options.confidence,
        seed=options.seed,
    )
    return metrics, intervals


def negative_recall(metrics: EvalMetrics) -> float:
    """Recall of the negative class (what an auditor reading risk factors loses)."""
    return metrics.per_class["negative"].recall


def judge(
    spec: SliceSpec,
    candidate: EvalMetrics,
    champion: EvalMetrics | None,
    champion_version: str | None,
) -> tuple[bool, list[str]]:
    """One slice's verdict: its floors, then no regression against the champion's macro-F1."""
    where = f"on {spec.name}"
    reasons: list[str] = []
    floors = (
        ("accuracy", candidate.accuracy, spec.min_accuracy),
        ("macro-F1", candidate.macro_f1, spec.min_macro_f1),
        ("negative recall", negative_recall(candidate), spec.min_negative_recall),
    )
    for label, value, floor in floors:
        if value < floor:
            reasons.append(f"{where}: {label} {value:.3f} is below the floor {floor:.3f}")
    if candidate.calibration_error > spec.max_calibration_error:
        reasons.append(
            f"{where}: calibration error {candidate.calibration_error:.3f} is above "
            f"the ceiling {spec.max_calibration_error:.3f}"
        )
    ok = not reasons
    if ok:
        reasons.append(
            f"{where}: accuracy {candidate.accuracy:.3f}, macro-F1 "
            f"{candidate.macro_f1:.3f}, negative recall "
            f"{negative_recall(candidate):.3f} clear its floors"
        )
    if champion is not None:
        delta = candidate.macro_f1 - champion.macro_f1
        if delta < -spec.tolerance:
            ok = False
            reasons.append(
                f"{where}: macro-F1 {candidate.macro_f1:.3f} is worse than the "
                f"champion's {champion.macro_f1:.3f} (v{champion_version}) by "
                f"{-delta:.3f}, more than the tolerance {spec.tolerance:.3f}"
            )
        else:
            reasons.append(
                f"{where}: macro-F1 {candidate.macro_f1:.3f} vs the champion's "
                f"{champion.macro_f1:.3f} (v{champion_version}): {delta:+.3f}, "
                f"within tolerance {spec.tolerance:.3f}"
            )
    return ok, reasons


def _gate_of(spec: SliceSpec) -> dict[str, float | str]:
    return {
        "min_accuracy": spec.min_accuracy,
        "min_macro_f1": spec.min_macro_f1,
        "min_negative_recall": spec.min_negative_recall,
        "max_calibration_error": spec.max_calibration_error,
        "tolerance": spec.tolerance,
        "if_missing": spec.if_missing,
    }


def evaluate_slice(
    spec: SliceSpec,
    candidate: PredictProba,
    champion: PredictProba | None,
    options: EvaluationOptions,
    champion_version: str | None = None,
) -> SliceResult:
    """Measure candidate (and champion) on one slice and judge it; absent files are skipped."""
    loaded = load_slice(spec)
    source = str(spec.path)
    if loaded is None:
        consequence = (
            "the blessing is blocked (if_missing=block)"
            if spec.if_missing == "block"
            else "not measured, so not passed either"
        )
        note = (
            f"slice {spec.name} skipped: {resolve_path(spec.path)} is not on this machine; "
            f"{consequence}"
        )
        _log.warning(note)
        return SliceResult(
            name=spec.name,
            source=source,
            description=spec.description,
            status="failed" if spec.if_missing == "block" else "skipped",
            reasons=(note,),
            gate=_gate_of(spec),
        )
    examples, digest = loaded
    metrics, intervals = measure(candidate, examples, digest, options)
    champ_metrics, champ_intervals = (
        measure(champion, examples, digest, options) if champion is not None else (None, {})
    )
    ok, reasons = judge(spec, metrics, champ_metrics, champion_version)
    return SliceResult(
        name=spec.name,
        source=source,
        description=spec.description,
        status="passed" if ok else "failed",
        reasons=tuple(reasons),
        eval_digest=digest,
        metrics=metrics,
        intervals=intervals,
        champion=champ_metrics,
        champion_intervals=champ_intervals,
        gate=_gate_of(spec),
    )


# ---------------------------------------------------------------------------------------------
# How slices are shown: MLflow metrics, card rows, compact lineage


def flat_metrics(slices: dict[str, SliceResult], prefix: str = "") -> dict[str, float]:
    """Every slice's scalar metrics and interval bounds, as MLflow metric names."""
    out: dict[str, float] = {}
    for name, r in slices.items():
        if r.metrics is None:
            continue
        key = f"{prefix}slice.{name}."
        values = {
            "accuracy": r.metrics.accuracy,
            "macro_f1": r.metrics.macro_f1,
            "negative_recall": negative_recall(r.metrics),
            "calibration_error": r.metrics.calibration_error,
        }
        for metric, value in values.items():
            out[key + metric] = value
            if metric in r.intervals:
                out[key + metric + "_low"] = r.intervals[metric].low
                out[key + metric + "_high"] = r.intervals[metric].high
    return out


def slice_line(name: str, r: SliceResult) -> str:
    """One line per slice for a run's summary: figures with intervals and the verdict."""
    if r.metrics is None:
        return f"slice {name}: {r.status}: {r.reasons[0] if r.reasons else ''}"
    m, iv = r.metrics, r.intervals
    champ = f"; champion macro-F1 {r.champion.macro_f1:.3f}" if r.champion is not None else ""
    return (
        f"slice {name} (n={m.n}): accuracy {_fmt(m.accuracy, iv.get('accuracy'))}, "
        f"macro-F1 {_fmt(m.macro_f1, iv.get('macro_f1'))}, negative recall "
        f"{_fmt(negative_recall(m), iv.get('negative_recall'))}, ECE "
        f"{_fmt(m.calibration_error, iv.get('calibration_error'))}{champ}: {r.status}"
    )


def _fmt(value: float, interval: Any) -> str:
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def slice_summary(dumped: dict[str, Any]) -> dict[str, Any]:
    """`summary_row` of a slice as stored on a card (card.json's `evaluation.slices`)."""
    return summary_row(SliceResult.model_validate(dumped))


def summary_row(r: SliceResult) -> dict[str, Any]:
    """A slice's headline figures with intervals (for `sesame models show`)."""
    if r.metrics is None:
        return {"status": r.status, "note": r.reasons[0] if r.reasons else "", "source": r.source}
    m, iv = r.metrics, r.intervals
    row: dict[str, Any] = {
        "status": r.status,
        "source": r.source,
        "n": m.n,
        "eval_digest": r.eval_digest,
        "accuracy": m.accuracy,
        "macro_f1": m.macro_f1,
        "negative_recall": negative_recall(m),
        "calibration_error": m.calibration_error,
        "intervals": {k: [v.low, v.high] for k, v in iv.items()},
    }
    if r.champion is not None:
        row["champion"] = {
            "accuracy": r.champion.accuracy,
            "macro_f1": r.champion.macro_f1,
            "negative_recall": negative_recall(r.champion),
            "calibration_error": r.champion.calibration_error,
        }
    return row


def card_lines(slices: dict[str, Any]) -> list[str]:
    """The model card's table of slices (from card.json's `evaluation.slices`)."""
    if not slices:
        return []
    lines = [
        "## Evaluation slices",
        "",
        "Figures with percentile bootstrap 95% intervals; the gate checks each slice.",
        "",
        "| slice | n | accuracy | macro-F1 | negative recall | calibration error | "
        "champion macro-F1 | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in slices.items():
        metrics = r.get("metrics")
        if not metrics:
            note = (r.get("reasons") or [""])[0]
            lines.append(f"| {name} | – | – | – | – | – | – | {r.get('status')}: {note} |")
            continue
        iv = {k: Interval(**v) for k, v in (r.get("intervals") or {}).items()}
        champ = r.get("champion") or {}
        lines.append(
            f"| {name} | {metrics['n']} | {_fmt(metrics['accuracy'], iv.get('accuracy'))} | "
            f"{_fmt(metrics['macro_f1'], iv.get('macro_f1'))} | "
            f"{_fmt(metrics['per_class']['negative']['recall'], iv.get('negative_recall'))} | "
            f"{_fmt(metrics['calibration_error'], iv.get('calibration_error'))} | "
            f"{champ.get('macro_f1', '–')} | {r.get('status')} |"
        )
    sources = [f"- {name}: {r.get('description') or r.get('source')}" for name, r in slices.items()]
    return [*lines, "", *sources, ""]
