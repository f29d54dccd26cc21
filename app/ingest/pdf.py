"""`read_pdf` and the document-level orchestration: load and check the file, open it under the
pdfium lock, build the `Document`, resolve the page range and the running-header sample, read
the pages, mark running headers, lay out each page and decide the document's verdict. Its own
module because it is the one place that ties the lower modules together for a PDF.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pypdfium2.raw as pdfium_c

from app.config import IngestOptions
from app.errors import (
    DamagedPdfError,
    EmptyPdfError,
    IngestError,
    OnError,
    PageReadError,
    TooManyPagesError,
)

# the module, not its names: `_finish` keeps a local called `body_size`
from app.ingest import layout
from app.ingest.files import check_is_pdf, error_class, load_bytes, looks_complete
from app.ingest.ocr import apply_ocr, page_fields
from app.ingest.pdfium import PDFIUM_LOCK, DocHandle, PageReader, meta, open_document
from app.ingest.running import mark_running
from app.ingest.segments import RawPage
from app.ingest.status import document_verdict, page_status
from app.records import Document, Page, StageError

_log = logging.getLogger(__name__)


_RUNNING_SAMPLE = 8
"""Pages outside a short page range that are read to recognise running headers and footers."""


def read_pdf(
    source: Path | bytes,
    options: IngestOptions,
    *,
    file_name: str | None = None,
    page_range: tuple[int, int] | None = None,
    on_error: OnError = "record",
) -> tuple[Document | None, list[Page], list[StageError]]:
    """Read a PDF's pages into records; problems become StageErrors (or are raised).

    Args:
        source: a path or the file's bytes.
        options: limits, password and layout switches.
        file_name: the name shown in messages (defaults to the path's name, else "document.pdf").
        page_range: 1-based inclusive (first, last) pages to read; None reads all.
        on_error: "record" returns problems as StageError records; "raise" raises the first.

    Returns:
        (document, pages, errors). `document` is None only when the bytes could not be read
        as a PDF at all; `pages` holds one Page per page read (unreadable pages included,
        with their status); a fatal error means the document failed.
    """
    name = file_name or (source.name if isinstance(source, Path) else "document.pdf")
    errors: list[StageError] = []
    try:
        document, pages = _read(source, options, name, page_range, errors, on_error)
    except IngestError as exc:
        if on_error == "raise":
            raise
        errors.append(exc.to_record())
        return getattr(exc, "document", None), list(getattr(exc, "pages", [])), errors
    if on_error == "raise" and errors:
        # Page-level problems are raised too in this mode: nothing is swallowed.
        first = errors[0]
        raise error_class(first.code)(first.message, page_no=first.page_no, fatal=first.fatal)
    return document, pages, errors


def _read(
    source: Path | bytes,
    options: IngestOptions,
    name: str,
    page_range: tuple[int, int] | None,
    errors: list[StageError],
    on_error: OnError = "record",
) -> tuple[Document, list[Page]]:
    data = load_bytes(source, options, name)
    doc_id = hashlib.sha256(data).hexdigest()
    check_is_pdf(data, name)
    with PDFIUM_LOCK:  # pdfium is not thread-safe (the review UI reads in threads)
        handle = open_document(data, options.password, name)
        try:
            document, wanted, raw_pages = _read_pages(
                handle, data, doc_id, options, name, page_range, errors
            )
        finally:
            handle.close()
    # scans and unreadable text layers: read by OCR outside the lock (it renders under it)
    errors.extend(apply_ocr(data, raw_pages, options, name, on_error))
    pages, page_errors = _finish(raw_pages, wanted, options, name, doc_id)
    fatal = document_verdict(pages, name)
    if fatal is not None:
        # one error says it for the whole document; the pages still carry their status
        raise _with(fatal, document, pages)
    errors.extend(page_errors)
    return document, pages


def _read_pages(
    handle: DocHandle,
    data: bytes,
    doc_id: str,
    options: IngestOptions,
    name: str,
    page_range: tuple[int, int] | None,
    errors: list[StageError],
) -> tuple[Document, list[int], dict[int, RawPage]]:
    """The document record and the raw layout of the wanted pages (plus a header sample)."""
    n_pages = int(pdfium_c.FPDF_GetPageCount(handle.raw))
    document = Document(
        doc_id=doc_id,
        file_name=name,
        size_bytes=len(data),
        n_pages=n_pages,
        encrypted=pdfium_c.FPDF_GetSecurityHandlerRevision(handle.raw) != -1,
        title=meta(handle.raw, "Title"),
        producer=meta(handle.raw, "Producer"),
    )
    if n_pages == 0:
        raise _with(
            EmptyPdfError(
                f"{name}: the PDF has no pages; nothing to read. "
                "Ask the client for a complete copy of the report."
            ),
            document,
        )
    first, last = _resolve_range(page_range, n_pages, name)
    if last - first + 1 > options.max_pages:
        what = f"{n_pages} pages" if page_range is None else f"pages {first}-{last}"
        raise _with(
            TooManyPagesError(
                f"{name}: {what} is over the limit of {options.max_pages} pages; not read. Raise "
                "ingest.max_pages (SESAME_INGEST__MAX_PAGES) or read it in page ranges."
            ),
            document,
        )
    if not looks_complete(data):
        errors.append(
            DamagedPdfError(
                f"{name}: the file looks truncated (no end-of-file marker); pdfium repaired it, "
                "but text near the end may be missing. Ask the client for a fresh copy.",
                fatal=False,
            ).to_record()
        )
    wanted = list(range(first, last + 1))
    extra = _running_sample(first, last, n_pages) if options.remove_running else []
    reader = PageReader(handle.raw, options.min_chars_per_page)
    raw_pages = {page_no: reader.read(page_no) for page_no in sorted(wanted + extra)}
    return document, wanted, raw_pages


def _with(
    exc: IngestError, document: Document | None, pages: list[Page] | None = None
) -> IngestError:
    """Attach what was read before a fatal error, so record mode can still return it."""
    exc.document = document  # type: ignore[attr-defined]
    exc.pages = pages or []  # type: ignore[attr-defined]
    return exc


def _resolve_range(page_range: tuple[int, int] | None, n_pages: int, name: str) -> tuple[int, int]:
    if page_range is None:
        return 1, n_pages
    first, last = page_range
    if first < 1 or last < first or first > n_pages:
        raise ValueError(f"{name}: page_range {page_range} is outside pages 1-{n_pages}")
    return first, min(last, n_pages)


def _running_sample(first: int, last: int, n_pages: int) -> list[int]:
    """Pages next to a short range, read only to recognise running headers and footers."""
    want = _RUNNING_SAMPLE - (last - first + 1)
    picked: list[int] = []
    step = 1
    while want > 0 and (first - step >= 1 or last + step <= n_pages):
        for p in (last + step, first - step):
            if want > 0 and 1 <= p <= n_pages:
                picked.append(p)
                want -= 1
        step += 1
    return picked


def _finish(
    raw_pages: dict[int, RawPage],
    wanted: list[int],
    options: IngestOptions,
    name: str,
    doc_id: str,
) -> tuple[list[Page], list[StageError]]:
    if options.remove_running:
        mark_running(raw_pages)
    body_size = layout.body_size(raw_pages.values())
    vocab: set[str] = set()
    for raw in raw_pages.values():
        vocab.update(raw.vocab)
    pages: list[Page] = []
    errors: list[StageError] = []
    for page_no in wanted:
        raw = raw_pages[page_no]
        status, error = page_status(raw, options, name)
        if error is not None:
            errors.append(error.to_record())
        if status != "ok":
            pages.append(
                Page(
                    doc_id=doc_id,
                    page_no=page_no,
                    width=raw.width,
                    height=raw.height,
                    rotation=raw.rotation,
                    text="",
                    status=status,
                    **page_fields(raw),
                )
            )
            continue
        try:
            page = layout.build_page(raw, doc_id, body_size, vocab)
            pages.append(page.model_copy(update=page_fields(raw)) if raw.ocr else page)
        except Exception as exc:  # a layout bug on one page must not lose the document
            _log.exception("%s page %d: layout failed", name, page_no)
            errors.append(
                PageReadError(
                    f"{name} page {page_no}: its layout could not be read ({type(exc).__name__}); "
                    "the rest of the document was read. Report this file to the sesame team.",
                    page_no=page_no,
                ).to_record()
            )
            pages.append(
                Page(
                    doc_id=doc_id,
                    page_no=page_no,
                    width=raw.width,
                    height=raw.height,
                    rotation=raw.rotation,
                    text="",
                    status="error",
                )
            )
    return pages, errors
