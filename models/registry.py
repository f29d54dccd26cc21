"""Pusher and registry: model versions in MLflow with their lineage, the `champion` alias.

MLflow keeps a SQLite database and an artifact folder in sesame's data directory unless
`MLFLOW_TRACKING_URI` (or `Settings.mlflow_tracking_uri`) points at a server. A version's
artifacts are the Hugging Face model directory (`model/`), its card (`card.json`,
`MODEL_CARD.md`) and, for trained versions, the frozen evaluation set (`eval.csv`). Lineage is
also written as version tags so `mlflow ui` and `sesame models list` show it without downloads.

`resolve_model()` is what scoring calls: the champion (or a pinned version) downloaded once into
a cache keyed by version and digest, verified, and on a fresh machine the bundled default model
registered as the first champion.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.config import DEFAULT_MODEL_NAME, Settings
from app.errors import ModelError
from app.records import LABELS
from models.calibration import calibration_lines
from models.scoring import weights_digest
from models.slices import card_lines, slice_summary

_log = logging.getLogger(__name__)

CHAMPION = "champion"
EXPERIMENT = "sesame-training"
DEFAULT_DIR = Path(__file__).resolve().parent / "default"
CARD_JSON = "card.json"
CARD_MD = "MODEL_CARD.md"
EVAL_CSV = "eval.csv"
LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "scikit-learn",
    "numpy",
    "mlflow",
    "sesame",
)
# Card fields mirrored as version tags (MLflow tag values are short strings).
_TAG_FIELDS = (
    "sha256",
    "blessed",
    "origin",
    "base_model",
    "base_sha256",
    "train_digest",
    "eval_digest",
    "split_digest",
    "code_version",
    "git_commit",
    "licences",
    "commercial_use",
    "accuracy",
    "macro_f1",
    "run_id",
)


class ResolvedModel(BaseModel):
    """A model directory ready to load, and which registered version it is."""

    path: Path
    name: str
    version: str | None
    digest: str
    card: dict | None


class VersionInfo(BaseModel):
    """One registered version as `sesame models list/show` prints it."""

    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    source: str
    run_id: str | None
    created: str
    description: str | None = None


# ---------------------------------------------------------------------------------------------
# Cards and lineage


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[lib] = metadata.version(lib)
    return out


def read_card(model_dir: Path) -> dict | None:
    """The machine-readable card of a model directory, if it has one."""
    path = Path(model_dir) / CARD_JSON
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _distillation_lines(taught: dict | None) -> list[str]:
    """The teacher a distilled model learned from, and the unlabelled sentences it used."""
    if not taught:
        return []
    metrics = taught.get("metrics") or {}
    lines = [
        "",
        "## Distillation",
        "",
        f"- Teacher: {taught.get('name') or taught.get('teacher')} (base "
        f"{taught.get('base_model') or '?'}, weights sha256 `{taught.get('sha256', '?')}`; "
        f"accuracy {metrics.get('accuracy')}, macro-F1 {metrics.get('macro_f1')} on its "
        f"evaluation split); licences: {', '.join(taught.get('licences') or ['unknown'])}",
    ]
    for member in taught.get("members") or []:
        m = member.get("metrics") or {}
        lines.append(
            f"  - ensemble member {member.get('name') or member.get('teacher')} "
            f"(weights sha256 `{member.get('sha256', '?')}`; accuracy "
            f"{m.get('accuracy')}, macro-F1 {m.get('macro_f1')})"
        )
    lines += [
        f"- Soft labels at temperature {taught.get('temperature')}, weight "
        f"{taught.get('alpha')}, over the training texts and {taught.get('n_unlabelled')} "
        "unlabelled sentences:"
    ]
    for src in taught.get("unlabelled_sources") or []:
        lines.append(
            f"  - {src['name']} ({src['n_examples']} sentences, sha256 "
            f"`{src['sha256'][:12]}…`): {src['licence']}"
        )
    return lines


def _soup_lines(soup: dict | None) -> list[str]:
    """A weight-averaged model's members (models/soup.py): what was averaged, by digest."""
    if not soup:
        return []
    lines = ["", "## Weight average", "", f"{soup.get('method', 'weight average')} of:"]
    for m in soup.get("members") or []:
        metrics = m.get("metrics") or {}
        lines.append(
            f"- {m.get('name') or m.get('path')} (share {m.get('share', 0):.2f}, weights sha256 "
            f"`{m.get('sha256', '?')}`): {m.get('summary') or 'no card'}; on its own split "
            f"accuracy {metrics.get('accuracy')}, macro-F1 {metrics.get('macro_f1')}"
        )
    return lines


def _explainer_lines(explainer: dict | None) -> list[str]:
    """The card's Explainer section: the amortized explainer's fidelity, floors and blessing."""
    if not explainer:
        return []
    fid = explainer.get("fidelity") or {}
    gate = explainer.get("gate") or {}
    floors = gate.get("floors") or {}

    def fig(key: str) -> str:
        value = fid.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        "## Explainer",
        "",
        "A learned (amortized) explainer gives each sentence's word evidence in one pass; "
        f"its values are checked against {explainer.get('reference') or 'sampled Owen values'} "
        f"on {explainer.get('set') or 'held-out report sentences'} "
        f"(n={fid.get('n_sentences')}).",
        "",
        "| figure | value | floor |",
        "|---|---|---|",
    ]
    for key in ("spearman", "top1", "top3"):
        floor = floors.get(f"min_{key}")
        lines.append(f"| {key} | {fig(key)} | {'' if floor is None else f'{floor:.2f}'} |")
    lines.append(f"| sign | {fig('sign')} | |")
    verdict = (
        "Blessed"
        if explainer.get("blessed")
        else "Not blessed (evidence is sampled unless `--explain-method amortized` asks for it)"
    )
    reasons = "; ".join(gate.get("failures") or []) or "every figure clears its floor"
    lines += [
        "",
        f"{verdict}: {reasons}. Trained on {explainer.get('n_sentences')} unlabelled sentences "
        f"(targets at {explainer.get('evals_per_word')} evaluations per word) in "
        f"{explainer.get('seconds')} s on {explainer.get('device')}; for weights sha256 "
        f"`{str(explainer.get('scorer_sha256'))[:12]}…`.",
        "",
    ]
    return lines


def render_card(card: dict) -> str:
    """MODEL_CARD.md from card.json: what a person reads before trusting the model."""
    ev = card.get("evaluation", {}) or {}
    metrics = ev.get("metrics", {}) or {}
    lines = [
        f"# {card.get('name', 'sesame model')}",
        "",
        card.get(
            "summary",
            "A positive / negative / neutral sentiment classifier for "
            "sentences of financial reports.",
        ),
        "",
    ]
    if card.get("commercial_use") is False:
        lines += [
            "> **Non-commercial.** Trained on data whose licence forbids commercial use "
            "(see Training data). Use it for research and evaluation, or retrain on "
            "data you may use commercially.",
            "",
        ]
    base = card.get("base_model") or {}
    lines += [
        "## Model",
        "",
        f"- Base encoder: {base.get('name', 'unknown')} (sha256 `{base.get('sha256', '?')}`)",
        f"- Labels: {', '.join(card.get('labels', LABELS))}",
        f"- Weights sha256: `{card.get('sha256', '?')}`",
        f"- Origin: {card.get('origin', '?')}",
        "",
    ]
    train = card.get("training") or {}
    if train:
        lines += ["## Training data", ""]
        for s in train.get("sources", []):
            lines.append(
                f"- {s['name']} ({s['n_examples']} examples, sha256 "
                f"`{s['sha256'][:12]}…`): {s['licence']}"
                f"{'' if s.get('commercial_use') else ' — non-commercial'}"
            )
        split = train.get("split") or {}
        if split:
            lines += [
                "",
                f"Split: stratified, seed {split.get('seed')}, eval share "
                f"{split.get('eval_share')}; split digest `{split.get('split_digest')}`.",
            ]
        if train.get("options"):
            opts = ", ".join(f"{k}={v}" for k, v in sorted(train["options"].items()))
            lines += ["", f"Recipe: {opts}."]
        if train.get("seconds"):
            lines += [
                "",
                f"Training took {train['seconds'] / 60:.1f} min ({train.get('hardware', '')}).",
            ]
        lines += _distillation_lines(card.get("distillation"))
        lines += _soup_lines(card.get("soup"))
        lines.append("")
    if metrics:
        lines += [
            "## Evaluation",
            "",
            f"On {ev.get('eval_set', 'the evaluation set')} "
            f"(n={metrics.get('n')}, digest `{str(ev.get('eval_digest', ''))[:12]}…`):",
            "",
            f"- accuracy {metrics.get('accuracy')}, macro-F1 {metrics.get('macro_f1')}, "
            f"calibration error {metrics.get('calibration_error')}",
            "",
            "| label | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for label, m in (metrics.get("per_class") or {}).items():
            lines.append(
                f"| {label} | {m['precision']} | {m['recall']} | {m['f1']} | {m['support']} |"
            )
        for name, extra in (ev.get("extra") or {}).items():
            lines += [
                "",
                f"Also measured — {name}: accuracy {extra.get('accuracy')}, "
                f"macro-F1 {extra.get('macro_f1')}.",
            ]
        lines.append("")
    lines += card_lines(ev.get("slices") or {})
    lines += calibration_lines(card.get("calibration"))
    lines += _explainer_lines(card.get("explainer"))
    blessing = card.get("blessing") or {}
    if blessing:
        lines += [
            "## Blessing",
            "",
            ("Blessed" if blessing.get("blessed") else "Not blessed")
            + ": "
            + "; ".join(blessing.get("reasons", [])),
            "",
        ]
    lines += [
        "## Intended use and limits",
        "",
        card.get(
            "intended_use",
            "Flagging sentences of financial reports for an auditor's "
            "review. Not a substitute for judgement; English only; trained on news "
            "sentences, so report language (risk factors, boilerplate) may read "
            "differently.",
        ),
        "",
        "## Lineage",
        "",
        f"- code: {card.get('code_version')} ({card.get('git_commit')})",
        f"- libraries: {json.dumps(card.get('libraries', {}), sort_keys=True)}",
        f"- created: {card.get('created_at')}",
        "",
    ]
    return "\n".join(lines)


def write_card(model_dir: Path, card: dict) -> None:
    """Write card.json and MODEL_CARD.md into a model directory."""
    model_dir = Path(model_dir)
    (model_dir / CARD_JSON).write_text(
        json.dumps(card, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    (model_dir / CARD_MD).write_text(render_card(card), encoding="utf-8")


def _card_tags(card: dict) -> dict[str, str]:
    metrics = (card.get("evaluation") or {}).get("metrics") or {}
    flat: dict[str, Any] = {
        "sha256": card.get("sha256"),
        "blessed": (card.get("blessing") or {}).get("blessed"),
        "origin": card.get("origin"),
        "base_model": (card.get("base_model") or {}).get("name"),
        "base_sha256": (card.get("base_model") or {}).get("sha256"),
        "train_digest": ((card.get("training") or {}).get("split") or {}).get("train_digest"),
        "eval_digest": (card.get("evaluation") or {}).get("eval_digest"),
        "split_digest": ((card.get("training") or {}).get("split") or {}).get("split_digest"),
        "code_version": card.get("code_version"),
        "git_commit": card.get("git_commit"),
        "licences": "; ".join(s["licence"] for s in (card.get("training") or {}).get("sources", []))
        or card.get("licence"),
        "commercial_use": card.get("commercial_use"),
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "run_id": card.get("run_id"),
    }
    return {k: str(v)[:4000] for k, v in flat.items() if v is not None and k in _TAG_FIELDS}


# ---------------------------------------------------------------------------------------------
# MLflow plumbing


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def client(settings: Settings):  # noqa: ANN201
    """An MlflowClient on the tracking server / registry in force."""
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    uri = settings.tracking_uri()
    if uri.startswith("sqlite:"):
        settings.ensure_dirs()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _owns_store(settings: Settings) -> bool:
    return settings.tracking_uri().startswith("sqlite:")


def experiment_id(settings: Settings, mlflow_client: Any, name: str = EXPERIMENT) -> str:
    """The training experiment, created with sesame's artifact folder when sesame owns the store."""
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = settings.artifact_root() if _owns_store(settings) else None
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it first
        exp = mlflow_client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _not_found(e: Exception) -> bool:
    return (
        "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", ""))
        or "not found" in str(e).lower()
        or "does not exist" in str(e).lower()
    )


@contextlib.contextmanager
def _lock(settings: Settings, name: str) -> Iterator[None]:
    """A file lock in the data directory: one process registers or downloads at a time."""
    settings.ensure_dirs()
    path = settings.data_dir / f".{name}.lock"
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def parse_ref(ref: str | None, default_name: str = DEFAULT_MODEL_NAME) -> tuple[str, str]:
    """`NAME`, `NAME@ALIAS` or `NAME/VERSION` -> (name, alias-or-version); bare name = champion."""
    if not ref:
        return default_name, CHAMPION
    m = re.fullmatch(r"([^@/]+)(?:@([\w-]+)|/(\d+))?", ref.strip())
    if not m:
        raise ModelError(
            f"{ref!r} is not a model reference; write NAME, NAME@ALIAS or "
            "NAME/VERSION (e.g. sesame-sentiment@champion)."
        )
    return m.group(1), m.group(2) or m.group(3) or CHAMPION


def _info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=list(getattr(mv, "aliases", []) or []),
        tags=dict(mv.tags or {}),
        source=mv.source,
        run_id=mv.run_id,
        created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
            timespec="seconds"
        ),
        description=mv.description,
    )


def get_version(settings: Settings, name: str, ref: str = CHAMPION) -> VersionInfo | None:
    """A version by alias or number; None when the model or alias does not exist."""
    c = client(settings)
    try:
        mv = (
            c.get_model_version(name, ref)
            if ref.isdigit()
            else c.get_model_version_by_alias(name, ref)
        )
    except Exception as e:
        if _not_found(e):
            return None
        raise
    return _info(mv)


def list_versions(settings: Settings, name: str | None = None) -> list[VersionInfo]:
    """Every registered version (of one model, or all), newest first."""
    c = client(settings)
    query = f"name='{name}'" if name else ""
    versions = [_info(mv) for mv in c.search_model_versions(query)]
    # search_model_versions leaves aliases out on some stores; read them from the models.
    aliases: dict[tuple[str, str], list[str]] = {}
    for rm in c.search_registered_models():
        for alias, version in (rm.aliases or {}).items():
            aliases.setdefault((rm.name, str(version)), []).append(alias)
    for v in versions:
        v.aliases = sorted(set(v.aliases) | set(aliases.get((v.name, v.version), [])))
    return sorted(versions, key=lambda v: (v.name, -int(v.version)))


def set_alias(settings: Settings, name: str, version: str, alias: str = CHAMPION) -> None:
    """Point an alias (champion by default) at a version."""
    client(settings).set_registered_model_alias(name, alias, str(version))
    _log.info("%s@%s -> version %s", name, alias, version)


def register_version(
    settings: Settings,
    model_dir: Path,
    card: dict,
    *,
    name: str,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    artifacts: dict[str, Path] | None = None,
    run_name: str | None = None,
    make_champion: bool = False,
) -> VersionInfo:
    """Log a run with the model directory and its card, register it as a version of `name`."""

    c = client(settings)
    exp = experiment_id(settings, c)
    card = dict(card)
    card["sha256"] = weights_digest(Path(model_dir))
    card.setdefault("libraries", library_versions())
    run = c.create_run(
        exp,
        run_name=run_name or f"{name}-{card.get('origin', 'model')}",
        tags={"sesame.model": name, "sesame.origin": str(card.get("origin"))},
    )
    run_id = run.info.run_id
    card["run_id"] = run_id
    status = "FAILED"
    try:
        for k, v in sorted((params or {}).items()):
            c.log_param(run_id, k, str(v)[:6000])
        for k, v in sorted((metrics or {}).items()):
            c.log_metric(run_id, k, float(v))
        for k, v in _card_tags(card).items():
            c.set_tag(run_id, f"sesame.{k}", v)
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "model"
            shutil.copytree(model_dir, staged, ignore=shutil.ignore_patterns(CARD_JSON, CARD_MD))
            write_card(staged, card)
            c.log_artifacts(run_id, str(staged), "model")
            c.log_artifact(run_id, str(staged / CARD_JSON))
            c.log_artifact(run_id, str(staged / CARD_MD))
        for art_name, path in (artifacts or {}).items():
            if Path(path).is_file():
                c.log_artifact(run_id, str(path), None)
            else:
                _log.warning("artifact %s (%s) is missing; not logged", art_name, path)
        with contextlib.suppress(Exception):  # exists already
            c.create_registered_model(name, description="sesame sentence sentiment")
        mv = c.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run_id,
            tags=_card_tags(card),
            description=card.get("summary"),
        )
        status = "FINISHED"
    finally:
        c.set_terminated(run_id, status)
    if make_champion:
        set_alias(settings, name, mv.version)
    _log.info("registered %s version %s (run %s)", name, mv.version, run_id)
    return get_version(settings, name, str(mv.version)) or _info(mv)


def _cache_dir(settings: Settings, name: str, version: str, digest: str) -> Path:
    return settings.data_dir / "models" / f"{name}-v{version}-{digest[:16]}"


def fetch_version(settings: Settings, info: VersionInfo) -> Path:
    """The version's model directory, downloaded once into the cache and digest-checked."""

    digest = info.tags.get("sha256", "")
    target = _cache_dir(settings, info.name, info.version, digest or "nodigest")
    marker = target / ".verified"
    if marker.is_file():
        return target
    with _lock(settings, "fetch"):
        if marker.is_file():
            return target
        import mlflow.artifacts

        staging = Path(tempfile.mkdtemp(dir=settings.data_dir, prefix=".fetch-"))
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=info.source,
                    dst_path=str(staging),
                    tracking_uri=settings.tracking_uri(),
                )
            )
            found = weights_digest(local)
            if digest and found != digest:
                raise ModelError(
                    f"{info.name} version {info.version}: downloaded weights have sha256 "
                    f"{found[:12]}…, the registry recorded {digest[:12]}…. The artifact store "
                    "was altered; re-register the model."
                )
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(local), str(target))
            marker.write_text(found)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def register_default(
    settings: Settings, name: str = DEFAULT_MODEL_NAME, default_dir: Path | None = None
) -> VersionInfo:
    """Register the bundled default model as a version with its card and make it champion."""
    default_dir = default_dir or DEFAULT_DIR
    card = read_card(default_dir)
    if card is None or not (default_dir / "config.json").is_file():
        raise ModelError(
            f"the bundled default model is missing from {default_dir}; train one "
            "with `sesame train` or import one with `sesame models import`."
        )
    card = dict(card) | {"origin": "bundled", "name": name}
    return register_version(
        settings,
        default_dir,
        card,
        name=name,
        make_champion=True,
        run_name=f"{name}-bundled-default",
        params={"origin": "bundled", "path": str(default_dir)},
        metrics={
            k: v
            for k, v in (card.get("evaluation", {}) or {}).get("metrics", {}).items()
            if isinstance(v, int | float)
        },
    )


def resolve_model(settings: Settings) -> ResolvedModel:
    """The model scoring should load: a directory, or a registry version fetched and verified."""

    opts = settings.scoring
    if opts.model_dir is not None:
        path = Path(opts.model_dir)
        if not path.is_dir():
            raise ModelError(f"scoring.model_dir {path} does not exist.")
        # An unregistered directory is named after itself, never after a registered model.
        card = read_card(path)
        name = str((card or {}).get("name") or path.resolve().name)
        return ResolvedModel(
            path=path, name=name, version=None, digest=weights_digest(path), card=card
        )
    name, ref = opts.model, str(opts.version)
    info = get_version(settings, name, ref)
    if info is None and name == DEFAULT_MODEL_NAME and ref == CHAMPION:
        with _lock(settings, "register-default"):
            info = get_version(settings, name, ref)
            if info is None and not _has_versions(settings, name):
                _log.info("first use: registering the bundled default model as %s", name)
                info = register_default(settings, name)
    if info is None:
        raise ModelError(
            f"model {name}@{ref} is not in the registry at "
            f"{settings.tracking_uri()}. List versions with `sesame models list`; "
            "train one with `sesame train` or import one with `sesame models import`."
        )
    path = fetch_version(settings, info)
    card = read_card(path)
    return ResolvedModel(
        path=path,
        name=name,
        version=info.version,
        digest=info.tags.get("sha256") or weights_digest(path),
        card=card,
    )


def _has_versions(settings: Settings, name: str) -> bool:
    try:
        return bool(client(settings).search_model_versions(f"name='{name}'"))
    except Exception as e:
        if _not_found(e):
            return False
        raise


def champion_info(settings: Settings, name: str) -> VersionInfo | None:
    """The current champion of `name`, registering the bundled default on first use."""
    info = get_version(settings, name, CHAMPION)
    if info is None and name == DEFAULT_MODEL_NAME and DEFAULT_DIR.joinpath(CARD_JSON).is_file():
        with _lock(settings, "register-default"):
            info = get_version(settings, name, CHAMPION)
            if info is None and not _has_versions(settings, name):
                info = register_default(settings, name)
    return info


def lineage(info: VersionInfo, card: dict | None) -> dict[str, Any]:
    """The lineage of a version: where it came from, what it was trained and measured on."""
    card = card or {}
    train = card.get("training") or {}
    return {
        "name": info.name,
        "version": info.version,
        "aliases": info.aliases,
        "origin": card.get("origin") or info.tags.get("origin"),
        "sha256": info.tags.get("sha256"),
        "run_id": info.run_id,
        "base_model": card.get("base_model"),
        "parent": card.get("parent"),
        "data_sources": train.get("sources"),
        "split": train.get("split"),
        "eval_digest": (card.get("evaluation") or {}).get("eval_digest"),
        "metrics": {
            k: v
            for k, v in ((card.get("evaluation") or {}).get("metrics") or {}).items()
            if k in ("accuracy", "macro_f1", "calibration_error", "n")
        },
        "slices": {
            k: slice_summary(v)
            for k, v in ((card.get("evaluation") or {}).get("slices") or {}).items()
        },
        "calibration": card.get("calibration"),
        "blessing": card.get("blessing"),
        "commercial_use": card.get("commercial_use"),
        "code_version": card.get("code_version"),
        "git_commit": card.get("git_commit"),
        "libraries": card.get("libraries"),
        "created": info.created,
    }


def version_card(settings: Settings, info: VersionInfo) -> dict | None:
    """A version's card.json, read from its artifacts (cached with the model)."""
    return read_card(fetch_version(settings, info))


def eval_set_of(settings: Settings, info: VersionInfo) -> Path | None:
    """The frozen evaluation set logged with a version's run, downloaded; None when absent."""
    if not info.run_id:
        return None
    import mlflow.artifacts

    target = settings.data_dir / "evalsets" / f"{info.name}-v{info.version}"
    if (target / EVAL_CSV).is_file():
        return target / EVAL_CSV
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=info.run_id,
            artifact_path=EVAL_CSV,
            dst_path=str(target),
            tracking_uri=settings.tracking_uri(),
        )
    except Exception as e:
        _log.info("no frozen eval set logged with %s v%s (%s)", info.name, info.version, e)
        return None
    return Path(local)


def describe(versions: Sequence[VersionInfo]) -> list[dict[str, str]]:
    """Rows for a table of versions."""
    return [
        {
            "name": v.name,
            "version": v.version,
            "aliases": ",".join(v.aliases),
            "origin": v.tags.get("origin", ""),
            "blessed": v.tags.get("blessed", ""),
            "accuracy": v.tags.get("accuracy", ""),
            "macro_f1": v.tags.get("macro_f1", ""),
            "sha256": v.tags.get("sha256", "")[:12],
            "created": v.created,
        }
        for v in versions
    ]
