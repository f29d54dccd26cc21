"""One entry for every kind of report: what the bytes are decides the reader.

    document, pages, errors = read_document(path, settings.ingest)

PDF -> `read_pdf`; HTML or XHTML (a 10-K as EDGAR holds it, an ESEF report) -> `read_html`;
a ZIP -> the ESEF package's report (`package`), read by the HTML reader. The content decides,
not the name, with one exception kept from the PDF reader: a file named `.pdf` is read as a
PDF, so a web page saved under a PDF name (a failed download) is refused as before rather
than analyzed as if it were the report. Bytes that are none of these are refused with a
message (`unsupported`), unless their name says HTML or ZIP: then that reader says what is
wrong with them.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Literal

from app.config import IngestOptions
from app.errors import IngestError, OnError, UnsupportedFileError
from app.ingest.files import content_kind, load_bytes
from app.ingest.html import html_page_count, read_html, read_report, recorded
from app.ingest.package import report_in_package
from app.ingest.pdf import read_pdf
from app.ingest.pdfium import pdf_page_count
from app.records import Document, Page, StageError

ReaderKind = Literal["pdf", "html", "zip", "unknown"]

INPUT_SUFFIXES = (".pdf", ".htm", ".html", ".xhtml", ".zip")
"""File names a folder of reports is searched for (`sesame analyze DIR`, the batch)."""
_HTML_SUFFIXES = (".htm", ".html", ".xhtml")
_HEAD = 4096


def reader_kind(head: bytes, name: str | None) -> ReaderKind:
    """Which reader takes a file, from its first bytes and (only as said above) its name."""
    suffix = PurePath(name).suffix.lower() if name else ""
    kind = content_kind(head)
    if suffix == ".pdf" or kind == "pdf":
        return "pdf"
    if kind in ("html", "zip"):
        return kind  # type: ignore[return-value]
    if suffix in _HTML_SUFFIXES:
        return "html"
    if suffix == ".zip":
        return "zip"
    return "pdf" if not suffix else "unknown"


def _head(source: Path | bytes) -> bytes | None:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source[:_HEAD])
    try:
        with source.open("rb") as f:
            return f.read(_HEAD)
    except OSError:
        return None  # the PDF reader reports it as it always has


def default_name(source: Path | bytes) -> str:
    """The name shown for an input without one: `upload.pdf`, `upload.html`, `upload.zip`."""
    if isinstance(source, Path):
        return source.name
    kind = content_kind(bytes(source[:_HEAD]))
    return "upload." + {"html": "html", "zip": "zip"}.get(kind, "pdf")


def read_document(
    source: Path | bytes,
    options: IngestOptions,
    *,
    file_name: str | None = None,
    page_range: tuple[int, int] | None = None,
    on_error: OnError = "record",
) -> tuple[Document | None, list[Page], list[StageError]]:
    """Read any supported report into records; arguments and result as `read_pdf`."""
    head = _head(source)
    kind = "pdf" if head is None else reader_kind(head, file_name or _name(source))
    if kind == "pdf":
        return read_pdf(
            source, options, file_name=file_name, page_range=page_range, on_error=on_error
        )
    if kind == "html":
        return read_html(
            source, options, file_name=file_name, page_range=page_range, on_error=on_error
        )
    name = file_name or _name(source) or "document"
    errors: list[StageError] = []
    if kind == "unknown":
        return recorded(
            UnsupportedFileError(
                f"{name}: neither a PDF, an HTML/XHTML filing nor an ESEF report package "
                "(.zip); not read. Submit the report as PDF, as the inline-XBRL .htm/.xhtml "
                "file, or as its ESEF package."
            ),
            errors,
            on_error,
        )
    try:
        data = load_bytes(source, options, name)
        _, report = report_in_package(data, name, options, errors)
    except IngestError as exc:
        return recorded(exc, errors, on_error)
    return read_report(data, report, name, options, page_range, on_error, errors)


def _name(source: Path | bytes) -> str | None:
    return source.name if isinstance(source, Path) else None


def report_bytes(data: bytes, name: str | None, options: IngestOptions) -> bytes:
    """The markup a kept HTML document or ESEF package shows (for the review screen)."""
    if reader_kind(data[:_HEAD], name) == "zip":
        return report_in_package(data, name or "package.zip", options)[1]
    return data


def page_count(data: bytes, name: str | None = None, password: str | None = None) -> int:
    """Pages of a report, cheaply: pdfium's count for a PDF, the CSS page breaks of HTML and
    of an ESEF package's report; 0 when it cannot be told (the reader then says why)."""
    kind = reader_kind(data[:_HEAD], name)
    if kind == "pdf":
        return pdf_page_count(data, password)
    if kind == "html":
        return html_page_count(data)
    if kind == "zip":
        try:
            return html_page_count(
                report_in_package(data, name or "package.zip", IngestOptions())[1]
            )
        except IngestError:
            return 0
    return 0
