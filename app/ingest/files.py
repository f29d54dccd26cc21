"""What a submitted file is, before any reader opens it: the byte-size limit, sniffing the
content (PDF, HTML, ZIP, unknown), the end-of-file check, and the error class for a StageError
code. Its own module because every reader (PDF today; HTML/iXBRL and OCR next) checks files the
same way and none of it needs pdfium.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from app.config import IngestOptions
from app.errors import (
    DamagedPdfError,
    EmptyDocumentError,
    EmptyPdfError,
    EncryptedPdfError,
    GarbledTextError,
    IngestError,
    MalformedMarkupError,
    NeedsOcrError,
    NoReportError,
    NotPdfError,
    OcrFailedError,
    OcrUnavailableError,
    PageReadError,
    TooLargeError,
    TooManyPagesError,
    UnsupportedFileError,
)

ContentKind = Literal["empty", "pdf", "html", "zip", "unknown"]


def error_class(code: str) -> type[IngestError]:
    classes: list[type[IngestError]] = [
        NotPdfError,
        EncryptedPdfError,
        DamagedPdfError,
        EmptyPdfError,
        TooLargeError,
        TooManyPagesError,
        NeedsOcrError,
        GarbledTextError,
        OcrFailedError,
        OcrUnavailableError,
        PageReadError,
        UnsupportedFileError,
        MalformedMarkupError,
        EmptyDocumentError,
        NoReportError,
    ]
    return next((c for c in classes if c.code == code), IngestError)


def load_bytes(source: Path | bytes, options: IngestOptions, name: str) -> bytes:
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > options.max_bytes:
        raise TooLargeError(
            f"{name}: {size / 1e6:.1f} MB is over the limit of {options.max_bytes / 1e6:.1f} MB; "
            "not read. Raise ingest.max_bytes (SESAME_INGEST__MAX_BYTES) or split the file."
        )
    return source.read_bytes() if isinstance(source, Path) else bytes(source)


def content_kind(data: bytes) -> ContentKind:
    """What the bytes are, from their first bytes: the checks `check_is_pdf` decides by."""
    if not data:
        return "empty"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"pk\x03\x04"):
        return "zip"  # before HTML: a package may store its report uncompressed up front
    # the root element after a prolog of comments (Workiva's run to a few hundred bytes)
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "html"
    return "unknown"


def check_is_pdf(data: bytes, name: str) -> None:
    kind = content_kind(data)
    if kind == "empty":
        raise NotPdfError(
            f"{name}: the file is empty (0 bytes); nothing to read. "
            "Check the upload or ask the client for the report again."
        )
    if kind == "pdf":
        return
    if kind == "html":
        what = "an HTML web page saved with a .pdf name"
    elif kind == "zip":
        what = "a ZIP/Office file"
    else:
        what = "not a PDF (no %PDF header)"
    raise NotPdfError(
        f"{name}: {what}; no text read. Download or export the report itself "
        "as PDF and submit it again."
    )


def looks_complete(data: bytes) -> bool:
    return b"%%EOF" in data[-2048:]
