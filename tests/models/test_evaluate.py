"""Metrics computed by hand, the blessing gate, and `sesame evaluate` on a hand-made file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_model import template_sentences
from typer.testing import CliRunner

from app.cli import app
from app.errors import DataValidationError
from models.data import Example, write_csv
from models.evaluate import GateOptions, bless, calibration_error, compute_metrics

P, N, U = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]


def test_metrics_match_a_hand_computation() -> None:
    labels = ["positive", "positive", "negative", "neutral", "neutral", "negative"]
    proba = np.array([P, N, N, U, P, N])
    m = compute_metrics(labels, proba, ["a b", "a b c", "x " * 20, "y " * 30, "z", "w"])
    assert m.n == 6 and m.accuracy == pytest.approx(0.6667, abs=1e-4)
    assert m.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 1))
    assert (m.per_class["positive"].precision, m.per_class["positive"].recall) == (0.5, 0.5)
    assert m.per_class["negative"].precision == pytest.approx(0.6667, abs=1e-4)
    assert m.per_class["negative"].f1 == pytest.approx(0.8)
    assert m.per_class["neutral"].f1 == pytest.approx(0.6667, abs=1e-4)
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-4)
    # Every confidence is 0.8 (one bin); accuracy is 4/6.
    assert m.calibration_error == pytest.approx(0.8 - 4 / 6, abs=1e-4)
    assert m.slices["short (<=12 words)"].n == 4 and m.slices["long (>25 words)"].n == 1


def test_calibration_error_is_zero_when_confidence_equals_accuracy() -> None:
    proba = np.array([[0.5, 0.25, 0.25]] * 4)
    assert calibration_error(proba, np.array([0, 0, 1, 2])) == pytest.approx(0.0)


def test_unknown_labels_are_refused() -> None:
    with pytest.raises(DataValidationError, match="bullish"):
        compute_metrics(["bullish"], np.array([P]))


def _perfect(digest: str = "d"):  # noqa: ANN202
    metrics = compute_metrics(["positive", "negative", "neutral"], np.array([P, N, U]))
    return metrics.model_copy(update={"eval_digest": digest})


def test_gate_floors_and_champion_tolerance() -> None:
    perfect = _perfect()
    weak = compute_metrics(
        ["positive", "negative", "neutral", "positive"], np.array([P, P, U, P])
    ).model_copy(update={"eval_digest": "d"})
    assert bless(perfect, None).blessed
    floors = bless(weak, None, GateOptions(min_accuracy=0.9))
    assert not floors.blessed and "below the floor 0.900" in floors.summary()
    regress = bless(weak, perfect, GateOptions(min_accuracy=0, min_macro_f1=0), "3")
    assert not regress.blessed and "worse than the champion" in regress.summary()
    within = bless(weak, weak, GateOptions(min_accuracy=0, min_macro_f1=0), "3")
    assert within.blessed and within.champion == within.candidate


def test_gate_refuses_different_evaluation_sets() -> None:
    with pytest.raises(ValueError, match="different evaluation sets"):
        bless(_perfect("a"), _perfect("b"))


def test_evaluate_command_gives_the_right_numbers_on_a_hand_made_file(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESAME_SCORING__THREADS", "1")
    # Sentences the tiny model was trained on, so its predictions are known; two are labelled
    # against what it predicts.
    by_label: dict[str, list[str]] = {}
    for text, label in template_sentences():
        by_label.setdefault(label, []).append(text)
    rows = [
        (by_label["positive"][0], "positive"),
        (by_label["positive"][1], "neutral"),
        (by_label["negative"][0], "negative"),
        (by_label["negative"][1], "positive"),
        (by_label["neutral"][0], "neutral"),
        (by_label["neutral"][1], "neutral"),
    ]
    path = write_csv(
        [Example(text=t, label=lab, source="h") for t, lab in rows], tmp_path / "hand.csv"
    )
    result = CliRunner().invoke(
        app, ["evaluate", "--data", str(path), "--model-dir", str(tiny_model_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["n"] == 6 and got["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert got["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert got["per_class"]["negative"]["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert got["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3, abs=1e-4)
