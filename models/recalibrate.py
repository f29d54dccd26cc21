"""Fit a saved model's calibration: after training on held-out examples, or later on a labelled
file of the language it serves (`python -m models.recalibrate MODEL_DIR --data FILE`).

The calibration itself (fitting, storing, applying) is `models.calibration`; this module loads
the model to score the held-out sentences, so it sits above the scorer and the registry.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.config import ScoringOptions, load_settings
from models.calibration import (
    Calibration,
    CalibrationMethod,
    fit_calibration,
    store_calibration,
)
from models.evaluate import load_scorer, read_eval_file
from models.registry import read_card, write_card
from models.report_data import write_monitoring_reference


def calibrate_model(
    model_dir: Path,
    held: Sequence[Any],
    method: CalibrationMethod,
    options: Any,
    *,
    fitted_on: str,
    fit_digest: str = "",
) -> Calibration | None:
    """Fit a calibration of a saved model on held-out examples and store it in its config."""
    if method == "none" or not held:
        store_calibration(model_dir, None)
        return None
    raw = load_scorer(
        Path(model_dir), options.model_copy(update={"model_dir": None, "calibration": "none"})
    )
    proba = raw.predict_proba([e.text for e in held])
    fitted = fit_calibration(
        proba, [e.label for e in held], method=method, fitted_on=fitted_on, fit_digest=fit_digest
    )
    store_calibration(model_dir, fitted)
    return fitted


def recalibrate(
    model_dir: Path, data: Path, method: CalibrationMethod = "temperature", options: Any = None
) -> Calibration | None:
    """Refit a saved model's calibration on a labelled file; the card records it (lineage)."""
    examples, digest = read_eval_file(Path(data))
    fitted = calibrate_model(
        Path(model_dir),
        examples,
        method,
        options or ScoringOptions(),
        fitted_on=f"{len(examples)} labelled examples of {Path(data).name} "
        "(refitted after training)",
        fit_digest=digest,
    )
    card = read_card(Path(model_dir))
    if card is not None:
        previous = card.get("calibration")
        card["calibration"] = fitted.model_dump(mode="json") if fitted else None
        if previous:
            card["calibration_history"] = [*card.get("calibration_history", []), previous]
        write_card(Path(model_dir), card)
    return fitted


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m models.recalibrate MODEL_DIR --data FILE`: refit and store a calibration."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="Labelled sentences the model never trained on (not an evaluation slice).",
    )
    parser.add_argument(
        "--method", choices=["none", "temperature", "temperature+bias"], default="temperature"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--reference",
        action="store_true",
        help="Also profile the drift reference again with the new probabilities (report "
        "sentences, `evaluation.reference_reports`).",
    )
    args = parser.parse_args(argv)
    fitted = recalibrate(
        args.model_dir, args.data, args.method, ScoringOptions(threads=args.threads)
    )
    print(fitted.model_dump_json(indent=1) if fitted else "calibration removed")
    if args.reference:
        settings = load_settings()
        settings = settings.model_copy(
            update={"scoring": settings.scoring.model_copy(update={"threads": args.threads})}
        )
        print(f"drift reference: {write_monitoring_reference(args.model_dir, [], settings)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
