"""Evaluation slices in the gate, bootstrap intervals, and `sesame evaluate --errors`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_model import build_tiny_base, template_sentences, unique_template_rows
from typer.testing import CliRunner

from app.cli import app
from app.config import EvaluationOptions, SliceSpec, load_settings
from app.records import LABELS
from models import registry
from models.data import Example, deduplicate, load_examples, split_examples, write_csv
from models.diagnostics import bootstrap_intervals, confident_mistakes
from models.evaluate import GateOptions, compute_metrics, load_scorer
from models.gate import gate_with_slices
from models.slices import evaluate_slice
from models.train import TrainOptions, fine_tune

NAME = "tiny-sliced"
NO_FLOORS = GateOptions(min_accuracy=0.0, min_macro_f1=0.0)
TRAIN = TrainOptions(
    epochs=30,
    learning_rate=5e-3,
    batch_size=16,
    threads=1,
    freeze_embeddings=False,
    save_dtype="float32",
)

# Report-like sentences in words the templates never use: risk factors are negative,
# definitions neutral, favourable developments positive (the guideline's report rules).
REPORT_ROWS = [
    *[
        (f"Our {w} could be materially harmed by {x}.", "negative")
        for w in ("business", "reputation", "liquidity", "franchise")
        for x in ("cyberattacks", "lawsuits", "sanctions", "pandemics", "tariffs")
    ],
    *[
        (f"{w.capitalize()} is defined as {x}.", "neutral")
        for w in ("backlog", "leverage", "churn", "footprint")
        for x in (
            "contracted orders",
            "debt over equity",
            "lost accounts",
            "store count",
            "floor space",
        )
    ],
    *[
        (f"Demand for our {w} surged and {x} soared.", "positive")
        for w in ("chips", "cloud", "vehicles", "jets")
        for x in ("bookings", "margins", "orders", "renewals", "subscriptions")
    ],
]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESAME_SCORING__THREADS", "1")


def _examples(rows: list[tuple[str, str]]) -> list[Example]:
    return [Example(text=t, label=lab, source="t") for t, lab in rows]


def test_bootstrap_intervals_hold_the_point_estimate_and_narrow_with_more_data() -> None:
    rng = np.random.default_rng(0)
    labels = list(rng.choice(LABELS, size=400))
    proba = rng.dirichlet([1, 1, 1], size=400)
    right = rng.random(400) < 0.6  # about 60% right, spread over the whole set
    proba[right, [LABELS.index(lab) for lab, r in zip(labels, right, strict=True) if r]] += 2
    proba /= proba.sum(axis=1, keepdims=True)
    metrics = compute_metrics(labels, proba)
    wide = bootstrap_intervals(labels[:100], proba[:100], samples=500)
    narrow = bootstrap_intervals(labels, proba, samples=500)
    for name, value in (
        ("accuracy", metrics.accuracy),
        ("macro_f1", metrics.macro_f1),
        ("negative_recall", metrics.per_class["negative"].recall),
        ("calibration_error", metrics.calibration_error),
    ):
        assert narrow[name].low <= value <= narrow[name].high, name
    assert (
        narrow["accuracy"].high - narrow["accuracy"].low
        < wide["accuracy"].high - wide["accuracy"].low
    )
    assert bootstrap_intervals(labels, proba, samples=300, seed=1) == bootstrap_intervals(
        labels, proba, samples=300, seed=1
    )


def test_confident_mistakes_are_ordered_by_confidence() -> None:
    proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.85, 0.05], [0.2, 0.2, 0.6], [0.95, 0.04, 0.01]])
    labels = ["neutral", "negative", "positive", "negative"]
    found = confident_mistakes(["a", "b", "c", "d"], labels, proba, 5)
    assert [(m.text, m.label, m.predicted) for m in found] == [
        ("d", "negative", "positive"),
        ("a", "neutral", "positive"),
        ("c", "positive", "neutral"),
    ]
    assert found[0].confidence == 0.95 and found[0].probabilities["negative"] == 0.04
    assert len(confident_mistakes(["a", "b", "c", "d"], labels, proba, 1)) == 1


def _lookup(table: dict[str, str]):  # noqa: ANN202
    """A predict function that says 0.9 for the label a table gives each text."""

    def predict(texts: list[str]) -> np.ndarray:
        out = np.full((len(texts), 3), 0.05)
        for i, t in enumerate(texts):
            out[i, LABELS.index(table[t])] = 0.9
        return out

    return predict


def test_an_absent_slice_is_skipped_with_a_note_or_blocks(tmp_path: Path) -> None:
    options = EvaluationOptions(slices=[], bootstrap_samples=50)
    spec = SliceSpec(name="reports", path=tmp_path / "missing.csv")
    skipped = evaluate_slice(spec, _lookup({}), None, options)
    assert skipped.status == "skipped" and skipped.metrics is None
    assert "missing.csv is not on this machine" in skipped.reasons[0]
    assert "not measured, so not passed either" in skipped.reasons[0]
    blocked = evaluate_slice(
        spec.model_copy(update={"if_missing": "block"}), _lookup({}), None, options
    )
    assert blocked.status == "failed" and "blocked" in blocked.reasons[0]


def test_slice_floors_include_negative_recall_and_calibration(tmp_path: Path) -> None:
    rows = REPORT_ROWS
    path = write_csv(_examples(rows), tmp_path / "reports.csv")
    truth = dict(rows)
    misses = {t: ("neutral" if lab == "negative" else lab) for t, lab in rows}
    options = EvaluationOptions(slices=[], bootstrap_samples=100)
    spec = SliceSpec(name="reports", path=path, min_negative_recall=0.8)
    good = evaluate_slice(spec, _lookup(truth), None, options)
    assert good.status == "passed" and good.intervals["macro_f1"].high == 1.0
    bad = evaluate_slice(spec, _lookup(misses), None, options)
    assert bad.status == "failed" and "negative recall 0.000 is below the floor 0.800" in " ".join(
        bad.reasons
    )
    overconfident = evaluate_slice(
        spec.model_copy(update={"max_calibration_error": 0.05}), _lookup(truth), None, options
    )
    assert overconfident.status == "failed" and "calibration error 0.100" in " ".join(
        overconfident.reasons
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A champion that knows report language but confuses neutral news, and a candidate that
    knows the news split perfectly and has never seen a report sentence."""
    root = tmp_path_factory.mktemp("sliced")
    base = build_tiny_base(root / "base")
    news = unique_template_rows(30)
    confused = [(t, "positive" if lab == "neutral" else lab) for t, lab in news]
    fine_tune(
        [t for t, _ in confused + REPORT_ROWS],
        [lab for _, lab in confused + REPORT_ROWS],
        root / "champion",
        TRAIN,
        base_dir=base,
    )
    fine_tune(
        [t for t, _ in news], [lab for _, lab in news], root / "candidate", TRAIN, base_dir=base
    )
    return {"champion": root / "champion", "candidate": root / "candidate", "root": root}


def test_a_regressing_slice_blocks_blessing_even_when_the_split_improves(
    models: dict[str, Path], tmp_path: Path
) -> None:
    settings = load_settings()
    champion = registry.register_version(
        settings,
        models["champion"],
        {"name": NAME, "origin": "trained"},
        name=NAME,
        make_champion=True,
    )
    split = _examples(template_sentences(10, seed=7))
    reports = write_csv(_examples(REPORT_ROWS), tmp_path / "reports.csv")
    spec = SliceSpec(name="reports", path=reports, tolerance=0.02)
    result = gate_with_slices(
        settings,
        models["candidate"],
        split,
        "d",
        NAME,
        NO_FLOORS,
        EvaluationOptions(slices=[spec], bootstrap_samples=200),
    )
    gained = result.candidate.macro_f1 - result.champion.macro_f1
    lost = result.slices["reports"].metrics.macro_f1 - result.slices["reports"].champion.macro_f1
    assert gained > 0.1 and lost < -0.1, (gained, lost)
    assert result.slices["split"].status == "passed"
    assert result.slices["reports"].status == "failed"
    assert not result.blessing.blessed
    assert result.blessing.slices == {"split": "passed", "reports": "failed"}
    assert (
        "on reports: macro-F1" in result.blessing.summary()
        and "worse than the champion" in result.blessing.summary()
    )
    # without the slice the same candidate is blessed: the slice, not the split, said no
    plain = gate_with_slices(
        settings,
        models["candidate"],
        split,
        "d",
        NAME,
        NO_FLOORS,
        EvaluationOptions(slices=[], bootstrap_samples=0),
    )
    assert plain.blessing.blessed and champion.version == plain.champion_version


def test_import_lists_slice_metrics_on_card_mlflow_and_models_show(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = write_csv(_examples(REPORT_ROWS), tmp_path / "reports.csv")
    monkeypatch.setenv(
        "SESAME_EVALUATION__SLICES",
        json.dumps(
            [
                {
                    "name": "reports",
                    "path": str(reports),
                    "description": "generated report sentences",
                },
                {"name": "absent", "path": str(tmp_path / "nowhere.csv")},
            ]
        ),
    )
    split = write_csv(_examples(template_sentences(10, seed=7)), tmp_path / "split.csv")
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "models",
            "import",
            str(models["candidate"]),
            "--name",
            NAME,
            "--eval",
            str(split),
            "--min-accuracy",
            "0",
            "--min-macro-f1",
            "0",
        ],
    )
    assert done.exit_code == 0, done.output
    shown = json.loads(runner.invoke(app, ["models", "show", f"{NAME}/1"]).stdout)
    assert set(shown["slices"]) == {"split", "reports", "absent"}
    rep = shown["slices"]["reports"]
    assert rep["n"] == len(REPORT_ROWS) and rep["status"] == "passed"
    assert rep["intervals"]["macro_f1"][0] <= rep["macro_f1"] <= rep["intervals"]["macro_f1"][1]
    assert shown["slices"]["absent"]["status"] == "skipped"
    card = runner.invoke(app, ["models", "show", f"{NAME}/1", "--card"]).stdout
    assert "## Evaluation slices" in card and f"| reports | {len(REPORT_ROWS)} |" in card
    assert "skipped: slice absent skipped" in card
    run = registry.client(load_settings()).get_run(
        registry.get_version(load_settings(), NAME, "1").run_id
    )
    assert run.data.metrics["slice.reports.macro_f1"] == rep["macro_f1"]
    assert run.data.metrics["slice.reports.macro_f1_low"] == rep["intervals"]["macro_f1"][0]


def test_evaluate_errors_lists_the_most_confident_mistakes_first(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    by_label: dict[str, list[str]] = {}
    for text, label in template_sentences():
        by_label.setdefault(label, []).append(text)
    wrong = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    rows = [(by_label[lab][i], wrong[lab] if i < 2 else lab) for lab in LABELS for i in range(4)]
    path = write_csv(_examples(rows), tmp_path / "hand.csv")
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--data",
            str(path),
            "--model-dir",
            str(tiny_model_dir),
            "--errors",
            "4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    errors = got["errors"]
    assert len(errors) == 4
    confidences = [e["confidence"] for e in errors]
    assert confidences == sorted(confidences, reverse=True)
    scorer = load_scorer(tiny_model_dir)
    for e in errors:
        assert e["label"] != e["predicted"]
        row = scorer.predict_proba([e["text"]])[0]
        assert e["predicted"] == LABELS[int(row.argmax())]
        assert e["probabilities"][e["predicted"]] == pytest.approx(row.max(), abs=1e-4)
    assert (
        got["intervals"]["accuracy"]["low"]
        <= got["accuracy"]
        <= got["intervals"]["accuracy"]["high"]
    )
    text = (
        CliRunner()
        .invoke(
            app,
            ["evaluate", "--data", str(path), "--model-dir", str(tiny_model_dir), "--errors", "2"],
        )
        .stdout
    )
    assert "2 most confident mistakes" in text and "bootstrap 95% intervals" in text


def test_evaluate_takes_a_slice_by_name_and_splits_it_as_the_gate_does(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(t, lab) for t, lab in template_sentences(30, seed=3)]
    path = write_csv(_examples(rows), tmp_path / "news.csv")
    spec = [{"name": "news", "path": str(path), "eval_share": 0.2, "split_seed": 42}]
    monkeypatch.setenv("SESAME_EVALUATION__SLICES", json.dumps(spec))
    result = CliRunner().invoke(
        app, ["evaluate", "--data", "news", "--model-dir", str(tiny_model_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    examples, _ = deduplicate(load_examples([path]).examples)
    assert json.loads(result.stdout)["n"] == len(split_examples(examples, 0.2, 42).eval)
    unknown = CliRunner().invoke(
        app, ["evaluate", "--data", "nowhere", "--model-dir", str(tiny_model_dir)]
    )
    assert unknown.exit_code != 0
