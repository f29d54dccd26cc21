"""Quality: how often reviewers agree with a model version, and their labels as training rows.

`Feedback` is one reviewer decision; `agreement` groups the latest decision per sentence by
model version and period into an `AgreementReport` (rate, Wilson interval, Cohen's kappa,
alerts below a threshold); `feedback_examples` and `feedback_digest` turn the same decisions
into `text,label` rows for `sesame train --feedback` and their lineage digest. It is its own
module because it measures the model against people, not against a reference profile: it
shares nothing with the drift tests but the record base.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from app.records import LABELS, Label
from models.monitoring.profile import Model

_log = logging.getLogger(__name__)


class Feedback(Model):
    """One reviewer decision on one sentence: the model's label and the reviewer's."""

    sentence_key: str
    """Identifies the sentence across reviews (e.g. "<doc_id>:<index>")."""
    model_version: str
    model_label: Label
    reviewer_label: Label
    reviewed_at: datetime
    text: str | None = None


class AgreementRow(Model):
    """Agreement of one model version with reviewers in one period."""

    model_version: str
    period: str
    n: int
    agreed: int
    rate: float
    ci_low: float
    ci_high: float
    """95% Wilson interval of the rate."""
    kappa: float | None
    """Cohen's kappa of model vs reviewer labels (None when undefined)."""
    below_threshold: bool


class AgreementReport(Model):
    """Model-reviewer agreement per model version over time, and which fall below threshold."""

    threshold: float
    min_reviews: int
    period: str
    rows: tuple[AgreementRow, ...]
    overall: tuple[AgreementRow, ...]
    """One row per model version over all time."""

    @property
    def alerts(self) -> list[AgreementRow]:
        """Periods and versions whose agreement fell below the threshold."""
        return [r for r in (*self.rows, *self.overall) if r.below_threshold]


def latest_feedback(feedback: Iterable[Feedback]) -> list[Feedback]:
    """The latest review of each sentence (reviews are append-only; the last word counts)."""
    latest: dict[str, Feedback] = {}
    for f in sorted(feedback, key=lambda f: f.reviewed_at):
        latest[f.sentence_key] = f
    return list(latest.values())


def _agreement_row(
    version: str, period: str, items: list[Feedback], threshold: float, min_reviews: int
) -> AgreementRow:
    from scipy.stats import binomtest
    from sklearn.metrics import cohen_kappa_score

    n = len(items)
    agreed = sum(1 for f in items if f.model_label == f.reviewer_label)
    ci = binomtest(agreed, n).proportion_ci(confidence_level=0.95, method="wilson")
    model = [f.model_label for f in items]
    reviewer = [f.reviewer_label for f in items]
    kappa = None
    if len(set(model) | set(reviewer)) > 1:
        k = float(cohen_kappa_score(model, reviewer, labels=list(LABELS)))
        kappa = k if math.isfinite(k) else None
    rate = agreed / n
    return AgreementRow(
        model_version=version,
        period=period,
        n=n,
        agreed=agreed,
        rate=rate,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        kappa=kappa,
        below_threshold=n >= min_reviews and rate < threshold,
    )


def _period(ts: datetime, period: Literal["day", "week", "month"]) -> str:
    if period == "day":
        return ts.date().isoformat()
    if period == "week":
        year, week, _ = ts.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{ts.year}-{ts.month:02d}"


def agreement(
    feedback: Iterable[Feedback],
    *,
    threshold: float = 0.8,
    min_reviews: int = 20,
    period: Literal["day", "week", "month"] = "week",
) -> AgreementReport:
    """Model-reviewer agreement per model version and period; below threshold raises an alert.

    A period counts only with at least `min_reviews` reviews, so one early disagreement does
    not raise an alarm.
    """
    items = latest_feedback(feedback)
    groups: dict[tuple[str, str], list[Feedback]] = {}
    by_version: dict[str, list[Feedback]] = {}
    for f in items:
        groups.setdefault((f.model_version, _period(f.reviewed_at, period)), []).append(f)
        by_version.setdefault(f.model_version, []).append(f)
    rows = tuple(
        _agreement_row(v, p, g, threshold, min_reviews) for (v, p), g in sorted(groups.items())
    )
    overall = tuple(
        _agreement_row(v, "all", g, threshold, min_reviews) for v, g in sorted(by_version.items())
    )
    for r in (*rows, *overall):
        if r.below_threshold:
            _log.warning(
                "model version %s agrees with reviewers on %.0f%% of %d sentences "
                "(%s), below %.0f%%",
                r.model_version,
                100 * r.rate,
                r.n,
                r.period,
                100 * threshold,
            )
    return AgreementReport(
        threshold=threshold, min_reviews=min_reviews, period=period, rows=rows, overall=overall
    )


def feedback_examples(feedback: Iterable[Feedback]) -> list[tuple[str, Label]]:
    """Reviewed sentences as (text, reviewer label) training rows, latest review per sentence.

    Confirmations count as much as overrides: both are a human label. Sorted by text so the
    digest does not depend on review order.
    """
    rows = {(f.text, f.reviewer_label) for f in latest_feedback(feedback) if f.text}
    return sorted(rows)  # type: ignore[arg-type]


def feedback_digest(rows: Iterable[tuple[str, str]]) -> str:
    """sha256 of the feedback training rows (canonical JSON), for the model's lineage."""
    canonical = json.dumps(sorted(rows), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
