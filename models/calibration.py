"""Calibration: temperature scaling (and per-class offsets) fitted on held-out data, applied when
scoring.

A distilled classifier's confidence is not a probability an auditor can read: on report
sentences the default model said 0.9 where it was right three times in four. Temperature
scaling (Guo et al. 2017) divides the log-probabilities by one fitted T; "temperature+bias"
also adds one offset per class (bias-corrected temperature scaling, Alexandari et al. 2020), a
per-class decision rule that moves the argmax too. Both are fitted by minimising the negative
log-likelihood on a labelled split the model never trained on (and that is not an evaluation
set), stored in the model's `config.json` under `sesame_calibration`, and applied by
`SentimentScorer.predict_proba` on every score, SHAP evidence included. Because scaling
log-probabilities and scaling logits differ only by a per-row constant, it is applied to the
probabilities any model returns.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from app.errors import ModelError
from app.records import LABELS, Label, Record
from models.diagnostics import calibration_error

_log = logging.getLogger(__name__)

CONFIG_KEY = "sesame_calibration"
MIN_HELD_OUT = 20
"""Fewer held-out examples than this fit no calibration (small runs stay uncalibrated)."""
CalibrationMethod = Literal["none", "temperature", "temperature+bias"]
_FLOOR = 1e-300


class Calibration(Record):
    """How a model's probabilities are recalibrated, and what it was fitted on."""

    method: Literal["temperature", "temperature+bias"]
    temperature: float
    bias: dict[Label, float]
    """Offsets added to each class's scaled log-probability (all 0 for temperature only)."""
    fitted_on: str
    """What the held-out split was (never an evaluation slice)."""
    fit_digest: str = ""
    n: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float


def apply_calibration(proba: np.ndarray, calibration: Calibration | None) -> np.ndarray:
    """Recalibrated probabilities (columns in LABELS order); unchanged without a calibration."""
    proba = np.asarray(proba, dtype=np.float64)
    if calibration is None or len(proba) == 0:
        return proba
    by_label = {str(k): v for k, v in calibration.bias.items()}
    bias = np.array([by_label.get(lab, 0.0) for lab in LABELS])
    z = np.log(np.clip(proba, _FLOOR, None)) / calibration.temperature + bias
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], _FLOOR, None)).mean())


def fit_calibration(
    proba: np.ndarray,
    labels: Sequence[str],
    *,
    method: Literal["temperature", "temperature+bias"] = "temperature",
    fitted_on: str = "",
    fit_digest: str = "",
) -> Calibration:
    """Fit T (and class offsets) by minimum negative log-likelihood on held-out probabilities."""
    from scipy.optimize import minimize

    proba = np.asarray(proba, dtype=np.float64)
    y = np.array([LABELS.index(lab) for lab in labels], dtype=int)
    if len(y) < 10:
        raise ModelError(
            f"{len(y)} held-out examples are too few to fit a calibration; hold "
            "out more (calibration share) or give a larger calibration file."
        )
    logp = np.log(np.clip(proba, _FLOOR, None))
    k = len(LABELS)

    def unpack(x: np.ndarray) -> tuple[float, np.ndarray]:
        bias = np.zeros(k)
        if method == "temperature+bias":
            bias[1:] = x[1:]  # the first class's offset is fixed: only differences matter
        return float(np.exp(x[0])), bias

    def loss(x: np.ndarray) -> float:
        t, bias = unpack(x)
        z = logp / t + bias
        z = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        return float(-(z[np.arange(len(y)), y] - log_norm).mean())

    x0 = np.zeros(1 if method == "temperature" else k)
    found = minimize(
        loss,
        x0,
        method="L-BFGS-B",
        bounds=[(np.log(0.05), np.log(20.0))] + [(-5.0, 5.0)] * (len(x0) - 1),
    )
    t, bias = unpack(found.x)
    bias -= bias.mean()  # a shared shift changes nothing; centred offsets read better
    fitted = Calibration(
        method=method,
        temperature=round(t, 4),
        bias={lab: round(float(b), 4) for lab, b in zip(LABELS, bias, strict=True)},
        fitted_on=fitted_on,
        fit_digest=fit_digest,
        n=len(y),
        nll_before=0.0,
        nll_after=0.0,
        ece_before=0.0,
        ece_after=0.0,
    )
    after = apply_calibration(proba, fitted)
    return fitted.model_copy(
        update={
            "nll_before": round(_nll(proba, y), 4),
            "nll_after": round(_nll(after, y), 4),
            "ece_before": round(calibration_error(proba, y), 4),
            "ece_after": round(calibration_error(after, y), 4),
        }
    )


def read_calibration(config: Any) -> Calibration | None:
    """The calibration stored in a model's config (a transformers config or its dict)."""
    raw = config.get(CONFIG_KEY) if isinstance(config, dict) else getattr(config, CONFIG_KEY, None)
    if not raw:
        return None
    try:
        return Calibration.model_validate(raw)
    except ValueError as e:
        raise ModelError(
            f"config.json: {CONFIG_KEY} is not a valid calibration ({e}); remove "
            "it or refit with `sesame train`."
        ) from e


def store_calibration(model_dir: Path, calibration: Calibration | None) -> Path:
    """Write (or with None remove) the calibration in the model directory's config.json."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if calibration is None:
        config.pop(CONFIG_KEY, None)
    else:
        config[CONFIG_KEY] = calibration.model_dump(mode="json")
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def calibration_lines(calibration: dict | None) -> list[str]:
    """The model card's calibration section (from card.json's `calibration`)."""
    if not calibration:
        return []
    bias = ", ".join(f"{k} {v:+.3f}" for k, v in (calibration.get("bias") or {}).items())
    return [
        "## Calibration",
        "",
        f"- {calibration.get('method')}: T = {calibration.get('temperature')}"
        + (f", class offsets {bias}" if calibration.get("method") != "temperature" else ""),
        f"- fitted on {calibration.get('fitted_on')} (n={calibration.get('n')}): "
        f"NLL {calibration.get('nll_before')} -> {calibration.get('nll_after')}, "
        f"calibration error {calibration.get('ece_before')} -> "
        f"{calibration.get('ece_after')}",
        "- applied by the scorer to every probability (config.json `sesame_calibration`)",
        "",
    ]


def hold_out(examples: Sequence[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded calibration split of training examples, stratified by source and label."""
    from sklearn.model_selection import train_test_split

    if share <= 0 or share * len(examples) < MIN_HELD_OUT:
        _log.info(
            "calibration: %d training examples are too few to hold out %.0f%% (at least "
            "%d); the model stays uncalibrated",
            len(examples),
            share * 100,
            MIN_HELD_OUT,
        )
        return list(examples), []
    keys = [f"{e.source}|{e.label}" for e in examples]
    counts = Counter(keys)
    # strata too small to split fall back to the label; singletons always stay in training
    keys = [k if counts[k] >= 2 else e.label for k, e in zip(keys, examples, strict=True)]
    counts = Counter(keys)
    idx = [i for i, k in enumerate(keys) if counts[k] >= 2]
    kept = [i for i, k in enumerate(keys) if counts[k] < 2]
    train_idx, held_idx = train_test_split(
        idx, test_size=share, random_state=seed, stratify=[keys[i] for i in idx], shuffle=True
    )
    return (
        [examples[i] for i in sorted([*train_idx, *kept])],
        [examples[i] for i in sorted(held_idx)],
    )
