"""Sentence splitting for financial reports: hand-built pages in, Sentence records out."""

from __future__ import annotations

import logging

import pytest

from app.config import SentenceOptions
from app.records import BBox, Block, Line, Page, Sentence
from app.sentences import COMPONENT, classify_section, make_nlp, split_sentences
from app.sentences.kinds import classify_text, is_repeated, repeated_furniture

OPTIONS = SentenceOptions()
CHAR_W = 5.0  # points per character on the hand-built pages
LEFT = 50.0
LINE_H = 12.0


def make_page(
    parts: list[tuple[str, str]],
    page_no: int = 1,
    *,
    with_blocks: bool = True,
    with_lines: bool = True,
    doc_id: str = "doc",
) -> Page:
    """A page from (kind, text) blocks: blocks joined by a blank line, one Line per text line."""
    text = ""
    blocks: list[Block] = []
    lines: list[Line] = []
    top = 72.0
    for kind, body in parts:
        if text:
            text += "\n\n"
            top += LINE_H
        start = len(text)
        text += body
        pos = start
        for raw in body.split("\n"):
            bbox = BBox(x0=LEFT, top=top, x1=LEFT + CHAR_W * len(raw), bottom=top + 10)
            lines.append(Line(start=pos, end=pos + len(raw), bbox=bbox))
            pos += len(raw) + 1
            top += LINE_H
        blocks.append(
            Block(
                kind=kind,
                start=start,
                end=len(text),  # type: ignore[arg-type]
                bbox=BBox(x0=LEFT, top=top, x1=500, bottom=top + 10),
            )
        )
    return Page(
        doc_id=doc_id,
        page_no=page_no,
        width=612,
        height=792,
        text=text,
        lines=tuple(lines) if with_lines else (),
        blocks=tuple(blocks) if with_blocks else (),
    )


def texts(sentences: list[Sentence]) -> list[str]:
    return [s.text for s in sentences]


def norm(text: str) -> str:
    return " ".join(text.split())


def split_paragraph(text: str, **options: int) -> list[str]:
    page = make_page([("text", text)])
    return texts(split_sentences([page], SentenceOptions(**options)))


# --- abbreviations and amounts -------------------------------------------------------------


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "Apple Inc. and Acme Co. sold shares to Foo Corp. and Bar Ltd. under Contract No. 12 "
        "for approx. $3 million, e.g. to U.S. and U.K. buyers, i.e. institutions, vs. retail. "
        "Mr. Smith and Dr. Jones met at St. James on Jan. 5 and Feb. 2, then Mar. 3, Apr. 4, "
        "Jun. 6, Jul. 7, Aug. 8, Sep. 9, Sept. 10, Oct. 11, Nov. 12 and Dec. 31, 2022 (see "
        "fig. 4). Refer to Note 3. Revenue Recognition for details. Item 1A. Risk Factors "
        "lists the risks."
    )
    assert split_paragraph(text) == [
        "Apple Inc. and Acme Co. sold shares to Foo Corp. and Bar Ltd. under Contract No. 12 "
        "for approx. $3 million, e.g. to U.S. and U.K. buyers, i.e. institutions, vs. retail.",
        "Mr. Smith and Dr. Jones met at St. James on Jan. 5 and Feb. 2, then Mar. 3, Apr. 4, "
        "Jun. 6, Jul. 7, Aug. 8, Sep. 9, Sept. 10, Oct. 11, Nov. 12 and Dec. 31, 2022 (see "
        "fig. 4).",
        "Refer to Note 3. Revenue Recognition for details.",
        "Item 1A. Risk Factors lists the risks.",
    ]


def test_abbreviation_followed_by_a_sentence_starter_ends_the_sentence() -> None:
    text = (
        "Most of our revenue comes from the U.S. We sold the unit to Acme Inc. The deal "
        "closed in March. See Note 7. It describes the debt. U.S. GAAP applies."
    )
    assert split_paragraph(text) == [
        "Most of our revenue comes from the U.S.",
        "We sold the unit to Acme Inc.",
        "The deal closed in March.",
        "See Note 7.",
        "It describes the debt.",
        "U.S. GAAP applies.",
    ]


def test_acronyms_quotes_and_legal_citations_split_where_prose_does() -> None:
    text = (
        "The report was filed with the SEC. \u201cIRS\u201d means the U.S. Internal Revenue "
        "Service. \u201cCitigroup\u201d means Citigroup Global Markets Inc. \u201cCode\u201d "
        "means the Internal Revenue Code. See Title III of Pub. L. No. 107-56. Revenue is "
        "reported net (i.e. \u201cnet\u201d of fees). Sales in EMEA. Grew."
    )
    assert split_paragraph(text) == [
        "The report was filed with the SEC.",
        "\u201cIRS\u201d means the U.S. Internal Revenue Service.",
        "\u201cCitigroup\u201d means Citigroup Global Markets Inc.",
        "\u201cCode\u201d means the Internal Revenue Code.",
        "See Title III of Pub. L. No. 107-56.",
        "Revenue is reported net (i.e. \u201cnet\u201d of fees).",
        "Sales in EMEA.",
        "Grew.",
    ]


def test_amounts_and_percentages_stay_whole() -> None:
    text = (
        "Revenue rose to \u20ac1.5 million. Debt was $2.3 billion. Margin improved 3.2% to "
        "41.7%. The loss was (1,234.5). Leverage stood at 1.5x. Guidance is 2.0x-2.5x."
    )
    assert split_paragraph(text) == [
        "Revenue rose to \u20ac1.5 million.",
        "Debt was $2.3 billion.",
        "Margin improved 3.2% to 41.7%.",
        "The loss was (1,234.5).",
        "Leverage stood at 1.5x.",
        "Guidance is 2.0x-2.5x.",
    ]


def test_quotes_and_questions_end_sentences_where_prose_does() -> None:
    text = (
        'The auditor said the estimate was "reasonable." Why did margins fall? Costs rose! '
        "Sales were flat... and costs rose. Growth resumed."
    )
    assert split_paragraph(text) == [
        'The auditor said the estimate was "reasonable."',
        "Why did margins fall?",
        "Costs rose!",
        "Sales were flat... and costs rose.",
        "Growth resumed.",
    ]


def test_make_nlp_is_a_blank_pipeline_with_the_financial_component() -> None:
    nlp = make_nlp(OPTIONS)
    assert nlp.pipe_names == [COMPONENT]
    assert nlp.meta.get("name") == "pipeline"  # spacy.blank, no trained model behind it
    doc = nlp("Acme Corp. grew 3.2% in the U.S. market. Costs fell.")
    assert [s.text for s in doc.sents] == [
        "Acme Corp. grew 3.2% in the U.S. market.",
        "Costs fell.",
    ]
    assert doc.has_annotation("SENT_START")


# --- units: headings and list items --------------------------------------------------------


def test_heading_and_list_item_blocks_are_their_own_units() -> None:
    page = make_page(
        [
            ("heading", "Liquidity and Capital Resources"),
            ("text", "Cash decreased in 2022. We expect it to recover:"),
            ("list_item", "\u2022 higher operating cash flow. Lower capital spending"),
            ("list_item", "(b) asset sales"),
            ("text", "Management believes cash is sufficient."),
        ]
    )
    out = split_sentences([page], OPTIONS)
    assert [(s.kind, s.text) for s in out] == [
        ("heading", "Liquidity and Capital Resources"),
        ("sentence", "Cash decreased in 2022."),
        ("sentence", "We expect it to recover:"),
        ("list_item", "higher operating cash flow."),
        ("list_item", "Lower capital spending"),
        ("list_item", "asset sales"),
        ("sentence", "Management believes cash is sufficient."),
    ]


def test_headings_and_bullets_are_found_on_pages_without_blocks() -> None:
    text = (
        "Risk Factors\n"
        "Our business is exposed to many risks. The most important ones are\n"
        "listed below and include:\n"
        "\u2022 lower demand for our products\n"
        "\u2022 higher interest rates, which raise our\n"
        "  cost of debt\n"
        "- currency moves\n"
        "1. supply shortages\n"
        "(a) litigation\n"
        "Going Concern\n"
        "The Company has sufficient liquidity for the next twelve months.\n"
        "17\n"
    )
    page = Page(doc_id="d", page_no=1, width=612, height=792, text=text)
    out = split_sentences([page], OPTIONS)
    assert [(s.kind, s.text, s.section_type) for s in out] == [
        ("heading", "Risk Factors", "risk_factors"),
        ("sentence", "Our business is exposed to many risks.", "risk_factors"),
        ("sentence", "The most important ones are listed below and include:", "risk_factors"),
        ("list_item", "lower demand for our products", "risk_factors"),
        ("list_item", "higher interest rates, which raise our cost of debt", "risk_factors"),
        ("list_item", "currency moves", "risk_factors"),
        ("list_item", "supply shortages", "risk_factors"),
        ("list_item", "litigation", "risk_factors"),
        ("heading", "Going Concern", "going_concern"),
        (
            "sentence",
            "The Company has sufficient liquidity for the next twelve months.",
            "going_concern",
        ),
    ]


def test_wrapped_lines_are_not_mistaken_for_headings_or_list_items() -> None:
    text = (
        "Net revenue for the year ended December\n"
        "31. The Company Expects Growth in\n"
        "Europe and Asia to continue next year.\n"
    )
    page = Page(doc_id="d", page_no=1, width=612, height=792, text=text)
    out = split_sentences([page], OPTIONS)
    assert [(s.kind, s.text) for s in out] == [
        ("sentence", "Net revenue for the year ended December 31."),
        ("sentence", "The Company Expects Growth in Europe and Asia to continue next year."),
    ]


def test_table_rows_do_not_glue_onto_prose() -> None:
    text = (
        "Revenue by segment was as follows.\n"
        "Mobility $ 6,953 $ 6,089\n"
        "Delivery 10,901 3,904\n"
        "Total revenue $ 17,455 $ 11,139\n"
        "Delivery grew because of higher order volume.\n"
    )
    page = Page(doc_id="d", page_no=1, width=612, height=792, text=text)
    assert texts(split_sentences([page], OPTIONS)) == [
        "Revenue by segment was as follows.",
        "Mobility $ 6,953 $ 6,089",
        "Delivery 10,901 3,904",
        "Total revenue $ 17,455 $ 11,139",
        "Delivery grew because of higher order volume.",
    ]


# --- spans, boxes, indices -----------------------------------------------------------------


def test_spans_map_back_to_the_page_text() -> None:
    page = make_page(
        [
            ("heading", "Outlook"),
            (
                "text",
                "We expect revenue of $2.3 billion in 2023,\nup 5%. Margins should\n"
                "improve.   Costs fall.",
            ),
            ("list_item", "\u2022   Capital spending of approx. \u20ac1.5 million"),
        ]
    )
    out = split_sentences([page], OPTIONS)
    assert len(out) == 5
    for s in out:
        assert s.text == norm(page.text[s.start : s.end])
        assert not page.text[s.start].isspace() and not page.text[s.end - 1].isspace()
        assert s.end_page_no is None and s.end_page_end is None
    assert out[-1].text == "Capital spending of approx. \u20ac1.5 million"  # marker left out


def test_boxes_cover_each_touched_line_clipped_to_the_sentence() -> None:
    line1 = "Revenue grew 10%. Costs fell"
    line2 = "sharply in 2022. Cash rose."
    page = make_page([("text", f"{line1}\n{line2}")])
    out = split_sentences([page], OPTIONS)
    assert texts(out) == ["Revenue grew 10%.", "Costs fell sharply in 2022.", "Cash rose."]
    first, middle, last = out
    assert first.boxes == (BBox(x0=LEFT, top=72, x1=LEFT + CHAR_W * 17, bottom=82, page_no=1),)
    # One box per visual line, each clipped to the characters the sentence covers there.
    assert middle.boxes == (
        BBox(x0=LEFT + CHAR_W * 18, top=72, x1=LEFT + CHAR_W * len(line1), bottom=82, page_no=1),
        BBox(x0=LEFT, top=84, x1=LEFT + CHAR_W * 16, bottom=94, page_no=1),
    )
    assert last.boxes == (
        BBox(x0=LEFT + CHAR_W * 17, top=84, x1=LEFT + CHAR_W * len(line2), bottom=94, page_no=1),
    )


def test_pages_without_lines_get_block_boxes_or_none() -> None:
    with_blocks = make_page([("text", "Revenue grew. Costs fell.")], with_lines=False)
    out = split_sentences([with_blocks], OPTIONS)
    assert [s.boxes for s in out] == [
        (with_blocks.blocks[0].bbox.model_copy(update={"page_no": 1}),)
    ] * 2
    bare = make_page([("text", "Revenue grew. Costs fell.")], with_lines=False, with_blocks=False)
    assert [s.boxes for s in split_sentences([bare], OPTIONS)] == [(), ()]


def test_indices_are_dense_over_the_document_in_page_order() -> None:
    p1 = make_page([("text", "One. Two.")], page_no=1)
    p2 = make_page([("text", "17")], page_no=2)  # page-number debris only
    p3 = make_page([("text", "Three. Four.")], page_no=3)
    out = split_sentences([p3, p1, p2], OPTIONS)  # any order in, reading order out
    assert [(s.index, s.page_no, s.text) for s in out] == [
        (0, 1, "One."),
        (1, 1, "Two."),
        (2, 3, "Three."),
        (3, 3, "Four."),
    ]
    assert {s.doc_id for s in out} == {"doc"}


def test_wordless_fragments_are_dropped_and_short_words_kept() -> None:
    text = (
        "Page 3 of 10\n\n(1,234.5)\n\n- 12 -\n\nF-7\n\nNo.\n\nYes. 42. Revenue grew. (ii) (b) iv."
    )
    page = Page(doc_id="d", page_no=1, width=612, height=792, text=text)
    assert texts(split_sentences([page], OPTIONS)) == ["No.", "Yes.", "Revenue grew."]


def test_empty_and_blank_pages_give_no_sentences() -> None:
    pages = [
        Page(doc_id="d", page_no=1, width=1, height=1, text="", status="empty"),
        Page(doc_id="d", page_no=2, width=1, height=1, text=" \n\n "),
    ]
    assert split_sentences(pages, OPTIONS) == []
    assert split_sentences([], OPTIONS) == []


def test_malformed_blocks_are_skipped_with_a_warning_and_text_still_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = Page(
        doc_id="d",
        page_no=4,
        width=612,
        height=792,
        text="Revenue grew. Costs fell.",
        blocks=(Block(kind="heading", start=10, end=999, bbox=BBox(x0=0, top=0, x1=1, bottom=1)),),
    )
    with caplog.at_level(logging.WARNING, logger="app.sentences"):
        out = split_sentences([page], OPTIONS)
    assert texts(out) == ["Revenue grew.", "Costs fell."]
    assert "page 4" in caplog.text


# --- sections ------------------------------------------------------------------------------


def test_section_travels_across_pages_until_the_next_heading() -> None:
    p1 = make_page(
        [
            ("text", "Preamble text."),
            ("heading", "Report of Independent Registered Public Accounting Firm"),
            ("text", "We have audited the balance sheets."),
        ],
        page_no=1,
    )
    p2 = make_page(
        [
            ("text", "In our opinion, they are fair."),
            ("heading", "Subsequent Events"),
            ("text", "On March 1 we sold a plant."),
        ],
        page_no=2,
    )
    out = split_sentences([p1, p2], OPTIONS)
    assert [(s.page_no, s.section, s.section_type) for s in out] == [
        (1, None, None),
        (1, "Report of Independent Registered Public Accounting Firm", "auditors_report"),
        (1, "Report of Independent Registered Public Accounting Firm", "auditors_report"),
        (2, "Report of Independent Registered Public Accounting Firm", "auditors_report"),
        (2, "Subsequent Events", "subsequent_events"),
        (2, "Subsequent Events", "subsequent_events"),
    ]


def test_subsections_inherit_the_type_of_their_top_level_section_only() -> None:
    page = make_page(
        [
            ("heading", "Item 1A. Risk Factors"),
            ("heading", "Operational Risks"),
            ("text", "Outages could hurt us."),
            ("heading", "Liquidity"),
            ("text", "Cash is tight."),
            ("heading", "Competition"),
            ("text", "Rivals are strong."),
            ("heading", "Item 2. Properties"),
            ("text", "We lease offices."),
        ]
    )
    out = [s for s in split_sentences([page], OPTIONS) if s.kind == "sentence"]
    assert [(s.section, s.section_type) for s in out] == [
        ("Operational Risks", "risk_factors"),
        ("Liquidity", "liquidity"),
        ("Competition", "risk_factors"),
        ("Item 2. Properties", None),
    ]


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Report of Independent Registered Public Accounting Firm", "auditors_report"),
        ("REPORT OF INDEPENDENT AUDITORS", "auditors_report"),
        ("Independent auditor\u2019s report", "auditors_report"),
        ("Item 1A. Risk Factors", "risk_factors"),
        ("Principal risks and uncertainties", "risk_factors"),
        ("Going concern", "going_concern"),
        ("Outlook 2023", "outlook"),
        (
            "Item 7. Management\u2019s Discussion and Analysis of Financial Condition and "
            "Results of Operations",
            "management_discussion",
        ),
        ("MD&A", "management_discussion"),
        ("Consolidated Statements of Cash Flows", "financial_statements"),
        ("Item 8. Financial Statements and Supplementary Data", "financial_statements"),
        ("Notes to the Consolidated Financial Statements", "notes"),
        ("Note 14 \u2013 Income Taxes", "notes"),
        ("Liquidity and Capital Resources", "liquidity"),
        ("Subsequent events", "subsequent_events"),
        ("Events after the reporting period", "subsequent_events"),
        ("Cautionary Note Regarding Forward-Looking Statements", "forward_looking"),
        ("Quantitative and Qualitative Disclosures About Market Risk", "market_risk"),
        ("Item 1. Business", "business"),
        ("Business Combinations", None),
        ("Opinion on Internal Control over Financial Reporting", "auditors_report"),
        ("Off-Balance Sheet Arrangements", None),
        (
            "Legal Proceedings Described in Note 15 to Our Consolidated Financial Statements",
            "legal_proceedings",
        ),
        ("Employees", None),
    ],
)
def test_headings_map_to_normalised_section_types(heading: str, expected: str | None) -> None:
    assert classify_section(heading) == expected


# --- page breaks and long units ------------------------------------------------------------


def test_sentence_running_across_a_page_break_is_one_sentence() -> None:
    p1 = make_page([("text", "Revenue rose. Our results depend on the demand for\nour")], 7)
    p2 = make_page([("text", "products in Europe and Asia. Costs fell.")], 8)
    out = split_sentences([p1, p2], OPTIONS)
    assert texts(out) == [
        "Revenue rose.",
        "Our results depend on the demand for our products in Europe and Asia.",
        "Costs fell.",
    ]
    joined = out[1]
    assert (joined.page_no, joined.end_page_no) == (7, 8)
    assert joined.text == norm(
        p1.text[joined.start : joined.end] + " " + p2.text[: joined.end_page_end]
    )
    assert [b.page_no for b in joined.boxes] == [7, 7, 8]
    assert (out[2].page_no, out[2].index) == (8, 2)


@pytest.mark.parametrize(
    ("tail", "head"),
    [
        ("Revenue rose in 2022.", "costs fell."),  # the first page's sentence is finished
        ("The main drivers were", "Liquidity"),  # the next page opens with a heading
        ("Revenue by segment", "Mobility grew."),  # no sign of a continuation
    ],
)
def test_finished_or_unrelated_page_ends_are_not_joined(tail: str, head: str) -> None:
    p1 = make_page([("text", tail)], 1)
    kind = "heading" if head == "Liquidity" else "text"
    p2 = make_page([(kind, head)], 2)
    out = split_sentences([p1, p2], OPTIONS)
    assert [(s.page_no, s.text, s.end_page_no) for s in out] == [(1, tail, None), (2, head, None)]


def test_no_join_across_missing_pages() -> None:
    p1 = make_page([("text", "Our results depend on the")], 1)
    p3 = make_page([("text", "weather in Europe.")], 3)
    assert [s.end_page_no for s in split_sentences([p1, p3], OPTIONS)] == [None, None]


def test_sentence_cut_by_a_block_boundary_on_one_page_is_joined() -> None:
    page = make_page(
        [
            (
                "list_item",
                "(c) in the case of a Foreign Lender claiming the exemption under Section",
            ),
            ("text", "881(c) of the Code, a certificate to that effect. Costs fell."),
            ("list_item", "\u2022 lower demand for our products in every region we serve"),
            ("text", "The Company expects growth."),
        ]
    )
    out = split_sentences([page], OPTIONS)
    assert [(s.kind, s.text) for s in out] == [
        (
            "list_item",
            "in the case of a Foreign Lender claiming the exemption under Section "
            "881(c) of the Code, a certificate to that effect.",
        ),
        ("sentence", "Costs fell."),
        ("list_item", "lower demand for our products in every region we serve"),
        ("sentence", "The Company expects growth."),
    ]
    joined = out[0]
    assert joined.text == norm(page.text[joined.start : joined.end])
    assert [b.top for b in joined.boxes] == [72, 96]  # its line in each block


def test_long_units_are_split_at_clause_boundaries() -> None:
    clause = "revenue grew in every region and every segment of the business"
    text = f"{clause}; {clause}, {clause}; {clause}."
    out = split_paragraph(text, max_chars=150)
    # Semicolons win over commas; pieces already under the limit are not cut further.
    assert out == [f"{clause};", f"{clause}, {clause};", f"{clause}."]
    assert split_paragraph(text, max_chars=100) == [
        f"{clause};",
        f"{clause},",
        f"{clause};",
        f"{clause}.",
    ]


def test_very_long_unbroken_text_is_still_split_under_the_limit() -> None:
    text = "x" * 50 + " " + "word " * 80 + "y" * 400
    out = split_paragraph(text, max_chars=120)
    assert all(len(s) <= 120 for s in out)
    assert "".join(out).replace(" ", "") == text.replace(" ", "")


def test_long_sentence_across_a_page_break_splits_and_keeps_its_pages() -> None:
    part = "the order book grew in every region and every segment"
    p1 = make_page([("text", f"Results improved because {part}, {part}, and")], 1)
    p2 = make_page([("text", f"{part}; {part}. Costs fell.")], 2)
    out = split_sentences([p1, p2], SentenceOptions(max_chars=130))
    assert all(len(s.text) <= 130 for s in out)
    for s in out:
        page = p1 if s.page_no == 1 else p2
        if s.end_page_no is None:
            assert s.text == norm(page.text[s.start : s.end])
        else:
            assert s.text == norm(p1.text[s.start : s.end] + " " + p2.text[: s.end_page_end])
    whole = " ".join(texts(out))
    assert whole == norm(p1.text + " " + p2.text)
    assert [s.index for s in out] == list(range(len(out)))


# --- real reports (skipped without ../shared) ----------------------------------------------


@pytest.mark.corpus
def test_corpus_pages_keep_every_invariant(corpus) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    pdf = pdfium.PdfDocument(str(corpus / "uber_2021_10k.pdf"))
    try:
        pages = [
            Page(
                doc_id="uber",
                page_no=n + 1,
                width=pdf[n].get_size()[0],
                height=pdf[n].get_size()[1],
                text=pdf[n].get_textpage().get_text_range().replace("\r\n", "\n"),
            )
            for n in range(12, 30)
        ]
    finally:
        pdf.close()
    out = split_sentences(pages, OPTIONS)
    by_no = {p.page_no: p for p in pages}
    assert len(out) > 200
    assert [s.index for s in out] == list(range(len(out)))
    assert any(s.end_page_no for s in out)  # the risk factors run across page breaks
    for s in out:
        page = by_no[s.page_no]
        if s.end_page_no is None:
            assert s.text == norm(page.text[s.start : s.end])
        else:
            assert s.text == norm(
                page.text[s.start : s.end] + " " + by_no[s.end_page_no].text[: s.end_page_end]
            )
        assert len(s.text) <= OPTIONS.max_chars
    assert {s.section_type for s in out} >= {"risk_factors"}


def check_invariants(pages: list[Page], out: list[Sentence]) -> None:
    by_no = {p.page_no: p for p in pages}
    assert [s.index for s in out] == list(range(len(out)))
    for s in out:
        page = by_no[s.page_no]
        if s.end_page_no is None:
            assert s.text == norm(page.text[s.start : s.end])
        else:
            assert s.end_page_no == s.page_no + 1
            assert s.text == norm(
                page.text[s.start : s.end] + " " + by_no[s.end_page_no].text[: s.end_page_end]
            )
        assert len(s.text) <= OPTIONS.max_chars
        for box in s.boxes:
            on = by_no[box.page_no or s.page_no]
            assert 0 <= box.x0 <= box.x1 <= on.width + 1 and 0 <= box.top <= on.height


@pytest.mark.corpus
def test_ingested_corpus_pages_keep_every_invariant(corpus) -> None:
    from app.config import IngestOptions
    from app.ingest import read_pdf

    _, pages, errors = read_pdf(corpus / "uber_2021_10k.pdf", IngestOptions(), page_range=(13, 30))
    assert not errors
    out = split_sentences(pages, OPTIONS)
    assert len(out) > 200
    check_invariants(pages, out)
    assert sum(1 for s in out if s.boxes) == len(out)  # ingest gives lines: every one is drawn
    assert any(s.end_page_no for s in out)
    # Page 13 opens with the end of Item 1; from "ITEM 1A. RISK FACTORS" on, all is risk factors.
    first = next(k for k, s in enumerate(out) if s.section_type == "risk_factors")
    assert out[first].page_no == 13
    assert {s.section_type for s in out[first:]} == {"risk_factors"}


# --- kinds: table rows, broken headings and page furniture ------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("REVENUE Net sales Membership fees Total revenue", "sentence", "table_row"),
        ("Net sales $ 62,151 $ 57,394 8.3%", "sentence", "table_row"),
        ("Total revenue 1,234 1,100 12%", "heading", "table_row"),
        ("CO STCO WHOLESALE CORPORATION", "sentence", "heading"),
        ("ITEM 4. MINE SAFETY DISCLOSURES", "sentence", "heading"),
        ("NOTE 5. FAIR VALUE MEASUREMENTS", "heading", "heading"),
        ("Page |23", "sentence", "furniture"),
        ("Page 3 of 40", "sentence", "furniture"),
        ("- 12 -", "sentence", "furniture"),
        ("Annual Report 2024 | 17", "sentence", "furniture"),
        # sentences stay sentences: a verb, a stop, function words, a headline's verb
        ("Net sales increased 8% to $62.2 billion, driven by membership growth.", "sentence", None),
        ("We expect revenue of $40 billion next year", "sentence", None),
        ("The Company operates 871 membership warehouses", "sentence", None),
        ("Comparable Sales Declined 6.2% GAAP Diluted EPS of $1.25", "sentence", None),
        ("Revenue 1,234 1,100", "list_item", "table_row"),  # a bullet's figures: still a row
        ("Risk Factors", "heading", None),
        # table captions and column headers, in any report's words
        ("(Dollars in millions, except per share data)", "sentence", "table_row"),
        ("In billions, except per share data and percentages", "sentence", "table_row"),
        ("Three Months Ended June 30, 2023", "heading", "table_row"),
        ("Years Ended December 31,", "sentence", "table_row"),
        ("(unaudited)", "sentence", "table_row"),
        (
            "% CHANGE EXCLUDING CURRENCY CHANGES % CHANGE EXCLUDING CURRENCY CHANGES",
            "sentence",
            "table_row",
        ),
        ("(8)pts 12 pts 4 pts (5)pts", "sentence", "table_row"),
        ("Service cost Interest cost Rate of Expected long-term", "sentence", "table_row"),
        ("June 28, 2023", "sentence", "furniture"),
        # a dash between words, a closing date, a headline's clauses: not a table
        ("NOTE 2 \u2014 INVENTORIES", "sentence", "heading"),
        ("ITEM 2 - Properties", "heading", None),
        # a title keeps its kind unless figures close it, or when it names a section
        ("8.2.7 2018 Annual Incentive", "heading", None),
        ("Condensed Consolidated Balance Sheets (In thousands)", "heading", None),
        ("Philips Group Inventories in millions of EUR", "heading", "table_row"),
        ("Costco reports results for the quarter ended May 28, 2023", "sentence", None),
        (
            "GAAP Net Income of $1,048 million; GAAP diluted earnings per share (EPS) of 70.5 cps;",
            "list_item",
            None,
        ),
        (
            "The Board declared a dividend of 12.25 cents per share (in US dollars).",
            "sentence",
            None,
        ),
        ("eBay launched a Live Commerce Streaming experience", "sentence", None),
        (
            "The following table shows net sales by category for 2024 and 2023 (in millions):",
            "sentence",
            None,
        ),
        (
            "The activity was recognized within Accrued liabilities as follows: (Dollars in "
            "millions) Additionally, the related charges were recorded in Cost of sales",
            "sentence",
            None,
        ),
        (
            "If the Participant was appointed before January 1, 2006 or after December 31, 2017,",
            "sentence",
            None,
        ),
        ("YEAR ENDED MAY 31, 2021 ASIA", "heading", "table_row"),  # May the month, no verb
        (
            "(In millions, except number of shares, which are reflected in thousands, and par "
            "value)",
            "sentence",
            "table_row",
        ),
        (
            "(Dollars in millions) Sales returns reserve For the fiscal year",
            "sentence",
            "table_row",
        ),
    ],
)
def test_units_that_are_no_sentences_get_their_own_kind(text, kind, expected):
    assert classify_text(text, kind) == (expected or kind)


def test_table_rows_and_furniture_are_kept_marked_and_open_no_section():
    body = "Revenue rose in every segment and the outlook remains positive."
    pages = [
        make_page(
            [
                ("heading", "REVENUE Net sales Membership fees Total revenue"),
                ("text", body),
                ("text", "Acme Holdings quarterly review"),
                ("text", f"Page |{n}"),
            ],
            page_no=n,
        )
        for n in (1, 2, 3)
    ]
    out = split_sentences(pages, OPTIONS)
    kinds = {(s.page_no, s.text): s.kind for s in out}
    for n in (1, 2, 3):
        assert kinds[(n, "REVENUE Net sales Membership fees Total revenue")] == "table_row"
        assert kinds[(n, body)] == "sentence"
        assert kinds[(n, "Acme Holdings quarterly review")] == "furniture"  # on every page
        assert kinds[(n, f"Page |{n}")] == "furniture"
    # nothing dropped, and the table row did not become a section
    assert len(out) == 12 and {s.section for s in out} == {None}


def test_a_short_text_on_two_pages_is_not_furniture():
    keys = repeated_furniture([(1, "Acme Holdings review"), (2, "Acme Holdings review")], 2)
    assert not keys
    keys = repeated_furniture([(n, f"Acme review {n}") for n in range(1, 31)], 30)
    assert is_repeated("Acme review 31", keys)
    assert not is_repeated("Acme review rose sharply in every segment this year.", keys)


def test_an_earnings_release_pdf_keeps_its_table_lines_out_of_the_tone(tmp_path):
    from pdfs import RELEASE_CAPTION, RELEASE_LABELS, RELEASE_PROSE, write_earnings_release

    from app.config import IngestOptions
    from app.ingest import read_pdf
    from app.records import TONE_KINDS

    _, pages, errors = read_pdf(write_earnings_release(tmp_path / "release.pdf"), IngestOptions())
    assert not errors
    out = split_sentences(pages, OPTIONS)
    by_text: dict[str, set[str]] = {}
    for s in out:
        by_text.setdefault(s.text, set()).add(s.kind)
    assert all(by_text[text] == {"sentence"} for text in RELEASE_PROSE)
    # the caption and the label column, however the lines group, are table rows on every page
    # and never swallow the prose of the next page (they end without a stop)
    table = [s for s in out if RELEASE_LABELS in s.text or RELEASE_CAPTION in s.text]
    assert {s.page_no for s in table} == {1, 2, 3}
    assert {s.kind for s in table} == {"table_row"}
    assert not any(p in s.text for s in table for p in RELEASE_PROSE)
    # the footer, when ingest leaves it in the text, is page furniture
    footers = [s for s in out if "Annual Report 2024" in s.text]
    assert all(s.kind == "furniture" for s in footers)
    assert {s.text for s in out if s.kind in TONE_KINDS} == set(RELEASE_PROSE)
    # only the title opens a section; the table lines do not
    assert {s.section for s in out} == {"Results of Operations"}
