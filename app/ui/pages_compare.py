"""Compare page: one client's report this year against last year's: tone shift per section,
new and removed negative sentences, edits that flipped a label (with the word difference), and
the comparison workpaper to download.

The documents are the client's stored results (one per document, the current model's where
there is one), in period order; the two latest are proposed. A comparison is made once and
kept in the store, where the nightly batch's comparisons are found too; a report scored by
another model is rescored first and the page says so.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app.compare.export import comparison_to_json
from app.compare.findings import edited, flipped, new_negatives, removed_negatives
from app.compare.service import (
    Comparer,
    CompareUsageError,
    client_documents,
    comparison_stem,
)
from app.compare.workpaper import write_comparison_workpaper
from app.errors import SesameError
from app.records import Comparison, ComparisonSummary, SectionShift, SentenceChange, WordDiff
from app.store import ResultStore
from app.ui.common import (
    esc,
    flash,
    get_analyzer,
    get_settings,
    get_store,
    model_identity,
    store_at,
)
from app.ui.tables import model_label

_log = logging.getLogger(__name__)

CLIENT_KEY = "compare_client"
PRIOR_KEY = "compare_prior"
CURRENT_KEY = "compare_current"
SHOWN_KEY = "compare_shown"
FLASH_KEY = "compare_flash"
ROWS = 200  # rows of each findings table on screen (the workpaper has them all)
DIFFS = 25  # flipped edits shown with their word difference


# ---------------------------------------------------------------------------------------------
# data


@st.cache_resource(show_spinner="Loading the comparison…", max_entries=8, ttl=600)
def load_comparison(store_url: str, comparison_id: int) -> Comparison | None:
    """A stored comparison (shared read-only between sessions: records are frozen)."""

    return store_at(store_url).load_comparison(comparison_id)


def workpaper_bytes(store_url: str, comparison_id: int) -> bytes:
    """The comparison workpaper of a stored comparison."""

    with ResultStore(store_url) as store:
        comparison = store.load_comparison(comparison_id)
    if comparison is None:
        raise ValueError(f"no comparison {comparison_id}")
    with tempfile.TemporaryDirectory() as tmp:
        return write_comparison_workpaper(comparison, Path(tmp) / "comparison.xlsx").read_bytes()


def json_bytes(store_url: str, comparison_id: int) -> bytes:
    """The comparison's JSON form."""

    with ResultStore(store_url) as store:
        comparison = store.load_comparison(comparison_id)
    if comparison is None:
        raise ValueError(f"no comparison {comparison_id}")
    return json.dumps(comparison_to_json(comparison), ensure_ascii=False, indent=1).encode()


def section_frame(comparison: Comparison) -> pd.DataFrame:
    """The section shifts as a table: moved sections first, the whole report on top."""

    def row(s: SectionShift) -> dict[str, Any]:
        return {
            "section": s.title,
            "type": s.section_type or "",
            "in": {"both": "both years", "prior_only": "last year", "current_only": "this year"}[
                s.presence
            ],
            "moved": "MOVED" if s.moved else "",
            "tone last year": s.prior.tone,
            "tone this year": s.current.tone,
            "shift": s.shift,
            "95% interval": _interval(s.shift_low, s.shift_high),
            "sentences last year": s.prior.n,
            "sentences this year": s.current.n,
            "new": s.changes.get("new", 0),
            "removed": s.changes.get("removed", 0),
            "edited": s.changes.get("edited", 0),
            "new headings": "; ".join(s.new_headings[:5]),
        }

    return pd.DataFrame([row(comparison.whole), *(row(s) for s in comparison.sections)])


def findings_frame(changes: list[SentenceChange], side: str) -> pd.DataFrame:
    """One row per finding: pages in both years, section, sentence, label and confidence."""
    rows = []
    for c in changes[:ROWS]:
        s = getattr(c, side)
        rows.append(
            {
                "page this year": c.current.page_no if c.current else None,
                "page last year": c.prior.page_no if c.prior else None,
                "change": c.change,
                "section": s.section or "",
                "sentence": s.text,
                "P(negative)": s.p_negative,
                "label last year": c.prior.label if c.prior else None,
                "evidence": ", ".join(w.word.strip() for w in s.evidence_for[:5]),
            }
        )
    return pd.DataFrame(rows)


def diff_markdown(diff: tuple[WordDiff, ...]) -> str:
    """A word difference as Markdown: deleted words struck through in red, inserted in green."""
    parts = []
    for run in diff:
        if run.op == "equal":
            parts.append(esc(run.text))
        elif run.op == "delete":
            parts.append(f":red[~~{esc(run.text)}~~]")
        else:
            parts.append(f":green[**{esc(run.text)}**]")
    return " ".join(parts)


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"


def _tone(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


# ---------------------------------------------------------------------------------------------
# the page


def _compare(prior_id: int, current_id: int) -> None:
    """Button callback: compare two stored results (rescoring first where needed), store it."""
    settings = get_settings()
    store = get_store(settings)
    identity = model_identity(settings)
    if identity.error:
        st.session_state[FLASH_KEY] = ("error", identity.error)
        return
    comparer = Comparer(
        settings, store, load_analyzer=lambda: get_analyzer(settings).analyzer, model=identity
    )
    try:
        summaries = {s.result_id: s for s in store.list_results()}
        prior = comparer.stored(summaries[prior_id])
        current = comparer.stored(summaries[current_id])
        if comparer.needs_rescoring(prior) or comparer.needs_rescoring(current):
            loaded = get_analyzer(settings)
            with loaded.lock:  # one session at a time uses the loaded model
                comparison = comparer.compare(prior, current)
        else:
            comparison = comparer.compare(prior, current)
        done = comparer.finish(comparison, None)
    except (SesameError, CompareUsageError) as e:
        st.session_state[FLASH_KEY] = ("error", str(e))
        return
    st.session_state[SHOWN_KEY] = done.comparison_id
    st.session_state[FLASH_KEY] = (
        "success",
        f"Compared: comparison {done.comparison_id} stored.",
    )


def render() -> None:
    """The Compare page."""
    settings = get_settings()
    store = get_store(settings)
    st.title("Compare")
    st.caption(
        "A client's report this year against last year's: tone per section and its shift, new "
        "and removed negative sentences, edits that flipped a label. Both reports are scored by "
        "one model; a report scored by another is rescored first."
    )
    flash(FLASH_KEY)
    identity = model_identity(settings)
    summaries = store.list_results()
    clients = sorted({s.client for s in summaries if s.client}, key=str.casefold)
    if not clients:
        st.info(
            "No documents with a client yet. Analyze reports with a client on the Analyze page, "
            "or with `sesame analyze --client NAME --engagement FY2024`."
        )
        return
    client = st.selectbox("Client", clients, key=CLIENT_KEY)
    key = f"client:{' '.join(client.split()).casefold()}"
    docs = client_documents(store, key, identity.digest or None)
    if len(docs) < 2:
        st.info(
            f"{esc(client)} has {len(docs)} analyzed document in the store: analyze another "
            "year's report of this client to compare the two."
        )
        return
    labels = {
        d.result_id: f"{d.engagement or '(no period)'} · {d.file_name} · "
        f"{model_label(d.model_name, d.model_version, d.model_digest)}"
        for d in docs
    }
    ids: list[Any] = [d.result_id for d in docs]
    if st.session_state.get(PRIOR_KEY) not in ids or st.session_state.get(CURRENT_KEY) not in ids:
        st.session_state[PRIOR_KEY], st.session_state[CURRENT_KEY] = ids[-2], ids[-1]
    left, right = st.columns(2)

    def name(result_id: Any) -> str:
        return labels[result_id]

    prior_id = left.selectbox("Last year (prior)", ids, format_func=name, key=PRIOR_KEY)
    current_id = right.selectbox("This year (current)", ids, format_func=name, key=CURRENT_KEY)
    if prior_id == current_id:
        st.warning("Choose two different documents.")
        return
    made = [
        c
        for c in store.list_comparisons(result_id=current_id)
        if c.prior_result_id == prior_id and c.current_result_id == current_id
    ]
    st.button(
        "Compare again" if made else "Compare",
        type="secondary" if made else "primary",
        icon=":material/compare_arrows:",
        on_click=_compare,
        args=(prior_id, current_id),
        key="compare_run",
    )
    shown = st.session_state.get(SHOWN_KEY)
    summary: ComparisonSummary | None = next(
        (c for c in made if c.comparison_id == shown), made[0] if made else None
    )
    if summary is None:
        st.caption("Not compared yet.")
        return
    comparison = load_comparison(settings.store_url(), summary.comparison_id)
    if comparison is None:
        st.warning("That comparison is no longer in the store.")
        return
    show(comparison, summary.comparison_id, settings.store_url())


def show(comparison: Comparison, comparison_id: int, store_url: str) -> None:
    """One comparison: its stamp and notes, section shifts, findings and downloads."""
    n = comparison.counts
    f = comparison.stamp_fields()
    st.markdown(
        f"**{n['prior']:,}** sentences last year, **{n['current']:,}** this year: "
        f"**{n['unchanged']:,}** unchanged, **{n['edited']:,}** edited, **{n['new']:,}** new, "
        f"**{n['removed']:,}** removed."
    )
    stamp = comparison.stamp
    model = model_label(stamp.model_name, stamp.model_version, stamp.model_digest)
    st.caption(
        f"Comparison {comparison_id} · model {esc(model)}"
        f" · last year sha256 {esc(f['prior_sha256'][:12])}… · this year sha256 "
        f"{esc(f['current_sha256'][:12])}… · made {esc(f['created_at'])} UTC"
    )
    for note in comparison.notes:
        (st.warning if "scored by" in note else st.info)(esc(note))
    w = comparison.whole
    cols = st.columns(4)
    cols[0].metric(
        "Tone this year",
        _tone(w.current.tone),
        delta=None if w.shift is None else f"{w.shift:+.3f}",
        help="(positive - negative) / scored sentences; the change against last year below.",
    )
    cols[1].metric("Sections moved", sum(1 for s in comparison.sections if s.moved))
    news, gone, flips = (
        new_negatives(comparison),
        removed_negatives(comparison),
        flipped(comparison),
    )
    cols[2].metric("New negative sentences", len(news))
    cols[3].metric("Removed negative sentences", len(gone))
    _downloads(comparison, comparison_id, store_url)

    st.subheader("Section shifts")
    st.caption(
        "Sections whose tone moved beyond the 95% interval of the shift come first (the "
        "interval resamples sentence changes, so unchanged sentences count for both years)."
    )
    st.dataframe(section_frame(comparison), hide_index=True, width="stretch")
    tabs = st.tabs(
        [
            f"New negatives ({len(news)})",
            f"Removed negatives ({len(gone)})",
            f"Flipped labels ({len(flips)})",
            f"Edited ({sum(1 for c in comparison.changes if c.change == 'edited')})",
        ]
    )
    with tabs[0]:
        st.caption(
            "New sentences the model calls negative, and edits that became negative, "
            "most confident first."
        )
        _table(findings_frame(news, "current"))
    with tabs[1]:
        st.caption("Last year's negative sentences with no counterpart this year.")
        _table(findings_frame(gone, "prior"))
    with tabs[2]:
        st.caption(
            "Sentences found in both years whose label changed; those that turned "
            "negative first. Deleted words are struck through, inserted words in green."
        )
        for c in flips[:DIFFS]:
            _diff_block(c)
        if len(flips) > DIFFS:
            st.caption(f"{len(flips) - DIFFS} more in the workpaper (Edited sheet).")
    with tabs[3]:
        st.caption("Edited sentences, flipped labels first, then the largest edits.")
        for c in edited(comparison)[:DIFFS]:
            _diff_block(c)


def _table(frame: pd.DataFrame) -> None:
    if frame.empty:
        st.caption("None.")
        return
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "sentence": st.column_config.TextColumn(width="large"),
            "P(negative)": st.column_config.NumberColumn(format="%.2f"),
        },
    )


def _diff_block(c: SentenceChange) -> None:
    assert c.prior is not None and c.current is not None
    with st.container(border=True):
        st.markdown(
            f"p. {c.prior.page_no} → p. {c.current.page_no} · **{esc(c.prior.label)} → "
            f"{esc(c.current.label)}** · similarity {c.similarity or 1:.2f} · "
            f"{esc(c.current.section or '')}"
        )
        st.markdown(diff_markdown(c.diff) if c.diff else esc(c.current.text))


def _downloads(comparison: Comparison, comparison_id: int, store_url: str) -> None:
    stem = comparison_stem(comparison)
    version = comparison.stamp.model_version or f"unregistered-{comparison.stamp.model_digest[:8]}"
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(
        "Comparison workpaper (Excel)",
        data=lambda: workpaper_bytes(store_url, comparison_id),
        file_name=f"{stem}_{version}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:",
        on_click="ignore",
        key=f"dl_cmp_xlsx_{comparison_id}",
        help="Cover, Section shifts, New and removed, Edited, Numbers changed.",
    )
    right.download_button(
        "Comparison (JSON)",
        data=lambda: json_bytes(store_url, comparison_id),
        file_name=f"{stem}_{version}.json",
        mime="application/json",
        icon=":material/data_object:",
        on_click="ignore",
        key=f"dl_cmp_json_{comparison_id}",
    )


if __name__ == "__main__":
    render()
