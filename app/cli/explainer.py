"""`sesame explainer train|evaluate|show`: the amortized explainer of a model version.

Exit status: 0 when the explainer is blessed (its fidelity clears every floor), 1 when it is
not (it is saved all the same, marked `blessed: false`) or the run failed, 2 on bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from app.config import ExplainerOptions, load_settings
from app.errors import SesameError
from explain.amortized import EXPLAINER_DIR, META_FILE, TrainConfig
from models.explainer import (
    ExplainerRun,
    evaluate_explainer,
    fidelity_line,
    model_target,
    train_explainer,
)

EXIT_OK, EXIT_NOT_BLESSED, EXIT_USAGE = 0, 1, 2

explainer_app = typer.Typer(
    help="The amortized explainer of a model version: train, gate, show.", no_args_is_help=True
)

Device = Literal["cpu", "cuda"]


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _opt(help_text: str, field: str, *names: str) -> Any:
    """An option whose default is `Settings.explainer.FIELD` (sesame.toml, env)."""
    default = ExplainerOptions.model_fields[field].default
    return typer.Option(
        *names,
        help=f"{help_text} (default {default}; setting explainer.{field})",
        show_default=False,
    )


def _recipe(field: str, minimum: int | None = None) -> Any:
    """An explainer-training option whose default is `TrainConfig`'s."""
    default = getattr(TrainConfig(), field)
    return typer.Option(
        help=f"Explainer training: {field} (default {default}).", show_default=False, min=minimum
    )


ModelDir = Annotated[
    Path | None, typer.Option(help="A local model directory (not registered: a standalone run).")
]
ModelRef = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A registered version as NAME, NAME@ALIAS or NAME/VERSION; its explainer is logged "
        "on the version's run and shipped with the version.",
    ),
]
Reference = Annotated[
    Path | None,
    _opt("Held-out report sentences (text,label; labels unused)", "reference_set", "--reference"),
]
MinSpearman = Annotated[float | None, _opt("Floor: mean Spearman.", "min_spearman")]
MinTop1 = Annotated[float | None, _opt("Floor: top-1 agreement.", "min_top1")]
MinTop3 = Annotated[float | None, _opt("Floor: top-3 overlap.", "min_top3")]
ReferenceEvals = Annotated[
    int | None, _opt("Evaluations per reference sentence.", "reference_evals")
]


def _options(**given: Any) -> ExplainerOptions:
    base = load_settings().explainer
    return ExplainerOptions.model_validate(
        base.model_dump() | {k: v for k, v in given.items() if v is not None}
    )


def _report(run: ExplainerRun, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(run.meta, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(run.summary())
    if not run.blessed:
        typer.echo(
            "NOT BLESSED: the explainer is saved; auto evidence stays sampled (only "
            "--explain-method amortized serves it); train on more "
            "sentences, at more evaluations per word, or longer (--epochs).",
            err=True,
        )
        raise typer.Exit(EXIT_NOT_BLESSED)


@explainer_app.command("train")
def train_cmd(
    unlabelled: Annotated[
        list[Path],
        typer.Option(
            "--unlabelled",
            help="Report sentences to learn from: PDF reports, text files (one per line) or "
            "labelled files (labels unused). Repeat for several.",
            show_default=False,
        ),
    ],
    model_dir: ModelDir = None,
    model: ModelRef = None,
    reference: Reference = None,
    n: Annotated[
        int | None, _opt("Train on at most N sentences (seeded sample).", "max_sentences", "--n")
    ] = None,
    evals_per_word: Annotated[
        float | None, _opt("Budget of the training targets per word.", "evals_per_word")
    ] = None,
    epochs: Annotated[int | None, _recipe("epochs", 1)] = None,
    lr: Annotated[float | None, _recipe("lr")] = None,
    head_lr: Annotated[float | None, _recipe("head_lr")] = None,
    batch_size: Annotated[int | None, _recipe("batch_size", 1)] = None,
    device: Annotated[Device, typer.Option(help="Where the explainer trains.")] = "cpu",
    targets_cache: Annotated[
        Path | None,
        typer.Option(help="Folder of cached Owen values (default: <data_dir>/cache)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help=f"Save the explainer here instead of the model's {EXPLAINER_DIR}/ folder "
            "(then the model card is left alone)."
        ),
    ] = None,
    min_spearman: MinSpearman = None,
    min_top1: MinTop1 = None,
    min_top3: MinTop3 = None,
    reference_evals: ReferenceEvals = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explainer's record.")] = False,
) -> None:
    """Train a model's explainer on sampled Owen values, gate its fidelity, save and log it;
    exit 1 if not blessed."""
    if (model_dir is None) == (model is None):
        raise _fail("give exactly one of --model-dir DIR or --model NAME@ALIAS.")
    settings = load_settings()
    try:
        options = _options(
            min_spearman=min_spearman,
            min_top1=min_top1,
            min_top3=min_top3,
            reference_evals=reference_evals,
            evals_per_word=evals_per_word,
            max_sentences=n,
        )
        config = TrainConfig(seed=options.seed)
        for key, value in {
            "epochs": epochs,
            "lr": lr,
            "head_lr": head_lr,
            "batch_size": batch_size,
        }.items():
            if value is not None:
                setattr(config, key, value)
    except ValueError as e:
        raise _fail(str(e)) from e
    try:
        target = model_target(settings, model_dir, model)
        run = train_explainer(
            settings,
            target,
            unlabelled,
            options=options,
            reference=reference,
            config=config,
            device=device,
            cache_dir=targets_cache,
            out=out,
            progress=lambda m: typer.echo(m, err=True),
        )
    except SesameError as e:
        raise _fail(e.message, EXIT_NOT_BLESSED) from e
    _report(run, as_json)


@explainer_app.command("evaluate")
def evaluate_cmd(
    model_dir: Annotated[Path, typer.Option(help="The model directory.", show_default=False)],
    folder: Annotated[
        Path | None, typer.Option(help=f"The explainer (default: MODEL_DIR/{EXPLAINER_DIR}).")
    ] = None,
    reference: Reference = None,
    device: Annotated[Device, typer.Option()] = "cpu",
    targets_cache: Annotated[
        Path | None, typer.Option(help="Folder of cached Owen values.")
    ] = None,
    min_spearman: MinSpearman = None,
    min_top1: MinTop1 = None,
    min_top3: MinTop3 = None,
    reference_evals: ReferenceEvals = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure an existing explainer's fidelity against the reference (same gate; read-only)."""
    settings = load_settings()
    try:
        options = _options(
            min_spearman=min_spearman,
            min_top1=min_top1,
            min_top3=min_top3,
            reference_evals=reference_evals,
        )
        run = evaluate_explainer(
            settings,
            model_dir,
            folder=folder,
            options=options,
            reference=reference,
            device=device,
            cache_dir=targets_cache,
        )
    except ValueError as e:
        raise _fail(str(e)) from e
    except SesameError as e:
        raise _fail(e.message, EXIT_NOT_BLESSED) from e
    _report(run, as_json)


@explainer_app.command("show")
def show_cmd(
    model_dir: Annotated[Path, typer.Option(help="The model directory.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole record.")] = False,
) -> None:
    """The record of a model directory's explainer: scorer digest, fidelity, gate, training."""
    path = model_dir / EXPLAINER_DIR / META_FILE
    if not path.is_file():
        raise _fail(f"{model_dir}: no explainer ({path} is missing).", EXIT_NOT_BLESSED)
    meta = json.loads(path.read_text(encoding="utf-8"))
    if as_json:
        typer.echo(json.dumps(meta, indent=2, sort_keys=True))
        return
    gate = meta.get("gate") or {}
    data = (meta.get("training") or {}).get("data") or {}
    typer.echo(f"explainer of weights sha256 {str(meta.get('scorer_sha256'))[:12]}…")
    typer.echo(fidelity_line(meta.get("fidelity") or {}, gate.get("floors") or {}))
    typer.echo(
        ("BLESSED" if meta.get("blessed") else "NOT BLESSED")
        + (": " + "; ".join(gate["failures"]) if gate.get("failures") else "")
    )
    if data:
        typer.echo(
            f"trained on {data.get('n_sentences')} sentences ({data.get('leakage_dropped')} "
            f"reference sentences dropped), {data.get('evals_per_word')} evaluations per word"
        )


def register(app: typer.Typer) -> None:
    """Attach this group's commands to the root app."""
    app.add_typer(explainer_app, name="explainer")
