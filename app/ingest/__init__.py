"""Read a PDF into a `Document` and its `Page`s (a package; the split into modules follows)."""

from app.ingest.layout import PDFIUM_LOCK, pdf_page_count, read_pdf

__all__ = ["PDFIUM_LOCK", "pdf_page_count", "read_pdf"]
