"""Whether a page's text can be used: page status (ok, empty, needs_ocr, unreadable, ocr_failed,
error) with its StageError, the share of garbled text, the odd-word test that measures it, and
the verdict for a document none of whose pages is readable. Its own module because it judges a
`RawPage` from any reader (text layer or OCR) with the same rules and the same messages.
"""

from __future__ import annotations

from collections import Counter

from app.config import IngestOptions
from app.errors import (
    DamagedPdfError,
    EmptyPdfError,
    GarbledTextError,
    IngestError,
    NeedsOcrError,
    OcrFailedError,
    PageReadError,
)
from app.ingest.segments import RawPage
from app.records import Page, PageStatus

OCR_NOISE_CONFIDENCE = 0.5
"""An OCR'd page whose mean word confidence is below this was read from noise, not text."""
_VOWELS = frozenset("aeiouyàáâäèéêëìíîïòóôöùúûüAEIOUYÀÁÂÄÈÉÊËÌÍÎÏÒÓÔÖÙÚÛÜ")


def odd_word(word: str) -> bool:
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


def page_status(
    raw: RawPage, options: IngestOptions, name: str
) -> tuple[PageStatus, IngestError | None]:
    where = f"{name} page {raw.page_no}"
    if raw.ocr:
        return _ocr_status(raw, options, where)
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


def _ocr_status(
    raw: RawPage, options: IngestOptions, where: str
) -> tuple[PageStatus, IngestError | None]:
    """An OCR'd page: ok, empty (nothing on it to read), or ocr_failed with why."""
    after = "page not read. Check the page in a PDF viewer; if it holds text, ask the client for "
    after += "a sharper scan (300 dpi or more)."
    if raw.error is not None:
        return "ocr_failed", OcrFailedError(
            f"{where}: OCR could not read the page ({raw.error}); {after}", page_no=raw.page_no
        )
    if raw.n_chars == 0:
        if not raw.has_image:
            return "empty", None
        what = (
            "the page image is blank (no ink on it)"
            if raw.ocr_blank
            else "OCR found no text on the page image (a picture, a drawing or noise)"
        )
        return "ocr_failed", OcrFailedError(
            f"{where}: {what}; nothing read. Check the page in a PDF viewer: a page may be "
            "missing from the scan, or it needs a sharper one.",
            page_no=raw.page_no,
        )
    share = _garbled_share(raw)
    confidence = raw.ocr_confidence or 0.0
    if share > options.max_garbled_share or confidence < OCR_NOISE_CONFIDENCE:
        return "ocr_failed", OcrFailedError(
            f"{where}: OCR could not read the page image (mean word confidence "
            f"{confidence:.0%}, {share:.0%} of its words in no language: noise or a picture); "
            + after,
            page_no=raw.page_no,
        )
    return "ok", None


def _garbled_share(raw: RawPage) -> float:
    """Share of the text that cannot be read: unmapped glyphs, or words no language writes."""
    by_chars = raw.n_bad / raw.n_chars if raw.n_chars else 0.0
    by_words = raw.n_odd_words / raw.n_words if raw.n_words >= 20 else 0.0
    return max(by_chars, by_words)


def document_verdict(pages: list[Page], name: str) -> IngestError | None:
    """A fatal error when no page of the document gave readable text."""
    if not pages or any(p.status == "ok" for p in pages):
        return None
    counts = Counter(p.status for p in pages)
    n = len(pages)
    if counts["ocr_failed"]:
        return OcrFailedError(
            f"{name}: none of its {n} pages could be read, from the text layer or by OCR "
            f"({counts['ocr_failed']} page images hold no text OCR can read: blank, noise or "
            "pictures); no text read. Check the file in a PDF viewer; ask the client for a "
            "sharper scan (300 dpi or more).",
            fatal=True,
        )
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
