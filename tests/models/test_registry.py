"""The MLflow registry: first-use default, cached and verified downloads, import, lineage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_model import build_tiny_base, template_sentences, unique_template_rows
from typer.testing import CliRunner

from app.cli import app
from app.config import load_settings
from app.errors import ModelError
from models import registry
from models.data import Example, write_csv
from models.evaluate import GateOptions
from models.gate import import_model
from models.scoring import weights_digest
from models.train import PipelineOptions, TrainOptions, train_pipeline


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESAME_SCORING__THREADS", "1")


@pytest.fixture
def bundled(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model dressed as the bundled default (models/default/ need not exist)."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "default")
    registry.write_card(
        folder,
        {
            "name": "sesame-sentiment",
            "origin": "bundled",
            "commercial_use": False,
            "sha256": weights_digest(folder),
            "licences": ["CC BY-NC-SA 3.0"],
        },
    )
    monkeypatch.setattr(registry, "DEFAULT_DIR", folder)
    return folder


def _eval_csv(tmp_path: Path, mislabel: int = 0) -> Path:
    """Template sentences; the first `mislabel` rows carry a label the model will not predict."""
    rows = [Example(text=t, label=lab, source="t") for t, lab in template_sentences(10, seed=3)]
    wrong = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    rows = [
        r.model_copy(update={"label": wrong[r.label]}) if i < mislabel else r
        for i, r in enumerate(rows)
    ]
    return write_csv(rows, tmp_path / f"eval-{mislabel}.csv")


def test_model_refs_parse() -> None:
    assert registry.parse_ref(None) == ("sesame-sentiment", "champion")
    assert registry.parse_ref("finbert@challenger") == ("finbert", "challenger")
    assert registry.parse_ref("finbert/3") == ("finbert", "3")
    assert registry.parse_ref("finbert") == ("finbert", "champion")
    with pytest.raises(ModelError, match="not a model reference"):
        registry.parse_ref("a@b/3")


def test_model_dir_setting_resolves_unregistered(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESAME_SCORING__MODEL_DIR", str(tiny_model_dir))
    resolved = registry.resolve_model(load_settings())
    assert resolved.version is None and resolved.path == tiny_model_dir
    assert resolved.digest == weights_digest(tiny_model_dir)


def test_first_use_registers_the_bundled_default_as_champion(bundled: Path) -> None:
    settings = load_settings()
    resolved = registry.resolve_model(settings)
    assert resolved.version == "1" and resolved.digest == weights_digest(bundled)
    assert resolved.card["origin"] == "bundled" and resolved.card["commercial_use"] is False
    assert resolved.path.is_relative_to(settings.data_dir)
    again = registry.resolve_model(settings)
    assert again.path == resolved.path and again.version == "1"
    assert [v.version for v in registry.list_versions(settings)] == ["1"]
    assert registry.get_version(settings, "sesame-sentiment").aliases == ["champion"]


def test_an_unknown_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESAME_SCORING__MODEL", "nobody")
    with pytest.raises(ModelError, match="sesame models list"):
        registry.resolve_model(load_settings())


def test_tampered_artifact_fails_the_digest_check(bundled: Path) -> None:
    settings = load_settings()
    first = registry.resolve_model(settings)
    shutil.rmtree(first.path)  # force a fresh download
    for weights in (settings.data_dir / "mlartifacts").rglob("model.safetensors"):
        weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    with pytest.raises(ModelError, match="altered"):
        registry.resolve_model(settings)


def test_import_goes_through_the_gate_against_the_champion(
    bundled: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    evals = _eval_csv(tmp_path)
    report = import_model(
        settings, tiny_model_dir, "sesame-sentiment", eval_file=evals, licence="Apache-2.0"
    )
    # The champion (registered on first use) is the same model: equal, so within tolerance.
    assert report.champion_before == "1" and report.blessed
    assert report.champion_metrics["accuracy"] == report.metrics["accuracy"]
    assert report.version == "2" and report.champion_after == "2"


def test_import_on_a_named_slice_writes_the_gated_card_back(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evals = _eval_csv(tmp_path)
    spec = [{"name": "held", "path": str(evals)}]
    monkeypatch.setenv("SESAME_EVALUATION__SLICES", json.dumps(spec))
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    done = CliRunner().invoke(
        app, ["models", "import", str(model), "--name", "tiny", "--eval", "held", "--write-card"]
    )
    assert done.exit_code == 0, done.output
    assert "on the evaluation slice held" in done.output
    card = registry.read_card(model)
    assert card is not None and card["evaluation"]["eval_set"] == "the evaluation slice held"
    assert set(card["evaluation"]["slices"]) == {"split", "held"}
    assert card["evaluation"]["slices"]["held"]["intervals"]["macro_f1"]["low"] >= 0
    assert card["sha256"] == weights_digest(model)


def test_import_of_a_base_encoder_is_refused(tmp_path: Path) -> None:
    base = build_tiny_base(tmp_path / "base")
    result = CliRunner().invoke(
        app, ["models", "import", str(base), "--name", "x", "--eval", str(_eval_csv(tmp_path))]
    )
    assert result.exit_code == 1 and "error:" in result.output
    assert registry.list_versions(load_settings()) == []


def test_import_command_then_list_show_and_promote(tiny_model_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    evals = str(_eval_csv(tmp_path))
    done = runner.invoke(
        app, ["models", "import", str(tiny_model_dir), "--name", "tiny", "--eval", evals]
    )
    assert done.exit_code == 0, done.output
    assert "BLESSED" in done.output and "champion: none -> 1" in done.output
    # Half the rows mislabelled: the same model now falls below the accuracy floor.
    unblessed = runner.invoke(
        app,
        [
            "models",
            "import",
            str(tiny_model_dir),
            "--name",
            "tiny",
            "--eval",
            str(_eval_csv(tmp_path, mislabel=15)),
        ],
    )
    assert unblessed.exit_code == 1 and "NOT BLESSED" in unblessed.output
    listing = runner.invoke(app, ["models", "list", "tiny", "--json"])
    rows = json.loads(listing.stdout)
    assert [(r["version"], r["aliases"], r["blessed"]) for r in rows] == [
        ("2", "", "False"),
        ("1", "champion", "True"),
    ]
    refused = runner.invoke(app, ["models", "promote", "tiny/2"])
    assert refused.exit_code == 1 and "not blessed" in refused.output
    forced = runner.invoke(app, ["models", "promote", "tiny/2", "--force"])
    assert forced.exit_code == 0 and "1 -> 2" in forced.output
    shown = json.loads(runner.invoke(app, ["models", "show", "tiny@champion"]).stdout)
    assert shown["version"] == "2" and shown["origin"] == "imported"


def test_trained_version_carries_its_lineage(tmp_path: Path) -> None:
    base = build_tiny_base(tmp_path / "base")
    data = write_csv(
        [Example(text=t, label=lab, source="t") for t, lab in unique_template_rows(20)],
        tmp_path / "d.csv",
    )
    opts = PipelineOptions(
        data=[data],
        base=base,
        licence="CC0-1.0",
        name="tiny",
        train=TrainOptions(max_steps=3, threads=1),
        gate=GateOptions(min_accuracy=0, min_macro_f1=0),
    )
    train_pipeline(opts, load_settings())
    result = CliRunner().invoke(app, ["models", "show", "tiny/1"])
    assert result.exit_code == 0, result.output
    lineage = json.loads(result.stdout)
    assert lineage["origin"] == "trained" and len(lineage["sha256"]) == 64
    assert lineage["base_model"]["sha256"] == weights_digest(base)
    assert lineage["data_sources"][0]["licence"] == "CC0-1.0"
    assert lineage["data_sources"][0]["sha256"] and lineage["split"]["split_digest"]
    assert lineage["eval_digest"] == lineage["split"]["eval_digest"]
    assert {"accuracy", "macro_f1"} <= set(lineage["metrics"])
    assert lineage["blessing"]["blessed"] is True
    assert lineage["code_version"] and "torch" in lineage["libraries"]
    assert lineage["commercial_use"] is True
    card = CliRunner().invoke(app, ["models", "show", "tiny/1", "--card"]).stdout
    assert "## Training data" in card and "CC0-1.0" in card


def test_bundled_default_card_matches_its_weights() -> None:
    if not (registry.DEFAULT_DIR / "card.json").is_file():
        pytest.skip("models/default is not present")
    card = registry.read_card(registry.DEFAULT_DIR)
    assert card["sha256"] == weights_digest(registry.DEFAULT_DIR)
    assert card["commercial_use"] is False
    assert any("BY-NC-SA" in s["licence"] for s in card["training"]["sources"])
    assert (
        card["base_model"]["sha256"]
        == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )
