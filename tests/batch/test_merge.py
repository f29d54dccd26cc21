"""Merging page-range parts into one result, built by hand as records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.records import (
    Document,
    DocumentResult,
    Explanation,
    Page,
    Score,
    Sentence,
    StageError,
    Stamp,
)
from batch.merge import merge_parts, trim_part
from batch.plan import InputFile, split_parts

DOC = Document(doc_id="d" * 64, file_name="q3.pdf", size_bytes=10, n_pages=6)
STAMP = Stamp(
    model_name="m",
    model_version="1",
    model_digest="a" * 64,
    code_version="0",
    run_id="r",
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
)
PARTS = split_parts(
    InputFile(path=Path("/q3.pdf"), source="q3.pdf", sha256=DOC.doc_id, size_bytes=10, n_pages=6), 3
)


def part_result(
    pages: range,
    *,
    section: str | None = None,
    errors: tuple = (),
    status: str = "ok",
    heading_on: int | None = None,
) -> DocumentResult:
    """A part as a worker returns it before trimming: one sentence per page read."""
    sentences, scores, explanations = [], [], []
    current = section
    for i, page_no in enumerate(pages):
        if page_no == heading_on:
            current = f"Heading {page_no}"
        sentences.append(
            Sentence(
                doc_id=DOC.doc_id,
                index=i,
                page_no=page_no,
                start=0,
                end=5,
                text=f"Sentence on page {page_no}.",
                section=current,
            )
        )
        scores.append(
            Score(
                sentence_index=i,
                label="positive" if page_no % 2 else "negative",
                probabilities={"positive": 0.5, "negative": 0.3, "neutral": 0.2},
                confidence=0.5,
            )
        )
        explanations.append(
            Explanation(
                sentence_index=i,
                label="positive",
                words=("a",),
                values=(0.1,),
                base_value=0.4,
                output_value=0.5,
                additivity_error=0.0,
            )
        )
    return DocumentResult(
        source="q3.pdf",
        document=DOC,
        status=status,  # type: ignore[arg-type]
        pages=tuple(Page(doc_id=DOC.doc_id, page_no=p, width=1, height=1, text="x") for p in pages),
        sentences=tuple(sentences),
        scores=tuple(scores),
        explanations=tuple(explanations),
        errors=errors,
        stamp=STAMP,
        timings={"ingest": 1.0, "scoring": 2.0},
    )


def test_trim_keeps_only_the_parts_own_pages_and_their_errors() -> None:
    page_error = StageError(stage="ingest", code="needs_ocr", page_no=4, message="p4")
    doc_error = StageError(stage="ingest", code="damaged", message="truncated")
    raw = part_result(range(3, 8), errors=(page_error, doc_error))
    trimmed = trim_part(raw, PARTS[1])  # keeps pages 4-6 of 3-7
    assert [p.page_no for p in trimmed.pages] == [4, 5, 6]
    assert [s.page_no for s in trimmed.sentences] == [4, 5, 6]
    assert [s.sentence_index for s in trimmed.scores] == [1, 2, 3]
    assert [e.sentence_index for e in trimmed.explanations] == [1, 2, 3]
    assert trimmed.errors == (page_error, doc_error)
    outside = trim_part(raw, PARTS[0])  # keeps 1-3: only page 3 is in what was read
    assert [s.page_no for s in outside.sentences] == [3]
    assert outside.errors == (doc_error,)


def test_merge_reindexes_sentences_densely_in_page_order_with_their_scores() -> None:
    first = trim_part(part_result(range(1, 5)), PARTS[0])
    second = trim_part(part_result(range(3, 7)), PARTS[1])
    merged = merge_parts([second, first], [PARTS[1], PARTS[0]])  # any order in
    assert [(s.index, s.page_no) for s in merged.sentences] == [(i, i + 1) for i in range(6)]
    assert [s.sentence_index for s in merged.scores] == list(range(6))
    assert [s.label for s in merged.scores] == ["positive", "negative"] * 3
    assert [e.sentence_index for e in merged.explanations] == list(range(6))
    assert [p.page_no for p in merged.pages] == list(range(1, 7))
    assert merged.status == "ok" and merged.document == DOC
    assert merged.timings == {"ingest": 2.0, "scoring": 4.0}


def test_merge_carries_the_section_into_the_next_part_until_its_first_heading() -> None:
    first = trim_part(part_result(range(1, 5), heading_on=2), PARTS[0])
    second = trim_part(part_result(range(3, 7), heading_on=6), PARTS[1])
    merged = merge_parts([first, second], PARTS)
    assert [s.section for s in merged.sentences] == [
        None,
        "Heading 2",
        "Heading 2",
        "Heading 2",
        "Heading 2",
        "Heading 6",
    ]


def test_a_part_that_failed_alone_makes_the_document_partial_with_its_pages_named() -> None:
    fatal = StageError(
        stage="ingest",
        code="needs_ocr",
        fatal=True,
        message="q3.pdf: a scanned document: 3 of 3 pages are images.",
    )
    first = trim_part(part_result(range(1, 5)), PARTS[0])
    failed = part_result(range(0), errors=(fatal,), status="failed")
    merged = merge_parts([first, failed], PARTS)
    assert merged.status == "partial"
    (error,) = merged.errors
    assert not error.fatal
    assert error.message.startswith("q3.pdf pages 4-6: a scanned document")
    assert len(merged.sentences) == 3


def test_when_every_part_fails_the_document_fails_and_each_error_is_said_once() -> None:
    fatal = StageError(stage="ingest", code="too_many_pages", fatal=True, message="too long")
    parts = [part_result(range(0), errors=(fatal,), status="failed") for _ in PARTS]
    merged = merge_parts(parts, PARTS)
    assert merged.status == "failed"
    assert merged.errors == (fatal,)


def test_no_sentences_in_one_part_is_not_said_of_a_document_with_sentences() -> None:
    none = StageError(stage="sentences", code="no_sentences", message="q3.pdf: no sentences")
    first = trim_part(part_result(range(1, 5)), PARTS[0])
    tables_only = part_result(range(0), errors=(none,), status="partial")
    assert merge_parts([first, tables_only], PARTS).errors == ()
    assert merge_parts([tables_only, tables_only], PARTS).errors == (none,)


def test_merge_refuses_a_missing_part() -> None:
    first = trim_part(part_result(range(1, 5)), PARTS[0])
    with pytest.raises(ValueError, match="parts"):
        merge_parts([first, first], [PARTS[0], PARTS[0]])
