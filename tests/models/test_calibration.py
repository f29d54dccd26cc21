"""Calibration: fitted on held-out data, stored with the version, applied at scoring time."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_model import build_tiny_base, template_sentences, unique_template_rows

from app.config import ScoringOptions, load_settings
from app.records import LABELS
from models import registry
from models.calibration import (
    CONFIG_KEY,
    Calibration,
    apply_calibration,
    fit_calibration,
    store_calibration,
)
from models.data import Example, write_csv
from models.evaluate import GateOptions, calibration_error, load_scorer
from models.recalibrate import main as recalibrate_main
from models.scoring import SentimentScorer, weights_digest
from models.train import PipelineOptions, TrainOptions, train_pipeline


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESAME_SCORING__THREADS", "1")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sampled(n: int, bias: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Logits and labels drawn from softmax(logits + bias)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, 3))
    truth = _softmax(z + (bias if bias is not None else 0))
    labels = [LABELS[rng.choice(3, p=p)] for p in truth]
    return z, labels


def test_temperature_scaling_recovers_an_overconfident_models_temperature() -> None:
    z, labels = _sampled(4000)
    overconfident = _softmax(3 * z)  # three times too sharp
    fitted = fit_calibration(overconfident, labels, fitted_on="synthetic")
    assert fitted.temperature == pytest.approx(3.0, rel=0.15)
    assert fitted.nll_after < fitted.nll_before and fitted.ece_after < fitted.ece_before / 2
    y = np.array([LABELS.index(lab) for lab in labels])
    calibrated = apply_calibration(overconfident, fitted)
    assert calibration_error(calibrated, y) == pytest.approx(fitted.ece_after, abs=1e-4)
    assert (calibrated.argmax(axis=1) == overconfident.argmax(axis=1)).all()


def test_class_offsets_recover_a_shifted_prior_and_move_decisions() -> None:
    bias = np.array([0.0, 1.2, 0.0])  # negatives more common than the model thinks
    z, labels = _sampled(4000, bias, seed=1)
    fitted = fit_calibration(_softmax(z), labels, method="temperature+bias")
    offsets = fitted.bias
    assert offsets["negative"] - offsets["positive"] == pytest.approx(1.2, abs=0.25)
    assert abs(offsets["neutral"] - offsets["positive"]) < 0.25
    assert fitted.temperature == pytest.approx(1.0, rel=0.15)
    moved = apply_calibration(_softmax(z), fitted).argmax(axis=1) != _softmax(z).argmax(axis=1)
    assert moved.any()


def test_the_scorer_applies_the_calibration_stored_in_the_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    texts = [t for t, _ in template_sentences(5, seed=2)]
    raw = load_scorer(model).predict_proba(texts)
    stored = Calibration(
        method="temperature+bias",
        temperature=2.5,
        bias={"positive": 0.0, "negative": 0.4, "neutral": -0.4},
        fitted_on="test",
        n=10,
        nll_before=1,
        nll_after=1,
        ece_before=0,
        ece_after=0,
    )
    store_calibration(model, stored)
    assert json.loads((model / "config.json").read_text())[CONFIG_KEY]["temperature"] == 2.5
    scorer = load_scorer(model)
    assert scorer.calibration == stored
    got = scorer.predict_proba(texts)
    np.testing.assert_allclose(got, apply_calibration(raw, stored), atol=1e-9)
    assert not np.allclose(got, raw, atol=1e-3)
    assert got.max() < raw.max()  # T > 1 softens
    # a scorer rebuilt elsewhere (Ray pickles it as its spec) calibrates the same way
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(scorer)).predict_proba(texts), got, atol=1e-9
    )
    assert scores_confidence(scorer, texts[0]) == pytest.approx(got[0].max())
    uncalibrated = SentimentScorer.from_dir(model, ScoringOptions(calibration="none"))
    np.testing.assert_allclose(uncalibrated.predict_proba(texts), raw, atol=1e-9)
    store_calibration(model, None)
    assert load_scorer(model).calibration is None


def scores_confidence(scorer: SentimentScorer, text: str) -> float:
    """The confidence `score()` records for one sentence (built from predict_proba)."""
    from app.records import Sentence

    sentence = Sentence(doc_id="d", index=0, page_no=1, start=0, end=len(text), text=text)
    return scorer.score([sentence])[0].confidence


def test_training_fits_calibration_on_held_out_data_and_the_version_keeps_it(
    tmp_path: Path,
) -> None:
    base = build_tiny_base(tmp_path / "base")
    rows = unique_template_rows(100)
    data = write_csv(
        [Example(text=t, label=lab, source="t") for t, lab in rows], tmp_path / "data.csv"
    )
    train = TrainOptions(
        epochs=2,
        learning_rate=5e-3,
        batch_size=16,
        threads=1,
        freeze_embeddings=False,
        save_dtype="float32",
    )
    opts = PipelineOptions(
        data=[data],
        base=base,
        name="tiny-calibrated",
        train=train,
        gate=GateOptions(min_accuracy=0, min_macro_f1=0),
        calibration="temperature",
        calibration_share=0.1,
        out_dir=tmp_path / "run",
    )
    report = train_pipeline(opts, load_settings())
    card = report.card
    n_train = card["training"]["split"]["n_train"]
    held = (tmp_path / "run" / "calibration.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert card["calibration"]["n"] == len(held) == round(n_train * 0.1)
    # the held-out examples were not trained on: the steps count the rest only
    assert report.train.steps == round(math.ceil((n_train - len(held)) / 16) * 2)
    evals = (tmp_path / "run" / "eval.csv").read_text(encoding="utf-8")
    assert not any(line in evals for line in held)
    assert "calibrate" in report.timings
    # stored with the registered version and applied when the registry serves it
    info = registry.get_version(load_settings(), "tiny-calibrated", "1")
    served = load_scorer(registry.fetch_version(load_settings(), info))
    assert served.calibration is not None
    assert served.calibration.temperature == card["calibration"]["temperature"]
    run = registry.client(load_settings()).get_run(info.run_id)
    assert float(run.data.params["calibration.temperature"]) == served.calibration.temperature
    assert "## Calibration" in registry.render_card(card)


def test_an_ensemble_teacher_averages_its_members_calibrated_probabilities(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from models.train import ensemble_labels, teacher_labels

    softened = shutil.copytree(tiny_model_dir, tmp_path / "softened")
    store_calibration(
        softened,
        Calibration(
            method="temperature",
            temperature=4.0,
            bias={lab: 0.0 for lab in LABELS},
            fitted_on="test",
            n=10,
            nll_before=1,
            nll_after=1,
            ece_before=0,
            ece_after=0,
        ),
    )
    texts = [t for t, _ in template_sentences(4, seed=5)]
    settings = load_settings()
    sharp, _ = teacher_labels(tiny_model_dir, texts, settings)
    soft, lineage = teacher_labels(softened, texts, settings)
    # same weights, but the soft labels are the calibrated ones (and cached apart)
    assert lineage["sha256"] == weights_digest(tiny_model_dir)
    assert lineage["calibration"]["temperature"] == 4.0
    assert soft.max(axis=1).mean() < sharp.max(axis=1).mean()
    mean, taught = ensemble_labels([tiny_model_dir, softened], texts, settings)
    np.testing.assert_allclose(mean, (sharp + soft) / 2, atol=1e-12)
    assert len(taught["members"]) == 2 and taught["name"].startswith("ensemble of")
    assert taught["commercial_use"] is False  # members without cards clear nothing


def test_a_calibration_file_is_fitted_on_and_kept_out_of_training(tmp_path: Path) -> None:
    base = build_tiny_base(tmp_path / "base")
    rows = unique_template_rows(40)
    data = write_csv(
        [Example(text=t, label=lab, source="t") for t, lab in rows], tmp_path / "data.csv"
    )
    held = [(t, lab) for t, lab in unique_template_rows(60, seed=4) if (t, lab) not in rows][:30]
    calibration = write_csv(
        [Example(text=t, label=lab, source="c") for t, lab in held], tmp_path / "calibration.csv"
    )
    # the calibration sentences also sit in the extra training data: they must be dropped
    extra = write_csv(
        [Example(text=t, label=lab, source="x") for t, lab in held[:10]], tmp_path / "extra.csv"
    )
    opts = PipelineOptions(
        data=[data],
        extra=[extra],
        base=base,
        name="tiny-calfile",
        train=TrainOptions(max_steps=3, threads=1, save_dtype="float32"),
        gate=GateOptions(min_accuracy=0, min_macro_f1=0),
        calibration_file=calibration,
        out_dir=tmp_path / "run",
    )
    report = train_pipeline(opts, load_settings())
    assert report.validation.removed["extra_in_slices"] == 10
    card = report.card
    assert card["calibration"]["n"] == len(held)
    assert "calibration.csv" in card["calibration"]["fitted_on"]
    assert [s["role"] for s in card["training"]["sources"]] == ["data", "extra", "calibration"]
    model = tmp_path / "run" / "model"
    # refitting later (on the same file) is recorded on the card, the old one kept as history
    assert recalibrate_main([str(model), "--data", str(calibration), "--threads", "1"]) == 0
    refitted = registry.read_card(model)
    assert refitted["calibration"]["fitted_on"].endswith("(refitted after training)")
    assert refitted["calibration_history"][0] == card["calibration"]
    assert load_scorer(model).calibration.temperature == refitted["calibration"]["temperature"]
