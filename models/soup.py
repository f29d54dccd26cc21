"""Weight averaging ("model soup"): several fine-tunes of one base encoder averaged into one model.

Fine-tunes of the same pre-trained encoder stay in one basin of the loss, so the mean of their
weights scores about as well as the mean of their predictions (Wortsman et al. 2022, "Model
soups"), at the cost of one model: the scorer's speed is unchanged, where an ensemble of k
members costs k times as much, and distilling an ensemble costs a teacher pass over every
training sentence per member. Members trained on different data (news with report rules,
report rules warm-started from the news model, commercial data) disagree where one of them is
wrong, and the average keeps what they agree on.

`python -m models.soup OUT --member DIR --member DIR ...` writes the averaged directory with a
card that lists every member (weights digest, data, licences); commercial use is cleared only
when every member is. Written by hand: averaging tensors is a few lines of safetensors, and no
maintained library does it for Hugging Face classification checkpoints without pulling in a
training framework.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.errors import ModelError
from app.version import git_commit, package_version
from models.data import load_examples
from models.recalibrate import recalibrate
from models.registry import library_versions, read_card, render_card, write_card
from models.report_data import reference_sentences, write_monitoring_reference
from models.scoring import weights_digest

WEIGHTS = "model.safetensors"
COPIED = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def average_weights(
    members: Sequence[Path], out_dir: Path, weights: Sequence[float] | None = None
) -> Path:
    """Write the (weighted) mean of the members' weights to `out_dir`/model.safetensors."""
    import torch
    from safetensors.torch import load_file, save_file

    if len(members) < 2:
        raise ModelError("a soup needs at least two member models (--member DIR, repeated).")
    shares = list(weights) if weights is not None else [1.0] * len(members)
    if len(shares) != len(members) or min(shares) < 0 or sum(shares) <= 0:
        raise ModelError(
            f"{len(shares)} weights for {len(members)} members; give one "
            "non-negative weight per member."
        )
    total = sum(shares)
    mean: dict[str, Any] = {}
    dtypes: dict[str, Any] = {}
    keys: set[str] | None = None
    for member, share in zip(members, shares, strict=True):
        path = Path(member) / WEIGHTS
        if not path.is_file():
            raise ModelError(f"{member}: no {WEIGHTS}; a soup member must be a saved model.")
        state = load_file(str(path))
        if keys is None:
            keys = set(state)
        elif set(state) != keys:
            raise ModelError(
                f"{member}: its weights do not match the first member's (different "
                "architecture); soup members must fine-tune the same base."
            )
        for name, tensor in state.items():
            if mean.get(name) is not None and mean[name].shape != tensor.shape:
                raise ModelError(
                    f"{member}: {name} has shape {tuple(tensor.shape)}, not "
                    f"{tuple(mean[name].shape)}."
                )
            # accumulate in float32: the members are saved in float16
            scaled = tensor.to(torch.float32) * (share / total)
            mean[name] = scaled if name not in mean else mean[name] + scaled
            dtypes[name] = tensor.dtype
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.to(dtypes[k]).contiguous() for k, v in mean.items()},
        str(out_dir / WEIGHTS),
        metadata={"format": "pt"},
    )
    return out_dir / WEIGHTS


def _member(path: Path, share: float) -> dict[str, Any]:
    card = read_card(path) or {}
    training = card.get("training") or {}
    run_options = Path(path).parent / "options.json"
    if not card and run_options.is_file():
        # a `sesame train` run stopped after saving its weights: its options are the lineage
        options = json.loads(run_options.read_text(encoding="utf-8"))
        card = {
            "summary": "no card (its run stopped before the gate); run options: data "
            + ", ".join(Path(p).name for p in [*options.get("data", []), *options.get("extra", [])])
            + f", base {options.get('base') or 'the pinned encoder'}",
        }
        training = {
            "options": options.get("train"),
            "sources": [
                source.model_dump() | {"role": role}
                for role in ("data", "extra")
                for source in load_examples(
                    [Path(p) for p in options.get(role) or [] if Path(p).is_file()],
                    options.get("licence"),
                ).sources
            ],
        }
    return {
        "path": str(Path(path).resolve()),
        "name": card.get("name"),
        "sha256": weights_digest(path),
        "share": share,
        "summary": card.get("summary"),
        "base_model": (card.get("base_model") or {}).get("name"),
        "sources": training.get("sources") or [],
        "options": training.get("options"),
        "distillation": card.get("distillation"),
        "licences": card.get("licences") or [],
        "commercial_use": bool(card.get("commercial_use", False)),
        "metrics": (card.get("evaluation") or {}).get("metrics"),
    }


def make_soup(
    members: Sequence[Path],
    out_dir: Path,
    *,
    name: str,
    weights: Sequence[float] | None = None,
    summary: str | None = None,
) -> dict:
    """Average the members into `out_dir` (weights, config, tokenizer, card); the card."""
    members = [Path(m) for m in members]
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    average_weights(members, out_dir, weights)
    for file in COPIED:
        if (members[0] / file).is_file():
            shutil.copy2(members[0] / file, out_dir / file)
    # the first member's calibration does not fit the average: refit it (models.recalibrate)
    config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    config.pop("sesame_calibration", None)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shares = list(weights) if weights is not None else [1.0] * len(members)
    described = [_member(m, s / sum(shares)) for m, s in zip(members, shares, strict=True)]
    licences = sorted({lic for m in described for lic in m["licences"]})
    commercial = all(m["commercial_use"] for m in described)
    card = {
        "name": name,
        "origin": "soup",
        "summary": summary
        or (
            f"The weight average of {len(members)} fine-tunes of "
            f"{described[0]['base_model'] or 'one base encoder'}: "
            + "; ".join(
                f"{m['name'] or Path(m['path']).name} ({m['summary'] or 'no card'})"
                for m in described
            )
        ),
        # the first member's base with its digest: soup members fine-tune one base encoder
        # (or a fine-tune of it), which average_weights has checked shape by shape
        "base_model": (read_card(members[0]) or {}).get("base_model")
        or {"name": described[0]["base_model"]},
        "labels": config.get("id2label") and list(config["id2label"].values()),
        "soup": {
            "members": described,
            "method": "uniform weight average"
            if len(set(shares)) == 1
            else "weighted weight average",
        },
        "training": {
            "sources": [dict(s, member=m["name"]) for m in described for s in m["sources"]]
        },
        "licences": licences,
        "licence": ", ".join(licences) or "see members",
        "commercial_use": commercial,
        "intended_use": "Flagging sentences of financial reports for an auditor's review. Not a "
        "substitute for judgement; English only. Its members learned report language from "
        "weak labels of SEC filings' sentences (models/weak_labels.py) and news from their "
        "labelled sets; see the evaluation slices for how well each holds.",
        "code_version": package_version(),
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sha256": weights_digest(out_dir),
    }
    write_card(out_dir, card)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m models.soup OUT --member DIR --member DIR ... --name NAME`: average the members,
    fit the temperature on --calibration-file, save the drift reference of report sentences."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--member",
        type=Path,
        action="append",
        required=True,
        help="A fine-tuned model directory; repeat (at least two).",
    )
    parser.add_argument(
        "--weight", type=float, action="append", help="One weight per member (default: equal)."
    )
    parser.add_argument("--name", default="sesame-sentiment")
    parser.add_argument("--summary", default=None)
    parser.add_argument(
        "--calibration-file",
        type=Path,
        help="Labelled sentences none of the members trained on: the soup's temperature is "
        "fitted on them (else it stays uncalibrated).",
    )
    parser.add_argument(
        "--calibration", choices=["temperature", "temperature+bias"], default="temperature"
    )
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    card = make_soup(
        args.member, args.out_dir, name=args.name, weights=args.weight, summary=args.summary
    )
    settings = load_settings()
    settings = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"threads": args.threads})}
    )
    if args.calibration_file is not None:
        fitted = recalibrate(
            args.out_dir, args.calibration_file, args.calibration, settings.scoring
        )
        if fitted is not None:
            print(
                f"calibration: T={fitted.temperature:.3f} on {fitted.n} sentences, ECE "
                f"{fitted.ece_before:.3f} -> {fitted.ece_after:.3f}"
            )
    # the drift reference: report sentences scored by the soup (a blessed version carries it);
    # a soup has no evaluation split of its own to fall back on
    if reference_sentences(settings) is None:
        print(
            f"no report sentences at {settings.evaluation.reference_reports}: no drift reference "
            "(`sesame monitor reference` can profile this version later)"
        )
    else:
        write_monitoring_reference(args.out_dir, [], settings)
    print(render_card(card).splitlines()[0])
    print(f"{args.out_dir}: sha256 {card['sha256']}, commercial use {card['commercial_use']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
