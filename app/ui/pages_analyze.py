"""Analyze page: upload PDFs with client and engagement, watch them run, see each file's outcome.

Uploads are checked against the UI's size and page limits first (a clear message, nothing
analyzed). Each accepted file is analyzed by the shared `Analyzer` (loaded once per server),
stored with its run, and its bytes are kept under their sha256 for the page images. A file
already analyzed with the same model and settings is not analyzed again: its stored result,
with any reviews, is opened instead.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from app.config import Settings, UIOptions
from app.errors import SesameError
from app.ingest import INPUT_SUFFIXES, page_count
from app.pipeline import Analyzer
from app.records import LABEL_LIMITS, check_label, count_line
from app.runs import DocRow, RunRequest, run_documents
from app.store import ResultStore
from app.ui.auth import current_user
from app.ui.common import (
    PAGE_REVIEW,
    LoadedAnalyzer,
    esc,
    get_analyzer,
    get_settings,
    get_store,
)
from app.ui.documents import keep_document
from app.ui.tables import model_label
from batch.plan import identify_bytes
from batch.workers import LocalExecutor, StageHook

_log = logging.getLogger(__name__)

_OUTCOMES_KEY = "analyze_outcomes"
OCR_CHOICES = {
    "auto": "where needed (scans, unreadable text)",
    "force": "every page (poor embedded OCR)",
    "off": "off (refuse scans)",
}
STAGE_TEXT = {
    "ingest": "reading the pages (scanned ones by OCR)",
    "sentences": "splitting sentences",
    "scoring": "scoring sentences",
    "explain": "computing SHAP evidence",
    "done": "done",
}
_STAGE_SHARE = {"ingest": 0.0, "sentences": 0.3, "scoring": 0.45, "explain": 0.6, "done": 1.0}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
UPLOAD_TYPES = tuple(s.lstrip(".") for s in INPUT_SUFFIXES)
"""What the uploader takes: pdf, htm, html, xhtml, zip (each read by what its bytes are)."""

# Told the share of the whole upload done (0..1) and what is happening now.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Outcome:
    """How one uploaded file ended."""

    name: str
    status: str  # ok, partial or failed (the document's status), or refused (over a limit)
    result_id: int | None = None
    sha256: str | None = None
    sentences: int = 0
    messages: tuple[str, ...] = ()
    note: str = ""
    codes: tuple[str, ...] = ()  # the StageError codes, for hints specific to this screen


@dataclass
class UploadRun:
    """One press of Analyze: its run id, model and the outcome of every file."""

    run_id: str
    model: str
    outcomes: list[Outcome] = field(default_factory=list)
    drift: str | None = None
    """The drift check's one-line verdict (`verdict_line`); None when no check was made."""
    drifted: bool = False
    drift_state: str | None = None
    """drift, ok or not_tested (too few sentences, no reference profile)."""

    def count_line(self) -> str:
        """`3 documents: 2 ok, 0 partial, 1 failed` (refused files count as failed)."""
        return count_line(
            Counter("failed" if o.status == "refused" else o.status for o in self.outcomes)
        )


MAX_NAME = 200


def display_name(name: str) -> str:
    """An uploaded file's name for display and records, whole: a browser sends no folders, so a
    slash is part of the name ("Q3 2024/25.pdf", allowed on macOS) and is kept as a look-alike
    that can never be a path (U+2215); no control characters; a long name keeps its suffix."""
    clean = _CONTROL.sub("", name or "").replace("/", "\u2215").replace("\\", "\u2216").strip()
    if len(clean) > MAX_NAME:
        suffix = Path(clean).suffix[:10]
        clean = clean[: MAX_NAME - len(suffix) - 1] + "\u2026" + suffix
    return clean or "upload.pdf"


def check_limits(data: bytes, name: str, ui: UIOptions, password: str | None = None) -> str | None:
    """Why an upload is refused (too large, too many pages), or None when it may be analyzed."""
    mb = len(data) / 1024 / 1024
    if mb > ui.max_upload_mb:
        return (
            f"{name}: {mb:.1f} MB is over the upload limit of {ui.max_upload_mb} MB; not "
            "analyzed. Analyze it with `sesame analyze` or the nightly batch, or ask an "
            "administrator to raise ui.max_upload_mb."
        )
    pages = page_count(data, name, password)  # 0 when it cannot be told: analysis says why
    if pages > ui.max_pages:
        return (
            f"{name}: {pages} pages is over the upload limit of {ui.max_pages} pages; not "
            "analyzed. Analyze it with `sesame analyze` or the nightly batch, or ask an "
            "administrator to raise ui.max_pages."
        )
    return None


def _unique(names: Sequence[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def with_password(analyzer: Analyzer, password: str | None, ocr: str | None = None) -> Analyzer:
    """The analyzer reading PDFs with this password and OCR mode; the loaded models are shared,
    not copied."""
    update: dict[str, Any] = {"password": password} if password else {}
    if ocr is not None and ocr != analyzer.settings.ingest.ocr:
        update["ocr"] = ocr
    if not update:
        return analyzer
    ingest = analyzer.settings.ingest.model_copy(update=update)
    settings = analyzer.settings.model_copy(update={"ingest": ingest})
    return Analyzer(settings, analyzer.scorer, analyzer.nlp, analyzer.explainer, analyzer.model)


def analyze_uploads(
    files: Sequence[tuple[str, bytes]],
    *,
    settings: Settings,
    loaded: LoadedAnalyzer,
    reviewer: str,
    client: str | None = None,
    engagement: str | None = None,
    password: str | None = None,
    progress: Progress | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    ocr: str | None = None,
    rerun: bool = False,
) -> UploadRun:
    """Check, analyze, keep and store each uploaded file as one run; never raises for a file.

    The run service does the work as for `sesame analyze`: a file already analyzed with this
    model and settings is not analyzed again (its stored result and reviews are opened).
    `password` opens password-protected files of this upload (it is never stored; the result's
    settings only say that one was given). `ocr` (auto, force, off) overrides `ingest.ocr` for
    this upload. `rerun` analyzes stored documents again (the run service's forced re-run).
    """
    store: ResultStore = get_store(settings)
    analyzer = with_password(loaded.analyzer, password, ocr)
    names = _unique([display_name(n) for n, _ in files])
    inputs = [
        identify_bytes(
            data,
            name,
            password,
            refused=check_limits(data, name, settings.ui, password),
        )
        for name, (_, data) in zip(names, files, strict=True)
    ]
    position = {name: i for i, name in enumerate(names)}
    n = len(files)
    outcomes: list[Outcome] = []

    def tell(source: str, stage: str) -> None:
        if progress:
            i = position.get(source, 0)
            share = (i + _STAGE_SHARE.get(stage, 0.0)) / n
            progress(min(share, 1.0), f"{source} ({i + 1} of {n}): {STAGE_TEXT.get(stage, stage)}")

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "doc_started":
            tell(data["source"], "ingest")
        elif kind == "stage":
            tell(data["source"], data["stage"])
        elif kind == "doc_finished":
            outcome = _outcome(data["row"])
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)

    def make_executor(_n_parts: int, on_stage: StageHook) -> LocalExecutor:
        executor = LocalExecutor(
            analyzer.settings, analyzer=analyzer, lock=loaded.lock, on_stage=on_stage
        )
        executor.start()
        return executor

    finished = run_documents(
        RunRequest(
            kind="analyze",
            inputs=inputs,
            client=client,
            engagement=engagement,
            monitor=True,
            rerun=rerun,
            extra_summary={
                "via": "review UI",
                "user": reviewer,
                "client": client,
                "engagement": engagement,
            },
        ),
        analyzer.settings,
        model=analyzer.scorer,
        make_executor=make_executor,
        store=store,
        on_event=on_event,
        scorer=analyzer.scorer,
    )
    for item, row in zip(inputs, finished.rows, strict=True):
        # the bytes of every report read (or read before) stay for the page images
        if item.data is not None and not {"refused", "not_pdf", "unsupported"} & set(
            row.error_codes
        ):
            keep_document(settings, item.data)
    run = UploadRun(
        run_id=finished.run_id or "",
        model=model_label(analyzer.scorer.name, analyzer.scorer.version, analyzer.scorer.digest),
        outcomes=[_outcome(r) for r in finished.rows],
    )
    if finished.drift:
        run.drift = finished.drift
        run.drifted = finished.drifted
        run.drift_state = finished.drift_state
    if progress:
        progress(1.0, run.count_line())
    return run


def _outcome(row: DocRow) -> Outcome:
    """How an uploaded file ended, from its row in the run."""
    errors = row.row.get("errors") or ()
    status = "refused" if "refused" in row.error_codes else row.status
    note = row.note or ""  # a re-run or a replaced failure says what changed
    if row.reused:
        when = (row.reused_from or "").replace("T", " ")
        if when and not note.startswith("not analyzed again"):
            note = (
                f"analysed before with this model and settings ({when} UTC); the stored result "
                "and its reviews are kept"
            )
        elif when:
            note = f"{note} ({when} UTC)"
    return Outcome(
        name=row.source,
        status=status,
        result_id=row.result_id,
        sha256=row.row.get("sha256"),
        sentences=row.row.get("sentences") or 0,
        messages=tuple(str(e.get("message")) for e in errors),
        note=note,
        codes=row.error_codes,
    )


_HINTS = {
    "encrypted": "On this screen: enter the password under PDF password and analyze the file "
    "again.",
}
_STATUS_ICON = {
    "ok": ":material/check_circle:",
    "partial": ":material/warning:",
    "failed": ":material/error:",
    "refused": ":material/block:",
}


def _show_outcome(outcome: Outcome) -> None:
    head = f"{_STATUS_ICON.get(outcome.status, '')} **{esc(outcome.name)}**: {outcome.status}"
    if outcome.status in ("ok", "partial"):
        head += f", {outcome.sentences} sentences"
    if outcome.note:
        head += f" ({esc(outcome.note)})"
    hints = [_HINTS[c] for c in dict.fromkeys(outcome.codes) if c in _HINTS]
    body = "\n".join(
        [*(f"- {esc(m)}" for m in outcome.messages), *(f"- **{esc(h)}**" for h in hints)]
    )
    text = head + ("\n\n" + body if body else "")
    if outcome.status in ("failed", "refused"):
        st.error(text)
    elif outcome.status == "partial":
        st.warning(text)
    else:
        st.success(text)


def _show_run(run: UploadRun) -> None:
    counts = Counter(o.status for o in run.outcomes)
    line = run.count_line()
    (st.success if counts["ok"] == len(run.outcomes) else st.warning)(
        f"{line}. Run {esc(run.run_id)}, model {esc(run.model)}."
    )
    if run.drift:
        if run.drift_state == "drift":
            st.warning(
                f"{esc(run.drift)}. These sentences differ from what the model was "
                "blessed on; see the Monitoring page before relying on the scores."
            )
        elif run.drift_state == "not_tested":
            st.info(
                f"{esc(run.drift)}. Whether these sentences are like the ones the model was "
                'blessed on was not checked: this is not a "no drift" verdict.',
                icon=":material/help:",
            )
        else:
            st.caption(esc(run.drift))
    for outcome in run.outcomes:
        _show_outcome(outcome)
        reviewable = outcome.result_id is not None and outcome.status in ("ok", "partial")
        if reviewable and st.button(
            f"Review {esc(outcome.name)}", key=f"open_{outcome.result_id}", icon=":material/rule:"
        ):
            st.switch_page(PAGE_REVIEW, query_params={"result": str(outcome.result_id)})


def render() -> None:
    """The Analyze page."""
    settings = get_settings()
    user = current_user()
    ui = settings.ui
    st.title("Analyze reports")
    st.caption(
        "Upload one or more financial reports (PDF, an HTML/XHTML filing such as a 10-K with "
        "inline XBRL, or an ESEF .zip package). Each is read page by page, split into "
        "sentences, scored positive / negative / neutral and, for flagged sentences, explained "
        "with SHAP evidence. Results are stored for review; the files are kept on this server "
        "under their checksum, never under their name."
    )
    with st.form("analyze_form"):
        left, right = st.columns(2)
        client = left.text_input(
            "Client",
            key="analyze_client",
            placeholder="e.g. Acme Holdings",
            max_chars=LABEL_LIMITS["client"],
        )
        engagement = right.text_input(
            "Engagement",
            key="analyze_engagement",
            placeholder="e.g. FY2023 audit",
            max_chars=LABEL_LIMITS["engagement"],
        )
        password = st.text_input(
            "PDF password (only for password-protected files)",
            type="password",
            key="analyze_password",
            autocomplete="off",
            help="Used to open the files of this upload; never stored.",
        )
        ocr = st.radio(
            "OCR (scanned pages and unreadable text)",
            list(OCR_CHOICES),
            index=list(OCR_CHOICES).index(settings.ingest.ocr),
            format_func=OCR_CHOICES.__getitem__,
            horizontal=True,
            key="analyze_ocr",
            help="Pages without a readable text layer (scans, faxes, fonts without a Unicode "
            "map) are read from the page image by Tesseract. OCR'd pages and sentences are "
            "marked, with the mean word confidence, so that misread words can be checked.",
        )
        files = st.file_uploader(
            "Financial reports (PDF, HTML/XHTML filings, ESEF .zip)",
            type=list(UPLOAD_TYPES),
            accept_multiple_files=True,
            key="analyze_files",
            max_upload_size=ui.max_upload_mb,
            help=f"Up to {ui.max_upload_mb} MB and {ui.max_pages} pages per file. Larger "
            "reports go through `sesame analyze` or the nightly batch.",
        )
        rerun = st.checkbox(
            "Analyze again even if already analyzed",
            key="analyze_rerun",
            help="A report already analyzed with this model and settings opens its stored "
            "result and reviews. Ticked, it is analyzed again and the stored result replaced "
            "(refused when it has reviews); the result says what changed.",
        )
        submitted = st.form_submit_button("Analyze", type="primary", icon=":material/play_arrow:")
    if submitted:
        try:  # Streamlit clips both at max_chars; this strips them and holds whatever is sent
            client_name = check_label("client", client)
            engagement_name = check_label("engagement", engagement)
        except ValueError as e:
            st.error(esc(str(e).capitalize()))
            return
        if not files:
            st.warning("Choose at least one report to analyze.")
        else:
            try:
                with st.spinner(
                    "Loading the model (the first analysis after a restart takes a little longer)…"
                ):
                    loaded = get_analyzer(settings)
            except SesameError as e:
                st.error(f"No model to analyze with: {esc(e.message)}")
                return
            bar = st.progress(0.0, text="starting…")
            finished = st.empty()  # a line per file while the upload runs
            done = finished.container()

            def progress(share: float, text: str) -> None:
                bar.progress(share, text=text)

            def on_outcome(outcome: Outcome) -> None:
                with done:
                    st.caption(
                        f"{_STATUS_ICON.get(outcome.status, '')} {esc(outcome.name)}: "
                        f"{outcome.status}"
                    )

            run = analyze_uploads(
                [(f.name, f.getvalue()) for f in files],
                settings=settings,
                loaded=loaded,
                reviewer=user.signature if user else "unknown",
                client=client_name,
                engagement=engagement_name,
                password=password or None,
                progress=progress,
                on_outcome=on_outcome,
                ocr=ocr,
                rerun=rerun,
            )
            bar.empty()
            finished.empty()
            st.session_state[_OUTCOMES_KEY] = run
    last: UploadRun | None = st.session_state.get(_OUTCOMES_KEY)
    if last is not None:
        st.subheader("Results")
        _show_run(last)


if __name__ == "__main__":
    render()
