"""Options several commands share, and how a command's options land in `Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from app.config import Settings
from app.records import LABEL_LIMITS, check_label
from models.registry import parse_ref

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

PasswordOpt = Annotated[
    str | None, typer.Option(help="Password for encrypted PDFs (applied to every input).")
]
ExplainOpt = Annotated[
    Literal["none", "flagged", "all"] | None,
    typer.Option(
        help="SHAP evidence for: none, flagged (positive and negative; default) or all.",
        show_default=False,
    ),
]
ExplainMethodOpt = Annotated[
    Literal["auto", "sampled", "amortized"] | None,
    typer.Option(
        "--explain-method",
        help="How evidence is made: auto (the model's amortized explainer when it ships one "
        "blessed for its weights, else sampled; default), sampled (Owen values sampled per "
        "sentence, about 3 model passes per word) or amortized (falls back to sampled, with a "
        "warning, when the model has no usable explainer).",
        show_default=False,
    ),
]
OcrOpt = Annotated[
    Literal["auto", "force", "off"] | None,
    typer.Option(
        help="OCR: auto (pages without a readable text layer; default), force (every page, "
        "for scans with a poor embedded OCR) or off (refuse scans, as before).",
        show_default=False,
    ),
]
OcrLanguagesOpt = Annotated[
    str | None,
    typer.Option(
        help='Tesseract languages for OCR, e.g. "deu" or "nld+eng" (default: the document\'s).',
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Registered model as NAME, NAME@ALIAS or NAME/VERSION (default: the champion).",
        show_default=False,
    ),
]
ModelDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="Score with a local Hugging Face model directory instead of the registry.",
        show_default=False,
    ),
]


def _label(kind: Literal["client", "engagement"]) -> Any:
    def check(value: str | None) -> str | None:
        try:
            return check_label(kind, value)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e

    return check


ClientOpt = Annotated[
    str | None,
    typer.Option(
        help=f"Client name for the workpapers (at most {LABEL_LIMITS['client']} characters).",
        callback=_label("client"),
    ),
]
EngagementOpt = Annotated[
    str | None,
    typer.Option(
        help=f"Engagement for the workpapers (at most {LABEL_LIMITS['engagement']} characters).",
        callback=_label("engagement"),
    ),
]


def with_overrides(
    settings: Settings,
    *,
    explain: str | None = None,
    explain_method: str | None = None,
    model: str | None = None,
    model_dir: Path | None = None,
    password: str | None = None,
    store: str | None = None,
    max_pages: int | None = None,
    max_mb: float | None = None,
    ocr: str | None = None,
    ocr_languages: str | None = None,
) -> Settings:
    """The settings with a command's options on top (None leaves a setting as it is)."""
    update: dict[str, Any] = {}
    scoring = settings.scoring
    if model_dir is not None:
        scoring = scoring.model_copy(update={"model_dir": model_dir.resolve()})
    elif model is not None:
        name, version = parse_ref(model)
        scoring = scoring.model_copy(update={"model": name, "version": version})
    update["scoring"] = scoring
    explain_update = {
        k: v for k, v in {"mode": explain, "method": explain_method}.items() if v is not None
    }
    if explain_update:
        update["explain"] = settings.explain.model_copy(update=explain_update)
    ingest = {
        k: v
        for k, v in {
            "password": password,
            "max_pages": max_pages,
            "max_bytes": int(max_mb * 1024 * 1024) if max_mb else None,
            "ocr": ocr,
            "ocr_languages": ocr_languages,
        }.items()
        if v is not None
    }
    if ingest:
        update["ingest"] = settings.ingest.model_copy(update=ingest)
    if store is not None:
        update["store"] = settings.store.model_copy(update={"url": store})
    return settings.model_copy(update=update)
