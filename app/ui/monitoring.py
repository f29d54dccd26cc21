"""The Monitoring page's tables, built from the store (pure pandas, no Streamlit).

Drift reports come from the store's monitor_reports (kind "drift": every `sesame analyze`,
batch or UI run tested against its model's reference, and `sesame monitor report`), so the page
shows the same reports on any machine that reaches the store. Each test's effect is also shown
relative to its threshold: effects are on different scales (PSI, Wasserstein in standard
deviations, AUC), and 1.0 is where each one counts as drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from models.monitoring import AgreementReport, DriftReport, run_figures

if TYPE_CHECKING:
    from app.store import ResultStore

DOMAIN_AUC_FLOOR = 0.5
"""A domain classifier's AUC at chance: its effect relative to the threshold starts here."""


def reports_frame(reports: Sequence[DriftReport]) -> pd.DataFrame:
    """One row per report: when, run, model version, sentences, verdict, drifted tests."""
    return pd.DataFrame(
        [
            {
                "time (UTC)": r.created_at.strftime("%Y-%m-%d %H:%M"),
                "run": r.run_id or "",
                "model version": r.model_version or "",
                "sentences": r.current_sentences,
                "verdict": r.verdict(),
                "drifted tests": ", ".join(t.name for t in r.drifted_tests()),
                "reference": r.reference_source,
            }
            for r in reversed(reports)
        ],
        columns=[
            "time (UTC)",
            "run",
            "model version",
            "sentences",
            "verdict",
            "drifted tests",
            "reference",
        ],
    )


def relative_effect(name: str, effect: float | None, threshold: float) -> float | None:
    """A test's effect as a multiple of its threshold (1.0: drift), AUC measured from chance."""
    if effect is None:
        return None
    if name == "domain_classifier":
        return max(effect - DOMAIN_AUC_FLOOR, 0.0) / (threshold - DOMAIN_AUC_FLOOR)
    return effect / threshold


def effects_over_time(reports: Sequence[DriftReport]) -> pd.DataFrame:
    """Long form, one row per report and gating test: time, run, test, effect relative to its
    threshold (1.0: drift), and whether it drifted (for a chart with a threshold rule)."""
    rows = [
        {
            "time": _naive_utc(r.created_at),
            "run": r.run_id or "",
            "test": t.name,
            "relative": relative_effect(t.name, t.effect, t.threshold),
            "drifted": t.drifted,
        }
        for r in reports
        for t in r.tests
        if t.gating and t.status != "skipped"
    ]
    frame = pd.DataFrame(rows, columns=["time", "run", "test", "relative", "drifted"])
    return frame.dropna(subset=["relative"]).reset_index(drop=True)


def _naive_utc(when: datetime) -> datetime:
    """A time in UTC without its zone (charts drop zones, with a warning)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def tests_frame(report: DriftReport) -> pd.DataFrame:
    """One report's tests: method, statistic, p-value, effect, threshold, status."""
    return pd.DataFrame(
        [
            {
                "test": t.name,
                "method": t.method,
                "effect": t.effect,
                "threshold": t.threshold,
                "effect / threshold": relative_effect(t.name, t.effect, t.threshold),
                "p-value": t.p_value,
                "statistic": t.statistic,
                "status": t.status
                if t.gating or t.status == "skipped"
                else f"{t.status} (information)",
            }
            for t in report.tests
        ]
    )


def agreement_frame(report: AgreementReport) -> pd.DataFrame:
    """Agreement per model version and period, the overall rows last."""
    return pd.DataFrame(
        [
            {
                "model version": r.model_version,
                "period": r.period,
                "reviewed": r.n,
                "agreed": r.agreed,
                "agreement": r.rate,
                "95% interval": f"{r.ci_low:.0%}–{r.ci_high:.0%}",
                "kappa": r.kappa,
                "alert": "below threshold" if r.below_threshold else "",
            }
            for r in (*report.rows, *report.overall)
        ]
    )


def reviewers_frame(report: AgreementReport) -> pd.DataFrame:
    """Agreement between reviewers per model version, where two people decided a sentence."""
    return pd.DataFrame(
        [
            {
                "model version": r.model_version,
                "sentences": r.sentences,
                "pairs": r.pairs,
                "agreed": r.agreed,
                "agreement": r.rate,
                "95% interval": f"{r.ci_low:.0%}–{r.ci_high:.0%}",
                "kappa": r.kappa,
            }
            for r in report.between_reviewers
        ],
        columns=[
            "model version",
            "sentences",
            "pairs",
            "agreed",
            "agreement",
            "95% interval",
            "kappa",
        ],
    )


def system_frame(store: ResultStore, limit: int = 50) -> pd.DataFrame:
    """Per run, newest first: documents, pages, sentences, rates, failures, peak memory."""
    rows = []
    for run in store.list_runs(limit=limit):
        f = run_figures(store, run.run_id)
        rows.append(
            {
                "run": f["run_id"],
                "kind": f["kind"],
                "status": f["status"],
                "started (UTC)": f["started_at"].strftime("%Y-%m-%d %H:%M"),
                "model version": f["model_version"] or "",
                "documents": f["documents"],
                "failed": f["failed"],
                "pages": f["pages"],
                "sentences": f["sentences"],
                "seconds": f["elapsed_s"],
                "pages/s": f["pages_per_s"],
                "sentences/s": f["sentences_per_s"],
                "peak memory (MB)": f["peak_rss_mb"],
            }
        )
    return pd.DataFrame(rows)
