"""Monitoring of stored runs: references with model versions, drift of a run, feedback export.

The functions that need the results store, the registry or a loaded scorer: `write_reference`,
`find_reference` and `make_reference` keep a model's reference profile; `run_sentences`,
`run_scorer` and `monitor_run` profile a stored run and test it (`drift_verdict` for the end of
analyze, batch and upload runs); `run_figures`, `stored_reports` and `feedback_from_store` read
what the Monitoring page shows; `export_feedback` writes reviewer labels for training. It is
its own module, the top of the package, so that profiles, tests, reports and agreement stay
importable and testable without a store or a model.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.errors import SesameError
from app.records import LABELS, RunInfo, Stage
from app.store import ResultStore
from models import registry
from models.evaluate import read_eval_file
from models.monitoring.agreement import Feedback, feedback_digest, feedback_examples
from models.monitoring.drift import (
    DriftReport,
    DriftState,
    DriftThresholds,
    compare,
    verdict_line,
)
from models.monitoring.profile import (
    REFERENCE_FILE,
    Profile,
    build_profile,
    load_profile,
    reference_profile,
    save_profile,
    scorer_embedder,
)
from models.monitoring.report import monitoring_dir, run_report_dir, write_report
from models.scoring import SentimentScorer

_log = logging.getLogger(__name__)


class MonitorError(SesameError):
    """Monitoring could not run: no such run, no reference profile, no model to embed with."""

    stage: Stage = "monitor"
    code = "monitor"


def write_reference(
    model_dir: Path,
    eval_texts: Sequence[str],
    scorer: SentimentScorer,
    *,
    source: str = "evaluation set",
) -> Path:
    """Profile the evaluation set and save it as `reference_profile.json` in the model dir.

    Call it at blessing time before the version is registered: the file then travels with the
    model's artifacts (the weights digest does not cover it).
    """
    profile = reference_profile(eval_texts, scorer, source=source)
    return save_profile(profile, Path(model_dir) / REFERENCE_FILE)


def reference_cache_path(data_dir: Path, model_digest: str) -> Path:
    """Where a reference made after registration (`sesame monitor reference`) is kept; it
    takes precedence over the one in the model directory."""
    return monitoring_dir(data_dir) / "reference" / f"{model_digest[:16]}.json"


def find_reference(
    data_dir: Path, *, model_dir: Path | None, model_digest: str | None
) -> Profile | None:
    """The reference profile of a model: one made here (`sesame monitor reference`) first,
    else the one saved in its directory at blessing."""
    candidates = []
    if model_digest:
        candidates.append(reference_cache_path(data_dir, model_digest))
    if model_dir is not None:
        candidates.append(Path(model_dir) / REFERENCE_FILE)
    for path in candidates:
        if path.is_file():
            profile = load_profile(path)
            if model_digest and profile.model_digest and profile.model_digest != model_digest:
                _log.warning(
                    "%s was profiled with weights %s, not %s; ignored",
                    path,
                    profile.model_digest[:12],
                    model_digest[:12],
                )
                continue
            return profile
    return None


def run_sentences(
    store: ResultStore, run_id: str, kinds: Sequence[str] = ("sentence",)
) -> tuple[list[str], np.ndarray]:
    """The scored sentences of a run's results and their (n, 3) probabilities (LABELS order).

    A run's inputs point at their results; a result kept from an earlier run (same document,
    model and settings) belongs to this run all the same. Only units of `kinds` count: the
    reference is profiled on evaluation sentences, and headings or list items beside them
    would read as a shift towards short texts.
    """
    result_ids = sorted(
        {d.result_id for d in store.run_documents(run_id) if d.result_id is not None}
    )
    if not result_ids:
        result_ids = sorted(r.result_id for r in store.list_results(run_id=run_id))
    texts: list[str] = []
    rows: list[list[float]] = []
    for result_id in result_ids:
        for sentence, score in store.sentences(result_id):
            if score is not None and sentence.kind in kinds:
                texts.append(sentence.text)
                probs = {str(k): v for k, v in score.probabilities.items()}
                rows.append([probs.get(lab, 0.0) for lab in LABELS])
    return texts, np.asarray(rows, dtype=np.float64).reshape(len(rows), len(LABELS))


def run_scorer(settings: Settings, run: RunInfo) -> tuple[SentimentScorer, Path]:
    """Load the model that scored a run (its registry version, or its model directory)."""
    stamp = run.stamp
    if stamp is None:
        raise MonitorError(f"run {run.run_id} has no model stamp; it cannot be profiled.")
    scoring = settings.scoring
    if stamp.model_version:
        info = registry.get_version(settings, stamp.model_name, stamp.model_version)
        if info is None:
            raise MonitorError(
                f"run {run.run_id}: model {stamp.model_name} version "
                f"{stamp.model_version} is no longer in the registry."
            )
        path = registry.fetch_version(settings, info)
    else:
        recorded = (run.settings.get("scoring") or {}) if isinstance(run.settings, dict) else {}
        model_dir = recorded.get("model_dir") if isinstance(recorded, dict) else None
        if not model_dir:
            raise MonitorError(
                f"run {run.run_id} used an unregistered model whose directory "
                "was not recorded; pass --model-dir."
            )
        path = Path(str(model_dir))
    scorer = SentimentScorer.from_dir(
        path,
        scoring.model_copy(update={"model_dir": None}),
        name=stamp.model_name,
        version=stamp.model_version,
        expected_digest=stamp.model_digest,
    )
    return scorer, path


def monitor_run(
    settings: Settings,
    run_id: str | None = None,
    *,
    store: ResultStore | None = None,
    scorer: SentimentScorer | None = None,
    model_dir: Path | None = None,
    reference: Profile | None = None,
    thresholds: DriftThresholds | None = None,
    save: bool = True,
) -> tuple[DriftReport, dict[str, Path]]:
    """Profile a run's sentences, test them against the model's reference, save the report.

    `run_id` None takes the latest run. The analyze and batch commands call this at the end of
    a run with the scorer they already loaded; `sesame monitor report` calls it afterwards.
    Reports go to data_dir/monitoring/runs/<run_id>/ and the store's monitor_reports (kind
    "drift").
    """
    store = store or ResultStore.from_settings(settings)
    if run_id is None:
        runs = store.list_runs(limit=1)
        if not runs:
            raise MonitorError("the results store holds no runs yet; analyze some reports first.")
        run = runs[0]
    else:
        found = store.get_run(run_id)
        if found is None:
            raise MonitorError(
                f"no run {run_id} in the results store; list runs with "
                "`sesame batch status` or omit RUN for the latest."
            )
        run = found
    texts, probs = run_sentences(store, run.run_id)
    if scorer is None:
        if model_dir is not None:
            stamp = run.stamp
            scorer = SentimentScorer.from_dir(
                model_dir,
                settings.scoring.model_copy(update={"model_dir": None}),
                name=stamp.model_name if stamp else None,
                version=stamp.model_version if stamp else None,
            )
        else:
            scorer, model_dir = run_scorer(settings, run)
    else:
        model_dir = model_dir or scorer.path
    digest = scorer.digest
    if reference is None:
        reference = find_reference(settings.data_dir, model_dir=model_dir, model_digest=digest)
    if reference is None:
        raise MonitorError(
            f"model {scorer.name} version {scorer.version} "
            f"(sha256 {str(digest)[:12]}…) has no reference profile. Make one with `sesame "
            "monitor reference`, or bless the model again (the reference is saved at blessing)."
        )
    current = build_profile(
        texts,
        probs,
        tokenizer=scorer.tokenizer,
        embed=scorer_embedder(scorer),
        source=f"run {run.run_id}",
        model_name=scorer.name,
        model_version=scorer.version,
        model_digest=digest,
    )
    report = compare(reference, current, thresholds or settings.drift, run_id=run.run_id)
    paths: dict[str, Path] = {}
    if save:
        paths = write_report(report, run_report_dir(settings.data_dir, run.run_id), current=current)
        store.add_monitor_report(
            "drift", report.model_dump(mode="json"), model_digest=digest, run_id=run.run_id
        )
    _log.info("%s", report.summary())
    return report, paths


@dataclass(frozen=True)
class DriftVerdict:
    """A run's drift check as the end of a run reports it."""

    state: DriftState
    line: str
    """`verdict_line`: `run-1: drift not tested (26 sentences, needs 30)`."""
    report: Path | None = None
    """The report's file, when one was written."""

    @property
    def drifted(self) -> bool:
        return self.state == "drift"

    def to_json(self) -> dict[str, Any]:
        """For the run summary: state, verdict line, report file."""
        return {
            "state": self.state,
            "verdict": self.line,
            "report": str(self.report) if self.report is not None else None,
        }


def drift_verdict(
    settings: Settings, run_id: str, store: ResultStore, scorer: SentimentScorer | None = None
) -> DriftVerdict:
    """A finished run's drift check for the end of analyze, batch and upload runs. Monitoring
    that cannot run (no reference profile, no run) is "not tested" with the reason, not
    raised: drift is a warning there, never a failed analysis, and never "no drift"."""
    try:
        report, paths = monitor_run(settings, run_id, store=store, scorer=scorer)
    except SesameError as e:
        return DriftVerdict(
            "not_tested", verdict_line("not_tested", run_id=run_id, reason=e.message)
        )
    where = paths.get("html") or next(iter(paths.values()), None)
    return DriftVerdict(report.state, report.summary(), where)


def run_drift_line(store: ResultStore, run_id: str | None) -> str | None:
    """The drift verdict of a run as its outputs state it: its latest stored report (`sesame
    monitor report` may have tested it again since), else what the run's end recorded (a
    check that could not run stores no report), else None (never checked)."""
    if not run_id:
        return None
    for row in store.monitor_reports("drift", limit=500):
        if row.run_id == run_id:
            try:
                return DriftReport.model_validate(row.report).summary()
            except ValueError:
                continue
    run = store.get_run(run_id)
    drift = (run.summary or {}).get("drift") if run is not None else None
    return str(drift["verdict"]) if isinstance(drift, dict) and drift.get("verdict") else None


def make_reference(
    settings: Settings,
    *,
    model: str | None = None,
    texts: Path | None = None,
    run_id: str | None = None,
) -> tuple[Profile, Path]:
    """Profile a reference for a model and keep it in the data directory (it then wins).

    From a trusted run's sentences (`run_id`, with the run's model), from a text file of
    sentences, or else from the frozen evaluation set logged with the registered version.
    """
    if run_id is not None:
        store = ResultStore.from_settings(settings)
        run = store.get_run(run_id)
        if run is None:
            raise MonitorError(f"no run {run_id} in the results store.")
        scorer, _ = run_scorer(settings, run)
        lines, probs = run_sentences(store, run_id)
        if not lines:
            raise MonitorError(f"run {run_id} has no scored sentences.")
        profile = build_profile(
            lines,
            probs,
            tokenizer=scorer.tokenizer,
            embed=scorer_embedder(scorer),
            source=f"run {run_id}",
            model_name=scorer.name,
            model_version=scorer.version,
            model_digest=scorer.digest,
        )
        return profile, save_profile(
            profile, reference_cache_path(settings.data_dir, scorer.digest)
        )
    if model is not None:
        name, ref = registry.parse_ref(model, settings.scoring.model)
        settings = settings.model_copy(
            update={
                "scoring": settings.scoring.model_copy(
                    update={"model": name, "version": ref, "model_dir": None}
                )
            }
        )
    resolved = registry.resolve_model(settings)
    if texts is not None:
        lines = [
            x.strip() for x in Path(texts).read_text(encoding="utf-8").splitlines() if x.strip()
        ]
        source = Path(texts).name
    else:
        info = registry.get_version(settings, resolved.name, resolved.version or "")
        eval_csv = registry.eval_set_of(settings, info) if info else None
        if eval_csv is None:
            raise MonitorError(
                f"{resolved.name} v{resolved.version} has no frozen evaluation "
                "set in the registry; give report sentences with --texts."
            )
        lines = [e.text for e in read_eval_file(eval_csv)[0]]
        source = f"evaluation set of {resolved.name} v{resolved.version}"
    if not lines:
        raise MonitorError("no reference sentences")
    scorer = SentimentScorer.from_dir(
        resolved.path,
        settings.scoring,
        name=resolved.name,
        version=resolved.version,
        expected_digest=resolved.digest,
    )
    profile = reference_profile(lines, scorer, source=source)
    return profile, save_profile(profile, reference_cache_path(settings.data_dir, scorer.digest))


def run_figures(store: ResultStore, run_id: str) -> dict[str, Any]:
    """System figures of a run for the Monitoring page: documents, pages, sentences, rates,
    failures, and peak memory when the run recorded it in its summary (`peak_rss_mb`)."""
    run = store.get_run(run_id)
    if run is None:
        raise MonitorError(f"no run {run_id} in the results store.")
    docs = store.run_documents(run_id)
    results = {r.result_id: r for r in store.list_results(run_id=run_id)}
    for d in docs:
        if d.result_id is not None and d.result_id not in results:
            results.update(
                {
                    r.result_id: r
                    for r in store.list_results(doc_id=d.doc_id)
                    if r.result_id == d.result_id
                }
            )
    pages = sum(r.n_pages for r in results.values())
    sentences = sum(r.n_sentences for r in results.values())
    elapsed = None
    if run.finished_at is not None:
        elapsed = (run.finished_at - run.started_at).total_seconds()
    summary = run.summary if isinstance(run.summary, dict) else {}
    peak = summary.get("peak_rss_mb")
    return {
        "run_id": run_id,
        "kind": run.kind,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "model_version": run.stamp.model_version if run.stamp else None,
        "documents": len(docs) or len(results),
        "document_counts": dict(run.document_counts),
        "failed": int(run.document_counts.get("failed", 0)),
        "pages": pages,
        "sentences": sentences,
        "elapsed_s": elapsed,
        "pages_per_s": round(pages / elapsed, 3) if elapsed else None,
        "sentences_per_s": round(sentences / elapsed, 3) if elapsed else None,
        "peak_rss_mb": float(peak) if isinstance(peak, int | float) else None,
        "errors": [d.error for d in docs if d.error],
    }


def stored_reports(store: ResultStore, limit: int = 500) -> list[DriftReport]:
    """The drift reports in the results store, oldest first (what the UI and `sesame monitor
    history` show; the store is shared by every machine of a cluster, unlike report files)."""
    out = []
    for row in store.monitor_reports("drift", limit=limit):
        try:
            out.append(DriftReport.model_validate(row.report))
        except ValueError as exc:
            _log.warning("monitor report %s: unreadable (%s)", row.id, exc)
    return sorted(out, key=lambda r: r.created_at)


def feedback_from_store(store: ResultStore) -> list[Feedback]:
    """Every decision (agree / override) on a scored sentence as feedback: the model's label
    (its score) vs the reviewer's, who decided and when."""
    out: list[Feedback] = []
    for result in store.list_results():
        actions = [
            a
            for a in store.reviews(result_id=result.result_id)
            if a.action in ("agree", "override")
            and a.sentence_index is not None
            and a.label is not None
        ]
        if not actions:
            continue
        scored = {
            s.index: (s.text, sc) for s, sc in store.sentences(result.result_id) if sc is not None
        }
        version = result.model_version or f"unregistered:{result.model_digest[:12]}"
        for a in actions:
            if a.sentence_index not in scored:
                continue
            text, score = scored[a.sentence_index]
            out.append(
                Feedback(
                    sentence_key=f"{result.result_id}:{a.sentence_index}",
                    reviewer=a.reviewer,
                    model_version=version,
                    model_label=score.label,
                    reviewer_label=a.label,
                    reviewed_at=a.created_at,
                    text=text,
                )
            )
    return out


def export_feedback(settings: Settings, path: Path) -> tuple[Path, int, str]:
    """Write reviewed sentences as a `text,label` CSV for `sesame train --feedback`.

    Returns (path, rows, digest). Rows are sorted, so the same reviews give the same file and
    digest; the file is read like any extra training data and carries its own digest in the
    model's lineage.
    """
    rows = feedback_examples(feedback_from_store(ResultStore.from_settings(settings)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path, len(rows), feedback_digest(rows)
