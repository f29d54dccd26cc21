"""Quality: how often reviewers agree with a model version, and their labels as training rows.

`Feedback` is one reviewer decision; `agreement` groups every decision (each reviewer's, each
time they decided) by model version and period into an `AgreementReport` (rate, Wilson
interval, Cohen's kappa, alerts below a threshold), and measures reviewers against each other
where two people decided the same sentence; `feedback_examples` and `feedback_digest` turn the
latest decision per sentence into `text,label` rows for `sesame train --feedback` and their
lineage digest. It is its own
module because it measures the model against people, not against a reference profile: it
shares nothing with the drift tests but the record base.
"""

from __future__ import annotations

import hashlib
import itertools
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
    reviewer: str
    """Who decided (their signature, as the review log shows it)."""
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


class ReviewerAgreementRow(Model):
    """Agreement between reviewers on the sentences of one model version two or more decided.

    Each pair of people who decided a sentence counts once, with each one's latest label on it
    (their settled view; the model-reviewer rows count every decision instead).
    """

    model_version: str
    sentences: int
    """Sentences decided by at least two people."""
    pairs: int
    agreed: int
    rate: float
    ci_low: float
    ci_high: float
    """95% Wilson interval of the rate."""
    kappa: float | None
    """Cohen's kappa between the two labels of each pair (None when undefined)."""


class AgreementReport(Model):
    """Model-reviewer agreement per model version over time, and which fall below threshold;
    reviewer-reviewer agreement per model version beside it."""

    threshold: float
    min_reviews: int
    period: str
    rows: tuple[AgreementRow, ...]
    overall: tuple[AgreementRow, ...]
    """One row per model version over all time."""
    between_reviewers: tuple[ReviewerAgreementRow, ...] = ()
    """One row per model version with a sentence that two or more people decided."""

    @property
    def alerts(self) -> list[AgreementRow]:
        """Periods and versions whose agreement fell below the threshold."""
        return [r for r in (*self.rows, *self.overall) if r.below_threshold]


def latest_feedback(feedback: Iterable[Feedback]) -> list[Feedback]:
    """The latest review of each sentence (reviews are append-only; the last word counts: the
    training label)."""
    latest: dict[str, Feedback] = {}
    for f in sorted(feedback, key=lambda f: f.reviewed_at):
        latest[f.sentence_key] = f
    return list(latest.values())


def _agreement_row(
    version: str, period: str, items: list[Feedback], threshold: float, min_reviews: int
) -> AgreementRow:
    n = len(items)
    agreed, rate, ci_low, ci_high, kappa = _rate(
        [f.model_label for f in items], [f.reviewer_label for f in items]
    )
    return AgreementRow(
        model_version=version,
        period=period,
        n=n,
        agreed=agreed,
        rate=rate,
        ci_low=ci_low,
        ci_high=ci_high,
        kappa=kappa,
        below_threshold=n >= min_reviews and rate < threshold,
    )


def _rate(a: list[Label], b: list[Label]) -> tuple[int, float, float, float, float | None]:
    """Agreed count, rate, its 95% Wilson interval and Cohen's kappa of paired labels."""
    from scipy.stats import binomtest
    from sklearn.metrics import cohen_kappa_score

    n = len(a)
    agreed = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    ci = binomtest(agreed, n).proportion_ci(confidence_level=0.95, method="wilson")
    kappa = None
    if len(set(a) | set(b)) > 1:
        k = float(cohen_kappa_score(a, b, labels=list(LABELS)))
        kappa = k if math.isfinite(k) else None
    return agreed, agreed / n, float(ci.low), float(ci.high), kappa


def between_reviewers(feedback: Iterable[Feedback]) -> list[ReviewerAgreementRow]:
    """Reviewer-reviewer agreement per model version: each pair of people who decided the same
    sentence, with each one's latest label on it."""
    latest: dict[tuple[str, str], dict[str, Label]] = {}
    for f in sorted(feedback, key=lambda f: f.reviewed_at):
        latest.setdefault((f.model_version, f.sentence_key), {})[f.reviewer] = f.reviewer_label
    pairs: dict[str, tuple[list[Label], list[Label], set[str]]] = {}
    for (version, key), by_reviewer in sorted(latest.items()):
        labels = [by_reviewer[r] for r in sorted(by_reviewer)]
        if len(labels) < 2:
            continue
        a, b, keys = pairs.setdefault(version, ([], [], set()))
        keys.add(key)
        for first, second in itertools.combinations(labels, 2):
            a.append(first)
            b.append(second)
    rows = []
    for version, (a, b, keys) in sorted(pairs.items()):
        agreed, rate, ci_low, ci_high, kappa = _rate(a, b)
        rows.append(
            ReviewerAgreementRow(
                model_version=version,
                sentences=len(keys),
                pairs=len(a),
                agreed=agreed,
                rate=rate,
                ci_low=ci_low,
                ci_high=ci_high,
                kappa=kappa,
            )
        )
    return rows


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

    Every decision counts, each reviewer's and each time they decided: a preparer's override
    that the reviewer reverts is one disagreement and one agreement with the model, not the
    last word alone. A period counts only with at least `min_reviews` decisions, so one early
    disagreement does not raise an alarm. Reviewers are also measured against each other
    (`between_reviewers`), which the threshold does not gate.
    """
    items = list(feedback)
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
        threshold=threshold,
        min_reviews=min_reviews,
        period=period,
        rows=rows,
        overall=overall,
        between_reviewers=tuple(between_reviewers(items)),
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
