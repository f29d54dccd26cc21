"""app.ingest: PDFs -> Document + Pages, on generated PDFs and (when present) the shared corpus."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pdfs
import pytest

from app.config import IngestOptions
from app.errors import (
    DamagedPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    GarbledTextError,
    IngestError,
    NeedsOcrError,
    NotPdfError,
    TooLargeError,
    TooManyPagesError,
)
from app.ingest import pdf_page_count, read_pdf
from app.ingest.files import content_kind
from app.records import Page

OPTIONS = IngestOptions(ocr="off")
"""The text-layer reader on its own: scans and glyph soup are refused as before OCR existed
(`--ocr off`); tests/app/test_ocr.py reads them by OCR."""


def body(pages: list[Page]) -> str:
    return "\n\n".join(p.text for p in pages)


def block_texts(page: Page, kind: str) -> list[str]:
    return [
        b.text if b.start < 0 else page.text[b.start : b.end] for b in page.blocks if b.kind == kind
    ]


# --------------------------------------------------------------------------------------------
# good documents


def test_ingest_clean_report_gives_headings_paragraphs_and_bullets(tmp_path: Path) -> None:
    pdf = pdfs.write_clean_report(tmp_path / "clean.pdf")
    doc, pages, errors = read_pdf(pdf, OPTIONS)

    assert errors == []
    assert doc is not None and doc.n_pages == 1 and doc.file_name == "clean.pdf"
    page = pages[0]
    assert page.status == "ok" and page.page_no == 1
    headings = block_texts(page, "heading")
    for heading, paragraphs in pdfs.REPORT_SECTIONS:
        assert heading in headings
        for paragraph in paragraphs:
            assert paragraph in page.text  # lines of a paragraph joined with single spaces
    items = block_texts(page, "list_item")
    assert [i.lstrip("• ") for i in items] == list(pdfs.REPORT_BULLETS)
    assert (
        page.text.index("Risk factors")
        < page.text.index("Going concern")
        < page.text.index("Outlook")
    )


def test_ingest_doc_id_is_the_sha256_of_the_bytes_for_paths_and_bytes(tmp_path: Path) -> None:
    pdf = pdfs.write_clean_report(tmp_path / "clean.pdf")
    data = pdf.read_bytes()
    doc_a, pages_a, _ = read_pdf(pdf, OPTIONS)
    doc_b, pages_b, _ = read_pdf(data, OPTIONS, file_name="upload.pdf")

    assert doc_a is not None and doc_b is not None
    assert doc_a.doc_id == doc_b.doc_id == hashlib.sha256(data).hexdigest()
    assert doc_b.file_name == "upload.pdf" and doc_b.size_bytes == len(data)
    assert [p.text for p in pages_a] == [p.text for p in pages_b]
    assert all(p.doc_id == doc_a.doc_id for p in pages_a)


def test_ingest_two_columns_are_read_column_by_column(tmp_path: Path) -> None:
    pdf = pdfs.write_two_column_page(tmp_path / "two_columns.pdf")
    _, pages, errors = read_pdf(pdf, OPTIONS)

    text = pages[0].text
    assert errors == []
    assert pdfs.TWO_COLUMN_HEADING in block_texts(pages[0], "heading")
    # each column's paragraph is contiguous: lines of the two columns are not interleaved
    assert pdfs.LEFT_COLUMN in text and pdfs.RIGHT_COLUMN in text
    assert (
        text.index(pdfs.TWO_COLUMN_HEADING)
        < text.index(pdfs.LEFT_COLUMN)
        < text.index(pdfs.RIGHT_COLUMN)
    )


def test_ingest_removes_running_headers_footers_and_page_numbers(tmp_path: Path) -> None:
    pdf = pdfs.write_running_headers(tmp_path / "running.pdf", n_pages=4)
    _, pages, errors = read_pdf(pdf, OPTIONS)

    assert errors == []
    for i, page in enumerate(pages, start=1):
        assert page.text == pdfs.RUNNING_BODY[i - 1]
        assert block_texts(page, "header") == [pdfs.RUNNING_HEADER]
        assert block_texts(page, "footer") == [pdfs.RUNNING_FOOTER]
        assert block_texts(page, "page_number") == [f"Page {i} of 4"]


def test_ingest_keeps_running_headers_in_text_when_asked(tmp_path: Path) -> None:
    pdf = pdfs.write_running_headers(tmp_path / "running.pdf", n_pages=3)
    _, pages, _ = read_pdf(pdf, IngestOptions(remove_running=False))

    assert all(pdfs.RUNNING_HEADER in p.text and pdfs.RUNNING_FOOTER in p.text for p in pages)
    assert all(b.kind not in ("header", "footer") for p in pages for b in p.blocks)


def test_ingest_page_range_reads_only_its_pages_and_still_finds_headers(tmp_path: Path) -> None:
    pdf = pdfs.write_running_headers(tmp_path / "running.pdf", n_pages=5)
    doc, pages, errors = read_pdf(pdf, OPTIONS, page_range=(2, 2))

    assert errors == [] and doc is not None and doc.n_pages == 5
    assert [p.page_no for p in pages] == [2]
    # one page alone cannot show what repeats: pages next to the range are looked at too
    assert pages[0].text == pdfs.RUNNING_BODY[1]
    assert block_texts(pages[0], "header") == [pdfs.RUNNING_HEADER]


def test_ingest_joins_hyphenated_line_breaks(tmp_path: Path) -> None:
    pdf = pdfs.write_hyphenated(tmp_path / "hyphen.pdf")
    _, pages, _ = read_pdf(pdf, OPTIONS)

    assert pages[0].text == pdfs.HYPHENATED_TEXT
    assert "finan-" not in pages[0].text and "through-" not in pages[0].text


def test_ingest_keeps_tables_out_of_the_text(tmp_path: Path) -> None:
    pdf = pdfs.write_table_page(tmp_path / "table.pdf")
    _, pages, errors = read_pdf(pdf, OPTIONS)

    page = pages[0]
    assert errors == []
    assert page.text == f"{pdfs.TABLE_INTRO}\n\n{pdfs.TABLE_OUTRO}"
    tables = block_texts(page, "table")
    assert len(tables) == 1
    rows = tables[0].split("\n")
    assert rows[0] == "2023\t2022"
    assert "Revenue\t1,234.5\t1,100.2" in rows and "Cost of sales\t(812.0)\t(790.4)" in rows
    # the table block sits between the paragraphs in reading order
    kinds = [b.kind for b in page.blocks]
    assert kinds == ["text", "table", "text"]


def test_ingest_reads_rotated_pages_upright(tmp_path: Path) -> None:
    pdf = pdfs.write_rotated_page(tmp_path / "rotated.pdf")
    _, pages, errors = read_pdf(pdf, OPTIONS)

    page = pages[0]
    assert errors == [] and page.rotation == 90
    assert page.text == " ".join(pdfs.ROTATED_LINES)
    tops = [line.bbox.top for line in page.lines]
    assert tops == sorted(tops)  # lines run down the page as the viewer shows it
    assert all(70 < line.bbox.x0 < 75 for line in page.lines)


@pytest.mark.parametrize(
    "writer",
    [
        pdfs.write_clean_report,
        pdfs.write_two_column_page,
        pdfs.write_hyphenated,
        pdfs.write_table_page,
        pdfs.write_running_headers,
        pdfs.write_rotated_page,
    ],
)
def test_ingest_line_and_block_spans_map_into_the_page_text(
    tmp_path: Path, writer: Callable[[Path], Path]
) -> None:
    _, pages, _ = read_pdf(writer(tmp_path / "doc.pdf"), OPTIONS)

    for page in pages:
        assert page.lines, "a page with text has lines"
        covered = 0
        for line in page.lines:
            assert 0 <= line.start < line.end <= len(page.text)
            assert line.start >= covered  # in reading order, never overlapping
            covered = line.end
            piece = page.text[line.start : line.end]
            assert piece == piece.strip() and "\n" not in piece
            assert 0 <= line.bbox.x0 < line.bbox.x1 <= page.width + 1
            assert 0 <= line.bbox.top < line.bbox.bottom <= page.height + 1
        body_blocks = [b for b in page.blocks if b.kind in ("text", "heading", "list_item")]
        assert "\n\n".join(page.text[b.start : b.end] for b in body_blocks) == page.text
        for b in page.blocks:
            if b.kind not in ("text", "heading", "list_item"):
                assert b.start == b.end == -1 and b.text


def test_ingest_page_packed_with_figures_is_read_line_by_line(tmp_path: Path) -> None:
    pdf = pdfs.write_dense_page(tmp_path / "dense.pdf")
    _, pages, errors = read_pdf(pdf, OPTIONS)

    page = pages[0]
    assert errors == [] and page.status == "ok"
    assert page.text == pdfs.DENSE_SENTENCE  # the figures are kept out of the text
    tables = block_texts(page, "table")
    assert len(tables) == 1 and len(tables[0].split()) >= 2000


def test_ingest_reads_safely_from_several_threads(tmp_path: Path) -> None:
    pdf = pdfs.write_two_column_page(tmp_path / "two_columns.pdf")
    expected = read_pdf(pdf, OPTIONS)[1][0].text
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(lambda _: read_pdf(pdf, OPTIONS)[1][0].text, range(8)))
    assert texts == [expected] * 8


def test_pdf_page_count_counts_without_reading(tmp_path: Path) -> None:
    assert pdf_page_count(pdfs.write_pages(tmp_path / "p.pdf", 3)) == 3
    assert pdf_page_count(pdfs.NOT_A_PDF) == 0


# --------------------------------------------------------------------------------------------
# bad input: each in both error modes


BAD_INPUTS: list[tuple[str, Callable[[Path], Path], type[IngestError], str]] = [
    ("encrypted", pdfs.write_encrypted, EncryptedPdfError, "password"),
    ("truncated", pdfs.write_truncated, DamagedPdfError, "damaged"),
    ("not_a_pdf", pdfs.write_not_a_pdf, NotPdfError, "HTML"),
    ("zero_pages", pdfs.write_zero_pages, EmptyPdfError, "no pages"),
    ("image_only", pdfs.write_image_only, NeedsOcrError, "OCR"),
    ("garbled", pdfs.write_garbled, GarbledTextError, "unreadable"),
]


@pytest.mark.parametrize(
    ("name", "writer", "error", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_ingest_bad_input_is_a_fatal_error_record(
    tmp_path: Path, name: str, writer: Callable[[Path], Path], error: type[IngestError], words: str
) -> None:
    pdf = writer(tmp_path / f"{name}.pdf")
    doc, pages, errors = read_pdf(pdf, OPTIONS)

    assert len(errors) == 1
    err = errors[0]
    assert err.fatal and err.stage == "ingest" and err.code == error.code
    assert err.message.startswith(f"{name}.pdf: ") and words in err.message
    assert all(p.text == "" for p in pages), "never an empty success"
    assert all(p.status != "ok" for p in pages)


@pytest.mark.parametrize(
    ("name", "writer", "error", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_ingest_bad_input_raises_in_raise_mode(
    tmp_path: Path, name: str, writer: Callable[[Path], Path], error: type[IngestError], words: str
) -> None:
    pdf = writer(tmp_path / f"{name}.pdf")
    with pytest.raises(error) as info:
        read_pdf(pdf, OPTIONS, on_error="raise")
    assert info.value.fatal and words in info.value.message


def test_ingest_scanned_and_garbled_pages_are_flagged_with_their_page_numbers(
    tmp_path: Path,
) -> None:
    doc, pages, errors = read_pdf(pdfs.write_image_only(tmp_path / "scan.pdf", 3), OPTIONS)
    assert doc is not None and doc.n_pages == 3
    assert [p.status for p in pages] == ["needs_ocr"] * 3
    assert "3 of 3 pages" in errors[0].message

    _, pages, _ = read_pdf(pdfs.write_garbled(tmp_path / "garbled.pdf", 2), OPTIONS)
    assert [p.status for p in pages] == ["unreadable", "unreadable"]


def test_ingest_one_bad_page_among_good_ones_leaves_the_document_partial(tmp_path: Path) -> None:
    pdf = pdfs.write_mixed(tmp_path / "mixed.pdf")
    doc, pages, errors = read_pdf(pdf, OPTIONS)

    assert doc is not None
    assert [p.status for p in pages] == ["ok", "needs_ocr", "unreadable"]
    assert pdfs.REPORT_SECTIONS[0][1][0] in pages[0].text
    assert [(e.code, e.page_no, e.fatal) for e in errors] == [
        ("needs_ocr", 2, False),
        ("garbled", 3, False),
    ]
    assert errors[0].message.startswith("mixed.pdf page 2: ")

    with pytest.raises(NeedsOcrError) as info:
        read_pdf(pdf, OPTIONS, on_error="raise")
    assert info.value.page_no == 2 and not info.value.fatal


def test_ingest_blank_pages_are_empty_not_errors(tmp_path: Path) -> None:
    pdf = pdfs.write_blank_pages(tmp_path / "blank.pdf", 3, text_on=(2,))
    _, pages, errors = read_pdf(pdf, OPTIONS)

    assert errors == []
    assert [p.status for p in pages] == ["empty", "ok", "empty"]
    assert pages[1].text == "Text on page 2."


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ingest_document_of_blank_pages_fails(tmp_path: Path, mode: str) -> None:
    pdf = pdfs.write_blank_pages(tmp_path / "blank.pdf", 2)
    if mode == "raise":
        with pytest.raises(EmptyPdfError):
            read_pdf(pdf, OPTIONS, on_error="raise")
        return
    _, pages, errors = read_pdf(pdf, OPTIONS)
    assert [(e.code, e.fatal) for e in errors] == [("no_pages", True)]
    assert "no text and no images" in errors[0].message
    assert [p.status for p in pages] == ["empty", "empty"]


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ingest_truncated_file_pdfium_can_repair_is_read_with_a_warning(
    tmp_path: Path, mode: str
) -> None:
    pdf = pdfs.write_truncated(tmp_path / "cut.pdf", keep=0.995)  # only the trailer is lost
    if mode == "raise":
        with pytest.raises(DamagedPdfError) as info:
            read_pdf(pdf, OPTIONS, on_error="raise")
        assert not info.value.fatal
        return
    doc, pages, errors = read_pdf(pdf, OPTIONS)
    assert doc is not None and [p.status for p in pages] == ["ok", "ok", "ok"]
    assert [(e.code, e.fatal) for e in errors] == [("damaged", False)]
    assert "truncated" in errors[0].message


def test_ingest_reads_encrypted_pdf_with_its_password(tmp_path: Path) -> None:
    pdf = pdfs.write_encrypted(tmp_path / "locked.pdf")
    doc, pages, errors = read_pdf(pdf, IngestOptions(password="userpass"))

    assert errors == [] and doc is not None and doc.encrypted
    assert pdfs.REPORT_SECTIONS[0][1][0] in pages[0].text


def test_ingest_wrong_password_says_so(tmp_path: Path) -> None:
    pdf = pdfs.write_encrypted(tmp_path / "locked.pdf")
    _, _, errors = read_pdf(pdf, IngestOptions(password="guess"))
    assert errors[0].code == "encrypted" and "not accepted" in errors[0].message

    with pytest.raises(EncryptedPdfError):
        read_pdf(pdf, IngestOptions(password="guess"), on_error="raise")


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ingest_refuses_files_over_the_byte_limit(tmp_path: Path, mode: str) -> None:
    pdf = pdfs.write_pages(tmp_path / "big.pdf", 2)
    options = IngestOptions(max_bytes=pdf.stat().st_size - 1)
    if mode == "raise":
        with pytest.raises(TooLargeError):
            read_pdf(pdf, options, on_error="raise")
        return
    doc, pages, errors = read_pdf(pdf, options)
    assert doc is None and pages == []
    assert errors[0].code == "too_large" and errors[0].fatal
    assert "SESAME_INGEST__MAX_BYTES" in errors[0].message


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ingest_refuses_documents_over_the_page_limit(tmp_path: Path, mode: str) -> None:
    pdf = pdfs.write_pages(tmp_path / "long.pdf", 3)
    options = IngestOptions(max_pages=2)
    if mode == "raise":
        with pytest.raises(TooManyPagesError):
            read_pdf(pdf, options, on_error="raise")
        return
    doc, pages, errors = read_pdf(pdf, options)
    assert doc is not None and doc.n_pages == 3 and pages == []
    assert errors[0].code == "too_many_pages" and "3 pages" in errors[0].message


def test_ingest_page_limit_applies_to_the_range_read(tmp_path: Path) -> None:
    pdf = pdfs.write_pages(tmp_path / "long.pdf", 5)
    options = IngestOptions(max_pages=2)

    _, pages, errors = read_pdf(pdf, options, page_range=(3, 4))
    assert errors == [] and [p.page_no for p in pages] == [3, 4]
    assert "This is page 3 of the test document." in pages[0].text

    _, _, errors = read_pdf(pdf, options, page_range=(1, 3))
    assert errors[0].code == "too_many_pages" and "pages 1-3" in errors[0].message


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ingest_empty_bytes_are_not_a_pdf(mode: str) -> None:
    if mode == "raise":
        with pytest.raises(NotPdfError):
            read_pdf(b"", OPTIONS, file_name="empty.pdf", on_error="raise")
        return
    doc, _, errors = read_pdf(b"", OPTIONS, file_name="empty.pdf")
    assert doc is None and errors[0].code == "not_pdf" and "0 bytes" in errors[0].message


def test_content_kind_tells_pdf_html_zip_and_the_rest(tmp_path: Path) -> None:
    pdf = pdfs.write_clean_report(tmp_path / "clean.pdf").read_bytes()
    html = pdfs.write_not_a_pdf(tmp_path / "page.pdf").read_bytes()
    assert content_kind(pdf) == "pdf"
    assert content_kind(b"junk before the header %PDF-1.7\n") == "pdf"
    assert content_kind(html) == "html"
    assert content_kind(b"  <?xml version='1.0'?><html xmlns='x'>") == "html"
    assert content_kind(b"PK\x03\x04" + bytes(40)) == "zip"
    assert content_kind(b"hello") == "unknown"
    assert content_kind(b"") == "empty"


# --------------------------------------------------------------------------------------------
# the shared corpus of real reports (skipped when ../shared is absent)


@pytest.mark.corpus
def test_corpus_philips_two_columns_are_not_interleaved(corpus: Path) -> None:
    _, pages, errors = read_pdf(
        corpus / "philips_2018_annual_report.pdf", OPTIONS, page_range=(30, 30)
    )
    text = pages[0].text
    assert errors == []
    # a sentence that runs over three lines of the left column, next to the right column
    assert (
        "Total debt outstanding at the end of 2018 was EUR 4,821 million, compared with "
        "EUR 4,715 million at the end of 2017."
    ) in text
    assert "In 2018, total debt increased by EUR 105 million compared to 2017." in text
    assert "4.1.8 Liquidity position" in block_texts(pages[0], "heading")
    # running header and footer, and the table of figures, are out of the text
    assert "Annual Report 2018" not in text and "Financial performance" not in text
    assert "Net available liquidity resources" not in text
    assert any("Net available liquidity resources" in t for t in block_texts(pages[0], "table"))


@pytest.mark.corpus
def test_corpus_amd_words_are_separated_and_statements_are_tables(corpus: Path) -> None:
    _, pages, errors = read_pdf(corpus / "amd_2022_annual_report.pdf", OPTIONS, page_range=(68, 68))
    page = pages[0]
    assert errors == []
    assert "Consolidated Statements of Cash Flows" in block_texts(page, "heading")
    assert "ConsolidatedStatementsofCashFlows" not in page.text
    tables = block_texts(page, "table")
    assert any("Net income\t$ 1,320\t$ 3,162\t$ 2,490" in t for t in tables)
    assert "1,320" not in page.text


@pytest.mark.corpus
@pytest.mark.parametrize("mode", ["record", "raise"])
def test_corpus_mcdonalds_glyph_soup_is_flagged_garbled(corpus: Path, mode: str) -> None:
    pdf = corpus / "mcdonalds_2022q4_earnings_release.pdf"
    if mode == "raise":
        with pytest.raises(GarbledTextError):
            read_pdf(pdf, OPTIONS, on_error="raise")
        return
    doc, pages, errors = read_pdf(pdf, OPTIONS)
    assert doc is not None and doc.n_pages == 9
    assert [e.code for e in errors] == ["garbled"] and errors[0].fatal
    assert all(p.status == "unreadable" and p.text == "" for p in pages)


@pytest.mark.corpus
def test_corpus_fomc_scan_with_ocr_layer_reads_as_text(corpus: Path) -> None:
    _, pages, errors = read_pdf(
        corpus / "fomc_minutes_1978-09-19_scan_ocr.pdf", OPTIONS, page_range=(1, 3)
    )
    assert errors == [] and all(p.status == "ok" for p in pages)
    assert "Federal Open Market Committee" in body(pages)


@pytest.mark.corpus
def test_corpus_kramp_magazine_columns_keep_sentences_whole(corpus: Path) -> None:
    _, pages, _ = read_pdf(corpus / "kramp_2017_jaarverslag_nl.pdf", OPTIONS, page_range=(6, 6))
    text = pages[0].text
    assert (
        "Er komt dus geen ‘big bang’. “We moeten de motor vervangen van een rijdende trein."
    ) in text
    assert "Innovatie" in block_texts(pages[0], "heading")
    assert "Jaarverslag 2017 Kramp Groep" not in text


@pytest.mark.corpus
def test_corpus_rotated_budget_table_reads_upright(corpus: Path) -> None:
    _, pages, errors = read_pdf(corpus / "edge" / "rotated_us_budget_table_s4.pdf", OPTIONS)
    page = pages[0]
    assert errors == [] and page.rotation == 90 and page.width > page.height
    assert "Adjusted Baseline by Category" in page.text
    assert any("Social Security\t725\t773\t820" in t for t in block_texts(page, "table"))


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("file", "error"),
    [
        ("encrypted_india_health_financing.pdf", EncryptedPdfError),
        ("not_a_pdf_html_fomc_19360318.pdf", NotPdfError),
        ("truncated_intel_8k_2023-08-16.pdf", DamagedPdfError),
        ("scanned_medicare_transmittal765.pdf", NeedsOcrError),
    ],
)
@pytest.mark.parametrize("mode", ["record", "raise"])
def test_corpus_edge_files_fail_with_a_clear_error(
    corpus: Path, file: str, error: type[IngestError], mode: str
) -> None:
    pdf = corpus / "edge" / file
    if mode == "raise":
        with pytest.raises(error):
            read_pdf(pdf, OPTIONS, on_error="raise")
        return
    _, pages, errors = read_pdf(pdf, OPTIONS)
    assert [(e.code, e.fatal) for e in errors] == [(error.code, True)]
    assert errors[0].message.startswith(file)
    assert all(p.text == "" for p in pages)


@pytest.mark.corpus
def test_corpus_encrypted_file_opens_with_its_password(corpus: Path) -> None:
    pdf = corpus / "edge" / "encrypted_india_health_financing.pdf"
    doc, pages, errors = read_pdf(pdf, IngestOptions(password="userpass"))
    assert errors == [] and doc is not None and doc.encrypted
    assert pages[0].status == "ok" and pages[0].blocks
