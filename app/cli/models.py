"""`sesame train`, `sesame evaluate` and `sesame models list|show|promote|import`."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from pydantic import BaseModel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from app.config import DEFAULT_MODEL_NAME, GateOptions, TrainOptions, load_settings
from app.errors import SesameError
from models import registry
from models.diagnostics import confident_mistakes
from models.evaluate import load_scorer
from models.gate import import_model
from models.slices import measure, read_set
from models.train import PipelineOptions, train_pipeline

_log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

EXIT_OK, EXIT_NOT_BLESSED, EXIT_USAGE = 0, 1, 2

models_app = typer.Typer(
    help="Registered model versions, their lineage and the champion.", no_args_is_help=True
)


def _settings():  # noqa: ANN202

    return load_settings()


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int, float], None]]:
    """A progress bar over training steps, showing the running loss."""

    with Progress(
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("train", total=None, loss=float("nan"))

        def advance(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=loss)

        yield advance


def _train_opt(help_text: str, field: str, *names: str) -> Any:
    """A `sesame train` option whose default is `Settings.train.FIELD` (sesame.toml, env)."""
    default = TrainOptions.model_fields[field].default
    return typer.Option(
        *names, help=f"{help_text} (default {default}; setting train.{field})", show_default=False
    )


def _gate_opt(help_text: str, field: str) -> Any:
    """A gate option whose default is `Settings.gate.FIELD` (sesame.toml, env)."""
    default = GateOptions.model_fields[field].default
    return typer.Option(
        help=f"{help_text} (default {default}; setting gate.{field})", show_default=False
    )


def _overlay(options: M, **given: Any) -> M:
    """`options` with the flags a person gave on top, validated (None leaves a field alone)."""
    return type(options).model_validate(
        options.model_dump() | {k: v for k, v in given.items() if v is not None}
    )


def train(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Labelled files split into train and eval: PhraseBank sentence@label, "
            "CSV text,label, SEntFiN CSV or FiQA JSON. Repeat for several.",
            show_default=False,
        ),
    ],
    extra: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra", help="Training-only files, deduplicated against the evaluation set."
        ),
    ] = None,
    feedback: Annotated[
        list[Path] | None,
        typer.Option(
            "--feedback",
            help="Reviewed sentences exported by `sesame monitor` (text,label CSV); "
            "training-only, like --extra.",
        ),
    ] = None,
    eval_file: Annotated[
        Path | None,
        typer.Option(
            "--eval", help="A frozen evaluation set (text,label); then all of --data is trained on."
        ),
    ] = None,
    base: Annotated[
        Path | None,
        typer.Option(help="Base encoder directory (default: the pinned all-MiniLM-L6-v2)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    epochs: Annotated[float | None, _train_opt("Training epochs.", "epochs")] = None,
    lr: Annotated[float | None, _train_opt("Peak learning rate.", "learning_rate", "--lr")] = None,
    batch_size: Annotated[int | None, _train_opt("Examples per step.", "batch_size")] = None,
    max_length: Annotated[
        int | None, _train_opt("Tokens per sentence at training.", "max_length")
    ] = None,
    class_weight: Annotated[
        str | None, _train_opt("none, sqrt or balanced.", "class_weight")
    ] = None,
    warmup: Annotated[
        float | None, _train_opt("Share of steps warming up.", "warmup_share")
    ] = None,
    seed: Annotated[int | None, _train_opt("Split and training seed.", "seed")] = None,
    eval_share: Annotated[float, typer.Option(help="Share of --data held out.")] = 0.2,
    max_steps: Annotated[
        int | None, _train_opt("Stop after N steps (smoke runs).", "max_steps")
    ] = None,
    threads: Annotated[int | None, _train_opt("Torch threads.", "threads")] = None,
    train_embeddings: Annotated[
        bool | None,
        typer.Option(
            "--train-embeddings/--freeze-embeddings",
            help="Also train the word-embedding table (slower; default: frozen, setting "
            "train.freeze_embeddings).",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        _train_opt(
            "float32, or bfloat16 (autocast forward pass; faster on AVX512-BF16/AMX CPUs).",
            "precision",
        ),
    ] = None,
    head_lr: Annotated[
        float | None,
        _train_opt(
            "Pooler and classifier learning rate as a multiple of --lr.",
            "head_lr_multiplier",
            "--head-lr",
        ),
    ] = None,
    layer_decay: Annotated[
        float | None,
        _train_opt(
            "Layer-wise learning-rate decay per layer below the head (1: none).", "layer_lr_decay"
        ),
    ] = None,
    average: Annotated[
        float | None,
        _train_opt(
            "Average the weights over this last share of steps (0: keep the final ones).",
            "average_share",
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None, _train_opt("Label smoothing of the loss.", "label_smoothing")
    ] = None,
    teacher: Annotated[
        list[Path] | None,
        typer.Option(
            "--teacher",
            help="A model directory to distil from: the student learns its class "
            "probabilities as well as the labels. Repeat for an ensemble (probabilities "
            "averaged).",
        ),
    ] = None,
    unlabelled: Annotated[
        list[Path] | None,
        typer.Option(
            "--unlabelled",
            help="Sentences without labels for the teacher to label: PDF reports, "
            "text files (one per line) or labelled files. Repeat for several; needs --teacher.",
        ),
    ] = None,
    distill_alpha: Annotated[
        float | None,
        _train_opt(
            "Weight of the teacher's soft labels in the loss (with --teacher).", "distill_alpha"
        ),
    ] = None,
    distill_temperature: Annotated[
        float | None,
        _train_opt(
            "Softmax temperature of the teacher's labels (with --teacher).", "distill_temperature"
        ),
    ] = None,
    calibration: Annotated[
        str,
        typer.Option(
            help="none, temperature or temperature+bias: fitted after training on held-out "
            "data, stored with the model and applied at scoring."
        ),
    ] = "temperature",
    calibration_share: Annotated[
        float, typer.Option(help="Share of the training examples held out to fit the calibration.")
    ] = 0.1,
    calibration_file: Annotated[
        Path | None,
        typer.Option(
            help="Fit the calibration on this labelled file instead (kept out of training and "
            "evaluation)."
        ),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow", help="Accept an anomaly by code (e.g. class_balance_shift); recorded."
        ),
    ] = None,
    licence: Annotated[str | None, typer.Option(help="Licence of user-supplied CSVs.")] = None,
    min_accuracy: Annotated[
        float | None, _gate_opt("Blessing floor: accuracy.", "min_accuracy")
    ] = None,
    min_macro_f1: Annotated[
        float | None, _gate_opt("Blessing floor: macro-F1.", "min_macro_f1")
    ] = None,
    tolerance: Annotated[
        float | None,
        _gate_opt("Largest macro-F1 drop against the champion still blessed.", "tolerance"),
    ] = None,
    no_promote: Annotated[
        bool,
        typer.Option("--no-promote", help="Register, but leave the champion alias where it is."),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Folder for this run's files.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate data, fine-tune, evaluate against the champion, register; exit 1 if not blessed."""

    settings = _settings()
    try:
        train_options = _overlay(
            settings.train,
            epochs=epochs,
            learning_rate=lr,
            batch_size=batch_size,
            max_length=max_length,
            class_weight=class_weight,
            warmup_share=warmup,
            seed=seed,
            max_steps=max_steps,
            threads=threads,
            freeze_embeddings=None if train_embeddings is None else not train_embeddings,
            precision=precision,
            head_lr_multiplier=head_lr,
            layer_lr_decay=layer_decay,
            average_share=average,
            label_smoothing=label_smoothing,
            distill_alpha=distill_alpha,
            distill_temperature=distill_temperature,
        )
        gate_options = _overlay(
            settings.gate, min_accuracy=min_accuracy, min_macro_f1=min_macro_f1, tolerance=tolerance
        )
        opts = PipelineOptions(
            data=data,
            extra=[*(extra or []), *(feedback or [])],
            eval_file=eval_file,
            base=base,
            name=name or settings.scoring.model or DEFAULT_MODEL_NAME,
            eval_share=eval_share,
            split_seed=train_options.seed,
            licence=licence,
            allow=allow or [],
            out_dir=out,
            promote=not no_promote,
            teacher=(teacher[0] if len(teacher) == 1 else teacher) if teacher else None,
            unlabelled=unlabelled or [],
            calibration=calibration,
            calibration_share=calibration_share,
            calibration_file=calibration_file,
            train=train_options,
            gate=gate_options,
        )
    except ValueError as e:
        raise _fail(str(e)) from e
    try:
        with _progress() as advance:
            report = train_pipeline(opts, settings, progress=advance)
    except SesameError as e:
        raise _fail(e.message, EXIT_NOT_BLESSED) from e
    if as_json:
        typer.echo(report.model_dump_json(indent=2, exclude={"card"}))
    else:
        typer.echo(report.summary())
    if report.status == "invalid_data":
        typer.echo(
            "NOT TRAINED: the data has anomalies (above). Fix the data, or accept one "
            "deliberately with --allow CODE.",
            err=True,
        )
    if report.status != "blessed":
        raise typer.Exit(EXIT_NOT_BLESSED)


def evaluate(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A text,label CSV (or any labelled file), or an evaluation slice's name "
            "(reports, phrasebank).",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None, typer.Option(help="NAME, NAME@ALIAS or NAME/VERSION (default: the champion).")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Evaluate a model directory instead.")
    ] = None,
    errors: Annotated[
        int,
        typer.Option(
            "--errors", help="List the N most confident mistakes (both labels, probabilities)."
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Metrics of a model on a labelled file: accuracy, macro-F1, per class, confusion, with
    bootstrap 95% intervals; --errors N lists its most confident mistakes."""

    settings = _settings()
    try:
        examples, digest, _ = read_set(data, settings.evaluation)
        if model_dir is not None:
            path, label = model_dir, str(model_dir)
        else:
            name, ref = registry.parse_ref(model, settings.scoring.model)
            scoring = settings.scoring.model_copy(
                update={"model": name, "version": ref, "model_dir": None}
            )
            resolved = registry.resolve_model(settings.model_copy(update={"scoring": scoring}))
            path, label = resolved.path, f"{resolved.name} v{resolved.version}"
        scorer = load_scorer(path, settings.scoring.model_copy(update={"model_dir": None}))
        texts = [e.text for e in examples]
        cache: dict[str, np.ndarray] = {}

        def predict(batch: Sequence[str]) -> np.ndarray:
            cache["proba"] = scorer.predict_proba(batch)  # scored once, reused for --errors
            return cache["proba"]

        metrics, intervals = measure(predict, examples, digest, settings.evaluation)
        mistakes = (
            confident_mistakes(texts, [e.label for e in examples], cache["proba"], errors)
            if errors
            else []
        )
    except SesameError as e:
        raise _fail(e.message, EXIT_NOT_BLESSED) from e
    if as_json:
        typer.echo(
            json.dumps(
                {"model": label, "data": str(data)}
                | metrics.model_dump(mode="json")
                | {
                    "intervals": {k: v.model_dump() for k, v in intervals.items()},
                    "calibrated": scorer.calibration is not None,
                }
                | ({"errors": [m.model_dump() for m in mistakes]} if errors else {}),
                indent=2,
            )
        )
        return
    typer.echo(f"{label} on {data}:")
    typer.echo(metrics.table())
    if intervals:
        typer.echo(
            f"bootstrap {settings.evaluation.confidence:.0%} intervals: "
            + ", ".join(f"{k} [{v.low:.3f}, {v.high:.3f}]" for k, v in intervals.items())
        )
    if errors:
        typer.echo(
            f"{len(mistakes)} most confident mistakes (confidence, true -> predicted, "
            "probabilities positive/negative/neutral):"
        )
        for m in mistakes:
            p = m.probabilities
            typer.echo(
                f"  {m.confidence:.3f}  {m.label} -> {m.predicted}  "
                f"({p['positive']:.2f}/{p['negative']:.2f}/{p['neutral']:.2f})  {m.text}"
            )


@models_app.command("list")
def list_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Registered versions, newest first, with aliases, blessing and headline metrics."""

    rows = registry.describe(registry.list_versions(_settings(), name))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no registered models (the bundled default registers itself on first use)")
        return
    cols = [
        "name",
        "version",
        "aliases",
        "origin",
        "blessed",
        "accuracy",
        "macro_f1",
        "sha256",
        "created",
    ]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    typer.echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        typer.echo("  ".join(r[c].ljust(widths[c]) for c in cols))


@models_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION.")],
    card: Annotated[bool, typer.Option("--card", help="Print the model card.")] = False,
) -> None:
    """A version's lineage: base, data and licences, digests, metrics, blessing, code."""

    settings = _settings()
    name, which = registry.parse_ref(ref, settings.scoring.model)
    info = (
        registry.champion_info(settings, name)
        if which == registry.CHAMPION
        else registry.get_version(settings, name, which)
    )
    if info is None:
        raise _fail(f"{ref}: no such model version; see `sesame models list`.", EXIT_NOT_BLESSED)
    model_card = registry.version_card(settings, info)
    if card:
        typer.echo(registry.render_card(model_card or {}))
        return
    typer.echo(json.dumps(registry.lineage(info, model_card), indent=2, default=str))


@models_app.command("promote")
def promote_cmd(
    ref: Annotated[str, typer.Argument(help="NAME/VERSION to make champion.")],
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "champion",
    force: Annotated[bool, typer.Option(help="Promote a version the gate did not bless.")] = False,
) -> None:
    """Move the champion alias to a version (blessed versions only, unless --force)."""

    settings = _settings()
    name, which = registry.parse_ref(ref, settings.scoring.model)
    info = registry.get_version(settings, name, which)
    if info is None:
        raise _fail(f"{ref}: no such model version; see `sesame models list`.", EXIT_NOT_BLESSED)
    if info.tags.get("blessed") != "True" and not force:
        raise _fail(
            f"{name} v{info.version} was not blessed by the gate; promote it anyway "
            "with --force (recorded on the version).",
            EXIT_NOT_BLESSED,
        )
    before = registry.get_version(settings, name, alias)
    registry.set_alias(settings, name, info.version, alias)
    if force and info.tags.get("blessed") != "True":
        registry.client(settings).set_model_version_tag(
            name, info.version, "forced_promotion", "True"
        )
    typer.echo(f"{name}@{alias}: {before.version if before else 'none'} -> {info.version}")


@models_app.command("import")
def import_cmd(
    model_dir: Annotated[
        Path,
        typer.Argument(
            help="A local Hugging Face sequence-classification "
            "model directory (e.g. a downloaded FinBERT)."
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Registered model name.")],
    eval_file: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Evaluation set (text,label) or an evaluation slice's name (e.g. phrasebank); "
            "default: the champion's frozen set.",
        ),
    ] = None,
    licence: Annotated[str | None, typer.Option(help="The model's licence, for its card.")] = None,
    min_accuracy: Annotated[
        float | None, _gate_opt("Blessing floor: accuracy.", "min_accuracy")
    ] = None,
    min_macro_f1: Annotated[
        float | None, _gate_opt("Blessing floor: macro-F1.", "min_macro_f1")
    ] = None,
    tolerance: Annotated[
        float | None, _gate_opt("Largest macro-F1 drop still blessed.", "tolerance")
    ] = None,
    no_promote: Annotated[bool, typer.Option("--no-promote")] = False,
    write_card: Annotated[
        bool,
        typer.Option(
            "--write-card",
            help="Also write the gated card (every slice's metrics, blessing) into MODEL_DIR.",
        ),
    ] = False,
) -> None:
    """Register a model directory as a version; it goes through the same evaluation gate."""

    if not model_dir.is_dir():
        raise _fail(f"{model_dir}: no such folder.")
    settings = _settings()
    try:
        report = import_model(
            settings,
            model_dir,
            name,
            eval_file=eval_file,
            licence=licence,
            gate=_overlay(
                settings.gate,
                min_accuracy=min_accuracy,
                min_macro_f1=min_macro_f1,
                tolerance=tolerance,
            ),
            promote=not no_promote,
            write_back=write_card,
        )
    except SesameError as e:
        raise _fail(e.message, EXIT_NOT_BLESSED) from e
    verdict = "BLESSED" if report.blessed else "NOT BLESSED"
    typer.echo(
        f"{report.name} version {report.version} on {report.eval_set}: accuracy "
        f"{report.metrics['accuracy']:.3f} macro-F1 {report.metrics['macro_f1']:.3f}"
    )
    typer.echo(f"{verdict}: " + "; ".join(report.reasons))
    typer.echo(f"champion: {report.champion_before or 'none'} -> {report.champion_after or 'none'}")
    if not report.blessed:
        raise typer.Exit(EXIT_NOT_BLESSED)


def register(app: typer.Typer) -> None:
    """Attach this group's commands to the root app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.add_typer(models_app, name="models")
