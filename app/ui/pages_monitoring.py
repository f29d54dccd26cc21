"""Monitoring page: drift of each run against its model's reference over time, model-reviewer
agreement per model version, and per-run system figures (documents, pages, rates, memory)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.common import esc, get_settings, get_store
from app.ui.monitoring import (
    agreement_frame,
    effects_over_time,
    reports_frame,
    reviewers_frame,
    system_frame,
    tests_frame,
)
from models.monitoring import reports_headline, state_counts
from models.monitoring.drift import STATE_LABELS

REPORT_KEY = "monitoring_report"


def effects_chart(effects: pd.DataFrame) -> alt.LayerChart:
    """Each test's relative effect per report (points joined by lines), the threshold at 1.0."""
    base = alt.Chart(effects).encode(
        x=alt.X("time:T", title="report time (UTC)", axis=alt.Axis(format="%b %d %H:%M")),
        y=alt.Y("relative:Q", title="effect / threshold"),
        color=alt.Color("test:N", title="test"),
        tooltip=["run", "test", alt.Tooltip("relative:Q", format=".2f"), "drifted", "time:T"],
    )
    lines = base.mark_line(point=alt.OverlayMarkDef(size=60))
    threshold = (
        alt.Chart(pd.DataFrame({"y": [1.0]}))
        .mark_rule(color="#c0392b", strokeDash=[6, 4])
        .encode(y="y:Q")
    )
    return (lines + threshold).properties(height=280)


def _drift(store) -> None:
    from models.monitoring import stored_reports

    reports = stored_reports(store)
    if not reports:
        st.info(
            "No drift reports yet. Each `sesame analyze` and `sesame batch` run is tested "
            "against its model's reference profile; `sesame monitor report RUN` tests one "
            "afterwards."
        )
        return
    latest = reports[-1]
    counts = state_counts(reports)
    st.markdown(f"**{esc(reports_headline(reports))}**")
    first, second, third, fourth = st.columns(4)
    first.metric("Reports", len(reports))
    second.metric("With drift", counts["drift"])
    third.metric("Not tested", counts["not_tested"])
    fourth.metric("Latest", STATE_LABELS[latest.state])
    if latest.state == "drift":
        st.warning(
            f"The latest run drifted: {esc(latest.summary())}. Check its sentences "
            "before relying on the scores; retrain with `sesame train --feedback` or make "
            "a reference from trusted report text with `sesame monitor reference`."
        )
    elif latest.state == "not_tested":
        st.info(
            f"The latest run was not tested: {esc(latest.summary())}. Its scores are not "
            'checked against the model\'s reference; this is not a "no drift" verdict.',
            icon=":material/help:",
        )
    effects = effects_over_time(reports)
    if not effects.empty:
        st.subheader("Effect of each test, relative to its threshold")
        st.caption(
            "1.0 is the threshold of each test (PSI of label and language shares, "
            "Wasserstein distance in reference standard deviations, domain-classifier "
            "AUC above chance); above it, with a small p-value, the test reports drift."
        )
        st.altair_chart(effects_chart(effects), width="stretch")
    st.subheader("Reports, newest first")
    st.dataframe(reports_frame(reports), hide_index=True, width="stretch")
    by_label = {
        f"{r.created_at:%Y-%m-%d %H:%M} · {r.run_id or 'no run'} · {r.verdict()}": r
        for r in reversed(reports)
    }
    chosen = st.selectbox("Report", list(by_label), key=REPORT_KEY)
    report = by_label[chosen]
    st.caption(
        f"Model {esc(report.model_name or '?')} version {esc(report.model_version or '–')}"
        f" · {report.current_sentences} sentences against "
        f"{report.reference_sentences} of {esc(report.reference_source)}"
    )
    st.dataframe(
        tests_frame(report),
        hide_index=True,
        width="stretch",
        column_config={
            "effect": st.column_config.NumberColumn(format="%.3f"),
            "effect / threshold": st.column_config.NumberColumn(format="%.2f"),
            "p-value": st.column_config.NumberColumn(format="%.2g"),
            "statistic": st.column_config.NumberColumn(format="%.3g"),
        },
    )
    for note in report.notes:
        st.caption(esc(note))


def _agreement(store) -> None:
    from models.monitoring import agreement, feedback_from_store

    feedback = feedback_from_store(store)
    if not feedback:
        st.info(
            "No reviewed sentences yet. Agreements and overrides on the Review page are "
            "the labelled feedback this tracks."
        )
        return
    report = agreement(feedback)  # the same threshold and minimum as `sesame monitor agreement`
    for version in dict.fromkeys(r.model_version for r in report.alerts):
        low = [r for r in report.alerts if r.model_version == version]
        periods = ", ".join(
            f"{r.rate:.0%} of {r.n} in {'all' if r.period == 'all' else r.period}" for r in low
        )
        st.warning(
            f"Model version {esc(version)} agrees with reviewers below "
            f"{report.threshold:.0%}: {esc(periods)}."
        )
    st.caption(
        f"Every decision counts, each reviewer's and each time they decided; a period raises "
        f"an alert below {report.threshold:.0%} once it has {report.min_reviews} decisions. "
        "`sesame monitor feedback FILE.csv` writes the reviewed sentences for "
        "`sesame train --feedback`."
    )
    st.dataframe(
        agreement_frame(report),
        hide_index=True,
        width="stretch",
        column_config={
            "agreement": st.column_config.NumberColumn(format="percent"),
            "kappa": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    st.markdown("**Between reviewers** (sentences two or more people decided)")
    if not report.between_reviewers:
        st.caption("No sentence has been decided by two people yet.")
        return
    st.caption(
        "Each pair of people on a sentence counts once, with each one's latest label on it. "
        "Low agreement here means the labels themselves are uncertain, not only the model."
    )
    st.dataframe(
        reviewers_frame(report),
        hide_index=True,
        width="stretch",
        column_config={
            "agreement": st.column_config.NumberColumn(format="percent"),
            "kappa": st.column_config.NumberColumn(format="%.2f"),
        },
    )


def _system(store) -> None:
    frame = system_frame(store)
    if frame.empty:
        st.info("No runs yet.")
        return
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "seconds": st.column_config.NumberColumn(format="%.1f"),
            "pages/s": st.column_config.NumberColumn(format="%.2f"),
            "sentences/s": st.column_config.NumberColumn(format="%.1f"),
            "peak memory (MB)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    timed = frame.dropna(subset=["pages/s"])
    if len(timed) > 1:
        left, right = st.columns(2)
        left.altair_chart(run_bars(timed, "pages/s", "pages per second"), width="stretch")
        memory = timed.dropna(subset=["peak memory (MB)"])
        if not memory.empty:
            right.altair_chart(
                run_bars(memory, "peak memory (MB)", "peak memory of the run's process (MB)"),
                width="stretch",
            )


def run_bars(frame: pd.DataFrame, column: str, title: str) -> alt.Chart:
    """One bar per run, oldest left, with the run's facts as tooltip."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "run:N",
                sort=alt.SortField("started (UTC)"),
                title=None,
                axis=alt.Axis(labelAngle=-30, labelLimit=160),
            ),
            y=alt.Y(f"{column}:Q", title=None),
            tooltip=["run", "kind", "started (UTC)", "documents", "pages", column],
        )
        .properties(height=220, title=title)
    )


def render() -> None:
    """The Monitoring page."""
    settings = get_settings()
    store = get_store(settings)
    st.title("Monitoring")
    st.caption(
        "Is the model still reading sentences like the ones it was blessed on, do "
        "reviewers agree with it, and how did each run go."
    )
    drift, quality, system = st.tabs(["Drift", "Reviewer agreement", "System"])
    with drift:
        _drift(store)
    with quality:
        _agreement(store)
    with system:
        _system(store)


if __name__ == "__main__":
    render()
