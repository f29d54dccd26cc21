"""HTML and inline-XBRL filings: text as a reader sees it, pages from CSS page breaks, tagged
facts linked to sentences, ESEF packages, and bad input reported as for PDFs.

Every input is generated (tests/ixbrl.py); none of it is a real filing.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from ixbrl import (
    BOLD,
    END,
    HIDDEN_TEXT,
    INVISIBLE_TEXT,
    PAGE_1,
    P,
    esef_package,
    esef_report,
    fact,
    filing,
    write_filing,
)
from pdfs import write_clean_report, write_not_a_pdf

from app.config import IngestOptions, SentenceOptions
from app.errors import (
    EmptyDocumentError,
    IngestError,
    MalformedMarkupError,
    NoReportError,
    NotPdfError,
    TooLargeError,
    TooManyPagesError,
    UnsupportedFileError,
)
from app.ingest import link_sentences, page_count, read_document, read_pdf, reader_kind
from app.ingest.ixbrl import TransformError, number_value, text_value
from app.records import Page, Sentence
from app.sentences import split_sentences

OPTIONS = IngestOptions()


def read(data: bytes, name: str = "acme-10k.htm", **kw):
    """(document, pages, errors, sentences) of a generated filing."""
    document, pages, errors = read_document(data, kw.pop("options", OPTIONS), file_name=name, **kw)
    sentences = link_sentences(split_sentences(pages, SentenceOptions()), pages)
    return document, pages, errors, sentences


def by_text(sentences: list[Sentence], start: str) -> Sentence:
    found = [s for s in sentences if s.text.startswith(start)]
    assert len(found) == 1, [s.text for s in sentences]
    return found[0]


# ---------------------------------------------------------------------------------------------
# what a reader sees


def test_hidden_header_and_display_none_text_never_reach_the_text() -> None:
    document, pages, errors, sentences = read(filing())
    assert errors == [] and document is not None
    everything = " ".join(p.text for p in pages) + " ".join(b.text for p in pages for b in p.blocks)
    assert HIDDEN_TEXT not in everything and INVISIBLE_TEXT not in everything
    assert not any(HIDDEN_TEXT in s.text or INVISIBLE_TEXT in s.text for s in sentences)
    # the header's facts are not facts shown in the filing either
    concepts = {f.concept for p in pages for f in p.facts}
    assert "dei:AmendmentFlag" not in concepts and "us-gaap:Revenues" in concepts
    assert document.title == "acme-20241231"
    assert document.producer == "XBRL Document Created with a test generator"


def test_a_fact_inside_a_sentence_carries_its_value_scale_sign_unit_and_period() -> None:
    _, _, _, sentences = read(filing())
    grew = by_text(sentences, "Revenues increased 16% to $39.0 billion")
    (revenue,) = grew.facts
    assert (revenue.concept, revenue.value, revenue.unit) == (
        "us-gaap:Revenues",
        "39000000000",
        "USD",
    )
    assert (revenue.period_start, revenue.period_end) == ("2024-01-01", "2024-12-31")
    assert revenue.period_label().startswith("FY2024")
    assert grew.text[revenue.start : revenue.end] == "39.0" == revenue.text
    assert revenue.describe().startswith("us-gaap:Revenues = 39000000000 USD, FY2024")

    loss = by_text(sentences, "The operating loss of the services segment")
    operating, widgets = loss.facts
    assert (operating.value, operating.scale) == ("-1234000000", 6)  # sign="-" and scale 6
    assert loss.text[operating.start : operating.end] == "1,234"
    assert widgets.value == "12500000000"
    assert widgets.dimensions == {"srt:ProductOrServiceAxis": "acme:WidgetsMember"}

    none = by_text(sentences, "No goodwill impairment was recorded")
    zero, life = none.facts
    assert (zero.value, zero.format) == ("0", "ixt:fixed-zero")
    assert (life.value, life.numeric, life.text) == ("P10Y", False, "ten years")

    eps = by_text(sentences, "Diluted earnings per share")
    (diluted,) = eps.facts
    assert (diluted.value, diluted.unit) == ("2.15", "USD/shares")
    assert diluted.period_label() == "3 months to 2024-12-31"
    # a sentence without a tagged number has no facts
    assert by_text(sentences, "Our results depend on a few large customers").facts == ()


def test_a_table_is_a_block_of_its_own_out_of_the_sentences() -> None:
    _, pages, _, sentences = read(filing())
    page = pages[1]
    (table,) = [b for b in page.blocks if b.kind == "table"]
    assert table.start == table.end == -1
    assert table.text.splitlines() == [
        "(in millions)\t2024\t2023",
        "Net sales\t$ 39,000\t$ 33,600",
        "Net loss\t(250)",
    ]
    assert "33,600" not in page.text and not any("33,600" in s.text for s in sentences)
    # its facts are on the page, outside the text, and in no sentence
    in_table = [f for f in page.facts if f.start == -1]
    assert [f.value for f in in_table] == ["39000000000", "33600000000", "-250000000"]
    linked = {f.fact_id for s in sentences for f in s.facts}
    assert linked.isdisjoint({"t1", "t2", "t3"})


def test_css_page_breaks_give_pages_with_the_printed_page_numbers() -> None:
    document, pages, _, sentences = read(filing())
    assert document.n_pages == len(pages) == 4
    assert [p.page_no for p in pages] == [1, 2, 3, 4]
    assert [p.label for p in pages] == [None, "1", "2", "3"]  # the cover is unnumbered
    for page in pages[1:]:
        (footer,) = [b for b in page.blocks if b.kind == "footer"]
        assert footer.text == f"Acme Corp | 2024 Form 10-K | {page.label}"
        assert "Form 10-K |" not in page.text
    assert by_text(sentences, "Revenues increased").page_no == 2
    assert by_text(sentences, "Diluted earnings").page_no == 4
    # a sentence the page break cuts is one sentence, anchored on both pages' elements
    cut = by_text(sentences, "We expect the competitive environment")
    assert cut.text.endswith(
        "pricing pressure in our largest markets may continue through fiscal 2025."
    )
    assert (cut.page_no, cut.end_page_no) == (3, 4)
    assert cut.anchor is not None and cut.anchor.path != cut.anchor.end_path
    assert cut.boxes == ()  # HTML has no geometry


def test_nested_divs_and_bullets_read_as_paragraphs_and_list_items() -> None:
    _, pages, _, sentences = read(filing())
    first = by_text(sentences, "Our results depend on a few large customers.")
    second = by_text(sentences, "The loss of any of them could harm our business.")
    assert (
        first.anchor.path == second.anchor.path == "/html[1]/body[1]/div[12]/div[1]/div[1]/div[1]"
    )
    assert (first.anchor.start, first.anchor.end) == (0, len(first.text))
    assert second.anchor.start == len(first.text) + 1
    bullets = [s for s in sentences if s.kind == "list_item"]
    assert [s.text for s in bullets] == [
        "Supply shortages could delay deliveries.",
        "Currency swings could reduce margins.",
    ]
    headings = {s.text for s in sentences if s.kind == "heading"}
    assert {"Item 7. Management's Discussion and Analysis", "Risk Factors"} <= headings
    assert by_text(sentences, "Supply shortages").section == "Risk Factors"
    assert by_text(sentences, "Supply shortages").section_type == "risk_factors"
    kinds = [b.kind for b in pages[2].blocks]
    assert kinds == ["heading", "text", "list_item", "list_item", "text", "footer"]


def test_an_esef_package_is_read_from_its_reports_folder() -> None:
    package = esef_package(esef_report())
    document, pages, errors, sentences = read(package, "acme-2024.zip")
    assert errors == [] and document is not None
    assert document.file_name == "acme-2024.zip" and document.size_bytes == len(package)
    import hashlib

    assert document.doc_id == hashlib.sha256(package).hexdigest()  # the package's bytes
    rose = by_text(sentences, "Revenue rose to EUR 1.234,5 million in 2024.")
    (revenue,) = rose.facts
    assert (revenue.concept, revenue.value, revenue.unit) == (
        "ifrs-full:Revenue",
        "1234500000",
        "EUR",
    )
    # the content decides: the same package under another name, or none, is read the same way
    again = read_document(package, OPTIONS, file_name="upload.bin")
    assert again[1] == pages
    assert page_count(package, "acme.zip") == 1 and reader_kind(package[:64], None) == "zip"


def test_plain_html_with_style_rules_classes_breaks_and_headings() -> None:
    html = b"""<!DOCTYPE html><html><head><style>
      .hide { display: none } p.brk { page-break-before: always }
      @media screen { .print-only { display: none } }
    </style></head><body>
    <h2>Liquidity and Capital Resources</h2>
    <p>Cash rose to $5 million.<br>It was a good year.</p>
    <p class="hide">Not shown anywhere.</p>
    <ul><li>First point of the list</li></ul>
    <p class="brk">A new page starts here.</p>
    <p>-&nbsp;3&nbsp;-</p>
    </body></html>"""
    document, pages, errors, sentences = read(html, "plain.html")
    assert errors == [] and len(pages) == 2
    texts = [s.text for s in sentences]
    assert "Not shown anywhere." not in " ".join(texts)
    assert texts[:3] == [
        "Liquidity and Capital Resources",
        "Cash rose to $5 million.",
        "It was a good year.",
    ]
    assert sentences[0].kind == "heading" and sentences[3].kind == "list_item"
    assert pages[1].label == "3" and "3" not in pages[1].text  # "- 3 -" is the page number
    assert sentences[-1].text == "A new page starts here." and sentences[-1].page_no == 2


def test_pdfs_are_read_exactly_as_by_the_pdf_reader(tmp_path: Path) -> None:
    pdf = write_clean_report(tmp_path / "report.pdf")
    assert read_document(pdf, OPTIONS) == read_pdf(pdf, OPTIONS)
    # a PDF under an HTML name is still a PDF: the bytes decide
    named = tmp_path / "report.html"
    named.write_bytes(pdf.read_bytes())
    _, pages, errors = read_document(named, OPTIONS)
    assert errors == [] and [p.text for p in pages] == [p.text for p in read_pdf(pdf, OPTIONS)[1]]
    # PDF sentences are left as they are by link_sentences
    _, pdf_pages, _ = read_pdf(pdf, OPTIONS)
    sentences = split_sentences(pdf_pages, SentenceOptions())
    assert link_sentences(sentences, pdf_pages) == sentences


def test_page_ranges_keep_the_pages_asked_for() -> None:
    _, pages, errors = read_document(filing(), OPTIONS, file_name="a.htm", page_range=(2, 3))
    assert errors == [] and [p.page_no for p in pages] == [2, 3]


# ---------------------------------------------------------------------------------------------
# transforms


@pytest.mark.parametrize(
    ("printed", "fmt", "scale", "negative", "value"),
    [
        ("39.0", "ixt:num-dot-decimal", 9, False, "39000000000"),
        ("1,234", "ixt:num-dot-decimal", 6, True, "-1234000000"),
        ("16", "ixt:num-dot-decimal", -2, False, "0.16"),
        ("1.234,5", "ixt:num-comma-decimal", 3, False, "1234500"),
        ("—", "ixt:fixed-zero", 6, False, "0"),
        ("twenty-five", "ixt-sec:numwordsen", 0, False, "25"),
        ("no", "ixt-sec:numwordsen", 0, False, "0"),
        ("1234", None, 0, False, "1234"),
        ("1,234.50", "ixt:numdotdecimal", 0, False, "1234.5"),
    ],
)
def test_numbers_are_read_with_format_scale_and_sign(printed, fmt, scale, negative, value) -> None:
    assert number_value(printed, fmt, scale, negative) == value


@pytest.mark.parametrize(
    ("text", "fmt", "value"),
    [
        ("September 28, 2024", "ixt:date-monthname-day-year-en", "2024-09-28"),
        ("28 September 2024", "ixt:date-day-monthname-year-en", "2024-09-28"),
        ("9/28/2024", "ixt:date-month-day-year", "2024-09-28"),
        ("1/25", "ixt:date-month-day", "--01-25"),
        ("one year and six months", "ixt-sec:durwordsen", "P1Y6M"),
        ("30", "ixt-sec:duryear", "P30Y"),
        ("☒", "ixt-sec:boolballotbox", "true"),
        ("anything", "ixt:fixed-false", "false"),
    ],
)
def test_text_facts_are_read_with_their_transform(text, fmt, value) -> None:
    assert text_value(text, fmt) == value


def test_a_number_that_does_not_fit_its_format_is_refused() -> None:
    with pytest.raises(TransformError):
        number_value("n/a", "ixt:num-dot-decimal")
    with pytest.raises(TransformError):
        number_value("12", "ixt:unknown-format")


# ---------------------------------------------------------------------------------------------
# bad input, in both error modes


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[bytes, str, type[IngestError], str]]:
    office = io.BytesIO()
    with zipfile.ZipFile(office, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<document/>")
    broken_tags = filing([f"{P}Revenues grew <b>strongly{END}<div>in 2024.</div>"]).replace(
        b"</html>", b""
    )
    return {
        "not_html": (b"just some words\n", "notes.txt", UnsupportedFileError, "neither a PDF"),
        "empty_body": (
            b"<html><body><div style='display:none'>x</div></body></html>",
            "empty.html",
            EmptyDocumentError,
            "shows no text",
        ),
        "zip_without_report": (esef_package(None), "pkg.zip", NoReportError, "reports/"),
        "office_zip": (office.getvalue(), "memo.zip", NoReportError, "a Word document"),
        "damaged_zip": (b"PK\x03\x04garbage", "pkg.zip", IngestError, "damaged ZIP"),
        "unrecoverable": (
            b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'><body><div>",
            "cut.xhtml",
            MalformedMarkupError,
            "no text could be recovered",
        ),
        "too_large": (filing(), "big.htm", TooLargeError, "over the limit"),
        "too_many_pages": (filing(), "long.htm", TooManyPagesError, "(CSS page breaks)"),
        "broken_tags": (broken_tags, "broken.xhtml", MalformedMarkupError, "not well-formed"),
    }


BAD = (
    "not_html",
    "empty_body",
    "zip_without_report",
    "office_zip",
    "damaged_zip",
    "unrecoverable",
    "too_large",
    "too_many_pages",
    "broken_tags",
)


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("mode", ["record", "raise"])
def test_bad_html_input_is_reported_with_a_clear_message(tmp_path: Path, case: str, mode: str):
    data, name, error, words = _bad_inputs(tmp_path)[case]
    options = OPTIONS
    if case == "too_large":
        options = IngestOptions(max_bytes=1000)
    if case == "too_many_pages":
        options = IngestOptions(max_pages=2)
    if mode == "raise":
        with pytest.raises(error) as raised:
            read_document(data, options, file_name=name, on_error="raise")
        assert words in raised.value.message and raised.value.message.startswith(name)
        return
    document, pages, errors = read_document(data, options, file_name=name)
    assert errors, case
    first = errors[0]
    assert first.message.startswith(name) and words in first.message
    assert first.stage == "ingest"
    if case == "broken_tags":  # repaired: read, with a warning that says so
        assert not first.fatal and first.code == "malformed"
        assert any("Revenues grew strongly" in p.text for p in pages)
    else:
        assert first.fatal and pages == []


def test_a_web_page_named_pdf_is_refused_as_before(tmp_path: Path) -> None:
    page = write_not_a_pdf(tmp_path / "webpage.pdf")
    document, pages, errors = read_document(page, OPTIONS)
    assert document is None and pages == [] and errors[0].code == "not_pdf"
    assert "HTML web page" in errors[0].message
    with pytest.raises(NotPdfError):
        read_document(page, OPTIONS, on_error="raise")


def test_a_package_with_several_reports_reads_the_first_and_says_so() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("pkg/reports/a.xhtml", esef_report())
        z.writestr("pkg/reports/b.xhtml", esef_report())
    document, pages, errors = read_document(out.getvalue(), OPTIONS, file_name="set.zip")
    assert document is not None and pages
    (note,) = errors
    assert (
        not note.fatal and "pkg/reports/a.xhtml was read, not pkg/reports/b.xhtml" in note.message
    )


# ---------------------------------------------------------------------------------------------
# the pipeline and its outputs


def test_the_pipeline_reads_html_and_keeps_facts_through_the_store(tmp_path, tiny_model_dir):
    from app.config import load_settings
    from app.export import result_to_json
    from app.pipeline import Analyzer
    from app.store import ResultStore

    settings = load_settings(
        data_dir=tmp_path / "data",
        scoring={"model_dir": tiny_model_dir},
        explain={"mode": "none"},
    )
    path = write_filing(tmp_path / "acme-10k.htm")
    result = Analyzer.from_settings(settings).analyze(path)
    assert result.status == "ok", result.errors
    assert len(result.scores) == len(result.sentences) > 10
    with ResultStore.from_settings(settings) as store:
        again = store.load_result(store.save_result(result))
    assert again.sentences == result.sentences and again.pages == result.pages
    data = result_to_json(result)
    grew = next(s for s in data["sentences"] if s["text"].startswith("Revenues increased"))
    assert grew["facts"][0]["value"] == "39000000000" and grew["anchor"]["path"]
    assert data["summary"]["facts_in_sentences"] == sum(len(s.facts) for s in result.sentences)
    assert [p.get("label") for p in data["pages"]] == [None, "1", "2", "3"]


def test_batch_finds_and_plans_every_kind_of_report(tmp_path: Path) -> None:
    from batch.plan import find_inputs, scan_input, split_parts

    write_filing(tmp_path / "a/acme.htm")
    (tmp_path / "b.zip").write_bytes(esef_package(esef_report()))
    write_clean_report(tmp_path / "c.pdf")
    (tmp_path / "d.xhtml").write_bytes(filing([PAGE_1]))
    (tmp_path / "notes.txt").write_text("not a report")
    found = [p.relative_to(tmp_path).as_posix() for p in find_inputs(tmp_path)]
    assert found == ["a/acme.htm", "b.zip", "c.pdf", "d.xhtml"]
    items = {
        p.relative_to(tmp_path).as_posix(): scan_input(p, tmp_path) for p in find_inputs(tmp_path)
    }
    assert items["a/acme.htm"].kind == "html" and items["a/acme.htm"].n_pages == 4
    assert items["b.zip"].kind == "zip" and items["b.zip"].n_pages == 1
    assert items["c.pdf"].kind == "pdf"
    # an HTML filing is never split into page-range parts: it is parsed whole anyway
    assert len(split_parts(items["a/acme.htm"], pages_per_part=1)) == 1


def test_page_records_of_html_have_no_geometry() -> None:
    _, pages, _, _ = read(filing())
    page: Page = pages[1]
    assert page.width == page.height == 0 and page.lines == ()
    assert all(b.anchor is not None for b in page.blocks)
    body = [b for b in page.blocks if b.start >= 0]
    for b in body:
        assert page.text[b.start : b.end] and b.anchor.end - b.anchor.start == b.end - b.start


def test_a_highlight_fragment_marks_the_sentence_and_is_sanitised() -> None:
    from app.ui.filing import sentence_fragment

    evil = (
        f"{BOLD}Outlook{END}"
        "<script>window.__pwned = 1; document.title = 'PWNED'</script>"
        f'<div onclick="window.__pwned = 2" style="position:fixed;top:0;'
        'background-image:url(http://evil.example/x.png);color:#333">'
        "<span>We expect revenue of $"
        + fact("us-gaap:Revenues", "40", scale="9", format="ixt:num-dot-decimal", id="f1")
        + ' billion next year.</span><img src="http://evil.example/y.png" onerror="alert(1)"/>'
        '<a href="javascript:alert(2)">click</a></div>'
    )
    data = filing([evil])
    _, _, _, sentences = read(data, "evil.htm")
    target = by_text(sentences, "We expect revenue of $40 billion next year.")
    html = sentence_fragment(data, target)
    assert html is not None
    assert "<mark" in html and "We expect revenue of $" in html and "billion next year." in html
    for bad in (
        "<script",
        "__pwned",
        "onclick",
        "onerror",
        "evil.example",
        "javascript:",
        "<img",
        "position",
        "url(",
    ):
        assert bad not in html, bad
    assert 'title="us-gaap:Revenues (FY2024)"' in html  # the tagged fact, underlined


def test_sesame_analyze_writes_facts_into_the_workpaper_and_json(tmp_path, tiny_model_dir):
    import json
    import os
    import subprocess
    import sys

    import openpyxl

    inputs, out = tmp_path / "in", tmp_path / "out"
    write_filing(inputs / "acme-10k.htm")
    (inputs / "acme-esef.zip").write_bytes(esef_package(esef_report()))
    env = {**os.environ, "SESAME_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "analyze", str(inputs), "--out", str(out)]
        + ["--model-dir", str(tiny_model_dir), "--explain", "none"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "2 documents: 2 ok, 0 partial, 0 failed"

    data = json.loads((out / "acme-10k.json").read_text())
    grew = next(s for s in data["sentences"] if s["text"].startswith("Revenues increased"))
    (revenue,) = grew["facts"]
    assert revenue["concept"] == "us-gaap:Revenues" and revenue["value"] == "39000000000"
    assert revenue["unit"] == "USD" and revenue["period_end"] == "2024-12-31"
    assert grew["page_no"] == 2 and grew["label"] in ("positive", "negative", "neutral")

    book = openpyxl.load_workbook(out / "acme-10k.xlsx")
    rows = list(book["Sentences"].iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "sentence id")
    header = list(rows[header_at])
    body = [dict(zip(header, r, strict=False)) for r in rows[header_at + 1 :] if r[0] is not None]
    assert "tagged facts (iXBRL)" in header and "printed page" in header
    row = next(r for r in body if str(r["sentence"]).startswith("Revenues increased"))
    assert row["tagged facts (iXBRL)"].startswith("us-gaap:Revenues = 39000000000 USD, FY2024")
    assert (row["page"], row["printed page"]) == (2, "1")

    esef = json.loads((out / "acme-esef.json").read_text())
    facts = [f for s in esef["sentences"] for f in s.get("facts", [])]
    assert [(f["concept"], f["value"], f["unit"]) for f in facts] == [
        ("ifrs-full:Revenue", "1234500000", "EUR")
    ]


def test_run_in_and_underlined_headings_stand_apart_from_the_sentences_after_them() -> None:
    page = (
        '<div><span style="font-weight:700">Pension and Other Benefits</span><span> Pension '
        "cash needs are based on our minimum funding requirements.</span></div>"
        '<div><span style="text-decoration:underline">Fair value hedges</span></div>'
        "<div><span>The Company designates forward contracts as fair value hedges.</span></div>"
        '<div><span style="font-weight:700">Government Contracts.</span><span> The U.S. '
        "government may terminate any of our contracts.</span></div>"
    )
    _, pages, _, sentences = read(filing([page]))
    assert [(s.kind, s.text) for s in sentences] == [
        ("heading", "Pension and Other Benefits"),
        ("sentence", "Pension cash needs are based on our minimum funding requirements."),
        ("heading", "Fair value hedges"),
        ("sentence", "The Company designates forward contracts as fair value hedges."),
        ("sentence", "Government Contracts."),
        ("sentence", "The U.S. government may terminate any of our contracts."),
    ]
    # the text after a run-in heading keeps its place in the markup
    cash = sentences[1]
    assert cash.anchor.path == sentences[0].anchor.path
    assert cash.anchor.start == len("Pension and Other Benefits") + 1
