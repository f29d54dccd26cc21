"""What a result says about its OCR'd pages: which were read by OCR, in which language, how
confidently, and which to check against the page image (mean word confidence below
`ingest.ocr_min_confidence`). Its own module because the JSON, the workpaper and the review
screen say it alike, from the `Page` records alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.config import IngestOptions
from app.records import DocumentResult, Page, StageError


def low_confidence_pages(pages: Iterable[Page], threshold: float) -> list[Page]:
    """OCR'd pages read with a mean word confidence below `threshold` (to be checked by eye)."""
    return [
        p for p in pages if p.ocr and p.status == "ok" and (p.ocr_confidence or 0.0) < threshold
    ]


def ocr_summary(pages: Iterable[Page], threshold: float) -> str | None:
    """One line on a document's OCR'd pages, or None when none was OCR'd."""
    pages = list(pages)
    ocr = [p for p in pages if p.ocr]
    if not ocr:
        return None
    read = [p for p in ocr if p.status == "ok" and p.ocr_confidence is not None]
    languages = sorted({p.ocr_language for p in ocr if p.ocr_language})
    parts = [f"{len(ocr)} of {len(pages)} pages read by OCR"]
    if languages:
        parts.append(f"language {', '.join(languages)}")
    if read:
        mean = sum(p.ocr_confidence or 0.0 for p in read) / len(read)
        parts.append(f"mean word confidence {mean:.0%}")
    line = "; ".join(parts)
    low = low_confidence_pages(ocr, threshold)
    if low:
        pages_low = ", ".join(f"{p.page_no} ({p.ocr_confidence or 0:.0%})" for p in low)
        line += f". Below {threshold:.0%}, check against the page image: page {pages_low}"
    failed = [p.page_no for p in ocr if p.status != "ok"]
    if failed:
        line += f". Not readable by OCR either: page {', '.join(map(str, failed))}"
    return line + "."


def ocr_threshold(result: DocumentResult) -> float:
    """The low-confidence bar the result was read with (its settings), else today's default."""
    ingest = result.settings.get("ingest")
    value = ingest.get("ocr_min_confidence") if isinstance(ingest, dict) else None
    return float(value) if isinstance(value, int | float) else IngestOptions().ocr_min_confidence


def ocr_report(result: DocumentResult) -> dict[str, Any] | None:
    """Which pages were read by OCR, how confidently, and which to check by eye (None: none)."""
    ocr = [p for p in result.pages if p.ocr]
    if not ocr:
        return None
    threshold = ocr_threshold(result)
    read = [p.ocr_confidence for p in ocr if p.status == "ok" and p.ocr_confidence is not None]
    return {
        "pages": [p.page_no for p in ocr],
        "languages": sorted({p.ocr_language for p in ocr if p.ocr_language}),
        "mean_confidence": round(sum(read) / len(read), 3) if read else None,
        "min_confidence": threshold,
        "low_confidence_pages": [p.page_no for p in low_confidence_pages(ocr, threshold)],
        "failed_pages": [p.page_no for p in ocr if p.status != "ok"],
        "summary": ocr_summary(result.pages, threshold),
    }


def ocr_checks(result: DocumentResult) -> list[StageError]:
    """A warning per OCR'd page below the confidence bar, for the workpaper's Exceptions: not
    errors of the analysis (the result keeps its status), but pages to check by eye."""
    threshold = ocr_threshold(result)
    return [
        StageError(
            stage="ingest",
            code="ocr_low_confidence",
            page_no=p.page_no,
            message=f"page {p.page_no} was read by OCR with a mean word confidence of "
            f"{p.ocr_confidence or 0:.0%}, below {threshold:.0%} (ingest.ocr_min_confidence): "
            "words may be misread. Check its sentences against the page image.",
        )
        for p in low_confidence_pages(result.pages, threshold)
    ]
