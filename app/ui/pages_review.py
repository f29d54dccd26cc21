"""Review page: a document's summary, its sentences with evidence and page image, the auditor's
decisions (agree, override, comment) and the preparer / reviewer sign-off.

Every decision is appended to the store with the signed-in user's name; nothing is changed in
place. A decision is made on the version the reviewer saw: the page remembers the latest action
it showed (per sentence, and for the whole document), and the store refuses the decision with
a conflict when someone else acted in between. The reviewer then sees the other decision and
acts again, so nothing is lost.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from app.config import SignoffOptions
from app.errors import SesameError
from app.ocr_report import ocr_summary, ocr_threshold
from app.records import (
    LABELS,
    DocumentResult,
    Explanation,
    Label,
    ResultSummary,
    ReviewAction,
    ReviewKind,
    ReviewOverview,
    Score,
    Sentence,
)
from app.reviewing import (
    ROLES,
    Role,
    check_signoff,
    current_signoffs,
    open_disputes,
    sign_off,
    signoff_entries,
)
from app.ui.common import (
    esc,
    flash,
    get_analyzer,
    get_settings,
    get_store,
    model_identity,
    store_at,
)
from app.ui.documents import boxes_on, find_pdf, render_page, sentence_pages
from app.ui.filing import show_facts, show_in_filing
from app.ui.tables import (
    ACTION_TEXT,
    REVIEW_STATUSES,
    SentenceRow,
    document_tone,
    download_name,
    evidence_line,
    filter_rows,
    label_summary,
    latest_action,
    most_negative,
    not_counted_line,
    review_log,
    section_summary,
    sentence_frame,
    sentence_rows,
    stamp_label,
)
from explain.render import LABEL_RGB, method_line
from explain.service import AmortizedExplainer
from explain.shap_explainer import SentenceExplainer
from models.monitoring import run_drift_line

if TYPE_CHECKING:
    from app.store import ResultStore

_log = logging.getLogger(__name__)

ALL = "All"
TABLE_ROW_PX = 72
"""Rows of the sentence table: over 4rem, so Streamlit wraps a sentence over three lines."""
TABLE_HEADER_PX = 36
TABLE_ROWS, TABLE_ROWS_BESIDE = 10, 8
BESIDE_COLUMNS = ("#", "page", "sentence", "label in force", "review")
"""The table's columns while a sentence is open beside it (half the width: the rest would push
the sentence itself out of sight)."""
FOCUS_PT = 110.0  # points of page shown above and below a sentence in its detail image
DOC_KEY = "review_result"
GROUP_KEY = "review_group"
TAB_KEY = "review_tab"
TABS = ("Summary", "Sentences", "Sign-off and review log")
DECISIONS = ("Agree", "Override", "Comment only")
RESOLVE = "Resolve dispute"
SIGNOFF_CHOICES = ("Sign off as preparer", "Sign off as reviewer", "Comment on the document")
LABEL_COLOUR = {label: "#{:02X}{:02X}{:02X}".format(*rgb) for label, rgb in LABEL_RGB.items()}
_SIGNOFF_ROLE: dict[str, Role] = {
    SIGNOFF_CHOICES[0]: "preparer",
    SIGNOFF_CHOICES[1]: "reviewer",
}


# ---------------------------------------------------------------------------------------------
# data (cached: a stored result changes only when evidence is added on demand, which
# clears the cache; reviews are read fresh on every run)


@st.cache_resource(show_spinner="Loading the document…", max_entries=8, ttl=600)
def load_result(store_url: str, result_id: int) -> DocumentResult | None:
    """A stored result (shared read-only between sessions: records are frozen)."""
    return store_at(store_url).load_result(result_id)


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def page_png(
    doc_id: str,
    sources: tuple[str, ...],
    page_no: int,
    boxes_json: str,
    frame: tuple[float, float] | None,
    focus_pt: float | None = None,
) -> bytes | None:
    """A page image with boxes drawn, as PNG; None when the PDF is not on this server."""
    from app.records import BBox

    pdf = find_pdf(get_settings(), doc_id, sources)
    if pdf is None:
        return None
    boxes = [BBox.model_validate(b) for b in json.loads(boxes_json)]
    image = render_page(
        pdf, page_no, boxes, frame=frame, focus_pt=focus_pt if boxes else None, width_px=1100
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def workpaper_bytes(store_url: str, result_id: int) -> bytes:
    """The document's Excel workpaper with every review action recorded so far."""
    from app.store import ResultStore
    from app.workpaper import write_workpaper

    # Runs in a thread of its own when the button is clicked: its own store, closed after.
    with ResultStore(store_url) as store:
        result = store.load_result(result_id)
        if result is None:
            raise ValueError(f"no result {result_id}")
        reviews = store.reviews(result_id=result_id)
        drift = run_drift_line(store, result.stamp.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_workpaper(
            result,
            Path(tmp) / "workpaper.xlsx",
            reviews=reviews,
            drift=drift,
            signoff=get_settings().signoff,
        )
        return path.read_bytes()


def json_bytes(store_url: str, result_id: int) -> bytes:
    """The document's JSON result (stamp on every sentence) with its review actions."""
    from app.export import result_to_json
    from app.store import ResultStore

    with ResultStore(store_url) as store:
        result = store.load_result(result_id)
        if result is None:
            raise ValueError(f"no result {result_id}")
        reviews = store.reviews(result_id=result_id)
    data = result_to_json(result)
    data["reviews"] = [r.model_dump(mode="json") for r in reviews]
    return json.dumps(data, ensure_ascii=False, indent=1).encode()


# ---------------------------------------------------------------------------------------------
# review actions (button callbacks: they run before the page is drawn again, so the "shown"
# ids they read are those of the page the reviewer acted on)


def _shown_key(result_id: int, sentence_index: int | None) -> str:
    return f"shown_{result_id}_{'doc' if sentence_index is None else sentence_index}"


def _flash_key(result_id: int, sentence_index: int | None) -> str:
    return f"flash_{result_id}_{'doc' if sentence_index is None else sentence_index}"


def conflict_message(other: ReviewAction) -> str:
    """What a reviewer reads when someone else acted after the version they saw."""
    what = ACTION_TEXT.get(other.action, other.action)
    if other.action == "override" and other.label:
        what += f" the label to {other.label}"
    where = "this sentence" if other.sentence_index is not None else "this document"
    said = f' ("{other.comment}")' if other.comment else ""
    return (
        f"Not saved: {other.reviewer} {what} on {where} at "
        f"{other.created_at:%Y-%m-%d %H:%M:%S} UTC{said}, after the version you saw. "
        "Their decision is shown now; record yours again if you still disagree."
    )


def _record(
    result_id: int,
    sentence_index: int | None,
    action: ReviewKind,
    *,
    label: Label | None = None,
    comment: str | None = None,
) -> bool:
    """Record one action; whether it was saved (the reason otherwise is flashed)."""
    from app.store import ReviewConflict, StoreError
    from app.ui.auth import current_user

    user = current_user()
    flash_key = _flash_key(result_id, sentence_index)
    if user is None:
        st.session_state[flash_key] = ("error", "You are signed out; sign in again to record.")
        return False
    store = get_store(get_settings())
    try:
        done = store.add_review(
            result_id,
            action,
            user.signature,
            expected_previous=st.session_state.get(_shown_key(result_id, sentence_index)),
            sentence_index=sentence_index,
            label=label,
            comment=comment,
        )
    except ReviewConflict as e:
        st.session_state[flash_key] = ("warning", conflict_message(e.current))
        return False
    except StoreError as e:
        st.session_state[flash_key] = ("error", e.message)
        return False
    what = ACTION_TEXT.get(done.action, done.action)
    if done.action in ("agree", "override"):
        what += (
            f" ({done.previous_label} → {done.label})"
            if done.action == "override"
            else f" ({done.label})"
        )
    st.session_state[flash_key] = ("success", f"Recorded: {done.reviewer} {what}.")
    return True


def _submit_sentence(
    result_id: int, sentence_index: int, label_in_force: str | None, form_key: str
) -> None:
    """The decision form's callback. The form keeps what was typed until the decision is saved:
    a validation error or a conflict leaves the comment for the reviewer to send again."""
    if _decide(result_id, sentence_index, label_in_force, form_key):
        st.session_state[f"{form_key}_decision"] = None
        st.session_state[f"{form_key}_label"] = None
        st.session_state[f"{form_key}_comment"] = ""


def _decide(result_id: int, sentence_index: int, label_in_force: str | None, form_key: str) -> bool:
    decision = st.session_state.get(f"{form_key}_decision")
    new_label = st.session_state.get(f"{form_key}_label")
    comment = (st.session_state.get(f"{form_key}_comment") or "").strip() or None
    flash_key = _flash_key(result_id, sentence_index)
    if decision == "Override":
        if new_label is None or new_label == label_in_force:
            st.session_state[flash_key] = (
                "error",
                f"Choose the new label: one other than {label_in_force}.",
            )
            return False
        if comment is None:
            st.session_state[flash_key] = (
                "error",
                "Say why you override the model: the comment goes into the workpaper.",
            )
            return False
        return _record(result_id, sentence_index, "override", label=new_label, comment=comment)
    if decision == "Agree":
        return _record(result_id, sentence_index, "agree", comment=comment)
    if decision == "Comment only":
        if comment is None:
            st.session_state[flash_key] = ("error", "Write the comment first.")
            return False
        return _record(result_id, sentence_index, "comment", comment=comment)
    if decision == RESOLVE:
        if comment is None:
            st.session_state[flash_key] = (
                "error",
                "Say how the dispute is resolved: the comment goes into the workpaper.",
            )
            return False
        return _record(result_id, sentence_index, "resolve", comment=comment)
    st.session_state[flash_key] = ("error", "Choose Agree, Override or Comment only first.")
    return False


def _submit_signoff(result_id: int, form_key: str) -> None:
    """The sign-off form's callback; like the decision form it keeps what was typed until the
    action is saved (a refused sign-off under `on_breach = "exception"` needs a comment added)."""
    if _sign(result_id, form_key):
        st.session_state[f"{form_key}_choice"] = None
        st.session_state[f"{form_key}_comment"] = ""


def _sign(result_id: int, form_key: str) -> bool:
    from app.store import ReviewConflict
    from app.ui.auth import current_user

    choice = st.session_state.get(f"{form_key}_choice")
    comment = (st.session_state.get(f"{form_key}_comment") or "").strip() or None
    flash_key = _flash_key(result_id, None)
    user = current_user()
    if user is None:
        st.session_state[flash_key] = ("error", "You are signed out; sign in again to record.")
        return False
    if choice == SIGNOFF_CHOICES[2]:
        if comment is None:
            st.session_state[flash_key] = ("error", "Write the comment first.")
            return False
        return _record(result_id, None, "comment", comment=comment)
    role = _SIGNOFF_ROLE.get(choice or "")
    if role is None:
        st.session_state[flash_key] = ("error", "Choose what to record first.")
        return False
    settings = get_settings()
    # The firm's rules and four eyes hold in the service, the same for every caller.
    try:
        done = sign_off(
            get_store(settings),
            result_id,
            role,
            user.signature,
            options=settings.signoff,
            expected_previous=st.session_state.get(_shown_key(result_id, None)),
            comment=comment,
        )
    except ReviewConflict as e:
        st.session_state[flash_key] = ("warning", conflict_message(e.current))
        return False
    except SesameError as e:
        st.session_state[flash_key] = ("error", e.message)
        return False
    st.session_state[flash_key] = (
        "success",
        f"Recorded: {done.reviewer} {ACTION_TEXT.get(done.action, done.action)}.",
    )
    return True


# ---------------------------------------------------------------------------------------------
# drawing


def review_state(summary: ResultSummary, overview: ReviewOverview | None) -> str:
    """`3 of 15 reviewed · signed off: preparer` (a failed file: its status only)."""
    if summary.status == "failed":
        return "not analysed"
    done = overview.sentences_reviewed if overview else 0
    parts = [f"{done} of {summary.n_scored} reviewed" if done else "not reviewed"]
    signed = overview.signed_off if overview else ()
    parts.append(f"signed off: {' and '.join(signed)}" if signed else "not signed off")
    return " · ".join(parts)


def signoffs_in_force(
    store: ResultStore, overview: dict[int, ReviewOverview], options: SignoffOptions
) -> dict[int, ReviewOverview]:
    """The store lists every sign-off ever made; the picker shows only those still in force
    under the firm's rules (a later decision supersedes one), an exception marked as such."""
    out = dict(overview)
    for rid, seen in overview.items():
        if not seen.signed_off:
            continue
        current = current_signoffs(store.reviews(result_id=rid), options)
        roles = tuple(
            f"{role} (exception)" if entry.exception else role
            for role, entry in current.items()
            if entry is not None
        )
        out[rid] = seen.model_copy(update={"signed_off": roles})
    return out


def _choose_document(results: list[ResultSummary], overview: dict[int, ReviewOverview]) -> int:
    """The picker: analysed documents with their review state; failed files listed apart."""
    by_id = {r.result_id: r for r in results}
    failed = [r.result_id for r in results if r.status == "failed"]
    analysed = [r.result_id for r in results if r.status != "failed"]
    wanted = st.query_params.get("result") or ""
    linked = int(wanted) if wanted.isdigit() and int(wanted) in by_id else None
    follow = linked is not None and st.session_state.get("_review_wanted") != wanted
    if follow:
        st.session_state[DOC_KEY] = linked
        st.session_state["_review_wanted"] = wanted
    ids = analysed
    if failed:
        groups = [f"Analysed ({len(analysed)})", f"Not analysed ({len(failed)})"]
        if follow:
            st.session_state[GROUP_KEY] = groups[int(linked in failed)]
        elif st.session_state.get(GROUP_KEY) not in groups:
            st.session_state[GROUP_KEY] = groups[0] if analysed else groups[1]
        group = st.segmented_control(
            "Documents",
            groups,
            key=GROUP_KEY,
            help="Files that could not be analysed are listed apart, each with the reason.",
        )
        ids = failed if group == groups[1] else analysed
    if not ids:
        st.caption("None.")
        ids = failed or analysed
    if st.session_state.get(DOC_KEY) not in ids:
        st.session_state[DOC_KEY] = ids[0]

    def name(rid: int) -> str:
        r = by_id[rid]
        who = " · ".join(x for x in (r.client, r.engagement) if x)
        return (
            f"{r.file_name or r.source} · {r.status} · {review_state(r, overview.get(rid))}"
            + (f" · {who}" if who else "")
            + f" · {r.created_at:%Y-%m-%d %H:%M} · result {rid}"
        )

    rid = st.selectbox(
        "Document",
        ids,
        format_func=name,
        key=DOC_KEY,
        help="Newest first, with how far each review has come. The Runs page lists every run "
        "and its documents.",
    )
    st.query_params["result"] = str(rid)
    st.session_state["_review_wanted"] = str(rid)
    return int(rid)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _header(result: DocumentResult, summary: ResultSummary) -> None:
    doc = result.document
    facts = [f"status **{result.status}**"]
    if result.client:
        facts.append(f"client **{esc(result.client)}**")
    if result.engagement:
        facts.append(f"engagement **{esc(result.engagement)}**")
    facts += [
        _count(summary.n_pages, "page"),
        _count(len(result.sentences), "sentence"),
        f"{len(result.explanations)} with SHAP evidence",
    ]
    st.subheader(esc(doc.file_name if doc else result.source))
    st.markdown(" · ".join(facts))
    st.caption(
        f"Analysed by model **{esc(stamp_label(result.stamp))}** on "
        f"{result.stamp.created_at:%Y-%m-%d %H:%M} UTC · run {esc(result.stamp.run_id)}"
        f" · code {esc(result.stamp.code_version)}"
        + (f" · document sha256 {result.doc_id[:12]}…" if result.doc_id else "")
    )
    current = model_identity(get_settings())
    if not current.error and current.digest != result.stamp.model_digest:
        st.info(
            f"New analyses now use {esc(current.label)}. This document keeps the model "
            "that produced it; analyze it again to compare.",
            icon=":material/info:",
        )
    ocr = ocr_summary(result.pages, ocr_threshold(result))
    if ocr:
        st.info(
            f"**Read by OCR.** {esc(ocr)} Sentences from these pages are marked OCR: a word may "
            "be misread, so check it against the page image.",
            icon=":material/document_scanner:",
        )
    if result.errors:
        lines = "\n".join(f"- {esc(e.message)}" for e in result.errors)
        if result.status == "failed":
            st.error(f"**This document was not analysed.**\n\n{lines}")
        else:
            st.warning(f"**Part of this document could not be read.**\n\n{lines}")


def _downloads(result: DocumentResult, result_id: int, store_url: str) -> None:
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(
        "Workpaper (Excel)",
        data=lambda: workpaper_bytes(store_url, result_id),
        file_name=download_name(
            result.document.file_name if result.document else result.source,
            result.doc_id,
            result.stamp,
            "xlsx",
        ),
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:",
        on_click="ignore",
        key=f"dl_xlsx_{result_id}",
        help="Cover, Summary, Sentences (with review columns), Exceptions and the Review log, "
        "as of the moment you click.",
    )
    right.download_button(
        "Result (JSON)",
        data=lambda: json_bytes(store_url, result_id),
        file_name=download_name(
            result.document.file_name if result.document else result.source,
            result.doc_id,
            result.stamp,
            "json",
        ),
        mime="application/json",
        icon=":material/data_object:",
        on_click="ignore",
        key=f"dl_json_{result_id}",
    )


def _summary_tab(result: DocumentResult, reviews: list[ReviewAction]) -> None:
    from app.workpaper import TONE_DEFINITION

    if not result.scores:
        st.info("No scored sentences: nothing to summarise.")
        return
    labels = label_summary(result)
    tone = document_tone(result)
    cols = st.columns(5)
    cols[0].metric(
        "Tone index", f"{tone:+.2f}" if tone is not None else "n/a", help=TONE_DEFINITION
    )
    cols[1].metric("Sentences scored", len(result.scores))
    for col, row in zip(cols[2:], labels.itertuples(), strict=True):
        pct = "" if row.share is None or row.share != row.share else f" ({row.share:.0%})"
        col.metric(row.label.capitalize(), f"{row.sentences}{pct}")
    st.caption(esc(not_counted_line(result)))
    decided = {
        r.sentence_index: r
        for r in reviews
        if r.action in ("agree", "override") and r.sentence_index is not None
    }
    overridden = sum(1 for r in decided.values() if r.action == "override")
    disputed = len(open_disputes(reviews))
    st.caption(
        f"Reviewed so far: {len(decided)} of {len(result.sentences)} sentences "
        f"({len(decided) - overridden} agreed, {overridden} overridden); "
        f"{_count(disputed, 'open dispute')}. Figures on this "
        "tab are the model's labels, as on the workpaper's Summary sheet."
    )
    st.markdown("**Labels per section** (headings as printed in the report)")
    sections = section_summary(result)
    share = {}
    for label in LABELS:
        sections[f"{label} share"] = sections[f"{label} share"] * 100
        share[f"{label} share"] = st.column_config.ProgressColumn(
            label, format="%.0f%%", min_value=0, max_value=100, color=LABEL_COLOUR[label]
        )
    st.dataframe(
        sections,
        hide_index=True,
        width="stretch",
        column_config={
            **share,
            "tone index": st.column_config.NumberColumn(format="%+.2f"),
            "section": st.column_config.TextColumn(width="medium"),
        },
    )
    st.markdown(
        "**Most negative sentences** (top 10 labelled negative, by P(negative); headings, "
        "table rows and page furniture left out). Open one on the Sentences tab by its number."
    )
    negative = most_negative(result)
    if negative.empty:
        st.info("Most negative sentences: none (no sentence is labelled negative).")
        return
    st.dataframe(
        negative,
        hide_index=True,
        width="stretch",
        column_config={
            "P(negative)": st.column_config.NumberColumn(format="%.2f"),
            "sentence": st.column_config.TextColumn(width="large"),
        },
    )


def _on_table_select(table_key: str, indices: list[int], select_key: str) -> None:
    state = st.session_state.get(table_key)
    rows = state.selection.rows if state is not None else []
    if rows:
        st.session_state[select_key] = indices[rows[0]]


def _sentences_tab(
    result: DocumentResult, result_id: int, reviews: list[ReviewAction], run_id: str | None
) -> None:
    scores = {s.sentence_index: s for s in result.scores}
    rows = sentence_rows([(s, scores.get(s.index)) for s in result.sentences], reviews)
    if not rows:
        st.info("No sentences were read from this document.")
        return
    sections = list(dict.fromkeys(r.section for r in rows))
    pages = sorted({r.page for r in rows})
    f = st.columns([1, 2, 1, 1.4, 1.2])
    label = f[0].selectbox("Label in force", [ALL, *LABELS], key=f"f_label_{result_id}")
    section = f[1].selectbox("Section", [ALL, *sections], key=f"f_section_{result_id}")
    page = f[2].selectbox("Page", [ALL, *pages], key=f"f_page_{result_id}")
    min_conf = f[3].slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05, key=f"f_conf_{result_id}")
    review = f[4].selectbox("Review status", [ALL, *REVIEW_STATUSES], key=f"f_review_{result_id}")
    view = filter_rows(
        rows,
        label=None if label == ALL else label,
        section=None if section == ALL else section,
        page=None if page == ALL else int(str(page)),
        min_confidence=min_conf,
        review=None if review == ALL else review,
    )
    select_key = f"sentence_{result_id}"
    # A new table (no stale selection) whenever the filters change.
    filters = hashlib.sha256(repr((label, section, page, min_conf, review)).encode())
    table_key = f"table_{result_id}_{filters.hexdigest()[:12]}"
    st.caption(
        f"{len(view)} of {len(rows)} sentences. Click a row to open the sentence, or "
        "choose it by number below."
    )
    by_index = {r.index: r for r in rows}
    chosen = st.selectbox(
        "Open sentence",
        list(by_index),
        index=None,
        key=select_key,
        format_func=lambda i: f"#{i} · page {by_index[i].page} · {by_index[i].text[:100]}",
        placeholder="Choose a sentence, or click a row of the table",
    )
    if chosen is None:
        _sentence_table(view, table_key, select_key, TABLE_ROWS)
        return
    # the sentence opens beside the table, where the reviewer clicked; its page below both
    table, detail = st.columns([1, 1], gap="medium")
    with table:
        _sentence_table(view, table_key, select_key, TABLE_ROWS_BESIDE, BESIDE_COLUMNS)
    with detail:
        _sentence_detail(result, result_id, chosen, by_index[chosen].label, reviews)
    st.divider()
    _sentence_source(result, result_id, chosen, run_id)


def _sentence_table(
    view: list[SentenceRow],
    table_key: str,
    select_key: str,
    n_rows: int,
    columns: tuple[str, ...] | None = None,
) -> None:
    """The filtered sentences, rows tall enough for a sentence to wrap (a click opens one)."""
    st.dataframe(
        sentence_frame(view),
        key=table_key,
        hide_index=True,
        width="stretch",
        height=TABLE_HEADER_PX + TABLE_ROW_PX * n_rows,
        row_height=TABLE_ROW_PX,
        column_order=columns,
        on_select=functools.partial(
            _on_table_select, table_key, [r.index for r in view], select_key
        ),
        selection_mode="single-row",
        column_config={
            "#": st.column_config.NumberColumn(width="small"),
            "page": st.column_config.NumberColumn(width="small"),
            "section": st.column_config.TextColumn(width="medium"),
            "sentence": st.column_config.TextColumn(width="large"),
            "confidence": st.column_config.NumberColumn(format="%.2f", width="small"),
        },
    )


def _sampled_explainer(result: DocumentResult) -> SentenceExplainer | None:
    """The sampled explainer of the model that scored this document (None, with a message on
    the page, when that model is not the one loaded now).

    Only the model that scored the document may explain it: evidence from another model would
    not explain these scores. Sampling explicitly, whatever method the analysis used: it is the
    reference an amortized explainer is measured against.
    """
    from app.pipeline import make_explainer

    settings = get_settings()
    try:
        loaded = get_analyzer(settings)
    except SesameError as e:
        st.error(f"No model to explain with: {esc(e.message)}")
        return None
    scorer = loaded.analyzer.scorer
    if scorer.digest != result.stamp.model_digest:
        st.warning(
            f"This document was scored by {esc(stamp_label(result.stamp))}; the model "
            f"loaded now has sha256 {esc(scorer.digest[:8])}…, so its evidence would not "
            "explain these scores. Analyze the report again with the current model."
        )
        return None
    explainer = loaded.analyzer.explainer
    if explainer is None:
        explainer = make_explainer(
            settings.model_copy(
                update={"explain": settings.explain.model_copy(update={"method": "sampled"})}
            ),
            scorer,
        )
    return explainer.sampled if isinstance(explainer, AmortizedExplainer) else explainer


def explain_on_demand(
    result: DocumentResult, result_id: int, sentence: Sentence, score: Score
) -> None:
    """Sampled SHAP evidence for one sentence now, stored with the document, then the page
    redrawn."""
    explainer = _sampled_explainer(result)
    if explainer is None:
        return
    with st.spinner("Computing SHAP evidence (sampled)…"), get_analyzer(get_settings()).lock:
        explanations = explainer.explain([sentence], [score])
    get_store(get_settings()).add_explanations(result_id, explanations)
    load_result.clear()
    st.rerun()


def _sampled_check_key(result_id: int, index: int) -> str:
    return f"sampled_check_{result_id}_{index}"


def check_with_sampling(
    result: DocumentResult, result_id: int, sentence: Sentence, score: Score
) -> None:
    """Sampled evidence beside the stored amortized one, kept for this session (not stored:
    the stored evidence of a sentence is never replaced)."""
    explainer = _sampled_explainer(result)
    if explainer is None:
        return
    with st.spinner("Sampling SHAP evidence…"), get_analyzer(get_settings()).lock:
        (explanation,) = explainer.explain([sentence], [score])
    st.session_state[_sampled_check_key(result_id, sentence.index)] = explanation


def _sentence_detail(
    result: DocumentResult,
    result_id: int,
    index: int,
    label_in_force: str | None,
    reviews: list[ReviewAction],
) -> None:
    """The sentence, its evidence, the model's scores, its review history and the decision
    form (its page or filing is `_sentence_source`)."""
    from app.workpaper import EVIDENCE_LEGEND
    from explain.render import highlight_html

    sentence = next(s for s in result.sentences if s.index == index)
    score = next((s for s in result.scores if s.sentence_index == index), None)
    expl = next((e for e in result.explanations if e.sentence_index == index), None)
    mine = [r for r in reviews if r.sentence_index == index]
    # What this page shows now is the version the reviewer's next decision is made on.
    latest = latest_action(reviews, index)
    st.session_state[_shown_key(result_id, index)] = latest.id if latest else None

    st.markdown(f"#### Sentence {index}")
    where = f"Page {sentence.page_no}"
    if sentence.end_page_no and sentence.end_page_no != sentence.page_no:
        where += f" (continues on page {sentence.end_page_no})"
    st.caption(
        f"{where} · section: {esc(sentence.section or '(before the first heading)')}"
        f" · {sentence.kind}" + _ocr_note(result, sentence)
    )
    if expl is not None:
        st.html(
            '<div style="font-size: 1.15rem; line-height: 1.9">'
            f"{highlight_html(sentence.text, expl)}</div>"
        )
        st.caption(f"Evidence {esc(evidence_line(expl))}.")
        st.caption(f"Made by {esc(method_line(expl))}.")
        if expl.method == "amortized" and score is not None:
            check = _sampled_check_key(result_id, index)
            if st.button(
                "Check with sampled SHAP",
                icon=":material/compare_arrows:",
                key=f"sample_{result_id}_{index}",
                help="Samples Owen values for this sentence with the model that scored it (a "
                "few seconds) and shows them below the explainer's; nothing is stored.",
            ):
                check_with_sampling(result, result_id, sentence, score)
            sampled = st.session_state.get(check)
            if isinstance(sampled, Explanation) and sampled.sentence_index == index:
                st.html(
                    '<div style="font-size: 1.15rem; line-height: 1.9">'
                    f"{highlight_html(sentence.text, sampled)}</div>"
                )
                st.caption(f"Sampled evidence {esc(evidence_line(sampled))}.")
                st.caption(f"Made by {esc(method_line(sampled))}.")
        with st.expander("How to read the colours"):
            st.caption(esc(EVIDENCE_LEGEND))
        show_facts(sentence)
    else:
        st.html(
            f'<div style="font-size: 1.15rem; line-height: 1.9">{_escape_html(sentence.text)}</div>'
        )
        explain = result.settings.get("explain")
        mode = explain.get("mode", "") if isinstance(explain, dict) else ""
        st.caption(
            {
                "flagged": "No SHAP evidence: it is computed for positive and negative "
                "sentences only.",
                "none": "No SHAP evidence: it was switched off for this analysis.",
            }.get(mode, "No SHAP evidence for this sentence.")
        )
        show_facts(sentence)
        if score is not None and st.button(
            "Compute sampled SHAP evidence for this sentence",
            icon=":material/insights:",
            key=f"explain_{result_id}_{index}",
            help="Samples Owen values of the model's label with the model that scored this "
            "document (a few seconds); the evidence is stored with the document.",
        ):
            explain_on_demand(result, result_id, sentence, score)
    if score is not None:
        probs = " · ".join(
            f"P({k}) {v:.2f}"
            for k in LABELS
            for label, v in score.probabilities.items()
            if label == k
        )
        st.markdown(f"Model: **{score.label}** (confidence {score.confidence:.2f}) · {probs}")
    else:
        st.markdown("Model: **not scored**")
    decided = next((r for r in reversed(mine) if r.action in ("agree", "override")), None)
    if decided is not None:
        how = "agreed by" if decided.action == "agree" else "override by"
        st.markdown(
            f"Label in force: **{decided.label}** ({how} "
            f"{esc(decided.reviewer)}, {decided.created_at:%Y-%m-%d %H:%M} UTC)"
        )
    if mine:
        st.markdown("**History**\n\n" + "\n".join(f"- {esc(_history_line(r))}" for r in mine))
    flash(_flash_key(result_id, index))
    disputed = open_disputes(reviews).get(index)
    if disputed is not None:
        st.warning(
            f"Disputed: {esc(disputed.describe())}. It stays disputed until the parties "
            "choose the same label, or someone records “Resolve dispute” with a comment.",
            icon=":material/gavel:",
        )
    _review_form(result_id, index, label_in_force, score is not None, disputed is not None)


def _sentence_source(
    result: DocumentResult, result_id: int, index: int, run_id: str | None
) -> None:
    """Where the sentence stands in its document: the page image, or the HTML filing."""
    sentence = next(s for s in result.sentences if s.index == index)
    sources = source_paths(
        get_settings().store_url(), result_id, run_id, result.source, result.doc_id
    )
    if sentence.anchor is not None:  # an HTML filing: the sentence in the filing itself
        show_in_filing(result, sentence, sources)
    else:
        _page_images(result, sentence, sources)


def _history_line(r: ReviewAction) -> str:
    line = f"{r.created_at:%Y-%m-%d %H:%M:%S} UTC, {r.reviewer} {ACTION_TEXT[r.action]}"
    if r.action == "override":
        line += f" {r.previous_label} → {r.label}"
    elif r.action == "agree":
        line += f" ({r.label})"
    return line + (f': "{r.comment}"' if r.comment else "")


def _escape_html(text: str) -> str:
    import html

    return html.escape(text)


def _review_form(
    result_id: int, index: int, label_in_force: str | None, scored: bool, disputed: bool
) -> None:
    form_key = f"review_{result_id}_{index}"
    choices = (DECISIONS if scored else DECISIONS[2:]) + ((RESOLVE,) if disputed else ())
    with st.form(form_key, clear_on_submit=False, border=True):
        st.markdown("**Your decision** (recorded as you, with the time and the label before)")
        st.radio(
            "Decision",
            choices,
            horizontal=True,
            key=f"{form_key}_decision",
            label_visibility="collapsed",
            index=None,
        )
        st.selectbox(
            "New label (for an override)",
            [x for x in LABELS if x != label_in_force],
            index=None,
            key=f"{form_key}_label",
            placeholder="Choose the correct label",
        )
        st.text_area(
            "Comment (required for an override; it goes into the workpaper)",
            key=f"{form_key}_comment",
            height=80,
        )
        st.form_submit_button(
            "Record decision",
            type="primary",
            on_click=_submit_sentence,
            args=(result_id, index, label_in_force, form_key),
        )


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def source_paths(
    store_url: str, result_id: int, run_id: str | None, source: str, doc_id: str | None
) -> tuple[str, ...]:
    """Where a CLI or batch result's PDF was read from: its run's inputs of the same sha256."""
    paths = [source]
    if run_id and doc_id:
        paths += [
            d.source
            for d in store_at(store_url).run_documents(run_id)
            if d.doc_id == doc_id or d.result_id == result_id
        ]
    return tuple(paths)


def _ocr_note(result: DocumentResult, sentence: Sentence) -> str:
    """ " · read by OCR (…)" for a sentence from an OCR'd page, else ""."""
    if not sentence.ocr:
        return ""
    pages = {p.page_no: p for p in result.pages}
    confs = [
        f"{c:.0%}"
        for n in sentence_pages(sentence)
        if (c := getattr(pages.get(n), "ocr_confidence", None)) is not None
    ]
    conf = f", page's mean word confidence {', '.join(confs)}" if confs else ""
    return f" · **read by OCR**{conf}: a word may be misread"


def _page_images(result: DocumentResult, sentence: Sentence, sources: tuple[str, ...]) -> None:
    frames = {p.page_no: (p.width, p.height) for p in result.pages}
    ocr_pages = {p.page_no: p for p in result.pages if p.ocr}
    for page_no in sentence_pages(sentence):
        boxes = json.dumps([b.model_dump(mode="json") for b in boxes_on(sentence, page_no)])
        try:
            detail = page_png(
                result.doc_id or "", sources, page_no, boxes, frames.get(page_no), FOCUS_PT
            )
            whole = page_png(result.doc_id or "", sources, page_no, boxes, frames.get(page_no))
        except Exception as e:  # a password or a damaged page: the text review goes on
            _log.warning("page image %s p.%d failed: %s", result.doc_id, page_no, e)
            if result.document is not None and result.document.encrypted:
                st.info(
                    "This PDF is password-protected and the password is not stored, so "
                    "its pages cannot be drawn here. The page number locates the sentence."
                )
                return
            st.info(f"Page {page_no} could not be drawn ({esc(type(e).__name__)}).")
            continue
        if detail is None or whole is None:
            st.info(
                "The PDF is not on this server (it was analysed elsewhere, or its source "
                "file has moved or changed), so the page image cannot be shown."
            )
            return
        st.image(
            detail,
            width="stretch",
            caption=f"Page {page_no}, around the sentence (outlined in orange)."
            + (
                f" Read by OCR (mean word confidence {ocr_pages[page_no].ocr_confidence or 0:.0%})."
                if page_no in ocr_pages
                else ""
            ),
        )
        with st.expander(f"Whole page {page_no}"):
            st.image(whole, width="stretch")


def _superseding(later: ReviewAction | None) -> str:
    """ "superseded by Bob Reviewer (bob), who overrode sentence 4 at 2026-12-04 17:02 UTC"."""
    if later is None:
        return "superseded"
    what = ACTION_TEXT.get(later.action, later.action)
    where = f" on sentence {later.sentence_index}" if later.sentence_index is not None else ""
    when = f"{later.created_at:%Y-%m-%d %H:%M} UTC"
    return f"superseded by {later.reviewer}, who {what}{where} at {when}"


def _signoff_tab(result: DocumentResult, result_id: int, reviews: list[ReviewAction]) -> None:
    latest = latest_action(reviews, whole_result=True)
    st.session_state[_shown_key(result_id, None)] = latest.id if latest else None
    options = get_settings().signoff
    check = check_signoff(result.scores, reviews, options)
    status = f"**Sign-off rules:** {esc(check.summary())}."
    if check.ok:
        st.success(status, icon=":material/rule:")
    else:
        then = (
            "a sign-off now is refused"
            if options.on_breach == "refuse"
            else "a sign-off now is recorded as an exception and needs a comment"
        )
        st.warning(
            status + f" Not met: {esc('; '.join(check.breaches))}; {then}.",
            icon=":material/rule:",
        )
    disputed = open_disputes(reviews)
    if disputed:
        text = {s.index: s.text for s in result.sentences}
        st.markdown(
            "**Open disputes**\n\n"
            + "\n".join(
                f"- #{i} ({esc(d.describe())}): {esc(text.get(i, '')[:120])}"
                for i, d in sorted(disputed.items())
            )
        )
    current = current_signoffs(reviews, options)
    entries = signoff_entries(reviews, options)
    by_id = {r.id: r for r in reviews}
    cols = st.columns(2)
    for col, role in zip(cols, ROLES, strict=True):
        done = current[role]
        with col.container(border=True):
            st.markdown(f"**{role.capitalize()} sign-off**")
            if done is None:
                st.markdown("Not signed off.")
            else:
                st.markdown(
                    f":material/verified: {esc(done.action.reviewer)}, "
                    f"{done.action.created_at:%Y-%m-%d %H:%M} UTC"
                    + (" · **exception**" if done.exception else "")
                    + (f" — {esc(done.action.comment)}" if done.action.comment else "")
                )
            for e in entries:
                if e.role == role and e.superseded_by is not None:
                    st.caption(
                        f"Superseded{' exception' if e.exception else ''}: "
                        f"{esc(e.action.reviewer)}, {e.action.created_at:%Y-%m-%d %H:%M} UTC; "
                        f"{esc(_superseding(by_id.get(e.superseded_by)))}."
                    )
    flash(_flash_key(result_id, None))
    form_key = f"signoff_{result_id}"
    with st.form(form_key, clear_on_submit=False):
        st.radio("Action", SIGNOFF_CHOICES, key=f"{form_key}_choice", horizontal=True, index=None)
        st.text_area(
            "Comment (optional for a sign-off; required for an exception)",
            key=f"{form_key}_comment",
            height=80,
        )
        st.form_submit_button(
            "Record",
            type="primary",
            on_click=_submit_signoff,
            args=(result_id, form_key),
        )
    st.markdown(
        "**Review log** (every action, oldest first; it is the workpaper's Review log sheet)"
    )
    if reviews:
        st.dataframe(
            review_log(reviews, {s.index: s for s in result.sentences}),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No review actions yet.")


def render() -> None:
    """The Review page."""
    settings = get_settings()
    store = get_store(settings)
    st.title("Review")
    results = store.list_results(limit=500)
    if not results:
        st.info(
            "No analysed documents yet. Upload reports on the Analyze page, or run "
            "`sesame analyze`."
        )
        return
    overview = store.review_overview([r.result_id for r in results])
    result_id = _choose_document(results, signoffs_in_force(store, overview, settings.signoff))
    summary = next(r for r in results if r.result_id == result_id)
    result = load_result(settings.store_url(), result_id)
    if result is None:
        st.error(f"Result {result_id} is no longer in the store.")
        return
    reviews = store.reviews(result_id=result_id)
    _header(result, summary)
    _downloads(result, result_id, settings.store_url())
    tabs = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            _summary_tab(result, reviews)
    with tabs[1]:
        if tabs[1].open:
            _sentences_tab(result, result_id, reviews, summary.run_id)
    with tabs[2]:
        if tabs[2].open:
            _signoff_tab(result, result_id, reviews)


if __name__ == "__main__":
    render()
