"""Train, gate and register the amortized explainer of one model version (issue 12).

The lifecycle of `explain.amortized` around a scorer, as `sesame train` is around a model:
unlabelled report sentences (minus the reference set: the leakage guard) → sampled Owen values
of the scorer's own calibrated outputs (cached on disk) → `train` → the fidelity gate against
high-budget Owen values of held-out report sentences (cached too) → `explainer/` saved in the
model directory with its record (`explainer.json`: scorer digest, fidelity, gate, blessing,
training data) → MLflow (the version's run, or a standalone run in `sesame-explainer`) → the
model card's Explainer section.

An explainer below its floors is saved but not blessed: the serving side uses a blessed
explainer of the same weights digest only.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.config import ExplainerOptions, Settings
from app.digests import sha256_file, sha256_text
from app.errors import ModelError
from app.records import LABELS
from app.version import git_commit, package_version
from explain.amortized import (
    EXPLAINER_DIR,
    META_FILE,
    Explainer,
    Target,
    TrainConfig,
    additive,
    fidelity,
    read_meta,
    sampled_values,
    train,
)
from models import registry
from models.data import load_unlabelled, normalise
from models.evaluate import load_scorer, read_eval_file
from models.scoring import SentimentScorer, weights_digest
from models.slices import resolve_path

_log = logging.getLogger(__name__)

EXPERIMENT = "sesame-explainer"
"""The MLflow experiment of explainers trained for unregistered model directories."""
FLOORS = ("spearman", "top1", "top3")
"""The fidelity figures the gate holds to a floor (`ExplainerOptions.min_<figure>`)."""


class ExplainerRun(BaseModel):
    """What one `sesame explainer train` (or `evaluate`) did: the figures a person reads."""

    model_config = ConfigDict(frozen=True)

    folder: str
    meta: dict[str, Any]
    blessed: bool
    targets_cached: bool = False
    reference_cached: bool = False

    def summary(self) -> str:
        """Lines a person reads at the end of a run."""
        fid = self.meta.get("fidelity") or {}
        gate = self.meta.get("gate") or {}
        floors = gate.get("floors") or {}
        data = (self.meta.get("training") or {}).get("data") or {}
        lines = []
        if data:
            lines.append(
                f"trained on {data.get('n_sentences')} sentences "
                f"({data.get('leakage_dropped', 0)} reference sentences dropped; targets at "
                f"{data.get('evals_per_word')} evaluations per word"
                f"{', cached' if self.targets_cached else ''})"
            )
        lines.append(fidelity_line(fid, floors))
        verdict = "BLESSED" if self.blessed else "NOT BLESSED"
        lines.append(
            f"{verdict}: "
            + ("; ".join(gate.get("failures") or []) or "every figure clears its floor")
        )
        lines.append(f"explainer in {self.folder}")
        return "\n".join(lines)


def fidelity_line(fid: dict[str, Any], floors: dict[str, float]) -> str:
    """One line of fidelity figures, each with its floor."""
    ref = fid.get("set") or {}

    def fmt(key: str) -> str:
        value = fid.get(key)
        shown = "n/a" if value is None else f"{value:.3f}"
        floor = floors.get(f"min_{key}")
        return f"{key} {shown}" + (f" (floor {floor:.2f})" if floor is not None else "")

    figures = ", ".join(fmt(k) for k in (*FLOORS, "sign"))
    return (
        f"fidelity on {ref.get('name', 'the reference')} (n={fid.get('n_sentences')}, "
        f"{fid.get('reference', 'Owen values')}): {figures}"
    )


# ---------------------------------------------------------------- the gate


def gate_fidelity(fid: dict[str, Any], options: ExplainerOptions) -> dict[str, Any]:
    """Floors, whether every figure clears its floor, and why not (with the numbers)."""
    floors = {f"min_{k}": getattr(options, f"min_{k}") for k in FLOORS}
    failures = []
    for key in FLOORS:
        value, floor = fid.get(key), floors[f"min_{key}"]
        if value is None:
            failures.append(f"{key} could not be measured (no usable reference sentences)")
        elif value < floor:
            failures.append(f"{key} {value:.3f} is below its floor {floor:.2f}")
    return {"floors": floors, "passed": not failures, "failures": failures}


# ---------------------------------------------------------------- cached Owen values


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over texts in order (the key of their cached values)."""
    return sha256_text("\x1f".join(texts))


def _mask_token(scorer: SentimentScorer, settings: Settings) -> str:
    own = getattr(scorer.tokenizer, "mask_token", None)
    return own if isinstance(own, str) and own else settings.explain.mask_token


def owen_values(
    scorer: SentimentScorer,
    texts: Sequence[str],
    *,
    evals_per_word: float,
    max_evals: int | None,
    mask_token: str,
    cache_dir: Path,
    what: str,
) -> tuple[list[Target], float, bool]:
    """Sampled Owen values of each text's predicted class, on the scorer's calibrated outputs.

    Cached on disk by (weights digest, calibration, texts, budget, masking), as the teacher's
    labels are, so a second explainer recipe (or a rerun after a failed gate) is cheap.
    Returns the targets, the seconds they took to compute (0 from the cache) and a cache hit.
    """
    calibration = scorer.calibration.model_dump_json() if scorer.calibration else ""
    key = sha256_text(
        json.dumps(
            [calibration, evals_per_word, max_evals, mask_token, scorer.max_length], default=str
        )
    )[:8]
    budget = f"m{max_evals}" if max_evals else f"e{evals_per_word:g}"
    path = (
        Path(cache_dir)
        / f"explainer-{what}-{scorer.digest[:16]}-{texts_digest(texts)[:16]}-{budget}-{key}.json"
    )
    if path.is_file():
        try:
            return _read_targets(path), 0.0, True
        except (OSError, ValueError, KeyError) as e:
            _log.warning("%s: unreadable cached values (%s); computing them again", path, e)
    started = time.perf_counter()
    columns = [int(c) for c in scorer.predict_proba(list(texts)).argmax(axis=1)] if texts else []
    targets = sampled_values(
        list(texts),
        columns,
        scorer.predict_proba,
        scorer.tokenizer,
        mask_token=mask_token,
        evals_per_word=evals_per_word,
        max_evals=max_evals,
        max_tokens=scorer.max_length,
    )
    seconds = round(time.perf_counter() - started, 1)
    _write_targets(path, targets)
    _log.info("%s: Owen values of %d sentences in %.0f s", what, len(texts), seconds)
    return targets, seconds, False


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _write_targets(path: Path, targets: Sequence[Target]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "text": t.text,
            "column": t.column,
            "values": [float(v) for v in t.values],
            "base": _finite(t.base),
            "output": _finite(t.output),
        }
        for t in targets
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file


def _read_targets(path: Path) -> list[Target]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        Target(
            text=r["text"],
            column=int(r["column"]),
            values=np.asarray(r["values"], dtype=float),
            base=math.nan if r["base"] is None else float(r["base"]),
            output=math.nan if r["output"] is None else float(r["output"]),
        )
        for r in rows
    ]


# ---------------------------------------------------------------- reference and fidelity


def reference_texts(path: Path) -> tuple[list[str], dict[str, Any]]:
    """The reference sentences (a labelled file; labels unused) and what the set is."""
    found = resolve_path(Path(path))
    if not found.is_file():
        raise ModelError(
            f"{path}: no reference set. Give held-out report sentences (a text,label CSV) with "
            "--reference, or set explainer.reference_set."
        )
    examples, _ = read_eval_file(found)
    texts = [e.text for e in examples]
    return texts, {
        "name": found.stem,
        "path": str(found),
        "sha256": sha256_file(found),
        "n": len(texts),
    }


def measure(explainer: Explainer, reference: Sequence[Target]) -> dict[str, Any]:
    """Fidelity of the explainer's served values (made additive) against reference values."""
    usable = [t for t in reference if len(t.values)]
    raw = explainer.word_values([t.text for t in usable], [t.column for t in usable])
    served = [additive(v, t.base, t.output) for v, t in zip(raw, usable, strict=True)]
    return fidelity(served, [t.values for t in usable])


# ---------------------------------------------------------------- the run


class ExplainerTarget(BaseModel):
    """Which model an explainer is for: a directory, and its registered version when it is one."""

    model_config = ConfigDict(frozen=True)

    model_dir: Path
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


def model_target(settings: Settings, model_dir: Path | None, ref: str | None) -> ExplainerTarget:
    """The model of `--model-dir DIR` or `--model NAME@ALIAS` (fetched from the registry)."""
    if model_dir is not None:
        if not Path(model_dir).is_dir():
            raise ModelError(f"{model_dir}: no such model directory.")
        return ExplainerTarget(model_dir=Path(model_dir))
    name, which = registry.parse_ref(ref, settings.scoring.model)
    info = (
        registry.champion_info(settings, name)
        if which == registry.CHAMPION
        else registry.get_version(settings, name, which)
    )
    if info is None:
        raise ModelError(f"{ref}: no such model version; see `sesame models list`.")
    return ExplainerTarget(
        model_dir=registry.fetch_version(settings, info),
        name=name,
        version=info.version,
        run_id=info.run_id,
    )


def train_explainer(
    settings: Settings,
    target: ExplainerTarget,
    unlabelled: Sequence[Path],
    *,
    options: ExplainerOptions | None = None,
    reference: Path | None = None,
    config: TrainConfig | None = None,
    device: str = "cpu",
    cache_dir: Path | None = None,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExplainerRun:
    """Train the explainer of a model, gate its fidelity, save, log to MLflow, update the card.

    An explainer below its floors is saved with `blessed: false`; the caller decides the exit.
    """
    options = options or settings.explainer
    config = config or TrainConfig(seed=options.seed)
    cache_dir = Path(cache_dir) if cache_dir else settings.data_dir / "cache"
    model_dir = Path(target.model_dir)
    scorer = load_scorer(model_dir, settings.scoring.model_copy(update={"model_dir": None}))
    if device != "cpu":
        # the targets are model passes too (most of the cost): on the same device
        scorer.model.to(device)
    digest = weights_digest(model_dir)
    mask = _mask_token(scorer, settings)
    say = progress or (lambda _m: None)

    # the reference first: the leakage guard needs its sentences
    ref_texts, ref_set = reference_texts(reference or options.reference_set)
    in_reference = {normalise(t) for t in ref_texts}
    pool, sources = load_unlabelled(list(unlabelled), None, settings)
    texts = [t for t in pool if normalise(t) not in in_reference]
    dropped = len(pool) - len(texts)
    if options.max_sentences and len(texts) > options.max_sentences:
        keep = sorted(random.Random(options.seed).sample(range(len(texts)), options.max_sentences))
        texts = [texts[i] for i in keep]
    if not texts:
        raise ModelError(
            f"no training sentences: {len(pool)} read from {len(sources)} files, {dropped} of "
            "them in the reference set. Give more unlabelled report sentences with --unlabelled."
        )
    say(f"Owen values of {len(texts)} training sentences ({options.evals_per_word:g} per word)")
    targets, targets_s, targets_hit = owen_values(
        scorer,
        texts,
        evals_per_word=options.evals_per_word,
        max_evals=None,
        mask_token=mask,
        cache_dir=cache_dir,
        what="targets",
    )
    config.max_length = scorer.max_length
    explainer = train(
        model_dir,
        scorer.tokenizer,
        targets,
        config,
        n_classes=len(LABELS),
        device=device,
        progress=say,
    )
    say(f"reference: Owen values of {len(ref_texts)} sentences at {options.reference_evals:,}")
    ref_values, ref_s, ref_hit = owen_values(
        scorer,
        ref_texts,
        evals_per_word=0,
        max_evals=options.reference_evals,
        mask_token=mask,
        cache_dir=cache_dir,
        what="reference",
    )
    fid = _described(measure(explainer, ref_values), ref_set, options, ref_s)
    gate = gate_fidelity(fid, options)
    training = dict(explainer.meta.get("training") or {})
    training["data"] = {
        "sources": [
            {k: s.model_dump()[k] for k in ("name", "path", "format", "sha256", "n_examples")}
            for s in sources
        ],
        "n_read": len(pool),
        "n_sentences": len(texts),
        "leakage_dropped": dropped,
        "texts_sha256": texts_digest(texts),
        "evals_per_word": options.evals_per_word,
        "targets_seconds": targets_s,
        "targets_cached": targets_hit,
        "mask_token": mask,
    }
    meta = dict(explainer.meta) | {
        "scorer_sha256": digest,
        "scorer": {"name": target.name, "version": target.version, "path": str(model_dir)},
        "fidelity": fid,
        "gate": gate,
        "blessed": gate["passed"],
        "training": training,
        "code_version": package_version(),
        "git_commit": git_commit(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    folder = Path(out) if out else model_dir / EXPLAINER_DIR
    run_id, own_run = _open_run(settings, target, digest)
    meta["mlflow"] = {
        "run_id": run_id,
        "experiment": None if target.run_id else EXPERIMENT,
        "model": target.name,
        "version": target.version,
    }
    explainer.meta = meta
    try:
        explainer.save(folder)
        if folder.resolve() == (model_dir / EXPLAINER_DIR).resolve():
            write_card_section(model_dir, meta)
    except Exception:
        if own_run:  # a standalone run is never left running
            registry.client(settings).set_terminated(run_id, "FAILED")
        raise
    _log_run(settings, target, run_id, own_run, meta, folder, model_dir, config)
    return ExplainerRun(
        folder=str(folder),
        meta=meta,
        blessed=gate["passed"],
        targets_cached=targets_hit,
        reference_cached=ref_hit,
    )


def _described(
    fid: dict[str, Any], ref_set: dict[str, Any], options: ExplainerOptions, seconds: float
) -> dict[str, Any]:
    return fid | {
        # noun phrases, as explain.render.method_phrase writes them into every record's line
        "reference": f"a {options.reference_evals:,}-evaluation Owen reference",
        "set": ref_set,
        "reference_seconds": seconds,
    }


def evaluate_explainer(
    settings: Settings,
    model_dir: Path,
    *,
    folder: Path | None = None,
    options: ExplainerOptions | None = None,
    reference: Path | None = None,
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> ExplainerRun:
    """Fidelity of an existing explainer against the reference, under the same gate (read-only)."""
    options = options or settings.explainer
    model_dir = Path(model_dir)
    folder = Path(folder) if folder else model_dir / EXPLAINER_DIR
    if not (folder / META_FILE).is_file():
        raise ModelError(
            f"{folder}: no explainer. Train one with `sesame explainer train --model-dir "
            f"{model_dir}`."
        )
    scorer = load_scorer(model_dir, settings.scoring.model_copy(update={"model_dir": None}))
    if device != "cpu":
        scorer.model.to(device)
    explainer = Explainer.load(folder, scorer.tokenizer, device=device)
    recorded = explainer.meta.get("scorer_sha256")
    if recorded != scorer.digest:
        raise ModelError(
            f"{folder}: the explainer was trained for weights sha256 {str(recorded)[:12]}…, the "
            f"model in {model_dir} has {scorer.digest[:12]}…. Train one for this model."
        )
    ref_texts, ref_set = reference_texts(reference or options.reference_set)
    ref_values, ref_s, ref_hit = owen_values(
        scorer,
        ref_texts,
        evals_per_word=0,
        max_evals=options.reference_evals,
        mask_token=_mask_token(scorer, settings),
        cache_dir=Path(cache_dir) if cache_dir else settings.data_dir / "cache",
        what="reference",
    )
    fid = _described(measure(explainer, ref_values), ref_set, options, ref_s)
    gate = gate_fidelity(fid, options)
    meta = dict(explainer.meta) | {"fidelity": fid, "gate": gate, "blessed": gate["passed"]}
    meta.pop("training", None)  # this run trained nothing
    return ExplainerRun(
        folder=str(folder), meta=meta, blessed=gate["passed"], reference_cached=ref_hit
    )


# ---------------------------------------------------------------- the model card


def card_section(meta: dict[str, Any]) -> dict[str, Any]:
    """What the model card records of its explainer."""
    fid = meta.get("fidelity") or {}
    training = meta.get("training") or {}
    data = training.get("data") or {}
    return {
        "blessed": bool(meta.get("blessed")),
        "scorer_sha256": meta.get("scorer_sha256"),
        "fidelity": {k: fid.get(k) for k in (*FLOORS, "spearman_median", "sign", "n_sentences")},
        "reference": fid.get("reference"),
        "set": (fid.get("set") or {}).get("name"),
        "gate": meta.get("gate"),
        "n_sentences": data.get("n_sentences"),
        "evals_per_word": data.get("evals_per_word"),
        "seconds": training.get("seconds"),
        "device": training.get("device"),
        "created_at": meta.get("created_at"),
    }


def write_card_section(model_dir: Path, meta: dict[str, Any] | None = None) -> bool:
    """(Re)write the Explainer section of a model directory's card from its explainer's record.

    False (and nothing written) when the directory has no card or no explainer.
    """
    model_dir = Path(model_dir)
    card = registry.read_card(model_dir)
    meta = meta if meta is not None else read_meta(model_dir)
    if card is None or meta is None:
        _log.info(
            "%s: no card or no explainer; the card's Explainer section is unchanged", model_dir
        )
        return False
    registry.write_card(model_dir, card | {"explainer": card_section(meta)})
    return True


# ---------------------------------------------------------------- MLflow


def _open_run(settings: Settings, target: ExplainerTarget, digest: str) -> tuple[str, bool]:
    """The run the explainer is logged on: the version's own, else a new standalone one."""
    if target.run_id:
        return target.run_id, False
    c = registry.client(settings)
    exp = registry.experiment_id(settings, c, EXPERIMENT)
    run = c.create_run(
        exp,
        run_name=f"explainer-{digest[:12]}",
        tags={"sesame.scorer_sha256": digest, "sesame.model_dir": str(target.model_dir)},
    )
    return run.info.run_id, True


def _metrics(meta: dict[str, Any]) -> dict[str, float]:
    fid = meta.get("fidelity") or {}
    gate = meta.get("gate") or {}
    training = meta.get("training") or {}
    out = {
        f"explainer_{k}": float(v)
        for k, v in fid.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    out |= {f"explainer_{k}": float(v) for k, v in (gate.get("floors") or {}).items()}
    out["explainer_blessed"] = float(bool(meta.get("blessed")))
    for key in ("seconds", "sentences"):
        if isinstance(training.get(key), int | float):
            out[f"explainer_train_{key}"] = float(training[key])
    data = training.get("data") or {}
    for key in ("targets_seconds", "leakage_dropped"):
        if isinstance(data.get(key), int | float):
            out[f"explainer_{key}"] = float(data[key])
    return out


def _log_run(
    settings: Settings,
    target: ExplainerTarget,
    run_id: str,
    own_run: bool,
    meta: dict[str, Any],
    folder: Path,
    model_dir: Path,
    config: TrainConfig,
) -> None:
    """Figures as metrics, the gate as tags, the folder as an artifact; the version's tags."""
    c = registry.client(settings)
    status = "FAILED"
    try:
        if own_run:
            # params are write-once in MLflow, so only a fresh run gets them; a version's run
            # is logged on again by every rerun and keeps the floors as metrics instead
            params = {f"explainer.{k}": v for k, v in vars(config).items()}
            params |= {f"explainer.{k}": v for k, v in (meta["gate"]["floors"]).items()}
            for k, v in sorted(params.items()):
                c.log_param(run_id, k, str(v)[:6000])
        for k, v in sorted(_metrics(meta).items()):
            c.log_metric(run_id, k, v)
        c.set_tag(run_id, "sesame.explainer.blessed", str(bool(meta.get("blessed"))))
        c.set_tag(run_id, "sesame.explainer.failures", "; ".join(meta["gate"]["failures"])[:4000])
        c.log_artifacts(run_id, str(folder), "model/explainer" if target.run_id else "explainer")
        if target.run_id and registry.read_card(model_dir) is not None:
            # the registry's copy of the card, as a fresh fetch of the version will read it
            for name in (registry.CARD_JSON, registry.CARD_MD):
                c.log_artifact(run_id, str(model_dir / name), "model")
                c.log_artifact(run_id, str(model_dir / name))
        if target.name and target.version:
            fid = meta.get("fidelity") or {}
            tags = {"explainer_blessed": str(bool(meta.get("blessed")))}
            tags |= {f"explainer_{k}": str(fid[k]) for k in FLOORS if fid.get(k) is not None}
            for k, v in tags.items():
                c.set_model_version_tag(target.name, target.version, k, v)
        status = "FINISHED"
    finally:
        if own_run:
            c.set_terminated(run_id, status)
