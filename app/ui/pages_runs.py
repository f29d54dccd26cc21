"""Runs page: analyze and batch runs from the store, each run's documents and how they ended."""

from __future__ import annotations

import streamlit as st

from app.ui.common import PAGE_REVIEW, esc, get_settings, get_store
from app.ui.tables import run_documents_frame, runs_frame, stamp_label

RUN_KEY = "runs_run"
DOC_KEY = "runs_document"


def render() -> None:
    """The Runs page."""
    settings = get_settings()
    store = get_store(settings)
    st.title("Runs")
    st.caption(
        "Every analysis run, from this screen (analyze), `sesame analyze` or the nightly "
        "batch, newest first, with the model that ran it and how each document ended."
    )
    kind = st.segmented_control("Kind", ["all", "analyze", "batch"], default="all", key="runs_kind")
    runs = store.list_runs(
        kind=kind if kind in ("analyze", "batch") else None,  # type: ignore[arg-type]
        limit=200,
    )
    if not runs:
        st.info(
            "No runs yet. Analyze reports on the Analyze page, or run `sesame analyze` / "
            "`sesame batch`."
        )
        return
    st.dataframe(runs_frame(runs), hide_index=True, width="stretch")
    by_id = {r.run_id: r for r in runs}

    def name(run_id: str) -> str:
        r = by_id[run_id]
        n = sum(r.document_counts.values())
        return f"{r.run_id} · {r.kind} · {r.status} · {n} document{'' if n == 1 else 's'}"

    run_id = st.selectbox("Run", list(by_id), format_func=name, key=RUN_KEY)
    run = by_id[run_id]
    facts = [
        f"**{run.kind}** run, status **{run.status}**",
        f"started {run.started_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if run.finished_at:
        facts.append(f"finished {run.finished_at:%Y-%m-%d %H:%M:%S} UTC")
    if run.stamp:
        facts.append(f"model **{esc(stamp_label(run.stamp))}**")
    if run.summary.get("user"):
        facts.append(f"by {esc(run.summary['user'])}")
    st.markdown(" · ".join(facts))
    if run.summary.get("count_line"):
        st.caption(esc(run.summary["count_line"]))
    if run.status == "interrupted":
        st.warning(
            "This run stopped before every document was done; `sesame batch` resumes it "
            "where it stopped."
        )
    docs = store.run_documents(run_id)
    st.dataframe(
        run_documents_frame(docs),
        hide_index=True,
        width="stretch",
        column_config={"problem": st.column_config.TextColumn(width="large")},
    )
    reviewable = [d for d in docs if d.result_id is not None]
    if not reviewable:
        return
    labels = {d.result_id: f"{d.source} · {d.status} · result {d.result_id}" for d in reviewable}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Document", list(labels), format_func=lambda r: labels[r], key=DOC_KEY)
    if right.button("Open in Review", icon=":material/rule:", key="runs_open"):
        st.switch_page(PAGE_REVIEW, query_params={"result": str(chosen)})


if __name__ == "__main__":
    render()
