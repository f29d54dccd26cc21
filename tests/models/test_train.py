"""The training pipeline end to end on a tiny base and template data: seconds, not minutes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_model import build_tiny_base, unique_template_rows
from typer.testing import CliRunner

from app.cli import app
from app.config import load_settings
from app.errors import ModelError
from models import registry
from models.data import Example, write_csv
from models.evaluate import GateOptions, evaluate_dir
from models.scoring import weights_digest
from models.train import PipelineOptions, TrainOptions, fine_tune, train_pipeline

GOOD = TrainOptions(
    epochs=30,
    learning_rate=5e-3,
    batch_size=16,
    threads=1,
    freeze_embeddings=False,
    save_dtype="float32",
)
BAD = GOOD.model_copy(update={"max_steps": 1})
NO_FLOORS = GateOptions(min_accuracy=0.0, min_macro_f1=0.0)
NAME = "tiny-sentiment"
"""Not the default name, so the bundled default (when present) never becomes the champion."""


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = unique_template_rows(50)
    return write_csv(
        [Example(text=t, label=lab, source="t") for t, lab in rows],
        tmp_path_factory.mktemp("data") / "labelled.csv",
    )


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shared 2-core machine is oversubscribed; one thread avoids spinning OpenMP workers.
    monkeypatch.setenv("SESAME_SCORING__THREADS", "1")


def _run(
    data: Path,
    base: Path,
    train: TrainOptions = GOOD,
    gate: GateOptions | None = None,
    **kw: object,
):
    opts = PipelineOptions(
        data=[data], base=base, train=train, gate=gate or GateOptions(), name=NAME, **kw
    )
    return train_pipeline(opts, load_settings())


def test_fine_tune_learns_the_templates(tiny_base: Path, data_csv: Path, tmp_path: Path) -> None:
    rows = unique_template_rows(40)
    result = fine_tune(
        [t for t, _ in rows], [lab for _, lab in rows], tmp_path / "m", GOOD, base_dir=tiny_base
    )
    assert result.loss_curve[-1] < result.loss_curve[0] / 3
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["id2label"] == {"0": "positive", "1": "negative", "2": "neutral"}


def test_pinned_base_with_other_weights_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not match the pinned"):
        fine_tune(
            ["a"], ["positive"], tmp_path / "m", GOOD, base_dir=tiny_base, base_sha256="0" * 64
        )


def test_first_run_is_blessed_registered_and_champion(tiny_base: Path, data_csv: Path) -> None:
    report = _run(data_csv, tiny_base)
    assert report.status == "blessed", report.summary()
    assert report.gate.candidate.accuracy >= 0.9
    assert (report.version, report.champion_before, report.champion_after) == ("1", None, "1")
    assert set(report.timings) == {"load", "validate", "train", "evaluate", "register"}
    assert Path(report.run_dir, "eval.csv").is_file()


def test_anomaly_stops_training_and_registers_nothing(tiny_base: Path, tmp_path: Path) -> None:
    rows = [Example(text=t, label=lab, source="t") for t, lab in unique_template_rows(40)]
    rows.append(Example(text="Revenue was flat.", label="mixed", source="t"))
    bad = write_csv(rows, tmp_path / "bad.csv")
    report = _run(bad, tiny_base)
    assert report.status == "invalid_data" and report.train is None
    assert [a.code for a in report.validation.anomalies] == ["unknown_label"]
    assert "mixed" in report.validation.summary()
    assert registry.list_versions(load_settings()) == []


def test_worse_candidate_is_not_blessed_and_champion_stays(tiny_base: Path, data_csv: Path) -> None:
    assert _run(data_csv, tiny_base).champion_after == "1"
    report = _run(data_csv, tiny_base, BAD, NO_FLOORS)
    assert report.status == "not_blessed"
    assert "worse than the champion" in report.gate.blessing.summary()
    assert report.gate.champion.eval_digest == report.gate.candidate.eval_digest
    assert (report.version, report.champion_after) == ("2", "1")
    assert registry.get_version(load_settings(), NAME, "2").tags["blessed"] == "False"


def test_better_candidate_is_promoted(tiny_base: Path, data_csv: Path) -> None:
    first = _run(data_csv, tiny_base, BAD, NO_FLOORS)
    assert first.status == "blessed" and first.champion_after == "1"
    second = _run(data_csv, tiny_base, GOOD, NO_FLOORS)
    assert second.status == "blessed", second.summary()
    assert second.gate.candidate.macro_f1 > second.gate.champion.macro_f1
    assert (second.champion_before, second.champion_after) == ("1", "2")
    assert second.card["parent"]["version"] == "1"


def test_train_command_exit_status_follows_the_blessing(
    tiny_base: Path, data_csv: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = [
        "train",
        "--data",
        str(data_csv),
        "--base",
        str(tiny_base),
        "--lr",
        "5e-3",
        "--threads",
        "1",
        "--name",
        NAME,
    ]
    feedback = write_csv(
        [
            Example(
                text="The board reviewed the quarterly report.", label="neutral", source="review"
            )
        ],
        tmp_path / "feedback.csv",
    )
    ok = runner.invoke(app, [*args, "--epochs", "30", "--train-embeddings"])
    assert ok.exit_code == 0, ok.output
    assert f"registered {NAME} version 1" in ok.output
    worse = runner.invoke(
        app,
        [
            *args,
            "--max-steps",
            "1",
            "--min-accuracy",
            "0",
            "--min-macro-f1",
            "0",
            "--feedback",
            str(feedback),
        ],
    )
    assert worse.exit_code == 1
    assert "NOT BLESSED" in worse.output and "champion: 1 -> 1" in worse.output
    shown = json.loads(runner.invoke(app, ["models", "show", f"{NAME}/2"]).stdout)
    assert [s["role"] for s in shown["data_sources"]] == ["data", "extra"]


def test_head_and_layer_learning_rates_follow_the_options(tiny_base: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from models.train import _param_groups

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_base), num_labels=3)
    opts = TrainOptions(
        learning_rate=1.0, head_lr_multiplier=10, layer_lr_decay=0.5, weight_decay=0.1
    )
    groups = _param_groups(model, opts)
    lr = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    # Two layers: the top one one step below the head, the embeddings three.
    assert lr[id(named["classifier.weight"])] == lr[id(named["bert.pooler.dense.weight"])] == 10
    assert lr[id(named["bert.encoder.layer.1.output.dense.weight"])] == 0.5
    assert lr[id(named["bert.encoder.layer.0.output.dense.weight"])] == 0.25
    assert lr[id(named["bert.embeddings.position_embeddings.weight"])] == 0.125
    assert decay[id(named["bert.encoder.layer.0.output.dense.weight"])] == 0.1
    assert decay[id(named["bert.encoder.layer.0.output.dense.bias"])] == 0.0


def test_examples_weighted_zero_leave_the_encoder_as_it_was(
    tiny_base: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    rows = unique_template_rows(20)
    opts = GOOD.model_copy(update={"max_steps": 3, "weight_decay": 0.0})
    fine_tune(
        [t for t, _ in rows],
        [lab for _, lab in rows],
        tmp_path / "m",
        opts,
        base_dir=tiny_base,
        weights=[0.0] * len(rows),
    )
    key = "encoder.layer.0.output.dense.weight"
    trained = load_file(tmp_path / "m" / "model.safetensors")[f"bert.{key}"]
    assert trained.equal(load_file(tiny_base / "model.safetensors")[key])


def test_uniform_example_weights_train_as_no_weights(tiny_base: Path, tmp_path: Path) -> None:
    rows = unique_template_rows(20)
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    opts = GOOD.model_copy(update={"max_steps": 4})
    plain = fine_tune(texts, labels, tmp_path / "a", opts, base_dir=tiny_base)
    doubled = fine_tune(
        texts, labels, tmp_path / "b", opts, base_dir=tiny_base, weights=[2.0] * len(texts)
    )
    assert doubled.loss_curve == pytest.approx(plain.loss_curve, rel=1e-4)
    with pytest.raises(ModelError, match="one non-negative weight per example"):
        fine_tune(texts, labels, tmp_path / "c", opts, base_dir=tiny_base, weights=[1.0])


def test_bfloat16_and_averaged_weights_still_learn_the_templates(
    tiny_base: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    rows = unique_template_rows(40)
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    final = fine_tune(texts, labels, tmp_path / "final", GOOD, base_dir=tiny_base)
    averaged = fine_tune(
        texts,
        labels,
        tmp_path / "avg",
        GOOD.model_copy(update={"average_share": 0.5}),
        base_dir=tiny_base,
    )
    bf16 = fine_tune(
        texts,
        labels,
        tmp_path / "bf16",
        GOOD.model_copy(update={"precision": "bfloat16"}),
        base_dir=tiny_base,
    )
    assert bf16.loss_curve[-1] < bf16.loss_curve[0] / 3
    assert averaged.loss_curve == final.loss_curve  # same steps; only the saved weights differ
    key = "classifier.weight"
    assert not load_file(tmp_path / "avg" / "model.safetensors")[key].equal(
        load_file(tmp_path / "final" / "model.safetensors")[key]
    )
    for name in ("final", "avg"):
        metrics = evaluate_dir(
            tmp_path / name, [Example(text=t, label=lab, source="t") for t, lab in rows]
        )
        assert metrics.accuracy >= 0.9, name


def test_train_command_passes_the_recipe_flags_to_the_run(
    tiny_base: Path, data_csv: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = [
        "train",
        "--data",
        str(data_csv),
        "--base",
        str(tiny_base),
        "--threads",
        "1",
        "--name",
        NAME,
        "--max-steps",
        "2",
        "--min-accuracy",
        "0",
        "--min-macro-f1",
        "0",
    ]
    done = runner.invoke(
        app,
        [
            *args,
            "--out",
            str(tmp_path / "run"),
            "--precision",
            "bfloat16",
            "--head-lr",
            "2",
            "--layer-decay",
            "0.9",
            "--average",
            "0.25",
            "--label-smoothing",
            "0.1",
        ],
    )
    assert done.exit_code == 0, done.output
    recipe = json.loads((tmp_path / "run" / "options.json").read_text())["train"]
    assert {
        k: recipe[k]
        for k in (
            "precision",
            "head_lr_multiplier",
            "layer_lr_decay",
            "average_share",
            "label_smoothing",
        )
    } == {
        "precision": "bfloat16",
        "head_lr_multiplier": 2.0,
        "layer_lr_decay": 0.9,
        "average_share": 0.25,
        "label_smoothing": 0.1,
    }
    wrong = runner.invoke(app, [*args, "--precision", "float8"])
    assert wrong.exit_code == 2 and "precision" in wrong.output


@pytest.fixture(scope="module")
def teacher_dir(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = unique_template_rows(40)
    out = tmp_path_factory.mktemp("teacher") / "model"
    fine_tune([t for t, _ in rows], [lab for _, lab in rows], out, GOOD, base_dir=tiny_base)
    return out


def test_a_student_learns_from_the_teachers_soft_labels_alone(
    tiny_base: Path, teacher_dir: Path, tmp_path: Path
) -> None:
    from models.evaluate import load_scorer

    rows = unique_template_rows(40, seed=3)
    texts = [t for t, _ in rows]
    soft = load_scorer(teacher_dir).predict_proba(texts)
    examples = [Example(text=t, label=lab, source="t") for t, lab in rows]
    assert evaluate_dir(teacher_dir, examples).accuracy >= 0.9  # the teacher knows them
    # every text unlabelled: whatever the student learns, it learns from the teacher
    student = GOOD.model_copy(update={"distill_alpha": 1.0})
    fine_tune(
        texts,
        [None] * len(texts),
        tmp_path / "student",
        student,
        base_dir=tiny_base,
        soft_targets=soft,
    )
    assert evaluate_dir(tmp_path / "student", examples).accuracy >= 0.9
    # uniform soft labels teach nothing: the same student stays near chance
    fine_tune(
        texts,
        [None] * len(texts),
        tmp_path / "blank",
        student,
        base_dir=tiny_base,
        soft_targets=[[1 / 3] * 3] * len(texts),
    )
    assert evaluate_dir(tmp_path / "blank", examples).accuracy < 0.6
    with pytest.raises(ModelError, match="need a teacher"):
        fine_tune(texts, [None] * len(texts), tmp_path / "x", student, base_dir=tiny_base)
    with pytest.raises(ModelError, match="one row of 3 class probabilities"):
        fine_tune(
            texts,
            [None] * len(texts),
            tmp_path / "x",
            student,
            base_dir=tiny_base,
            soft_targets=soft[:3],
        )


def test_distillation_run_keeps_eval_sentences_out_and_records_the_teacher(
    tiny_base: Path, teacher_dir: Path, data_csv: Path, tmp_path: Path
) -> None:
    import csv

    with (data_csv.parent / "labelled.csv").open(encoding="utf-8") as f:
        all_texts = [r["text"] for r in csv.DictReader(f)]
    pool = tmp_path / "report_sentences.txt"
    extra = [t for t, _ in unique_template_rows(40, seed=9) if t not in all_texts][:20]
    # every labelled sentence (eval ones included) and 20 new ones; one too short to keep
    pool.write_text("\n".join([*all_texts, *extra, "Net sales"]) + "\n", encoding="utf-8")
    report = _run(
        data_csv,
        tiny_base,
        GOOD.model_copy(update={"max_steps": 5}),
        NO_FLOORS,
        teacher=teacher_dir,
        unlabelled=[pool],
        out_dir=tmp_path / "run",
    )
    assert report.status == "blessed", report.summary()
    taught = json.loads((tmp_path / "run" / "distillation.json").read_text())
    n_eval = report.card["training"]["split"]["n_eval"]
    assert taught["removed"] == {
        "unlabelled_in_eval": n_eval,
        "unlabelled_in_train": len(all_texts) - n_eval,
    }
    assert taught["n_unlabelled"] == len(extra)
    assert taught["unlabelled_sources"][0]["n_examples"] == len(all_texts) + len(extra)
    card = report.card
    assert card["distillation"]["sha256"] == weights_digest(teacher_dir)
    assert "Distilled from" in card["summary"]
    # a teacher without a card has unknown provenance, so the student is not cleared either
    assert card["commercial_use"] is False
    assert "unstated (user-supplied text)" in card["licences"]
    with pytest.raises(ValueError, match="only used with a teacher"):
        PipelineOptions(data=[data_csv], unlabelled=[pool])


def test_a_distilled_models_card_names_its_teacher_and_unlabelled_data(
    tiny_base: Path, data_csv: Path, tmp_path: Path
) -> None:
    teacher = _run(
        data_csv,
        tiny_base,
        GOOD.model_copy(update={"max_steps": 3}),
        NO_FLOORS,
        out_dir=tmp_path / "teacher",
    )
    pool = tmp_path / "pool.txt"
    pool.write_text(
        "\n".join(t for t, _ in unique_template_rows(10, seed=5)) + "\n", encoding="utf-8"
    )
    student = _run(
        data_csv,
        tiny_base,
        GOOD.model_copy(update={"max_steps": 3}),
        NO_FLOORS,
        teacher=tmp_path / "teacher" / "model",
        unlabelled=[pool],
        out_dir=tmp_path / "student",
    )
    taught = student.card["distillation"]
    # the teacher's own lineage travels with the student: its data digests and recipe
    assert (
        taught["lineage"]["split"]["split_digest"]
        == teacher.card["training"]["split"]["split_digest"]
    )
    assert taught["lineage"]["options"]["max_steps"] == 3
    assert taught["licences"] == teacher.card["licences"]
    text = (tmp_path / "student" / "model" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Distillation" in text and f"`{taught['sha256']}`" in text
    assert "lines:pool" in text
