"""Drift tests: one profile against another, each test with an effect size and a p-value.

`categorical_test` (chi-square and PSI), `continuous_test` (Kolmogorov-Smirnov and the
Wasserstein distance) and `domain_classifier_test` (cross-validated ROC AUC of reference vs
current rows) each return a `DriftTest`; `compare` runs them all on two `Profile`s under
`DriftThresholds` and gives the `DriftReport` with its verdict (the package docstring says why
a test needs both its effect and its p-value). It is its own module because the statistics
are pure functions of two profiles: no files, no store, no model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from app.config import DriftThresholds
from models.monitoring.profile import DESCRIPTORS, Model, Profile

__all__ = [
    "DriftReport",
    "DriftState",
    "DriftTest",
    "DriftThresholds",
    "compare",
    "reports_headline",
    "state_counts",
    "verdict_line",
    "verdict_text",
]

DriftState = Literal["drift", "ok", "not_tested"]
"""What a drift check found: drift, no drift, or nothing, because no gating test could run
(too few sentences, no reference profile): never to be read or counted as no drift."""

STATE_LABELS: dict[str, str] = {"drift": "DRIFT", "ok": "no drift", "not_tested": "not tested"}
"""The state in one or two words, as every surface shows it."""

TOO_SMALL = "too small to test"
"""The method of the one skipped test a report below `min_sentences` holds."""


def verdict_text(
    state: DriftState, *, reason: str | None = None, drifted: Sequence[str] = ()
) -> str:
    """The verdict in words, the same on every surface: `DRIFT (label_shares)`, `no drift`,
    `not tested (26 sentences, needs 30)`."""
    text = STATE_LABELS[state]
    if state == "drift" and drifted:
        return f"{text} ({', '.join(drifted)})"
    if state == "not_tested" and reason:
        return f"{text} ({reason})"
    return text


def verdict_line(
    state: DriftState,
    *,
    run_id: str | None = None,
    reference: str | None = None,
    reason: str | None = None,
    drifted: Sequence[str] = (),
) -> str:
    """One line for the end of a run, a workpaper or a page: `run-1: no drift against
    evaluation set`, `run-1: DRIFT against … (label_shares)`, `run-1: drift not tested (26
    sentences, needs 30)`."""
    run = run_id or "current"
    if state == "not_tested":
        return f"{run}: drift {verdict_text(state, reason=reason)}"
    against = f"against {reference or 'the reference'}"
    if state == "drift":
        names = f" ({', '.join(drifted)})" if drifted else ""
        return f"{run}: {STATE_LABELS[state]} {against}{names}"
    return f"{run}: {STATE_LABELS[state]} {against}"


class DriftTest(Model):
    """One test of current against reference."""

    name: str
    method: str
    statistic: float | None
    """The test statistic: chi-square, KS D, Mann-Whitney U."""
    p_value: float | None
    effect: float | None
    """The effect size the decision is made on: PSI, Wasserstein/std, AUC."""
    threshold: float
    drifted: bool
    status: Literal["ok", "drift", "skipped"]
    gating: bool = True
    detail: dict[str, Any] = {}


class DriftReport(Model):
    """Every test of one run against its model version's reference, and the verdict."""

    run_id: str | None
    created_at: datetime
    model_name: str | None = None
    model_version: str | None = None
    model_digest: str | None = None
    reference_source: str
    reference_sentences: int
    current_sentences: int
    tests: tuple[DriftTest, ...]
    drifted: bool
    thresholds: DriftThresholds
    notes: tuple[str, ...] = ()
    """Caveats: a reference from other weights, embeddings that could not be compared."""

    def drifted_tests(self) -> list[DriftTest]:
        """The gating tests that found drift."""
        return [t for t in self.tests if t.drifted and t.gating]

    @property
    def state(self) -> DriftState:
        """Drift, no drift, or not tested: no gating test ran (too few sentences, or every
        gating test lacked observations)."""
        if self.drifted:
            return "drift"
        if not any(t.gating and t.status != "skipped" for t in self.tests):
            return "not_tested"
        return "ok"

    def untested_reason(self) -> str | None:
        """Why the report is not a test (`26 sentences, needs 30`); None when it is one."""
        if self.state != "not_tested":
            return None
        if any(t.method == TOO_SMALL for t in self.tests):
            return f"{self.current_sentences} sentences, needs {self.thresholds.min_sentences}"
        reasons = [
            f"{t.name}: {t.detail['reason']}"
            for t in self.tests
            if t.gating and t.status == "skipped" and t.detail.get("reason")
        ]
        return "; ".join(dict.fromkeys(reasons)) or "no gating test could run"

    def verdict(self) -> str:
        """The verdict in words (`verdict_text`)."""
        return verdict_text(
            self.state,
            reason=self.untested_reason(),
            drifted=[t.name for t in self.drifted_tests()],
        )

    def summary(self) -> str:
        """One line: run, verdict, reference and the tests that drifted (`verdict_line`)."""
        return verdict_line(
            self.state,
            run_id=self.run_id,
            reference=self.reference_source,
            reason=self.untested_reason(),
            drifted=[t.name for t in self.drifted_tests()],
        )


def state_counts(reports: Sequence[DriftReport]) -> Counter[str]:
    """Reports per state: drift, ok, not_tested (each always present, 0 when none)."""
    counts: Counter[str] = Counter({"drift": 0, "ok": 0, "not_tested": 0})
    counts.update(r.state for r in reports)
    return counts


def reports_headline(reports: Sequence[DriftReport]) -> str:
    """`3 reports · 0 with drift · 3 not tested`: a report that was not tested is never
    counted as one without drift."""
    counts = state_counts(reports)
    n = len(reports)
    return (
        f"{n} report{'' if n == 1 else 's'} · {counts['drift']} with drift · "
        f"{counts['not_tested']} not tested"
    )


def _skipped(name: str, method: str, threshold: float, reason: str, gating: bool) -> DriftTest:
    return DriftTest(
        name=name,
        method=method,
        statistic=None,
        p_value=None,
        effect=None,
        threshold=threshold,
        drifted=False,
        status="skipped",
        gating=gating,
        detail={"reason": reason},
    )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def categorical_test(
    name: str,
    reference: Mapping[Any, int],
    current: Mapping[Any, int],
    *,
    psi_threshold: float,
    alpha: float,
    gating: bool = True,
) -> DriftTest:
    """Chi-square test of homogeneity and PSI between two sets of category counts.

    PSI is the symmetrised Kullback-Leibler divergence (scipy's `rel_entr` both ways) of the
    shares, with half a count added to every cell so that a category absent on one side stays
    finite.
    """
    from scipy.special import rel_entr
    from scipy.stats import chi2_contingency

    cats = sorted(set(reference) | set(current))
    ref = np.array([reference.get(c, 0) for c in cats], dtype=np.float64)
    cur = np.array([current.get(c, 0) for c in cats], dtype=np.float64)
    if ref.sum() == 0 or cur.sum() == 0:
        return _skipped(name, "chi2+psi", psi_threshold, "no observations on one side", gating)
    p, q = (cur + 0.5) / (cur + 0.5).sum(), (ref + 0.5) / (ref + 0.5).sum()
    psi = float(np.sum(rel_entr(p, q) + rel_entr(q, p)))
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        stat, pval = 0.0, 1.0
    else:
        res = chi2_contingency(table)
        stat, pval = float(res.statistic), float(res.pvalue)
    drifted = psi > psi_threshold and pval < alpha
    ref_sh = dict(zip(cats, (ref / ref.sum()).round(4).tolist(), strict=True))
    cur_sh = dict(zip(cats, (cur / cur.sum()).round(4).tolist(), strict=True))
    return DriftTest(
        name=name,
        method="chi2+psi",
        statistic=_finite(stat),
        p_value=_finite(pval),
        effect=psi,
        threshold=psi_threshold,
        drifted=drifted,
        status="drift" if drifted else "ok",
        gating=gating,
        detail={"reference_shares": ref_sh, "current_shares": cur_sh},
    )


def continuous_test(
    name: str,
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    *,
    threshold: float,
    alpha: float,
    gating: bool = True,
) -> DriftTest:
    """Two-sample KS test plus the Wasserstein distance in reference standard deviations."""
    from scipy.stats import ks_2samp, wasserstein_distance

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) < 2 or len(cur) < 2:
        return _skipped(name, "ks+wasserstein", threshold, "too few values", gating)
    ks = ks_2samp(ref, cur)
    # A constant reference (e.g. all-zero numeric shares) has no spread; fall back to the
    # spread of both samples together so the ratio stays defined.
    scale = float(np.std(ref)) or float(np.std(np.r_[ref, cur])) or 1.0
    w = float(wasserstein_distance(ref, cur)) / scale
    drifted = w > threshold and float(ks.pvalue) < alpha
    return DriftTest(
        name=name,
        method="ks+wasserstein",
        statistic=float(ks.statistic),
        p_value=float(ks.pvalue),
        effect=w,
        threshold=threshold,
        drifted=drifted,
        status="drift" if drifted else "ok",
        gating=gating,
        detail={
            "reference_median": round(float(np.median(ref)), 4),
            "current_median": round(float(np.median(cur)), 4),
            "reference_std": round(float(np.std(ref)), 4),
            "current_std": round(float(np.std(cur)), 4),
        },
    )


def domain_classifier_test(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    threshold: float,
    alpha: float,
    components: int = 8,
    seed: int = 0,
    gating: bool = True,
) -> DriftTest:
    """Can a classifier tell current from reference rows? Cross-validated ROC AUC.

    Standardised features (embeddings and descriptors), their first `components` principal
    components, logistic regression; out-of-fold scores from stratified 5-fold
    cross-validation; AUC 0.5 means indistinguishable. The p-value is the Mann-Whitney U test
    of the out-of-fold scores of the two groups (U/(n1 n2) is that same AUC).

    Why a few principal components: on the full embedding any two companies' reports are told
    apart (AUC 0.84-0.91 in the benchmark: names, products, currencies), so every new client
    would alarm. The leading components carry register (length, style, language), where
    tweets and headlines differ from report prose; topic spreads over the long tail.
    """
    from scipy.stats import mannwhitneyu
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    name, method = "domain_classifier", "logistic-regression AUC (5-fold)"
    n_ref, n_cur = len(reference), len(current)
    if min(n_ref, n_cur) < 10:
        return _skipped(name, method, threshold, "fewer than 10 rows on one side", gating)
    x = np.vstack([reference, current]).astype(np.float64)
    x = np.nan_to_num(x, nan=0.0)
    y = np.r_[np.zeros(n_ref), np.ones(n_cur)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    steps: list[Any] = [StandardScaler()]
    if x.shape[1] > components:
        # Fitted inside each fold, on that fold's training rows only.
        steps.append(PCA(n_components=components, svd_solver="randomized", random_state=seed))
    clf = make_pipeline(*steps, LogisticRegression(C=0.05, max_iter=2000, class_weight="balanced"))
    scores = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    mw = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    drifted = auc > threshold and float(mw.pvalue) < alpha
    return DriftTest(
        name=name,
        method=method,
        statistic=float(mw.statistic),
        p_value=float(mw.pvalue),
        effect=auc,
        threshold=threshold,
        drifted=drifted,
        status="drift" if drifted else "ok",
        gating=gating,
        detail={
            "reference_rows": n_ref,
            "current_rows": n_cur,
            "features": int(x.shape[1]),
            "components": min(components, int(x.shape[1])),
        },
    )


def _domain_features(profile: Profile, use_embeddings: bool) -> np.ndarray:
    """Rows for the domain classifier: embeddings (when both sides have them) + descriptors."""
    if use_embeddings and profile.embeddings is not None:
        emb = profile.embeddings.array()
        return np.hstack([emb, profile.descriptor_matrix(len(emb))])
    return profile.descriptor_matrix()


def compare(
    reference: Profile,
    current: Profile,
    thresholds: DriftThresholds | None = None,
    *,
    run_id: str | None = None,
) -> DriftReport:
    """Test the current profile against the reference; drifted when any gating test drifts."""
    th = thresholds or DriftThresholds()
    gate = set(th.gating)
    tests: list[DriftTest] = []
    notes: list[str] = []
    if (
        reference.model_digest
        and current.model_digest
        and reference.model_digest != current.model_digest
    ):
        notes.append(
            f"the reference was profiled with other weights (sha256 "
            f"{reference.model_digest[:12]}…, current {current.model_digest[:12]}…): "
            "label and confidence tests compare two models, not two inputs"
        )
    too_small = current.n_sentences < th.min_sentences
    if too_small:
        reason = f"{current.n_sentences} sentences; at least {th.min_sentences} are needed"
        tests.append(_skipped("all", TOO_SMALL, float(th.min_sentences), reason, False))
    else:
        tests.append(
            categorical_test(
                "label_shares",
                reference.label_counts,
                current.label_counts,
                psi_threshold=th.label_psi,
                alpha=th.alpha,
                gating="label_shares" in gate,
            )
        )
        tests.append(
            categorical_test(
                "language",
                reference.language_counts,
                current.language_counts,
                psi_threshold=th.language_psi,
                alpha=th.alpha,
                gating="language" in gate,
            )
        )
        tests.append(
            continuous_test(
                "confidence",
                reference.confidence,
                current.confidence,
                threshold=th.confidence_wasserstein,
                alpha=th.alpha,
                gating="confidence" in gate,
            )
        )
        for name in DESCRIPTORS:
            tests.append(
                continuous_test(
                    name,
                    reference.descriptor(name),
                    current.descriptor(name),
                    threshold=th.wasserstein,
                    alpha=th.alpha,
                    gating=name in gate,
                )
            )
        both_embedded = (
            reference.embeddings is not None
            and current.embeddings is not None
            and reference.embeddings.shape[1] == current.embeddings.shape[1]
        )
        if (
            reference.embeddings is not None
            and current.embeddings is not None
            and not both_embedded
        ):
            notes.append(
                f"embedding sizes differ ({reference.embeddings.shape[1]} vs "
                f"{current.embeddings.shape[1]}): the domain classifier used the "
                "descriptors only"
            )
        elif not both_embedded:
            notes.append(
                "no embeddings on one side: the domain classifier used the descriptors only"
            )
        tests.append(
            domain_classifier_test(
                _domain_features(reference, both_embedded),
                _domain_features(current, both_embedded),
                threshold=th.domain_auc,
                alpha=th.alpha,
                gating="domain_classifier" in gate,
            )
        )
    drifted = any(t.drifted and t.gating for t in tests)
    return DriftReport(
        run_id=run_id,
        created_at=datetime.now(UTC),
        model_name=current.model_name or reference.model_name,
        model_version=current.model_version or reference.model_version,
        model_digest=current.model_digest or reference.model_digest,
        reference_source=reference.source or "reference",
        reference_sentences=reference.n_sentences,
        current_sentences=current.n_sentences,
        tests=tuple(tests),
        drifted=drifted,
        thresholds=th,
        notes=tuple(notes),
    )
