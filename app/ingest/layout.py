"""Read a PDF into a `Document` and its `Page`s: body text in reading order, with its layout.

    document, pages, errors = read_pdf(Path("q3.pdf"), settings.ingest)

How a page is read (each page is opened once, with pypdfium2 only; about 60-190 pages per
CPU-second on the corpus, see benchmarks/bench_ingest.py):

1. pdfium's text page gives every character with its loose box (font ascent to descent, so
   every glyph of a line has the same height); pdfium has already inserted the spaces a PDF
   leaves out, which fixes run-together words ("ConsolidatedStatementsofCashFlows"). Boxes are
   turned into page-image coordinates (points, origin top-left, after /Rotate).
2. characters -> words (numpy; text set vertically is left out; a glyph printed twice on one
   spot is kept once) -> line *segments*: words on one baseline joined while the gap between
   them stays under about one em, so the columns of a page and the cells of a table stay apart.
3. segments -> blocks (lines stacked at a regular pitch, same size and weight) -> tables
   gathered into one block each -> reading order by recursive XY-cut, where bands that share
   a gutter are read column by column.
4. kinds: `table` (figures, their row labels, column heads and section rows inside the table,
   and a chart's labels next to its figures), `heading` (larger, or bold and short),
   `list_item` (bullets, "1.", "(a)"), `text`; over the whole document, `header`, `footer`
   and `page_number`: lines at the page edges, set apart from the body, that repeat (digits
   aside) or stand where repeating ones stand.

`Page.text` holds only body blocks (text, heading, list_item), joined with blank lines; the
lines of a block are joined with spaces and hyphenated line breaks are closed up ("finan-" +
"cial" -> "financial"; "value-" + "added" stays hyphenated when the report writes it so
elsewhere). `Page.lines` are the lines of those blocks with their spans in `Page.text`. Tables,
headers, footers and page numbers are blocks with their text in `Block.text` only (a table's
rows on lines, its cells separated by tabs) and start == end == -1.

Page status: `ok`; `empty` (no text and no image: a blank page, no error); `needs_ocr` (an
image without a text layer); `unreadable` (a text layer of glyph codes without letters: fonts
without a Unicode map); `error` (pdfium or the layout failed on that page). A bad page among
good ones is a non-fatal StageError (the document is partial); when no page is readable, one
fatal error says why for the whole document. Bad files (not a PDF, encrypted, damaged, no
pages, over `max_bytes` or `max_pages`) are fatal too. Nothing passes as an empty success: in
`on_error="record"` mode problems come back as StageErrors, in "raise" mode the first is raised.

With `page_range` (the batch splits big reports), running headers are found on the pages of
the range plus, when the range is shorter than `_RUNNING_SAMPLE` pages, on the pages next to
it, so a range read removes the same headers as a whole-document read; `max_pages` then
applies to the range. pdfium is not thread-safe: reading is serialised by a lock (the layout
work after it is not). Pages with more than `_MAX_SEGMENTS` pieces are read line by line.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import re
import threading
import unicodedata
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2.raw as pdfium_c

from app.config import IngestOptions
from app.errors import (
    DamagedPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    GarbledTextError,
    IngestError,
    NeedsOcrError,
    NotPdfError,
    OnError,
    PageReadError,
    TooLargeError,
    TooManyPagesError,
)
from app.records import Document, Page, PageStatus, StageError

_log = logging.getLogger(__name__)

PDFIUM_LOCK = threading.RLock()
_RUNNING_SAMPLE = 8
"""Pages outside a short page range that are read to recognise running headers and footers."""
_EDGE_ZONE = 0.1
"""Share of the page height at the top and bottom where running headers/footers may sit."""
_MAX_SEGMENTS = 1200
"""Pages with more line segments than this (report pages have a few hundred) are read line by
line: the layout's cost grows faster than linearly."""
_SEG_GAP = 0.9
"""Largest gap between words of one line segment, in line heights (about one em)."""
_BULLETS = frozenset("•●▪■□◦○·‣⁃∙►▶➢➤✓✔–—-*")
_HYPHENS = ("-", "\u00ad", "\u2010", "\x02")
_SOFT_HYPHENS = ("\u00ad", "\x02")
_CONJUNCTIONS = frozenset(("and", "or", "to", "en", "of", "tot", "und", "oder", "bis", "et", "ou"))
_VOCAB_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W\d_]")
_LEAD_LETTERS = re.compile(r"[^\W\d_]+")
_NUM_TOKEN = re.compile(
    r"[(\[]?[-–—−+]?[$€£¥]?\(?\d[\d,.]*\)?%?[)\]]?[*†‡a-d]?|[-–—−]+|n/?a|nm|x|[$€£¥%]|eur|usd",
    re.IGNORECASE,
)
_LEADERS = re.compile(r"(\.\s?){4,}|…{2,}|_{4,}")
_PAGE_NUMBER = re.compile(
    r"(page\s*)?[-–—]?\s*(\d{1,3}|[ivxlc]{1,6})\s*[-–—]?(\s*(of|/)\s*\d{1,4})?", re.IGNORECASE
)
_ENUMERATOR = re.compile(
    r"\(?[0-9]{1,3}(\.[0-9]{1,3}){0,3}[.)]?|\(?[a-zA-Z][.)]|\([ivxlc]{1,5}\)|[ivxlc]{1,5}\.|"
    r"(section|article|item|note)\s+[0-9][0-9.a-z]*\.?",
    re.IGNORECASE,
)
_ORDERED_ITEM = re.compile(r"(\(?[0-9]{1,2}[.)]|\(?[a-z][.)]|\([ivx]{1,4}\))\s")
_WORDISH = re.compile(r"[^\W\d_]{2,}")
_VOWELS = frozenset("aeiouyàáâäèéêëìíîïòóôöùúûüAEIOUYÀÁÂÄÈÉÊËÌÍÎÏÒÓÔÖÙÚÛÜ")
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demi", "extrabold", "ultra")
_FONTFLAG_FORCEBOLD = 1 << 18

_LIGATURE_WORD = re.compile(r"[^\W\d_]*\ufffe[\w\ufffe]*")
_LIGATURES = ("fi", "ff", "fl", "ffi", "ffl")
_LIGATURE_TEXT = """
affect affected affecting affects afford affordable afflicted benefit benefits benefited
classified conflict conflicts deficit deficits define defined definition definitive difference
differences different differentiated differ differs difficult difficulties effect effective
effectively effects efficiency efficient effort efforts field figure figures file filed filing
final finally finance financed financial financially financing find finding findings firm
firms first fiscal fit five fixed flat fleet flexibility flexible flight floor flow flows
fluctuation fluctuations fluid fly identified identify influence inflation insufficient
justified modified notified off offer offered offering offerings offers office officer
officers offices official offset offsets offshore profit profitability profitable profits
qualified reaffirmed reflect reflected reflecting reflects refinance refinancing sacrifice
satisfied significant significantly specific specifically staff staffing sufficient
sufficiently tariff tariffs traffic unaffiliated affiliate affiliates affiliated outflow
outflows inflow inflows cashflow deflation unprofitable diversified certified certificate
"""
_LIGATURE_WORDS = frozenset(_LIGATURE_TEXT.split())
"""Words spelt with fi/ff/fl ligatures, to spell out glyphs a font left unmapped."""


# --------------------------------------------------------------------------------------
# public API


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
        document, pages = _read(source, options, name, page_range, errors)
    except IngestError as exc:
        if on_error == "raise":
            raise
        errors.append(exc.to_record())
        return getattr(exc, "document", None), list(getattr(exc, "pages", [])), errors
    if on_error == "raise" and errors:
        # Page-level problems are raised too in this mode: nothing is swallowed.
        first = errors[0]
        raise _error_class(first.code)(first.message, page_no=first.page_no, fatal=first.fatal)
    return document, pages, errors


def pdf_page_count(source: Path | bytes, password: str | None = None) -> int:
    """Number of pages of a PDF without reading its text (0 when it cannot be opened)."""
    data = source.read_bytes() if isinstance(source, Path) else source
    with PDFIUM_LOCK:
        try:
            handle = _open_document(data, password, "document.pdf")
        except IngestError:
            return 0
        try:
            return int(pdfium_c.FPDF_GetPageCount(handle.raw))
        finally:
            handle.close()


# --------------------------------------------------------------------------------------
# the document


def _read(
    source: Path | bytes,
    options: IngestOptions,
    name: str,
    page_range: tuple[int, int] | None,
    errors: list[StageError],
) -> tuple[Document, list[Page]]:
    data = _load_bytes(source, options, name)
    doc_id = hashlib.sha256(data).hexdigest()
    _check_is_pdf(data, name)
    with PDFIUM_LOCK:  # pdfium is not thread-safe (the review UI reads in threads)
        handle = _open_document(data, options.password, name)
        try:
            document, wanted, raw_pages = _read_pages(
                handle, data, doc_id, options, name, page_range, errors
            )
        finally:
            handle.close()
    pages, page_errors = _finish(raw_pages, wanted, options, name, doc_id)
    fatal = _document_verdict(pages, name)
    if fatal is not None:
        # one error says it for the whole document; the pages still carry their status
        raise _with(fatal, document, pages)
    errors.extend(page_errors)
    return document, pages


def _read_pages(
    handle: _DocHandle,
    data: bytes,
    doc_id: str,
    options: IngestOptions,
    name: str,
    page_range: tuple[int, int] | None,
    errors: list[StageError],
) -> tuple[Document, list[int], dict[int, _RawPage]]:
    """The document record and the raw layout of the wanted pages (plus a header sample)."""
    n_pages = int(pdfium_c.FPDF_GetPageCount(handle.raw))
    document = Document(
        doc_id=doc_id,
        file_name=name,
        size_bytes=len(data),
        n_pages=n_pages,
        encrypted=pdfium_c.FPDF_GetSecurityHandlerRevision(handle.raw) != -1,
        title=_meta(handle.raw, "Title"),
        producer=_meta(handle.raw, "Producer"),
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
    if not _looks_complete(data):
        errors.append(
            DamagedPdfError(
                f"{name}: the file looks truncated (no end-of-file marker); pdfium repaired it, "
                "but text near the end may be missing. Ask the client for a fresh copy.",
                fatal=False,
            ).to_record()
        )
    wanted = list(range(first, last + 1))
    extra = _running_sample(first, last, n_pages) if options.remove_running else []
    reader = _PageReader(handle.raw, options.min_chars_per_page)
    raw_pages = {page_no: reader.read(page_no) for page_no in sorted(wanted + extra)}
    return document, wanted, raw_pages


def _with(
    exc: IngestError, document: Document | None, pages: list[Page] | None = None
) -> IngestError:
    """Attach what was read before a fatal error, so record mode can still return it."""
    exc.document = document  # type: ignore[attr-defined]
    exc.pages = pages or []  # type: ignore[attr-defined]
    return exc


def _error_class(code: str) -> type[IngestError]:
    classes: list[type[IngestError]] = [
        NotPdfError,
        EncryptedPdfError,
        DamagedPdfError,
        EmptyPdfError,
        TooLargeError,
        TooManyPagesError,
        NeedsOcrError,
        GarbledTextError,
        PageReadError,
    ]
    return next((c for c in classes if c.code == code), IngestError)


def _load_bytes(source: Path | bytes, options: IngestOptions, name: str) -> bytes:
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > options.max_bytes:
        raise TooLargeError(
            f"{name}: {size / 1e6:.1f} MB is over the limit of {options.max_bytes / 1e6:.1f} MB; "
            "not read. Raise ingest.max_bytes (SESAME_INGEST__MAX_BYTES) or split the file."
        )
    return source.read_bytes() if isinstance(source, Path) else bytes(source)


def _check_is_pdf(data: bytes, name: str) -> None:
    if not data:
        raise NotPdfError(
            f"{name}: the file is empty (0 bytes); nothing to read. "
            "Check the upload or ask the client for the report again."
        )
    if b"%PDF-" in data[:1024]:
        return
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        what = "an HTML web page saved with a .pdf name"
    elif head.startswith(b"pk\x03\x04"):
        what = "a ZIP/Office file"
    else:
        what = "not a PDF (no %PDF header)"
    raise NotPdfError(
        f"{name}: {what}; no text read. Download or export the report itself "
        "as PDF and submit it again."
    )


def _looks_complete(data: bytes) -> bool:
    return b"%%EOF" in data[-2048:]


class _DocHandle:
    """An open pdfium document and the buffer it reads from (pdfium does not copy it)."""

    def __init__(self, raw: object, buffer: object) -> None:
        self.raw = raw
        self._buffer = buffer

    def close(self) -> None:
        if self.raw is not None:
            pdfium_c.FPDF_CloseDocument(self.raw)
            self.raw = None


def _open_document(data: bytes, password: str | None, name: str) -> _DocHandle:
    buffer = ctypes.create_string_buffer(data, len(data))
    pw = None if password is None else (password + "\x00").encode("utf-8")
    raw = pdfium_c.FPDF_LoadMemDocument64(buffer, len(data), pw)
    if raw:
        return _DocHandle(raw, buffer)
    code = pdfium_c.FPDF_GetLastError()
    if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise EncryptedPdfError(
                f"{name}: encrypted with a security scheme pdfium cannot open; no text read. "
                "Ask the client for an unlocked copy."
            )
        if password:
            raise EncryptedPdfError(
                f"{name}: password-protected and the supplied password was not accepted; no "
                "text read. Check the password or ask the client for an unlocked copy."
            )
        raise EncryptedPdfError(
            f"{name}: password-protected; no text read. Supply the password with --password "
            "or ask the client for an unlocked copy."
        )
    reason = {
        pdfium_c.FPDF_ERR_FORMAT: "its structure is broken or the file is truncated",
        pdfium_c.FPDF_ERR_FILE: "it could not be read",
    }.get(code, "pdfium could not open it")
    raise DamagedPdfError(
        f"{name}: damaged PDF ({reason}); no text read. "
        "Ask the client for a fresh copy of the file."
    )


def _meta(raw_doc: object, key: str) -> str | None:
    tag = key.encode("ascii") + b"\x00"
    n = pdfium_c.FPDF_GetMetaText(raw_doc, tag, None, 0)
    if n <= 2:
        return None
    buf = ctypes.create_string_buffer(n)
    pdfium_c.FPDF_GetMetaText(raw_doc, tag, buf, n)
    value = buf.raw[: n - 2].decode("utf-16-le", errors="ignore").strip()
    return value or None


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


# --------------------------------------------------------------------------------------
# one page: characters -> words -> segments


@dataclass(slots=True)
class _Seg:
    """A run of words on one line, with no gap wider than about an em inside it."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    bold: bool
    n_chars: int
    numeric: bool = False
    tabular: bool = False
    """A table cell for sure: a number, dot leaders, or a label with its numbers on the line."""
    label: bool = False
    """Possibly a table row label: a cell of a number column follows it on its row."""
    bullet: bool = False
    row: int = -1
    running: str | None = None
    h: float = 0.0
    """Line height (bottom - top), kept as a field: the layout loops read it constantly."""
    font: int = 0
    """pdfium's font handle at the first character (only compared within one page)."""

    def __post_init__(self) -> None:
        self.h = self.bottom - self.top


@dataclass(slots=True)
class _RawPage:
    page_no: int
    width: float
    height: float
    rotation: int
    segs: list[_Seg] = field(default_factory=list)
    n_chars: int = 0
    n_bad: int = 0
    n_words: int = 0
    n_odd_words: int = 0
    has_image: bool = False
    error: str | None = None
    vocab: set[str] = field(default_factory=set)
    """Lower-cased words of the page, to decide which hyphens at line ends to keep."""


class _PageReader:
    """Reads pages of one open document through pdfium's raw text API."""

    def __init__(self, raw_doc: object, min_chars: int = 20) -> None:
        self.raw_doc = raw_doc
        self.min_chars = min_chars  # below this, look for an image (a scan needing OCR)
        self._fast = _fast()
        self._matrix = (ctypes.c_float * 6)()
        self._flags = ctypes.c_int()
        self._name_buf = ctypes.create_string_buffer(128)
        self._fonts: dict[int, bool] = {}

    def read(self, page_no: int) -> _RawPage:
        page = pdfium_c.FPDF_LoadPage(self.raw_doc, page_no - 1)
        if not page:
            return _RawPage(page_no, 0.0, 0.0, 0, error="pdfium could not load the page")
        try:
            width = float(pdfium_c.FPDF_GetPageWidthF(page))
            height = float(pdfium_c.FPDF_GetPageHeightF(page))
            rotation = int(pdfium_c.FPDFPage_GetRotation(page)) % 4 * 90
            raw = _RawPage(page_no, width, height, rotation)
            text_page = pdfium_c.FPDFText_LoadPage(page)
            if not text_page:
                raw.error = "pdfium could not read the page's text"
                return raw
            try:
                self._read_text(page, text_page, raw)
            finally:
                pdfium_c.FPDFText_ClosePage(text_page)
            if raw.n_chars < max(self.min_chars, 1):
                raw.has_image = _has_image(page)
            return raw
        except Exception as exc:  # a broken page must not sink the document
            _log.warning("page %d: %s", page_no, exc, exc_info=True)
            return _RawPage(page_no, 0.0, 0.0, 0, error=f"{type(exc).__name__}: {exc}")
        finally:
            pdfium_c.FPDF_ClosePage(page)

    def _read_text(self, page: object, text_page: Any, raw: _RawPage) -> None:
        n = int(pdfium_c.FPDFText_CountChars(text_page))
        if n <= 0:
            return
        text = _page_text(text_page, n)
        # before hyphens are marked: a word broken over two lines must not enter the
        # vocabulary with its hyphen ("finan-cial")
        raw.vocab = set(_VOCAB_WORD.findall(text.lower()))
        if "\ufffe" in text:
            text = _mark_hyphens(text_page, text)
        boxes = np.empty((n, 4), dtype=np.float32)  # left, top, right, bottom in PDF space
        loose = self._fast.loose_box
        tp = ctypes.cast(text_page, ctypes.c_void_p).value or 0
        base = boxes.ctypes.data
        for i in range(n):
            loose(tp, i, base + 16 * i)
        box = _to_display(boxes, page, raw.rotation)
        self._segments(tp, text, box, raw)

    def _segments(self, tp: int, text: str, box: np.ndarray, raw: _RawPage) -> None:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        x0, top, x1, bottom = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
        space = (
            (codes <= 32)
            | (codes == 0xA0)
            | ((codes >= 0x2000) & (codes <= 0x200B))
            | (codes == 0x3000)
            | (codes == 0xFEFF)
        )
        degenerate = (x1 - x0 <= 0) & (bottom - top <= 0)
        ink = np.flatnonzero(~space & ~degenerate)
        if ink.size == 0:
            return
        # text printed twice on the same spot (fake bold, overlays): keep the first copy
        key = (
            (codes[ink].astype(np.int64) << 32)
            + (np.round(x0[ink]).astype(np.int64) << 16)
            + np.round(top[ink]).astype(np.int64)
        )
        order = np.argsort(key, kind="stable")
        same = key[order][1:] == key[order][:-1]
        if same.any():
            # ligatures give several characters one box: only copies further apart count
            far = order[1:][same] - order[:-1][same] >= 3
            if far.any():
                ink = np.delete(ink, order[1:][same][far])
        raw.n_chars = int(ink.size)
        bad = (codes[ink] == 0xFFFD) | ((codes[ink] >= 0xE000) & (codes[ink] <= 0xF8FF))
        # pdfium knows which glyphs had no Unicode mapping: ask on a sample of characters
        sample = ink[:: max(1, ink.size // 200)]
        unmapped = sum(map(partial(self._fast.unmapped, tp), sample.tolist()))
        raw.n_bad = max(int(bad.sum()), round(unmapped * ink.size / sample.size))

        # words: break at spaces, jumps to another line, wide gaps or moving backwards
        ix0, itop, ix1, ibot = x0[ink], top[ink], x1[ink], bottom[ink]
        h = np.maximum(ibot - itop, 0.1)
        dx = ix0[1:] - ix1[:-1]
        dy = (itop[1:] + ibot[1:] - itop[:-1] - ibot[:-1]) / 2
        href = np.maximum(h[1:], h[:-1])
        vertical_step = (
            (np.abs(dy) > np.abs(ix0[1:] - ix0[:-1]))
            & (np.abs(dy) > 0.3 * href)
            & (np.abs(dy) < 1.5 * href)
        )
        brk = (ink[1:] != ink[:-1] + 1) | (
            ~vertical_step
            & ((np.abs(dy) > 0.5 * href) | (dx > 0.3 * href) | (ix0[1:] < ix0[:-1] - 0.3 * href))
        )
        starts = np.concatenate(([0], np.flatnonzero(brk) + 1))
        ends = np.concatenate((starts[1:], [ink.size]))
        vs = np.append(vertical_step, False).astype(np.int32)
        # text set vertically (margin labels, a rotated page's running head) is left out
        horizontal = (np.add.reduceat(vs, starts) - vs[ends - 1]) * 2 <= (ends - starts - 1)
        if not horizontal.any():
            return
        wx0 = np.minimum.reduceat(ix0, starts)[horizontal]
        wtop = np.minimum.reduceat(itop, starts)[horizontal]
        wx1 = np.maximum.reduceat(ix1, starts)[horizontal]
        wbot = np.maximum.reduceat(ibot, starts)[horizontal]
        starts, ends = starts[horizontal], ends[horizontal]
        first = ink[starts]
        words = [
            text[a:b] for a, b in zip(first.tolist(), (ink[ends - 1] + 1).tolist(), strict=True)
        ]
        raw.n_words = len(words)
        some_words = words[:: max(1, len(words) // 60)]
        raw.n_odd_words = round(
            sum(map(_odd_word, some_words)) * len(words) / max(len(some_words), 1)
        )

        # segments: consecutive words on one baseline with less than about an em between them
        wh = wbot - wtop
        gap = wx0[1:] - wx1[:-1]
        hh = np.maximum(np.maximum(wh[1:], wh[:-1]), 0.1)
        overlap = np.minimum(wbot[1:], wbot[:-1]) - np.maximum(wtop[1:], wtop[:-1])
        join = (
            (gap > -0.5 * hh)
            & (gap < _SEG_GAP * hh)
            & (overlap > 0.5 * np.minimum(wh[1:], wh[:-1]))
        )
        s_start = np.concatenate(([0], np.flatnonzero(~join) + 1))
        s_end = np.concatenate((s_start[1:], [len(words)]))
        lens = np.fromiter((len(w) for w in words), dtype=np.int32, count=len(words))
        sx0 = np.minimum.reduceat(wx0, s_start).tolist()
        stop = np.minimum.reduceat(wtop, s_start).tolist()
        sx1 = np.maximum.reduceat(wx1, s_start).tolist()
        sbot = np.maximum.reduceat(wbot, s_start).tolist()
        nch = np.add.reduceat(lens, s_start).tolist()
        probe = self._font_probe(tp)
        first_l = first.tolist()
        segs: list[_Seg] = []
        for k, (a, b) in enumerate(zip(s_start.tolist(), s_end.tolist(), strict=True)):
            seg_text = " ".join(words[a:b]) if b - a > 1 else words[a]
            if not seg_text.isascii():
                seg_text = unicodedata.normalize("NFKC", seg_text)
            size, bold, font = probe(first_l[a])
            if bold and b - a > 2:
                bold = probe(first_l[b - 1])[1]  # a bold lead-in does not make a bold line
            seg = _Seg(seg_text, sx0[k], stop[k], sx1[k], sbot[k], size, bold, nch[k])
            seg.font = font
            segs.append(seg)
        raw.segs = _merge_rows(segs)

    def _font_probe(self, tp: int):  # noqa: ANN202 - a closure over pdfium handles
        """Font size (points, text matrix applied) and boldness at a char index."""
        fast, fonts = self._fast, self._fonts
        m = self._matrix
        m_addr, flags_addr = ctypes.addressof(m), ctypes.addressof(self._flags)
        name_buf, name_addr = self._name_buf, ctypes.addressof(self._name_buf)
        fonts.clear()  # font handles are only trusted within one page

        def probe(index: int) -> tuple[float, bool, int]:
            size = fast.font_size(tp, index)
            if fast.matrix(tp, index, m_addr):
                size *= math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
            obj = fast.text_object(tp, index)
            font = fast.font(obj) if obj else None
            bold = fonts.get(font) if font else None
            if bold is None:
                weight = fast.weight(tp, index)
                n = fast.font_info(tp, index, name_addr, 128, flags_addr)
                font_name = name_buf.raw[: max(0, min(n, 128) - 1)].decode("latin-1").lower()
                bold = (
                    weight >= 600
                    or bool(self._flags.value & _FONTFLAG_FORCEBOLD)
                    or any(b in font_name for b in _BOLD_NAMES)
                )
                if font:
                    fonts[font] = bold
            return round(size, 2), bold, font or 0

        return probe


class _Fast:
    """pdfium text functions declared with plain-integer arguments, for the hot paths (one call
    per character, a few per segment): ctypes then skips its pointer-type conversions."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(_pdfium_library())
        vp, i = ctypes.c_void_p, ctypes.c_int
        self.loose_box = self._fn(lib.FPDFText_GetLooseCharBox, [vp, i, vp], i)
        self.font_size = self._fn(lib.FPDFText_GetFontSize, [vp, i], ctypes.c_double)
        self.matrix = self._fn(lib.FPDFText_GetMatrix, [vp, i, vp], i)
        self.text_object = self._fn(lib.FPDFText_GetTextObject, [vp, i], vp)
        self.font = self._fn(lib.FPDFTextObj_GetFont, [vp], vp)
        self.weight = self._fn(lib.FPDFText_GetFontWeight, [vp, i], i)
        self.font_info = self._fn(
            lib.FPDFText_GetFontInfo, [vp, i, vp, ctypes.c_ulong, vp], ctypes.c_ulong
        )
        self.unmapped = self._fn(lib.FPDFText_HasUnicodeMapError, [vp, i], i)

    @staticmethod
    def _fn(fn: Any, argtypes: list[Any], restype: Any) -> Any:
        fn.argtypes = argtypes
        fn.restype = restype
        return fn


def _pdfium_library() -> str:
    """Path of the pdfium shared library pypdfium2 loaded."""
    try:
        from pypdfium2_raw.bindings import _libs

        return str(_libs["pdfium"]._name)
    except (ImportError, KeyError, AttributeError):
        import pypdfium2_raw

        folder = Path(pypdfium2_raw.__file__).parent
        found = sorted(
            p
            for p in folder.iterdir()
            if "pdfium" in p.name and p.suffix in (".so", ".dll", ".dylib")
        )
        if not found:
            raise ImportError(f"pdfium library not found next to {folder}") from None
        return str(found[0])


_FAST: _Fast | None = None


def _fast() -> _Fast:
    global _FAST
    if _FAST is None:
        _FAST = _Fast()
    return _FAST


def _mark_hyphens(text_page: Any, text: str) -> str:
    """pdfium writes U+FFFE for a hyphen ending a line and for a glyph it could not map;
    hyphens become "-", unmapped glyphs stay U+FFFE (`_fix_ligatures` resolves them)."""
    chars = list(text)
    for m in re.finditer("\ufffe", text):
        if pdfium_c.FPDFText_IsHyphen(text_page, m.start()):
            chars[m.start()] = "-"
    return "".join(chars)


def _page_text(text_page: Any, n: int) -> str:
    buf = (ctypes.c_ushort * (n + 1))()
    got = pdfium_c.FPDFText_GetText(text_page, 0, n, buf)
    text = bytes(memoryview(buf).cast("B")[: max(0, got - 1) * 2]).decode(
        "utf-16-le", errors="replace"
    )
    if len(text) == n:
        return text
    # surrogate pairs or excluded characters: fall back to one code point per char index
    return "".join(chr(pdfium_c.FPDFText_GetUnicode(text_page, i) or 0xFFFD) for i in range(n))


def _to_display(boxes: np.ndarray, page: object, rotation: int) -> np.ndarray:
    """PDF-space (left, top, right, bottom) boxes -> page-image boxes, origin top-left."""
    rect = pdfium_c.FS_RECTF()
    if pdfium_c.FPDF_GetPageBoundingBox(page, rect):
        bx0, by0, bx1, by1 = rect.left, rect.bottom, rect.right, rect.top
    else:
        bx0, by0 = 0.0, 0.0
        bx1 = float(pdfium_c.FPDF_GetPageWidthF(page))
        by1 = float(pdfium_c.FPDF_GetPageHeightF(page))
    left, top, right, bottom = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    out = np.empty_like(boxes)
    if rotation == 90:
        out[:, 0], out[:, 2] = bottom - by0, top - by0
        out[:, 1], out[:, 3] = left - bx0, right - bx0
    elif rotation == 180:
        out[:, 0], out[:, 2] = bx1 - right, bx1 - left
        out[:, 1], out[:, 3] = bottom - by0, top - by0
    elif rotation == 270:
        out[:, 0], out[:, 2] = by1 - top, by1 - bottom
        out[:, 1], out[:, 3] = bx1 - right, bx1 - left
    else:
        out[:, 0], out[:, 2] = left - bx0, right - bx0
        out[:, 1], out[:, 3] = by1 - top, by1 - bottom
    return out


def _has_image(page: object) -> bool:
    n = pdfium_c.FPDFPage_CountObjects(page)
    for i in range(n):
        obj = pdfium_c.FPDFPage_GetObject(page, i)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind in (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM):
            return True
    return False


def _odd_word(word: str) -> bool:
    """A token no language writes: glyph soup from fonts without a Unicode map."""
    if len(word) < 3:
        return False
    letters = sum(ch.isalpha() for ch in word)
    digits = sum(ch.isdigit() for ch in word)
    other = len(word) - letters - digits
    if other >= 2 and other * 3 > len(word) and letters:
        return True
    if letters >= 4 and letters == len(word):
        if not any(ch in _VOWELS for ch in word):
            return True
        if len(word) > 25:
            return True
        # mixed case inside a word (not CamelCase names): "aBcDeF"
        flips = sum(1 for a, b in zip(word, word[1:], strict=False) if a.islower() and b.isupper())
        if flips >= 2:
            return True
    return False


def _rows(segs: list[_Seg]) -> list[list[_Seg]]:
    """Group segments sharing a baseline band into rows (each row sorted left to right)."""
    rows: list[list[_Seg]] = []
    bands: list[tuple[float, float]] = []
    for s in sorted(segs, key=lambda s: (s.top + s.bottom) / 2):
        mid = (s.top + s.bottom) / 2
        if bands:
            t, b = bands[-1]
            if t <= mid <= b and min(b, s.bottom) - max(t, s.top) > 0.4 * min(b - t, s.h):
                rows[-1].append(s)
                continue
        rows.append([s])
        bands.append((s.top, s.bottom))
    for r in rows:
        r.sort(key=lambda s: s.x0)
    return rows


def _merge_rows(segs: list[_Seg]) -> list[_Seg]:
    """Join segments of one row that the content order left apart; attach lone bullets."""
    out: list[_Seg] = []
    for row_no, row in enumerate(_rows(segs)):
        merged: list[_Seg] = []
        for s in row:
            if merged:
                prev = merged[-1]
                h = max(prev.h, s.h, 0.1)
                gap = s.x0 - prev.x1
                lone_bullet = len(prev.text) == 1 and prev.text in _BULLETS and gap < 4 * h
                similar = abs(prev.size - s.size) <= 0.2 * max(prev.size, s.size)
                # "5.15" or "(k)" before a hanging paragraph: its number, not a table cell
                numbered = (
                    similar
                    and 0 < gap < 8 * h
                    and len(prev.text) <= 12
                    and _ENUMERATOR.fullmatch(prev.text) is not None
                    and s.text[:1].isalpha()
                )
                if lone_bullet or numbered or (-0.5 * h < gap < _SEG_GAP * h and similar):
                    merged[-1] = _join(prev, s)
                    merged[-1].bullet = lone_bullet or prev.bullet
                    continue
            merged.append(s)
        for s in merged:
            s.row = row_no
            if not s.bullet and len(s.text) > 2 and s.text[0] in _BULLETS and s.text[1] == " ":
                s.bullet = True
            out.append(s)
    return out


def _join(a: _Seg, b: _Seg) -> _Seg:
    n = a.n_chars + b.n_chars
    return _Seg(
        text=f"{a.text} {b.text}",
        x0=min(a.x0, b.x0),
        top=min(a.top, b.top),
        x1=max(a.x1, b.x1),
        bottom=max(a.bottom, b.bottom),
        size=a.size if a.n_chars >= b.n_chars else b.size,
        bold=(a.bold * a.n_chars + b.bold * b.n_chars) * 2 > n,
        n_chars=n,
        font=a.font,
    )


# --------------------------------------------------------------------------------------
# document level: running headers and footers, then each page's blocks and text


def _norm_running(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower()).replace(" ", "")


def _edge_segments(raw: _RawPage) -> list[tuple[str, _Seg]]:
    """Segments of the rows at the top and bottom edges that stand apart from the body: in the
    edge zones, at most two rows, with a clear gap (a line height) between them and the body."""
    if not raw.segs or raw.height <= 0:
        return []
    rows: dict[int, list[_Seg]] = {}
    for s in raw.segs:
        rows.setdefault(s.row, []).append(s)
    order = sorted(rows, key=lambda r: min(s.top for s in rows[r]))
    bands = [
        (min(s.top for s in rows[r]), max(s.bottom for s in rows[r]), max(s.h for s in rows[r]))
        for r in order
    ]
    top_limit, bottom_limit = raw.height * _EDGE_ZONE, raw.height * (1 - _EDGE_ZONE)
    picked: list[tuple[str, _Seg]] = []
    for k in range(min(2, len(order) - 1)):
        top, bottom, h = bands[k]
        if bottom > top_limit:
            break
        if bands[k + 1][0] - bottom >= h:
            picked += [("header", s) for r in order[: k + 1] for s in rows[r]]
            break
    taken = {id(s) for _, s in picked}
    for k in range(min(2, len(order) - 1)):
        i = len(order) - 1 - k
        top, bottom, h = bands[i]
        if top < bottom_limit:
            break
        if top - bands[i - 1][1] >= h:
            picked += [("footer", s) for r in order[i:] for s in rows[r] if id(s) not in taken]
            break
    return picked


def _outer_rows(raw: _RawPage) -> tuple[int, int]:
    """The topmost and bottommost rows of a page (where a page number may stand)."""
    rows = {s.row: s.top for s in raw.segs}
    if not rows:
        return -1, -1
    return min(rows, key=rows.__getitem__), max(rows, key=rows.__getitem__)


def _mark_running(raw_pages: dict[int, _RawPage]) -> None:
    """Mark headers, footers and page numbers that repeat at the page edges."""
    pages = [p for p in raw_pages.values() if p.segs]
    seen: dict[tuple[str, str], set[int]] = {}
    edges = {p.page_no: _edge_segments(p) for p in pages}
    for page_no, cands in edges.items():
        for zone, s in cands:
            if _WORDISH.search(s.text):  # figures alike after "#" are no running header
                seen.setdefault((zone, _norm_running(s.text)), set()).add(page_no)
    need = 2 if len(pages) <= 4 else 3
    slots: dict[tuple[str, int, float], set[int]] = {}
    for page_no, cands in edges.items():
        raw = raw_pages[page_no]
        top_row, bottom_row = _outer_rows(raw)
        for zone, s in cands:
            text = s.text.strip()
            if s.row in (top_row, bottom_row) and _PAGE_NUMBER.fullmatch(text):
                s.running = "page_number"
            elif len(seen.get((zone, _norm_running(text)), ())) >= need:
                s.running = zone
                slots.setdefault(_slot(zone, s), set()).add(page_no)
        # a number alone on the last row, wherever the page's content ends (EDGAR filings
        # put it under the text, a blank line below it)
        last_row = [s for s in raw.segs if s.row == bottom_row]
        if (
            len(last_row) == 1
            and last_row[0].running is None
            and _PAGE_NUMBER.fullmatch(last_row[0].text.strip())
        ):
            above = [
                s.bottom
                for s in raw.segs
                if s.row != bottom_row and s.bottom <= last_row[0].top + 0.5 * last_row[0].h
            ]
            if above and last_row[0].top - max(above) >= last_row[0].h:
                last_row[0].running = "page_number"
    # where running headers stand on many pages, what stands there is one too, even when its
    # text is new (a chapter's name on the chapter's only page)
    slots = {key: found for key, found in slots.items() if len(found) >= need}
    for cands in edges.values():
        for zone, s in cands:
            if s.running is None and _slot(zone, s) in slots:
                s.running = zone
        # what shares a row with a running header at the page's edge is furniture too
        # (a section name beside the report title, changing from chapter to chapter)
        furniture_rows = {s.row for _, s in cands if s.running}
        for zone, s in cands:
            if s.running is None and s.row in furniture_rows:
                s.running = zone


def _slot(zone: str, s: _Seg) -> tuple[str, int, float]:
    """Where a running header stands: its edge, its line's top (to the point) and its size."""
    return zone, round(s.top), round(s.size * 2) / 2


def _finish(
    raw_pages: dict[int, _RawPage],
    wanted: list[int],
    options: IngestOptions,
    name: str,
    doc_id: str,
) -> tuple[list[Page], list[StageError]]:
    if options.remove_running:
        _mark_running(raw_pages)
    body_size = _body_size(raw_pages.values())
    vocab: set[str] = set()
    for raw in raw_pages.values():
        vocab.update(raw.vocab)
    pages: list[Page] = []
    errors: list[StageError] = []
    for page_no in wanted:
        raw = raw_pages[page_no]
        status, error = _page_status(raw, options, name)
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
                )
            )
            continue
        try:
            pages.append(_build_page(raw, doc_id, body_size, vocab))
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


def _page_status(
    raw: _RawPage, options: IngestOptions, name: str
) -> tuple[PageStatus, IngestError | None]:
    where = f"{name} page {raw.page_no}"
    if raw.error is not None:
        return "error", PageReadError(
            f"{where}: could not be read ({raw.error}); the rest of "
            "the document was read. Check the page in a PDF viewer.",
            page_no=raw.page_no,
        )
    if raw.n_chars < max(options.min_chars_per_page, 1) and raw.has_image:
        return "needs_ocr", NeedsOcrError(
            f"{where}: an image without a text layer (needs OCR); page not read. Run OCR on "
            "the file (e.g. ocrmypdf) and submit it again.",
            page_no=raw.page_no,
            fatal=False,
        )
    if raw.n_chars == 0:
        return "empty", None
    share = _garbled_share(raw)
    if share > options.max_garbled_share:
        return "unreadable", GarbledTextError(
            f"{where}: the text layer is unreadable ({share:.0%} of it is glyph codes without "
            "letters, needs OCR); page not read. Run OCR on the file and submit it again.",
            page_no=raw.page_no,
            fatal=False,
        )
    return "ok", None


def _garbled_share(raw: _RawPage) -> float:
    """Share of the text that cannot be read: unmapped glyphs, or words no language writes."""
    by_chars = raw.n_bad / raw.n_chars if raw.n_chars else 0.0
    by_words = raw.n_odd_words / raw.n_words if raw.n_words >= 20 else 0.0
    return max(by_chars, by_words)


def _document_verdict(pages: list[Page], name: str) -> IngestError | None:
    """A fatal error when no page of the document gave readable text."""
    if not pages or any(p.status == "ok" for p in pages):
        return None
    counts = Counter(p.status for p in pages)
    n = len(pages)
    if counts["unreadable"]:
        return GarbledTextError(
            f"{name}: the text layer of all {n} pages read is unreadable (fonts without a "
            "Unicode map; the pages render fine but their text is glyph codes); no text read. "
            "Run OCR on the file (e.g. ocrmypdf --force-ocr) and submit it again."
        )
    if counts["needs_ocr"]:
        return NeedsOcrError(
            f"{name}: a scanned document: {counts['needs_ocr']} of {n} pages are images without "
            "a text layer (needs OCR); no text read. Run OCR on the file (e.g. ocrmypdf) and "
            "submit it again."
        )
    if counts["error"]:
        return DamagedPdfError(
            f"{name}: none of its {n} pages could be read; no text read. "
            "Ask the client for a fresh copy of the file."
        )
    return EmptyPdfError(
        f"{name}: the {n} pages read carry no text and no images; nothing "
        "to read. Check that this is the right file."
    )


def _body_size(raw_pages) -> float:  # noqa: ANN001 - an iterable of _RawPage
    """The font size most characters are set in: the body text's."""
    sizes: Counter[float] = Counter()
    for raw in raw_pages:
        for s in raw.segs:
            if s.running is None:
                sizes[round(s.size * 2) / 2] += s.n_chars
    return sizes.most_common(1)[0][0] if sizes else 10.0


# --------------------------------------------------------------------------------------
# one page: segments -> blocks -> reading order -> Page


@dataclass(slots=True)
class _Blk:
    segs: list[_Seg]
    x0: float
    top: float
    x1: float
    bottom: float
    kind: str = "text"
    pitch: float = 0.0

    def add(self, s: _Seg) -> None:
        if len(self.segs) == 1:
            self.pitch = s.top - self.segs[0].top
        self.segs.append(s)
        self.x0, self.top = min(self.x0, s.x0), min(self.top, s.top)
        self.x1, self.bottom = max(self.x1, s.x1), max(self.bottom, s.bottom)


def _classify_cells(segs: list[_Seg]) -> None:
    """Numeric cells, and row labels: a numeric cell of a number column follows on the row."""
    for s in segs:
        s.numeric = _is_number(s.text)
    numeric = sorted((s for s in segs if s.numeric), key=lambda s: s.top)
    in_column: set[int] = set()
    for i, s in enumerate(numeric):
        for t in numeric[i + 1 :]:
            if t.top > s.bottom + 4 * s.h:
                break
            if t.row != s.row and min(s.x1, t.x1) - max(s.x0, t.x0) > 0:
                in_column.update((id(s), id(t)))
    rows: dict[int, list[_Seg]] = {}
    for s in segs:
        rows.setdefault(s.row, []).append(s)
    for row in rows.values():
        row.sort(key=lambda s: s.x0)
        for left, right in zip(row, row[1:], strict=False):
            if id(right) in in_column and not left.numeric and not _between(segs, left, right):
                left.label = True
        for s in row:
            if s.numeric or _LEADERS.search(s.text) or _ends_with_numbers(s.text):
                s.tabular = True
    for s in segs:
        if s.label and _in_paragraph(segs, s):
            s.label = False


def _is_number(text: str) -> bool:
    """A figure, an amount, a dash standing for zero: a table cell, not prose."""
    tokens = text.split()
    # "2018." ending a sentence is prose, not a cell
    return (
        bool(tokens)
        and all(_NUM_TOKEN.fullmatch(t) for t in tokens)
        and any(ch.isdigit() or ch in "–—-$€£¥%" for ch in text)
        and not text.endswith((".", ",", ";", ":"))
    )


def _in_paragraph(segs: list[_Seg], s: _Seg) -> bool:
    """A long line set flush with a long line of prose right above or below it is prose too,
    whatever stands to its right (a spread's facing page, a chart across the gutter)."""
    if len(s.text.split()) < 6:
        return False
    for t in segs:
        if t is s or t.label or t.tabular or len(t.text.split()) < 6:
            continue
        step = abs(t.top - s.top)
        if 0.5 * s.h < step <= 2.2 * max(s.size, 1.0) and abs(t.x0 - s.x0) <= 2 * s.h:
            return True
    return False


def _between(segs: list[_Seg], left: _Seg, right: _Seg) -> bool:
    """Whether text on nearby rows lies wholly between two cells: then a column gutter and
    another column's table separate them, and `left` is body text, not the row's label."""
    reach = 5 * left.h
    return any(
        t.x0 > left.x1 and t.x1 < right.x0 and not t.numeric and abs(t.top - left.top) < reach
        for t in segs
    )


def _ends_with_numbers(text: str) -> bool:
    tokens = text.split()
    if len(tokens) < 3:
        return False
    tail = [t for t in tokens[-3:] if t not in ("$", "€", "£", "%")]
    return len(tail) >= 2 and all(
        _NUM_TOKEN.fullmatch(t) and any(c.isdigit() for c in t) for t in tail
    )


def _pitches(segs: list[_Seg]) -> tuple[float, dict[int, float]]:
    """The page's usual line pitch (in font sizes), and each segment's step to its next line."""
    ratios: Counter[float] = Counter()
    step_below: dict[int, float] = {}
    ordered = sorted(segs, key=lambda s: s.top)
    for i, s in enumerate(ordered):
        for t in ordered[i + 1 : i + 12]:
            if t.top <= s.top + 0.5 * s.h or abs(t.size - s.size) > 0.12 * s.size:
                continue
            if min(s.x1, t.x1) - max(s.x0, t.x0) > 0 and s.size > 0:
                step_below[id(s)] = t.top - s.top
                ratios[round((t.top - s.top) / s.size * 20) / 20] += 1
                break
    common = [r for r, _ in ratios.most_common() if 0.9 <= r <= 3.0]
    return (common[0] if common else 1.25), step_below


def _blocks(segs: list[_Seg]) -> list[_Blk]:
    """Stack segments into blocks: same column, same size and weight, regular line pitch."""
    pitch, step_below = _pitches(segs)
    blocks: list[_Blk] = []
    open_: list[_Blk] = []
    for s in sorted(segs, key=lambda s: (s.top, s.x0)):
        best, best_gap = None, math.inf
        keep: list[_Blk] = []
        for b in open_:
            last = b.segs[-1]
            if last.bottom < s.top - 3 * max(s.h, last.h):
                continue  # too far above to take more lines
            keep.append(b)
            if s.bullet or (
                (s.tabular or s.label) != (last.tabular or last.label) and not _body_line(s, b)
            ):
                continue
            size = max(s.size, last.size, 0.1)
            if abs(s.size - last.size) > 0.12 * size or s.bold != last.bold:
                continue
            if s.bold and s.font != last.font:
                continue  # "Note 5 - Income Taxes" over an italic bold sub-heading
            step = s.top - last.top
            gap = s.top - last.bottom
            if len(b.segs) >= 2:
                regular = b.pitch * 0.8 - 0.5 <= step <= b.pitch * 1.15 + 0.5
            else:
                # the page's usual pitch, or a wider one this line keeps to the next (double
                # spacing) -- a paragraph break is wider than the lines around it
                nxt = step_below.get(id(s))
                regular = step <= (pitch + 0.3) * size or (
                    step <= 2.6 * size and nxt is not None and abs(nxt - step) <= 0.12 * step
                )
            if step <= 0.5 * last.h or not regular or gap < -0.3 * s.h:
                continue
            overlap = min(s.x1, b.x1) - max(s.x0, b.x0)
            # the second line may start well left of an indented first line
            outdent = 3.0 * s.h if len(b.segs) == 1 else 1.5 * s.h
            if overlap < 0.5 * min(s.x1 - s.x0, b.x1 - b.x0) or s.x0 < b.x0 - outdent:
                continue
            if gap < best_gap:
                best, best_gap = b, gap
        open_ = keep
        if best is not None:
            best.add(s)
            continue
        blk = _Blk([s], s.x0, s.top, s.x1, s.bottom)
        blocks.append(blk)
        open_.append(blk)
    return blocks


def _body_line(s: _Seg, b: _Blk) -> bool:
    """A possible row label as wide as the paragraph it continues: a line of that paragraph."""
    last = b.segs[-1]
    return (
        s.label
        and not s.tabular
        and len(b.segs) >= 2
        and not (last.tabular or last.label)
        and s.x1 - s.x0 >= 0.8 * (b.x1 - b.x0)
    )


def _gaps(intervals: list[tuple[float, float]], min_gap: float) -> list[float]:
    """Cut points between the union's pieces of 1-D intervals, where gaps exceed min_gap."""
    cuts: list[float] = []
    ordered = sorted(intervals)
    reach = ordered[0][1]
    for lo, hi in ordered[1:]:
        if lo - reach > min_gap:
            cuts.append((lo + reach) / 2)
        reach = max(reach, hi)
    return cuts


def _split(blks: list[_Blk], axis: str, min_gap: float) -> list[list[_Blk]]:
    if axis == "x":
        cuts = _gaps([(b.x0, b.x1) for b in blks], min_gap)
        key = lambda b: (b.x0 + b.x1) / 2  # noqa: E731
    else:
        cuts = _gaps([(b.top, b.bottom) for b in blks], min_gap)
        key = lambda b: (b.top + b.bottom) / 2  # noqa: E731
    if not cuts:
        return [blks]
    groups: list[list[_Blk]] = [[] for _ in range(len(cuts) + 1)]
    for b in blks:
        groups[bisect_left(cuts, key(b))].append(b)
    return [g for g in groups if g]


def _reading_order(blks: list[_Blk]) -> list[_Blk]:
    """Recursive XY-cut: columns left to right, bands top to bottom; bands that share a
    gutter are read as one set of columns (two columns whose paragraph gaps happen to line
    up are not interleaved)."""
    if len(blks) <= 1:
        return list(blks)
    columns = _split(blks, "x", 1.0)
    if len(columns) > 1:
        return [b for col in columns for b in _reading_order(col)]
    bands = _split(blks, "y", 0.0)
    if len(bands) == 1:
        return sorted(blks, key=lambda b: (b.top, b.x0))
    groups: list[list[_Blk]] = [bands[0]]
    for band in bands[1:]:
        joined = groups[-1] + band
        if len(_split(joined, "x", 1.0)) > 1:
            groups[-1] = joined
        else:
            groups.append(band)
    if len(groups) == 1 and len(groups[0]) == len(blks) and len(_split(blks, "x", 1.0)) == 1:
        return sorted(blks, key=lambda b: (b.top, b.x0))
    return [b for g in groups for b in _reading_order(g)]


def _kind(blk: _Blk, body_size: float) -> str:
    segs = blk.segs
    if sum(1.0 if s.tabular else 0.5 if s.label else 0.0 for s in segs) * 2 >= len(segs):
        return "table"
    if segs[0].bullet or _ORDERED_ITEM.match(segs[0].text):
        return "list_item"
    text = " ".join(s.text for s in segs)
    n_words = len(text.split())
    size = max(s.size for s in segs)
    if len(segs) <= 3 and n_words <= 20 and _WORDISH.search(text):
        if size >= 1.15 * body_size:
            return "heading"
        if (
            all(s.bold for s in segs)
            and size >= 0.95 * body_size
            and not text.endswith((".", ",", ";", ":"))
        ):
            return "heading"
    return "text"


def _join_lines(lines: list[str], vocab: set[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join a block's lines with spaces, closing hyphenated breaks; spans of each line.

    "finan-" + "cial" becomes "financial"; the hyphen stays when the document writes the
    word with a hyphen elsewhere and never without ("value-" + "added" -> "value-added").
    """
    out = ""
    spans: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        start = len(out)
        out += line
        end = len(out)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (
            nxt
            and line.endswith(_HYPHENS)
            and len(line) >= 2
            and line[-2].isalpha()
            and nxt[:1].islower()
        ):
            if nxt.split(" ", 1)[0] in _CONJUNCTIONS and not line.endswith(_SOFT_HYPHENS):
                out += " "  # "short-" + "and long-term": the hyphen stands for a word part
            elif line.endswith(_SOFT_HYPHENS) or not _keeps_hyphen(line, nxt, vocab):
                out = out[:-1]
                end = len(out)
        elif nxt:
            out += " "
        spans.append((start, end))
    return out, spans


def _fix_ligatures(text: str, vocab: set[str]) -> str:
    """Spell out ligatures whose glyph had no Unicode mapping ("\ufffers" -> "first")."""

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        for lig in _LIGATURES:
            candidate = word.replace("\ufffe", lig)
            key = candidate.lower().rstrip("s") if candidate.lower() not in vocab else ""
            if (
                candidate.lower() in vocab
                or candidate.lower() in _LIGATURE_WORDS
                or key in _LIGATURE_WORDS
            ):
                return candidate
        return word.replace("\ufffe", "fi")  # the most common ligature by far

    return _LIGATURE_WORD.sub(fix, text)


def _keeps_hyphen(line: str, nxt: str, vocab: set[str]) -> bool:
    head = line[:-1].rsplit(" ", 1)[-1].lower()
    tail_match = _LEAD_LETTERS.match(nxt)
    tail = tail_match.group(0).lower() if tail_match else ""
    return f"{head}-{tail}" in vocab and f"{head}{tail}" not in vocab


def _bbox(x0: float, top: float, x1: float, bottom: float) -> dict[str, float]:
    # records are built from plain dicts in one validation per page (pydantic-core is faster
    # at that than constructing thousands of models one by one)
    return {
        "x0": round(x0, 2),
        "top": round(top, 2),
        "x1": round(x1, 2),
        "bottom": round(bottom, 2),
    }


def _table_text(blks: list[_Blk]) -> str:
    segs = sorted((s for b in blks for s in b.segs), key=lambda s: (s.row, s.x0))
    rows: list[list[str]] = []
    last_row = None
    for s in segs:
        cell = _LEADERS.sub(" ", s.text).strip()
        if s.row != last_row:
            rows.append([])
            last_row = s.row
        rows[-1].append(cell)
    return "\n".join("\t".join(c for c in r if c) for r in rows)


def _build_page(raw: _RawPage, doc_id: str, body_size: float, vocab: set[str]) -> Page:
    running = [s for s in raw.segs if s.running]
    body = [s for s in raw.segs if not s.running]
    if len(body) > _MAX_SEGMENTS:
        # maps, charts drawn as text, glyph clouds: read line by line, top to bottom, rather
        # than spend seconds on a layout no report page has
        _log.info("page %d: %d line segments; reading it line by line", raw.page_no, len(body))
        return _plain_page(raw, body, running, doc_id)
    _classify_cells(body)
    blks = _blocks(body)
    for b in blks:
        b.kind = _kind(b, body_size)
        if b.kind != "table" and all(len(s.text) <= 2 for s in b.segs) and len(b.segs) >= 3:
            b.kind = "debris"  # letters of vertical text stacked one per line
    blks = [b for b in blks if b.kind != "debris"]
    _absorb_into_tables(blks)
    # a table is ordered as one unit: its column gaps must not pass for page columns
    ordered = _reading_order(_merge_tables(blks))

    parts: list[str] = []
    pos = 0
    lines: list[dict[str, object]] = []
    blocks: list[dict[str, object]] = []
    header = [
        s
        for s in running
        if s.running == "header"
        or (s.running == "page_number" and s.bottom <= raw.height * _EDGE_ZONE)
    ]
    footer = [s for s in running if s not in header]
    for s in sorted(header, key=lambda s: (s.top, s.x0)):
        blocks.append(_block(s.running or "header", s.x0, s.top, s.x1, s.bottom, text=s.text))
    for b in ordered:
        if b.kind == "table":
            blocks.append(_block("table", b.x0, b.top, b.x1, b.bottom, text=_table_text([b])))
            continue
        line_texts = [
            s.text if "\ufffe" not in s.text else _fix_ligatures(s.text, vocab) for s in b.segs
        ]
        text, spans = _join_lines(line_texts, vocab)
        if parts:
            pos += 2
        start = pos
        for s, (a, e) in zip(b.segs, spans, strict=True):
            lines.append(
                {"start": start + a, "end": start + e, "bbox": _bbox(s.x0, s.top, s.x1, s.bottom)}
            )
        parts.append(text)
        pos += len(text)
        blocks.append(_block(b.kind, b.x0, b.top, b.x1, b.bottom, start=start, end=pos))
    for s in sorted(footer, key=lambda s: (s.top, s.x0)):
        blocks.append(_block(s.running or "header", s.x0, s.top, s.x1, s.bottom, text=s.text))
    return Page.model_validate(
        {
            "doc_id": doc_id,
            "page_no": raw.page_no,
            "width": round(raw.width, 2),
            "height": round(raw.height, 2),
            "rotation": raw.rotation,
            "text": "\n\n".join(parts),
            "lines": lines,
            "blocks": blocks,
            "status": "ok",
        }
    )


def _plain_page(raw: _RawPage, body: list[_Seg], running: list[_Seg], doc_id: str) -> Page:
    """A page of too many pieces for the layout: its figures in one table block, the rest in
    one text block, rows top to bottom."""
    ordered = sorted(body, key=lambda s: (s.row, s.x0))
    figures = [s for s in ordered if _is_number(s.text)]
    words = [s for s in ordered if not _is_number(s.text)]
    lines: list[dict[str, object]] = []
    text = ""
    for s in words:
        if text:
            text += " "
        lines.append(
            {
                "start": len(text),
                "end": len(text) + len(s.text),
                "bbox": _bbox(s.x0, s.top, s.x1, s.bottom),
            }
        )
        text += s.text
    blocks = []
    for kind, segs in (("text", words), ("table", figures)):
        if segs:
            blocks.append(
                _block(
                    kind,
                    min(s.x0 for s in segs),
                    min(s.top for s in segs),
                    max(s.x1 for s in segs),
                    max(s.bottom for s in segs),
                    start=0 if kind == "text" else -1,
                    end=len(text) if kind == "text" else -1,
                    text="" if kind == "text" else " ".join(s.text for s in segs),
                )
            )
    blocks += [
        _block(s.running or "header", s.x0, s.top, s.x1, s.bottom, text=s.text) for s in running
    ]
    return Page.model_validate(
        {
            "doc_id": doc_id,
            "page_no": raw.page_no,
            "width": round(raw.width, 2),
            "height": round(raw.height, 2),
            "rotation": raw.rotation,
            "text": text,
            "lines": lines,
            "blocks": blocks,
            "status": "ok",
        }
    )


def _block(
    kind: str,
    x0: float,
    top: float,
    x1: float,
    bottom: float,
    *,
    start: int = -1,
    end: int = -1,
    text: str = "",
) -> dict[str, object]:
    return {
        "kind": kind,
        "start": start,
        "end": end,
        "bbox": _bbox(x0, top, x1, bottom),
        "text": text,
    }


def _absorb_into_tables(ordered: list[_Blk]) -> None:
    """Short text inside a table (section rows, column heads) belongs to the table."""
    tables = [b for b in ordered if b.kind == "table"]
    if not tables:
        return
    for b in ordered:
        if b.kind not in ("text", "heading") or len(b.segs) > 4:
            continue
        h = max(s.h for s in b.segs)
        above = any(
            t.bottom <= b.top + 0.3 * h
            and b.top - t.bottom < 2 * h
            and min(t.x1, b.x1) > max(t.x0, b.x0)
            for t in tables
        )
        below = any(
            t.top >= b.bottom - 0.3 * h
            and t.top - b.bottom < 1.5 * h
            and min(t.x1, b.x1) > max(t.x0, b.x0)
            for t in tables
        )
        text = " ".join(s.text for s in b.segs)
        column_head = len(text.split()) <= 6 and not text.endswith((".", "!", "?", ":"))
        # a chart's or figure's labels next to its numbers ("DK", "'16", "30-44")
        label = (
            len(text.split()) <= 3
            and len(text) <= 25
            and (not any(ch.islower() for ch in text) or any(ch.isdigit() for ch in text))
            and any(_distance(b, t) < 3 * h for t in tables)
        )
        if (above and below and len(b.segs) <= 2) or (below and column_head) or label:
            b.kind = "table"


def _distance(a: _Blk, b: _Blk) -> float:
    dx = max(0.0, max(a.x0, b.x0) - min(a.x1, b.x1))
    dy = max(0.0, max(a.top, b.top) - min(a.bottom, b.bottom))
    return max(dx, dy)


def _merge_tables(blks: list[_Blk]) -> list[_Blk]:
    """Gather table blocks that touch or share rows into one block per table; short text
    lying inside a table's box (section rows like "Receipts:") joins that table."""
    tables = [b for b in blks if b.kind == "table"]
    if not tables:
        return blks
    others = [b for b in blks if b.kind != "table"]
    parent = list(range(len(tables)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = [{s.row for s in t.segs} for t in tables]
    # side by side on shared rows: neighbours along each row are enough to connect a table
    by_row: dict[int, list[int]] = {}
    for i, row_set in enumerate(rows):
        for r in row_set:
            by_row.setdefault(r, []).append(i)
    pairs: set[tuple[int, int]] = set()
    for members in by_row.values():
        members.sort(key=lambda i: tables[i].x0)
        pairs.update(zip(members, members[1:], strict=False))
    for i, j in pairs:
        a, b = tables[i], tables[j]
        if min(a.x1, b.x1) > max(a.x0, b.x0):
            continue  # stacked, not side by side: handled below
        h = max(a.segs[0].h, b.segs[0].h)
        gap = max(a.x0, b.x0) - min(a.x1, b.x1)
        shared = len(rows[i] & rows[j])
        if (
            gap < 8 * h or (shared >= 2 and shared * 2 >= min(len(rows[i]), len(rows[j])))
        ) and not _text_between(others, a, b):
            parent[find(j)] = find(i)
    # stacked: one table block right above another
    order = sorted(range(len(tables)), key=lambda i: tables[i].top)
    for k, i in enumerate(order):
        a = tables[i]
        for j in order[k + 1 :]:
            b = tables[j]
            h = max(a.segs[0].h, b.segs[0].h)
            if b.top > a.bottom + 2 * h:
                break
            if min(a.x1, b.x1) > max(a.x0, b.x0) and b.top - a.bottom > -h:
                parent[find(j)] = find(i)
    groups: dict[int, list[_Blk]] = {}
    for i, t in enumerate(tables):
        groups.setdefault(find(i), []).append(t)
    merged: list[_Blk] = []
    for group in groups.values():
        segs = [s for g in group for s in g.segs]
        m = _Blk(
            segs,
            min(g.x0 for g in group),
            min(g.top for g in group),
            max(g.x1 for g in group),
            max(g.bottom for g in group),
            kind="table",
        )
        merged.append(m)
    kept: list[_Blk] = []
    for b in others:
        home = next(
            (
                m
                for m in merged
                if len(m.segs) >= 4
                and len(b.segs) <= 2
                and b.x0 >= m.x0 - 1
                and b.x1 <= m.x1 + 1
                and b.top >= m.top - 1
                and b.bottom <= m.bottom + 1
            ),
            None,
        )
        if home is not None:
            home.segs.extend(b.segs)
        else:
            kept.append(b)
    return kept + merged


def _text_between(others: list[_Blk], a: _Blk, b: _Blk) -> bool:
    left, right = (a, b) if a.x1 <= b.x0 else (b, a)
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    return any(
        o.x0 >= left.x1 and o.x1 <= right.x0 and o.top < bottom and o.bottom > top for o in others
    )
