"""The gate's orchestration: which frozen set a candidate is judged on, candidate against
champion on it and on every evaluation slice, and models imported through the same gate.

It needs both the Evaluator (metrics, verdicts) and the registry (champions, versions), so it
sits above both; `models.evaluate` and `models.registry` do not import each other.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.config import EvaluationOptions, Settings
from app.digests import sha256_file
from app.errors import DataValidationError, SesameError
from app.records import LABELS
from app.version import git_commit, package_version
from models import registry
from models.data import Example, deduplicate, load_examples, split_examples, write_csv
from models.evaluate import (
    Blessing,
    EvalMetrics,
    GateOptions,
    GateResult,
    SliceResult,
    bless,
    evaluate_dir,
    evaluate_predict,
    load_scorer,
    read_eval_file,
)
from models.scoring import weights_digest
from models.slices import SPLIT, evaluate_slice, flat_metrics, measure, read_set

_log = logging.getLogger(__name__)


def frozen_eval_set(
    settings,
    champion,
    card: dict | None,  # noqa: ANN001
    eval_file: Path | None = None,
) -> tuple[list[Example], str, str]:
    """The evaluation set a new version is gated on: (examples, digest, where it came from).

    An explicit file (or the name of an evaluation slice) wins; else the set logged with the
    champion's run; else the champion's split rebuilt from its card when its source files are
    present with the same sha256.
    """

    if eval_file is not None:
        return read_set(eval_file, settings.evaluation)
    if champion is not None:
        logged = registry.eval_set_of(settings, champion)
        if logged is not None:
            examples, digest = read_eval_file(logged)
            return examples, digest, f"the evaluation set of {champion.name} v{champion.version}"
        train = (card or {}).get("training") or {}
        split = train.get("split") or {}
        data = [s for s in train.get("sources", []) if s.get("role", "data") == "data"]
        # Bundled cards name their data relative to the project root (../shared/data/...).
        root = Path(__file__).resolve().parents[1]
        paths = [
            Path(s["path"]) if Path(s["path"]).is_absolute() else root / s["path"] for s in data
        ]
        if (
            data
            and not split.get("eval_file")
            and all(
                p.is_file() and sha256_file(p) == s["sha256"]
                for p, s in zip(paths, data, strict=True)
            )
        ):
            examples, _ = deduplicate(load_examples(paths).examples)
            rebuilt = split_examples(examples, split["eval_share"], split["seed"])
            if not split.get("eval_digest") or rebuilt.eval_digest == split["eval_digest"]:
                return (
                    list(rebuilt.eval),
                    rebuilt.eval_digest,
                    f"the evaluation split of {champion.name} v{champion.version}, rebuilt",
                )
    raise DataValidationError(
        "no frozen evaluation set: the champion has none logged and its data is not on this "
        "machine. Give one with --eval FILE.csv (text,label)."
    )


def gate_candidate(
    settings,
    candidate_dir: Path,
    examples: Sequence[Example],  # noqa: ANN001
    eval_digest: str,
    name: str,
    gate: GateOptions | None = None,
    candidate_metrics: EvalMetrics | None = None,
) -> GateResult:
    """Measure the candidate and the current champion of `name` on the same set; bless or not."""

    scoring = settings.scoring.model_copy(update={"model_dir": None})
    candidate = candidate_metrics or evaluate_dir(candidate_dir, examples, eval_digest, scoring)
    champ = registry.champion_info(settings, name)
    champion = None
    if champ is not None:
        path = registry.fetch_version(settings, champ)
        scorer = load_scorer(
            path,
            scoring,
            name=name,
            version=champ.version,
            expected_digest=champ.tags.get("sha256"),
        )
        champion = evaluate_predict(scorer.predict_proba, examples, eval_digest)
        _log.info(
            "champion v%s on the same set: accuracy %.3f macro-F1 %.3f",
            champ.version,
            champion.accuracy,
            champion.macro_f1,
        )
    blessing = bless(candidate, champion, gate, champ.version if champ else None)
    return GateResult(
        candidate=candidate,
        champion=champion,
        champion_version=champ.version if champ else None,
        blessing=blessing,
    )


def gate_with_slices(
    settings: Any,
    candidate_dir: Path,
    examples: Sequence[Example],
    eval_digest: str,
    name: str,
    gate: GateOptions | None = None,
    evaluation: EvaluationOptions | None = None,
) -> GateResult:
    """The gate over the run's split and every slice: blessed only when all measured pass."""

    gate = gate or GateOptions()
    evaluation = evaluation or settings.evaluation
    scoring = settings.scoring.model_copy(update={"model_dir": None})
    cand_scorer = load_scorer(Path(candidate_dir), scoring)
    champ = registry.champion_info(settings, name)
    champ_scorer = None
    if champ is not None:
        path = registry.fetch_version(settings, champ)
        champ_scorer = load_scorer(
            path,
            scoring,
            name=name,
            version=champ.version,
            expected_digest=champ.tags.get("sha256"),
        )
    version = champ.version if champ else None

    split_metrics, split_intervals = measure(
        cand_scorer.predict_proba, examples, eval_digest, evaluation
    )
    champ_split, champ_split_intervals = (
        measure(champ_scorer.predict_proba, examples, eval_digest, evaluation)
        if champ_scorer is not None
        else (None, {})
    )
    primary = bless(split_metrics, champ_split, gate, version)
    results = {
        SPLIT: SliceResult(
            name=SPLIT,
            source="the run's frozen evaluation split",
            status="passed" if primary.blessed else "failed",
            reasons=primary.reasons,
            eval_digest=eval_digest,
            metrics=split_metrics,
            intervals=split_intervals,
            champion=champ_split,
            champion_intervals=champ_split_intervals,
            gate=primary.gate,
        )
    }
    for spec in evaluation.slices:
        if spec.name == SPLIT:
            raise SesameError(f"slice name {SPLIT!r} is the run's own split; rename the slice.")
        results[spec.name] = evaluate_slice(
            spec,
            cand_scorer.predict_proba,
            champ_scorer.predict_proba if champ_scorer is not None else None,
            evaluation,
            version,
        )
    blessed = all(r.status != "failed" for r in results.values())
    reasons = list(primary.reasons)
    for r in list(results.values())[1:]:
        reasons += list(r.reasons)
    blessing = Blessing(
        blessed=blessed,
        reasons=tuple(reasons),
        primary_metric=primary.primary_metric,
        candidate=primary.candidate,
        champion=primary.champion,
        champion_version=version,
        gate=primary.gate,
        slices={k: r.status for k, r in results.items()},
    )
    return GateResult(
        candidate=split_metrics,
        champion=champ_split,
        champion_version=version,
        blessing=blessing,
        slices=results,
    )


class ImportReport(BaseModel):
    """What `sesame models import` did: the version, the gate's verdict, the champion move."""

    name: str
    version: str
    blessed: bool
    reasons: list[str]
    eval_set: str
    metrics: dict[str, Any]
    champion_metrics: dict[str, Any] | None
    champion_before: str | None
    champion_after: str | None


def import_model(
    settings: Settings,
    model_dir: Path,
    name: str,
    *,
    eval_file: Path | None = None,
    gate: Any = None,
    licence: str | None = None,
    summary: str | None = None,
    promote: bool = True,
    write_back: bool = False,
) -> ImportReport:
    """Register any local HF sequence-classification directory through the same gate;
    `write_back` also writes the gated card (slices, blessing, lineage) into `model_dir`."""

    model_dir = Path(model_dir)
    champ = registry.champion_info(settings, name)
    champ_card = registry.version_card(settings, champ) if champ else None
    examples, digest, where = frozen_eval_set(settings, champ, champ_card, eval_file)
    result = gate_with_slices(settings, model_dir, examples, digest, name, gate)
    own = registry.read_card(model_dir) or {}
    card = own | {
        "name": name,
        "origin": "imported",
        "imported_from": str(model_dir.resolve()),
        "summary": summary or own.get("summary") or f"Imported from {model_dir}.",
        "licence": licence or own.get("licence") or "unstated (imported)",
        "commercial_use": own.get("commercial_use", False if not licence else None),
        "labels": list(LABELS),
        "evaluation": {
            "eval_set": where,
            "eval_digest": digest,
            "metrics": result.candidate.model_dump(mode="json"),
            "champion_metrics": result.champion.model_dump(mode="json")
            if result.champion
            else None,
            "slices": {k: v.model_dump(mode="json") for k, v in result.slices.items()},
        },
        "blessing": result.blessing.model_dump(mode="json"),
        "parent": {"name": name, "version": champ.version, "sha256": champ.tags.get("sha256")}
        if champ
        else None,
        "code_version": package_version(),
        "git_commit": git_commit(),
        "libraries": registry.library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sha256": weights_digest(model_dir),
    }
    with tempfile.TemporaryDirectory() as tmp:
        evals = Path(tmp) / registry.EVAL_CSV

        write_csv(examples, evals)
        info = registry.register_version(
            settings,
            model_dir,
            card,
            name=name,
            run_name=f"{name}-import",
            params={
                "origin": "imported",
                "source_dir": str(model_dir.resolve()),
                "eval_digest": digest,
            },
            metrics=result.candidate.flat()
            | flat_metrics(result.slices)
            | (result.champion.flat("champion_") if result.champion else {}),
            artifacts={"eval": evals},
            make_champion=result.blessing.blessed and promote,
        )
    if write_back:
        # the card travels with the directory (a bundled default carries its slice figures)
        registry.write_card(model_dir, card)
    after = registry.get_version(settings, name, registry.CHAMPION)
    return ImportReport(
        name=name,
        version=info.version,
        blessed=result.blessing.blessed,
        reasons=list(result.blessing.reasons),
        eval_set=where,
        metrics=result.candidate.model_dump(mode="json"),
        champion_metrics=result.champion.model_dump(mode="json") if result.champion else None,
        champion_before=champ.version if champ else None,
        champion_after=after.version if after else None,
    )
