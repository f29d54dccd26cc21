"""`sesame explainer`: train, gate, save and log a model's amortized explainer in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_model import template_sentences
from typer.testing import CliRunner

from app.cli import app
from app.config import load_settings
from explain.amortized import read_meta
from models import registry
from models.data import Example, write_csv
from models.explainer import EXPERIMENT
from models.scoring import weights_digest

RECIPE = ["--epochs", "8", "--lr", "1e-3", "--head-lr", "1e-2", "--evals-per-word", "4"]
LOW = ["--min-spearman", "0", "--min-top1", "0", "--min-top3", "0"]
IMPOSSIBLE = ["--min-spearman", "1", "--min-top1", "1", "--min-top3", "1"]


@pytest.fixture(autouse=True)
def _small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESAME_SCORING__THREADS", "1")
    # a high-budget reference costs 2,000 passes a sentence; the tiny model's needs far fewer
    monkeypatch.setenv("SESAME_EXPLAINER__REFERENCE_EVALS", "96")


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, int]:
    """Unlabelled sentences (a text file) and a reference set sharing `overlap` of them."""
    train = sorted({t for t, lab in template_sentences(30, seed=3) if lab != "neutral"})
    reference = sorted(
        {t for t, lab in template_sentences(8, seed=99) if lab != "neutral"} - set(train)
    )[:10]
    overlap = 3
    lines = tmp_path / "unlabelled.txt"
    lines.write_text("\n".join(train + reference[:overlap]) + "\n", encoding="utf-8")
    ref = write_csv(
        [Example(text=t, label="neutral", source="r") for t in reference],
        tmp_path / "reference.csv",
    )
    return lines, ref, overlap


def _train(model: list[str], inputs: tuple[Path, Path, int], *extra: str):
    lines, ref, _ = inputs
    args = ["explainer", "train", *model, "--unlabelled", str(lines), "--reference", str(ref)]
    return CliRunner().invoke(app, [*args, *RECIPE, *extra])


def test_explainer_train_writes_its_record_drops_reference_sentences_and_logs_a_run(
    tiny_model_dir: Path, tmp_path: Path, inputs: tuple[Path, Path, int]
) -> None:
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    done = _train(["--model-dir", str(model)], inputs, *LOW)
    assert done.exit_code == 0, done.output
    assert "BLESSED" in done.output and "fidelity on reference" in done.output
    meta = read_meta(model)
    assert meta is not None
    assert meta["scorer_sha256"] == weights_digest(model)
    assert meta["blessed"] is True and meta["gate"]["passed"] is True
    assert meta["gate"]["floors"] == {"min_spearman": 0.0, "min_top1": 0.0, "min_top3": 0.0}
    fid = meta["fidelity"]
    assert {"spearman", "top1", "top3", "sign", "n_sentences"} <= set(fid)
    assert fid["reference"] == "a 96-evaluation Owen reference"
    assert fid["set"]["name"] == "reference" and fid["set"]["n"] == 10
    data = meta["training"]["data"]
    _, _, overlap = inputs
    # the leakage guard: reference sentences in the unlabelled file are not trained on
    assert data["leakage_dropped"] == overlap
    assert data["n_sentences"] == data["n_read"] - overlap
    assert data["sources"][0]["sha256"] and data["evals_per_word"] == 4
    assert meta["code_version"] and meta["training"]["epochs"] == 8
    # not registered: a standalone run in the explainer experiment, with the figures
    c = registry.client(load_settings())
    run = c.get_run(meta["mlflow"]["run_id"])
    assert c.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert run.data.metrics["explainer_spearman"] == fid["spearman"]
    assert run.data.metrics["explainer_min_top1"] == 0.0
    assert run.data.metrics["explainer_blessed"] == 1.0
    assert run.data.tags["sesame.explainer.blessed"] == "True"
    logged = {a.path for a in c.list_artifacts(run.info.run_id, "explainer")}
    assert "explainer/explainer.json" in logged
    # the evaluate command measures the saved explainer again, under the same gate
    again = CliRunner().invoke(
        app, ["explainer", "evaluate", "--model-dir", str(model), "--reference", str(inputs[1])]
    )
    assert again.exit_code == 1, again.output  # the default floors are the goals
    ok = CliRunner().invoke(
        app,
        ["explainer", "evaluate", "--model-dir", str(model), "--reference", str(inputs[1]), *LOW],
    )
    assert ok.exit_code == 0 and f"spearman {fid['spearman']:.3f}" in ok.output
    shown = CliRunner().invoke(app, ["explainer", "show", "--model-dir", str(model)])
    assert shown.exit_code == 0 and "BLESSED" in shown.output


def test_impossible_floors_save_an_unblessed_explainer_and_exit_1_reusing_cached_targets(
    tiny_model_dir: Path, tmp_path: Path, inputs: tuple[Path, Path, int]
) -> None:
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    first = _train(["--model-dir", str(model)], inputs, *LOW, "--json")
    assert first.exit_code == 0, first.output
    assert read_meta(model)["training"]["data"]["targets_cached"] is False  # type: ignore[index]
    refused = _train(["--model-dir", str(model)], inputs, *IMPOSSIBLE)
    assert refused.exit_code == 1
    assert "NOT BLESSED" in refused.output and "below its floor 1.00" in refused.output
    meta = read_meta(model)
    assert meta is not None and meta["blessed"] is False and meta["gate"]["failures"]
    # the second run found the first run's Owen values on disk
    assert meta["training"]["data"]["targets_cached"] is True
    assert meta["training"]["data"]["targets_seconds"] == 0.0


def test_a_registered_versions_explainer_ships_with_the_version_and_its_card(
    tiny_model_dir: Path, tmp_path: Path, inputs: tuple[Path, Path, int]
) -> None:
    settings = load_settings()
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    registry.write_card(model, {"name": "tiny", "origin": "imported", "summary": "tiny"})
    registry.register_version(
        settings, model, registry.read_card(model) or {}, name="tiny", make_champion=True
    )
    done = _train(["--model", "tiny@champion"], inputs, *LOW)
    assert done.exit_code == 0, done.output
    info = registry.get_version(settings, "tiny", "1")
    assert info is not None and info.tags["explainer_blessed"] == "True"
    assert float(info.tags["explainer_spearman"]) > -1
    c = registry.client(settings)
    assert "explainer_top3" in c.get_run(info.run_id).data.metrics
    # a fresh fetch of the version brings the explainer and the card's Explainer section
    shutil.rmtree(settings.data_dir / "models")
    fetched = registry.fetch_version(settings, info)
    meta = read_meta(fetched)
    assert meta is not None and meta["scorer_sha256"] == info.tags["sha256"]
    assert meta["mlflow"] == {
        "run_id": info.run_id,
        "experiment": None,
        "model": "tiny",
        "version": "1",
    }
    card = registry.read_card(fetched)
    assert card is not None and card["explainer"]["blessed"] is True
    text = (fetched / registry.CARD_MD).read_text(encoding="utf-8")
    assert "## Explainer" in text and "| spearman |" in text
    assert json.loads((fetched / "explainer" / "explainer.json").read_text())["blessed"]


def test_model_dir_and_model_are_exclusive(inputs: tuple[Path, Path, int]) -> None:
    both = _train(["--model-dir", "x", "--model", "tiny"], inputs)
    assert both.exit_code == 2 and "exactly one" in both.output
