"""app.ingest.ocr: scans and unreadable text layers read by Tesseract, on generated scans (reportlab
PDFs rendered to image-only PDFs) and, when present, the shared corpus."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pdfs
import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.config import IngestOptions, SentenceOptions, load_settings
from app.errors import NeedsOcrError, OcrFailedError, OcrUnavailableError
from app.ingest import read_pdf
from app.ingest.ocr import tessdata_dir
from app.records import BBox, Page, Sentence
from app.sentences import make_nlp, split_sentences
from app.store import ResultStore

AUTO = IngestOptions()
OFF = IngestOptions(ocr="off")


@pytest.fixture(scope="module")
def nlp():
    return make_nlp(SentenceOptions())


def sentences(pages: list[Page], nlp) -> list[Sentence]:
    return split_sentences(pages, SentenceOptions(), nlp)


def near(got: BBox, want: BBox, share: float) -> bool:
    """Within `share` of the line's height of where the text layer puts it, on every side."""
    tol = share * (want.bottom - want.top)
    return all(
        abs(getattr(got, k) - getattr(want, k)) <= tol for k in ("x0", "top", "x1", "bottom")
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The clean reportlab report and its scan (rendered at 200 dpi, no text layer)."""
    folder = tmp_path_factory.mktemp("report")
    pdf = pdfs.write_clean_report(folder / "report.pdf")
    return pdf, pdfs.write_rendered_scan(pdf, folder / "scan.pdf")


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ocr_scanned_report_comes_back_with_its_sentences_and_boxes(report, nlp, mode) -> None:
    pdf, scan = report
    _, text_pages, _ = read_pdf(pdf, OFF)
    doc, pages, errors = read_pdf(scan, AUTO, on_error=mode)

    assert errors == []
    assert doc is not None and doc.n_pages == 1
    page = pages[0]
    assert page.status == "ok" and page.ocr and page.ocr_language == "eng"
    assert page.ocr_confidence is not None and page.ocr_confidence > 0.85
    truth = {s.text: s for s in sentences(text_pages, nlp)}
    read = {s.text: s for s in sentences(pages, nlp)}
    assert all(s.ocr for s in read.values())
    recovered = [t for t in truth if t in read]
    assert len(recovered) >= 0.9 * len(truth), sorted(set(truth) - set(read))
    for text in recovered:
        want, got = truth[text], read[text]
        assert got.kind == want.kind and got.page_no == 1
        assert len(got.boxes) == len(want.boxes)
        # each line's box where the text was drawn, to under half a line's height
        assert all(near(g, w, 0.4) for g, w in zip(got.boxes, want.boxes, strict=True)), text
    assert "Risk factors" in [s.text for s in read.values() if s.kind == "heading"]


def test_ocr_mixed_document_reads_only_its_image_pages(tmp_path: Path, nlp) -> None:
    heading, paragraphs = pdfs.REPORT_SECTIONS[1]
    scanned = pdfs.page_images(pdfs.write_text_page(tmp_path / "p2.pdf", heading, paragraphs))
    pdf = pdfs.write_image_pages(
        tmp_path / "mixed.pdf",
        [pdfs.REPORT_SECTIONS[0][1], scanned[0], pdfs.REPORT_SECTIONS[2][1]],
    )
    _, pages, errors = read_pdf(pdf, AUTO)

    assert errors == []
    assert [(p.status, p.ocr) for p in pages] == [("ok", False), ("ok", True), ("ok", False)]
    assert pages[0].ocr_confidence is None and pages[1].ocr_confidence is not None
    assert paragraphs[0] in pages[1].text
    flags = {s.page_no: s.ocr for s in sentences(pages, nlp)}
    assert flags == {1: False, 2: True, 3: False}


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ocr_off_keeps_todays_needs_ocr_refusal(report, mode) -> None:
    _, scan = report
    if mode == "raise":
        with pytest.raises(NeedsOcrError, match="needs OCR"):
            read_pdf(scan, OFF, on_error="raise")
        return
    _, pages, errors = read_pdf(scan, OFF)
    assert [p.status for p in pages] == ["needs_ocr"] and not pages[0].ocr
    assert [(e.code, e.fatal) for e in errors] == [("needs_ocr", True)]
    assert errors[0].message == (
        "scan.pdf: a scanned document: 1 of 1 pages are images without a text layer (needs "
        "OCR); no text read. Run OCR on the file (e.g. ocrmypdf) and submit it again."
    )


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ocr_blank_and_noise_pages_are_reported_not_dropped(tmp_path: Path, mode) -> None:
    pdf = pdfs.write_image_pages(
        tmp_path / "bad_scan.pdf",
        [pdfs.REPORT_SECTIONS[0][1], pdfs.blank_image(), pdfs.noise_image()],
    )
    if mode == "raise":
        with pytest.raises(OcrFailedError) as info:
            read_pdf(pdf, AUTO, on_error="raise")
        assert info.value.page_no == 2 and not info.value.fatal
        return
    doc, pages, errors = read_pdf(pdf, AUTO)

    assert [p.page_no for p in pages] == [1, 2, 3]
    assert [p.status for p in pages] == ["ok", "ocr_failed", "ocr_failed"]
    assert pages[1].ocr and pages[2].ocr and pages[1].text == pages[2].text == ""
    assert [(e.code, e.page_no, e.fatal) for e in errors] == [
        ("ocr_failed", 2, False),
        ("ocr_failed", 3, False),
    ]
    assert errors[0].message.startswith("bad_scan.pdf page 2: the page image is blank")
    assert errors[1].message.startswith("bad_scan.pdf page 3: OCR ")


def test_ocr_a_document_of_noise_only_is_failed(tmp_path: Path) -> None:
    pdf = pdfs.write_image_pages(tmp_path / "fax.pdf", [pdfs.noise_image(1), pdfs.noise_image(2)])
    _, pages, errors = read_pdf(pdf, AUTO)

    assert [p.status for p in pages] == ["ocr_failed", "ocr_failed"]
    assert [(e.code, e.fatal) for e in errors] == [("ocr_failed", True)]
    assert "none of its 2 pages could be read" in errors[0].message


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ocr_without_tesseract_data_names_the_package_and_keeps_the_needs_ocr_message(
    report, tmp_path: Path, mode
) -> None:
    _, scan = report
    options = IngestOptions(tessdata_dir=tmp_path / "no-tessdata")
    if mode == "raise":
        with pytest.raises(OcrUnavailableError, match="apt-get install tesseract-ocr"):
            read_pdf(scan, options, on_error="raise")
        return
    _, pages, errors = read_pdf(scan, options)

    assert [p.status for p in pages] == ["needs_ocr"]
    assert [(e.code, e.fatal) for e in errors] == [("ocr_unavailable", False), ("needs_ocr", True)]
    assert "`apt-get install tesseract-ocr tesseract-ocr-eng`" in errors[0].message
    assert str(tmp_path / "no-tessdata") in errors[0].message
    assert errors[1].message.startswith("scan.pdf: a scanned document: 1 of 1 pages")


@pytest.fixture
def english_only(tmp_path: Path) -> Path:
    """A tessdata folder holding only English (the installed file, linked)."""
    installed = tessdata_dir(IngestOptions())
    assert installed is not None, "make sysdeps installs Tesseract's data"
    folder = tmp_path / "tessdata-eng"
    folder.mkdir()
    (folder / "eng.traineddata").symlink_to(installed / "eng.traineddata")
    return folder


@pytest.mark.parametrize("mode", ["record", "raise"])
def test_ocr_language_pack_missing_names_its_package(report, english_only, mode) -> None:
    _, scan = report
    options = IngestOptions(tessdata_dir=english_only, ocr_languages="deu")
    if mode == "raise":
        with pytest.raises(OcrUnavailableError, match="tesseract-ocr-deu"):
            read_pdf(scan, options, on_error="raise")
        return
    _, pages, errors = read_pdf(scan, options)
    assert [p.status for p in pages] == ["needs_ocr"]
    assert errors[0].code == "ocr_unavailable" and "deu" in errors[0].message


@pytest.fixture(scope="module")
def dutch_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dutch")
    page = pdfs.write_text_page(folder / "nl.pdf", pdfs.DUTCH_HEADING, pdfs.DUTCH_PARAGRAPHS)
    return pdfs.write_rendered_scan(page, folder / "jaarverslag.pdf")


def test_ocr_reads_a_dutch_scan_in_dutch(dutch_scan: Path) -> None:
    _, pages, errors = read_pdf(dutch_scan, AUTO)

    assert errors == []
    assert pages[0].ocr_language == "nld"
    assert pdfs.DUTCH_PARAGRAPHS[0] in pages[0].text


def test_ocr_language_comes_from_the_text_layer_when_there_is_one(tmp_path: Path) -> None:
    scanned = pdfs.page_images(
        pdfs.write_text_page(tmp_path / "p.pdf", pdfs.DUTCH_HEADING, pdfs.DUTCH_PARAGRAPHS[1:])
    )
    pdf = pdfs.write_image_pages(tmp_path / "nl.pdf", [pdfs.DUTCH_PARAGRAPHS, scanned[0]])
    _, pages, errors = read_pdf(pdf, AUTO)

    assert errors == []
    assert [(p.ocr, p.ocr_language) for p in pages] == [(False, None), (True, "nld")]


def test_ocr_without_the_documents_language_reads_english_and_says_so(
    dutch_scan: Path, english_only: Path
) -> None:
    _, pages, errors = read_pdf(dutch_scan, IngestOptions(tessdata_dir=english_only))

    assert pages[0].status == "ok" and pages[0].ocr_language == "eng"
    assert [(e.code, e.fatal) for e in errors] == [("ocr_language", False)]
    assert "Dutch" in errors[0].message and "tesseract-ocr-nld" in errors[0].message


def test_ocr_force_reads_a_text_pdf_by_ocr(report) -> None:
    pdf, _ = report
    _, pages, errors = read_pdf(pdf, IngestOptions(ocr="force"))

    assert errors == [] and pages[0].ocr and pages[0].status == "ok"
    assert pdfs.REPORT_SECTIONS[1][1][0] in pages[0].text


def test_ocr_reads_an_unreadable_text_layer_from_the_page_image(tmp_path: Path) -> None:
    # what fonts without a Unicode map give: the page shows words, its text layer is soup
    heading, paragraphs = pdfs.REPORT_SECTIONS[0]
    image = pdfs.page_images(pdfs.write_text_page(tmp_path / "p.pdf", heading, paragraphs))[0]
    pdf = pdfs.write_soup_over_image(tmp_path / "soup.pdf", image)
    _, off_pages, _ = read_pdf(pdf, OFF)
    _, pages, errors = read_pdf(pdf, AUTO)

    assert off_pages[0].status == "unreadable"
    assert errors == [] and pages[0].status == "ok" and pages[0].ocr
    assert paragraphs[1] in pages[0].text


def test_ocr_pages_keep_reading_order_running_headers_and_tables(tmp_path: Path) -> None:
    columns = pdfs.write_rendered_scan(
        pdfs.write_two_column_page(tmp_path / "cols.pdf"), tmp_path / "cols_scan.pdf"
    )
    _, pages, _ = read_pdf(columns, AUTO)
    text = pages[0].text
    assert pdfs.LEFT_COLUMN in text and pdfs.RIGHT_COLUMN in text
    assert text.index(pdfs.LEFT_COLUMN) < text.index(pdfs.RIGHT_COLUMN)

    running = pdfs.write_rendered_scan(
        pdfs.write_running_headers(tmp_path / "run.pdf"), tmp_path / "run_scan.pdf"
    )
    _, pages, errors = read_pdf(running, AUTO)
    assert errors == [] and all(p.ocr for p in pages)
    for i, page in enumerate(pages):
        assert pdfs.RUNNING_BODY[i] in page.text
        assert pdfs.RUNNING_HEADER not in page.text and pdfs.RUNNING_FOOTER not in page.text
        kinds = {b.kind for b in page.blocks}
        assert {"header", "footer", "page_number"} <= kinds, kinds

    table = pdfs.write_rendered_scan(
        pdfs.write_table_page(tmp_path / "table.pdf"), tmp_path / "table_scan.pdf"
    )
    _, pages, _ = read_pdf(table, AUTO)
    tables = [b.text for b in pages[0].blocks if b.kind == "table"]
    assert any("Revenue\t1,234.5\t1,100.2" in t for t in tables), tables
    assert "1,234.5" not in pages[0].text


@pytest.mark.corpus
@pytest.mark.parametrize("mode", ["record", "raise"])
def test_corpus_mcdonalds_glyph_soup_is_read_by_ocr(corpus: Path, mode: str) -> None:
    pdf = corpus / "mcdonalds_2022q4_earnings_release.pdf"
    _, pages, errors = read_pdf(pdf, AUTO, page_range=(1, 2), on_error=mode)
    assert errors == []
    assert [(p.status, p.ocr) for p in pages] == [("ok", True), ("ok", True)]
    assert "FOURTH QUARTER AND FULL YEAR 2022 RESULTS" in pages[0].text
    assert all(p.ocr_confidence > 0.85 for p in pages)


@pytest.mark.corpus
def test_corpus_medicare_scan_is_read_by_ocr(corpus: Path) -> None:
    _, pages, errors = read_pdf(corpus / "edge" / "scanned_medicare_transmittal765.pdf", AUTO)
    assert errors == [] and [p.status for p in pages] == ["ok"] * 4
    assert "Hospital Outpatient Partial Hospitalization Services" in pages[0].text


def test_ocr_option_reaches_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SESAME_INGEST__OCR", "force")
    monkeypatch.setenv("SESAME_INGEST__OCR_LANGUAGES", "nld+eng")
    settings = load_settings()
    assert settings.ingest.ocr == "force" and settings.ingest.ocr_languages == "nld+eng"


def test_analyze_reads_a_scan_by_ocr_and_says_so(report, tmp_path: Path, tiny_model_dir) -> None:
    _, scan = report
    out = tmp_path / "out"
    args = ["analyze", str(scan), "--out", str(out), "--model-dir", str(tiny_model_dir)]
    result = CliRunner().invoke(cli_app, [*args, "--explain", "none", "--no-monitor"])

    assert result.exit_code == 0, result.output
    data = json.loads((out / "scan.json").read_text())
    assert data["status"] == "ok"
    assert data["pages"][0]["ocr"] is True and data["pages"][0]["ocr_confidence"] > 0.85
    assert data["ocr"]["pages"] == [1] and data["ocr"]["low_confidence_pages"] == []
    assert data["sentences"] and all(s["ocr"] for s in data["sentences"])
    workbook = openpyxl.load_workbook(out / "scan.xlsx")
    cover = {r[0]: r[1] for r in workbook["Cover"].values if r and r[0]}
    assert cover["OCR"].startswith("1 of 1 pages read by OCR; language eng")
    header = next(r for r in workbook["Sentences"].values if r[0] == "sentence id")
    assert "OCR" in header
    # the store keeps the new fields
    store = ResultStore.from_settings(load_settings())
    stored = store.load_result(store.list_results()[0].result_id)
    store.dispose()
    assert stored is not None and stored.pages[0].ocr and stored.pages[0].ocr_language == "eng"
    assert stored.pages[0].ocr_confidence == data["pages"][0]["ocr_confidence"]
    assert all(s.ocr for s in stored.sentences)

    off = CliRunner().invoke(
        cli_app, [*args, "--explain", "none", "--no-store", "--ocr", "off", "--out", str(out)]
    )
    assert off.exit_code == 1
    data = json.loads((out / "scan.json").read_text())
    assert data["status"] == "failed" and data["errors"][0]["code"] == "needs_ocr"
    assert data["ocr"] is None


def test_ocr_boxes_of_a_rotated_page_are_upright_like_the_text_layers(tmp_path: Path) -> None:
    pdf = pdfs.write_rotated_page(tmp_path / "rotated.pdf")
    _, text_pages, _ = read_pdf(pdf, OFF)
    _, pages, errors = read_pdf(pdf, IngestOptions(ocr="force"))

    assert errors == [] and pages[0].ocr and pages[0].rotation == text_pages[0].rotation == 90
    assert pages[0].text == text_pages[0].text
    for got, want in zip(pages[0].lines, text_pages[0].lines, strict=True):
        assert near(got.bbox, want.bbox, 0.4)
