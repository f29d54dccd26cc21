"""sesame's exceptions: library errors translated at the boundary into what, where, what next.

In `on_error="record"` mode a stage turns these into `StageError` records and goes on; in
`on_error="raise"` mode they propagate so tests and debugging never swallow a bug.
"""

from __future__ import annotations

from typing import Literal

from app.records import Stage, StageError

OnError = Literal["record", "raise"]


class SesameError(Exception):
    """Base of sesame's errors. `message` is written for the auditor, not the developer."""

    stage: Stage = "ingest"
    code: str = "error"
    fatal: bool = True

    def __init__(
        self, message: str, *, page_no: int | None = None, fatal: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.page_no = page_no
        if fatal is not None:
            self.fatal = fatal

    def to_record(self) -> StageError:
        """The error as a record for results, workpapers and the store."""
        return StageError(
            stage=self.stage,
            code=self.code,
            page_no=self.page_no,
            message=self.message,
            fatal=self.fatal,
        )


class IngestError(SesameError):
    """A document could not be read (wholly, or a page of it)."""

    stage: Stage = "ingest"


class NotPdfError(IngestError):
    code = "not_pdf"


class EncryptedPdfError(IngestError):
    code = "encrypted"


class DamagedPdfError(IngestError):
    code = "damaged"


class EmptyPdfError(IngestError):
    code = "no_pages"


class TooLargeError(IngestError):
    code = "too_large"


class TooManyPagesError(IngestError):
    code = "too_many_pages"


class NeedsOcrError(IngestError):
    """Image-only pages: no text layer. Never an empty success."""

    code = "needs_ocr"


class GarbledTextError(IngestError):
    """The text layer exists but is unreadable ((cid:NN) codes, glyphs without Unicode)."""

    code = "garbled"


class UnsupportedFileError(IngestError):
    """Neither a PDF, an HTML/XHTML filing nor an ESEF report package."""

    code = "unsupported"


class MalformedMarkupError(IngestError):
    """HTML/XHTML the parser could not read (fatal), or read only by repairing it."""

    code = "malformed"


class EmptyDocumentError(IngestError):
    """An HTML filing whose body shows no text."""

    code = "empty"


class NoReportError(IngestError):
    """A ZIP file without an inline-XBRL report in `reports/`."""

    code = "no_report"


class OcrUnavailableError(IngestError):
    """Tesseract (its Python binding or a language's data) is missing: OCR cannot run."""

    code = "ocr_unavailable"
    fatal = False


class OcrFailedError(IngestError):
    """OCR ran on a page but found no readable text (a blank page, noise, a picture)."""

    code = "ocr_failed"
    fatal = False


class PageReadError(IngestError):
    """One page failed to parse; the rest of the document goes on."""

    code = "page_error"
    fatal = False


class ModelError(SesameError):
    """A model could not be found, loaded or verified."""

    stage: Stage = "scoring"
    code = "model"


class ScoringError(SesameError):
    stage: Stage = "scoring"
    code = "scoring"


class ExplainError(SesameError):
    stage: Stage = "explain"
    code = "explain"
    fatal = False


class ExportError(SesameError):
    stage: Stage = "export"
    code = "export"


class DataValidationError(SesameError):
    """Training data failed validation; the message carries the numbers."""

    stage: Stage = "monitor"
    code = "data_validation"


class CompareError(SesameError):
    """Two results cannot be compared as they are (no sentences, different models)."""

    stage: Stage = "compare"
    code = "compare"
