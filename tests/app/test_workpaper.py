"""The Excel workpaper: sheets, stamp everywhere, text never a formula, evidence, exceptions."""

from __future__ import annotations

import csv
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock

from app.config import SignoffOptions
from app.errors import ExportError
from app.export import result_to_json
from app.records import (
    Document,
    DocumentResult,
    Explanation,
    Page,
    ReviewAction,
    Score,
    Sentence,
    StageError,
    Stamp,
    WordWeight,
)
from app.workpaper import (
    BATCH_SHEETS,
    HEADER_ROWS,
    SHEETS,
    batch_row,
    evidence_text,
    write_batch_workpaper,
    write_workpaper,
)

SHA = "a1" * 32
MODEL_SHA = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Each of these starts a formula, a DDE payload or an error value somewhere.
HOSTILE = [
    "=1+1",
    "=SUM(2,3)",
    '=HYPERLINK("http://example.invalid","x")',
    "+1+1",
    "-1+1",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C calc'!A0",
    "#N/A",
    "#DIV/0!",
]
GREEN, RED = "1E7B34", "C00000"


def make_stamp() -> Stamp:
    return Stamp(
        model_name="sesame-sentiment",
        model_version="7",
        model_digest=MODEL_SHA,
        code_version="0.1.0",
        git_commit="f" * 40,
        run_id="run-20250331-ab12",
        created_at=datetime(2025, 3, 31, 10, 15, tzinfo=UTC),
    )


def probs(pos: float, neg: float) -> dict[str, float]:
    return {"positive": pos, "negative": neg, "neutral": round(1 - pos - neg, 6)}


def make_result(
    status: str = "ok",
    *,
    texts: list[str] | None = None,
    client: str | None = "Northwind Components N.V.",
) -> DocumentResult:
    """A small result built by hand: sentences in three sections, scores, two explanations."""
    stamp = make_stamp()
    if status == "failed":
        return DocumentResult(
            source="/clients/locked.pdf",
            status="failed",
            stamp=stamp,
            document=Document(doc_id=SHA, file_name="locked.pdf", size_bytes=2048),
            errors=(
                StageError(
                    stage="ingest",
                    code="encrypted",
                    fatal=True,
                    message=(
                        "locked.pdf: password-protected; no text read. Supply the password with "
                        "--password or ask the client for an unlocked copy."
                    ),
                ),
            ),
            client=client,
        )
    rows = [
        ("Chairman's letter", "letter", "heading", "Chairman's letter", None),
        (
            "Chairman's letter",
            "letter",
            "sentence",
            "Revenue rose 12% to €1.5 million, a record year.",
            probs(0.91, 0.03),
        ),
        (
            "Chairman's letter",
            "letter",
            "sentence",
            "We lost two major customers in the U.S. market.",
            probs(0.05, 0.88),
        ),
        ("Risk factors", "risk_factors", "heading", "Risk factors", probs(0.02, 0.97)),
        (
            "Risk factors",
            "risk_factors",
            "list_item",
            "Supply of components may be disrupted.",
            probs(0.04, 0.71),
        ),
        (
            "Going concern",
            "going_concern",
            "sentence",
            "A material uncertainty exists that may cast significant doubt.",
            probs(0.01, 0.95),
        ),
        (
            "Going concern",
            "going_concern",
            "sentence",
            "The board approved the budget.",
            probs(0.10, 0.05),
        ),
    ]
    for text in texts or []:
        rows.append(("Outlook", "outlook", "sentence", text, probs(0.2, 0.3)))
    sentences, scores = [], []
    for i, (section, section_type, kind, text, p) in enumerate(rows):
        sentences.append(
            Sentence(
                doc_id=SHA,
                index=i,
                page_no=1 + i // 4,
                start=0,
                end=len(text),
                text=text,
                kind=kind,
                section=section,
                section_type=section_type,
            )
        )
        if p is not None:
            label = max(p, key=p.get)
            scores.append(
                Score(sentence_index=i, label=label, probabilities=p, confidence=p[label])
            )
    explanations = (
        Explanation(
            sentence_index=1,
            label="positive",
            words=("Revenue", "rose", "record"),
            values=(0.05, 0.31, 0.22),
            base_value=0.3,
            output_value=0.91,
            additivity_error=0.0,
            top_for=(WordWeight(word="rose", weight=0.31), WordWeight(word="record", weight=0.22)),
            top_against=(WordWeight(word="=1+1", weight=-0.04),),
        ),
        Explanation(
            sentence_index=2,
            label="negative",
            words=("We", "lost", "major"),
            values=(0.0, 0.52, -0.06),
            base_value=0.3,
            output_value=0.88,
            additivity_error=0.0,
        ),
    )
    errors: tuple[StageError, ...] = ()
    if status == "partial":
        errors = (
            StageError(
                stage="ingest",
                code="needs_ocr",
                page_no=3,
                message="report.pdf page 3: no text layer (a scanned image). Run OCR.",
            ),
            StageError(
                stage="explain",
                code="explain",
                page_no=None,
                message="=2+2 evidence skipped for sentence 5: budget spent.",
            ),
        )
    doc = Document(
        doc_id=SHA,
        file_name="northwind_2024.pdf",
        size_bytes=123_456,
        n_pages=3,
        title="Annual report 2024",
    )
    pages = tuple(
        Page(
            doc_id=SHA,
            page_no=n,
            width=595,
            height=842,
            text="...",
            status="needs_ocr" if status == "partial" and n == 3 else "ok",
        )
        for n in (1, 2, 3)
    )
    return DocumentResult(
        source="/clients/northwind_2024.pdf",
        document=doc,
        status=status,
        pages=pages,
        sentences=tuple(sentences),
        scores=tuple(scores),
        explanations=explanations,
        errors=errors,
        stamp=stamp,
        client=client,
        engagement="FY2024 audit",
        settings={
            "scoring": {"model": "sesame-sentiment", "batch_size": 64},
            "explain": {"mode": "flagged", "max_evals": None},
        },
        timings={"ingest": 0.4, "scoring": 2.5},
    )


def review(id_: int, index: int | None, action: str, minute: int, **kw) -> ReviewAction:
    return ReviewAction(
        id=id_,
        result_id=1,
        doc_id=SHA,
        sentence_index=index,
        action=action,
        reviewer=kw.pop("reviewer", "jdoe"),
        created_at=datetime(2025, 4, 1, 9, minute, tzinfo=UTC),
        **kw,
    )


def header_text(ws) -> str:
    return " ".join(str(ws.cell(row=r, column=1).value) for r in range(1, HEADER_ROWS + 1))


def table(ws) -> tuple[list[str], list[dict[str, object]]]:
    """The sheet's table below its header rows, as dicts keyed by column name."""
    rows = list(ws.iter_rows(min_row=HEADER_ROWS + 1, values_only=True))
    names = [str(v) for v in rows[0]]
    return names, [dict(zip(names, r, strict=False)) for r in rows[1:]]


def test_workpaper_has_every_sheet_in_order(tmp_path):
    path = write_workpaper(make_result(), tmp_path / "wp.xlsx")
    assert path == tmp_path / "wp.xlsx"
    assert load_workbook(path).sheetnames == list(SHEETS)


@pytest.mark.parametrize("status", ["ok", "partial", "failed"])
def test_every_sheet_header_carries_the_stamp_and_input_sha(tmp_path, status):
    wb = load_workbook(write_workpaper(make_result(status), tmp_path / "wp.xlsx"))
    for ws in wb.worksheets:
        text = header_text(ws)
        for part in (
            "sesame-sentiment",
            "registry version 7",
            MODEL_SHA,
            "0.1.0",
            "f" * 40,
            "run-20250331-ab12",
            "2025-03-31T10:15:00",
            SHA,
        ):
            assert part in text, f"{ws.title}: {part} missing from the header rows"
        # The header rows (and a table's column headers) are also the print titles, so every
        # printed page carries them.
        tables = ("Sentences", "Exceptions", "Review log")
        last = HEADER_ROWS + 1 if ws.title in tables else HEADER_ROWS
        assert ws.print_title_rows == f"$1:${last}"


def test_every_sentence_row_carries_stamp_and_input_sha(tmp_path):
    result = make_result()
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    names, rows = table(wb["Sentences"])
    for name in (
        "page",
        "section",
        "kind",
        "sentence",
        "label",
        "P(positive)",
        "P(negative)",
        "P(neutral)",
        "confidence",
        "evidence (SHAP)",
        "review status",
        "reviewer label",
        "review comment",
        "reviewer",
        "reviewed at (UTC)",
    ):
        assert name in names
    assert len(rows) == len(result.sentences)
    for row, sentence in zip(rows, result.sentences, strict=True):
        assert row["sentence"] == sentence.text and row["page"] == sentence.page_no
        assert row["model version"] == "7" and row["model name"] == "sesame-sentiment"
        assert row["model sha256"] == MODEL_SHA and row["code version"] == "0.1.0"
        assert row["git commit"] == "f" * 40 and row["run id"] == "run-20250331-ab12"
        assert row["created at"].startswith("2025-03-31T10:15:00")
        assert row["input sha256"] == SHA
    by_index = {r["sentence id"]: r for r in rows}
    assert by_index[0]["label"] == "not scored"  # the heading without a score
    assert by_index[2]["label"] == "negative" and by_index[2]["P(negative)"] == 0.88


def test_sentences_sheet_freezes_header_and_filters_table(tmp_path):
    result = make_result()
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    ws = wb["Sentences"]
    last_row = HEADER_ROWS + 1 + len(result.sentences)
    assert ws.freeze_panes == f"A{HEADER_ROWS + 2}"
    assert ws.auto_filter.ref == f"A{HEADER_ROWS + 1}:Y{last_row}"
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.column_dimensions["E"].width >= 50  # the sentence column is readable
    assert ws.cell(row=HEADER_ROWS + 2, column=5).alignment.wrap_text
    for name in ("Exceptions", "Review log"):
        assert wb[name].freeze_panes == f"A{HEADER_ROWS + 2}"
        assert wb[name].auto_filter.ref.startswith(f"A{HEADER_ROWS + 1}:")


def test_row_fill_follows_the_label(tmp_path):
    wb = load_workbook(write_workpaper(make_result(), tmp_path / "wp.xlsx"))
    ws = wb["Sentences"]
    fills = {}
    for r in range(HEADER_ROWS + 2, ws.max_row + 1):
        label = ws.cell(row=r, column=6).value
        colours = {ws.cell(row=r, column=c).fill.fgColor.rgb for c in range(1, 18)}
        assert len(colours) == 1, f"row {r} is not one colour"
        fills.setdefault(label, colours.pop())
    assert fills["positive"] != fills["negative"] != fills["not scored"]
    assert fills["neutral"] == "00000000"  # neutral rows stay plain


def test_document_text_never_becomes_a_formula(tmp_path):
    result = make_result("partial", texts=HOSTILE, client='=HYPERLINK("x","y")')
    reviews = [review(1, 7, "comment", 1, comment="@SUM(1,1) check this")]
    path = write_workpaper(result, tmp_path / "wp.xlsx", reviews=reviews)
    wb = load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula"
                assert cell.data_type != "e", f"{ws.title}!{cell.coordinate} is an error value"
    names, rows = table(wb["Sentences"])
    written = [r["sentence"] for r in rows if r["section"] == "Outlook"]
    # As in the document, no prefix added (a lone CR reads back as LF, as XML has it).
    assert written == [t.replace("\r", "\n") for t in HOSTILE]
    cover = [c.value for c in wb["Cover"]["B"]]
    assert '=HYPERLINK("x","y")' in cover
    ws = wb["Sentences"]
    for r in range(HEADER_ROWS + 2, ws.max_row + 1):
        cell = ws.cell(row=r, column=5)
        if cell.value.startswith(("=", "+", "-", "@", "\t", "\n")):
            # Excel's quote prefix: editing the cell in Excel keeps it text.
            assert cell.quotePrefix, cell.value
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name)


@pytest.mark.slow  # fast twin: test_document_text_never_becomes_a_formula
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_evaluates_no_document_text_as_a_formula(tmp_path):
    result = make_result(texts=HOSTILE)
    path = write_workpaper(result, tmp_path / "wp.xlsx")
    # Every sheet to its own CSV (LibreOffice 7.2+): what LibreOffice computed, not what we wrote.
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
            "--outdir",
            str(tmp_path / "csv"),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    sentences = next((tmp_path / "csv").glob("*Sentences*.csv"))
    with sentences.open(encoding="utf-8", newline="") as f:
        values = [row[4] for row in csv.reader(f) if len(row) > 4]
    for text in HOSTILE:
        assert text.replace("\r", "\n") in values, f"{text!r} did not survive as text"
    assert "2" not in values and "5" not in values  # =1+1 and =SUM(2,3) were not computed


def test_evidence_is_rich_text_coloured_by_direction(tmp_path):
    wb = load_workbook(write_workpaper(make_result(), tmp_path / "wp.xlsx"), rich_text=True)
    ws = wb["Sentences"]
    cells = {
        ws.cell(row=r, column=1).value: ws.cell(row=r, column=11).value
        for r in range(HEADER_ROWS + 2, ws.max_row + 1)
    }

    def colours(rich: CellRichText) -> dict[str, str]:
        return {
            b.text: b.font.color.rgb[-6:] for b in rich if isinstance(b, TextBlock) and b.font.b
        }

    positive, negative = cells[1], cells[2]
    assert isinstance(positive, CellRichText) and isinstance(negative, CellRichText)
    assert str(positive).startswith("for positive: rose (+0.31), record (+0.22); against:")
    # Towards positive is green, towards negative red, whatever the explained label.
    assert colours(positive) == {"rose": GREEN, "record": GREEN, "=1+1": RED}
    # An explanation with only per-word values: the strongest words are taken from them.
    assert colours(negative) == {"lost": RED, "major": GREEN}
    assert cells[3] is None  # no explanation, no evidence
    # under the words, how they were made (make_result's explanations are sampled), not bold
    assert str(positive).endswith("\nsampled Owen values")
    assert not any(isinstance(b, TextBlock) and b.font.b and "sampled" in b.text for b in positive)


def test_evidence_and_cover_say_which_method_made_it_and_why(tmp_path):
    result = make_result()
    sampled, other = result.explanations
    note = "no amortized explainer is shipped with this model; evidence is sampled instead"
    fidelity = {
        "spearman": 0.84,
        "top1": 0.86,
        "top3": 0.78,
        "n_sentences": 200,
        "reference": "a 2,000-evaluation reference",
        "set": "report sentences",
        "blessed": True,
    }
    amortized = sampled.model_copy(update={"method": "amortized", "fidelity": fidelity})
    fell_back = other.model_copy(update={"settings": {"evals_per_word": 3.0}, "note": note})
    result = result.model_copy(update={"explanations": (amortized, fell_back)})
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"), rich_text=True)
    ws = wb["Sentences"]
    cells = {
        ws.cell(row=r, column=1).value: ws.cell(row=r, column=11).value
        for r in range(HEADER_ROWS + 2, ws.max_row + 1)
    }
    line = (
        "amortized explainer (Spearman 0.84, top-1 0.86, top-3 0.78 against a 2,000-evaluation "
        "reference on 200 report sentences)"
    )
    assert str(cells[1]).endswith("\n" + line)
    # the reason for sampling is said once, on the cover, not in every row
    assert str(cells[2]).endswith("\nsampled Owen values, 3 evaluations per word")
    cover = [(r[0].value, r[1].value) for r in wb["Cover"].iter_rows(max_col=2) if r[0].value]
    made = [v for k, v in cover if k == "Evidence made by"]
    assert made == [
        f"{line} (1 sentence)",
        f"sampled Owen values, 3 evaluations per word; {note} (1 sentence)",
    ] or made == [
        f"sampled Owen values, 3 evaluations per word; {note} (1 sentence)",
        f"{line} (1 sentence)",
    ]
    # the JSON says it too
    rows = {r["index"]: r for r in result_to_json(result)["sentences"]}
    assert rows[1]["evidence_method"] == line
    assert rows[1]["explanation"]["method"] == "amortized"


def test_evidence_of_a_neutral_sentence_is_not_called_positive_or_negative():
    expl = Explanation(
        sentence_index=0,
        label="neutral",
        words=("the", "board"),
        values=(0.1, -0.2),
        base_value=0.5,
        output_value=0.6,
        additivity_error=0.0,
        top_for=(WordWeight(word="the", weight=0.1),),
        top_against=(WordWeight(word="board", weight=-0.2), WordWeight(word="x", weight=-0.001)),
    )
    rich = evidence_text(expl)
    assert str(rich) == "for neutral: the (+0.10); against: board (-0.20)"
    colours = {b.font.color.rgb[-6:] for b in rich if isinstance(b, TextBlock)}
    assert not colours & {GREEN, RED}


def test_summary_counts_labels_tone_and_most_negative(tmp_path):
    result = make_result()
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    ws = wb["Summary"]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    by_first = {row[0]: row for row in values if row[0] is not None}
    # 5 scored sentences count: 1 positive, 3 negative, 1 neutral; the two headings (one of
    # them scored) are shown on their own row and kept out of the shares and the tone.
    assert by_first["positive"][1:3] == [1, pytest.approx(1 / 5)]
    assert by_first["negative"][1:3] == [3, pytest.approx(3 / 5)]
    assert by_first["headings (not counted)"][1] == 2
    assert "not scored" not in by_first  # every sentence that counts is scored
    assert by_first["tone index"][1] == pytest.approx((1 - 3) / 5)
    assert any(
        str(v).startswith("Tone index = (positive sentences - negative sentences)")
        for v in by_first
    )
    assert by_first["Going concern"][1:6] == ["going_concern", 2, 0, 1, 1]
    start = next(i for i, row in enumerate(values) if str(row[0]).startswith("Most negative"))
    ranked = [row for row in values[start + 2 :] if row[0]]
    assert [row[0] for row in ranked][:3] == [
        "A material uncertainty exists that may cast significant doubt.",
        "We lost two major customers in the U.S. market.",
        "Supply of components may be disrupted.",
    ]
    assert ranked[0][2] == 2 and ranked[0][3] == 0.95  # page and P(negative)
    assert "Risk factors" not in [row[0] for row in ranked]  # headings left out


def test_partial_result_lists_every_exception(tmp_path):
    result = make_result("partial")
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    names, rows = table(wb["Exceptions"])
    assert names == ["severity", "stage", "code", "page", "message"]
    assert [(r["stage"], r["code"], r["page"], r["message"]) for r in rows] == [
        (e.stage, e.code, e.page_no, e.message) for e in result.errors
    ]
    assert {r["severity"] for r in rows} == {"warning"}
    banner = wb["Cover"].cell(row=HEADER_ROWS + 2, column=1).value
    assert banner.startswith("PARTIAL: 2 problem(s) (page 3)")


@pytest.mark.parametrize("client", ["Northwind Components N.V.", None])
def test_failed_document_says_so_on_the_cover_and_explains_why(tmp_path, client):
    result = make_result("failed", client=client)
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    cover = wb["Cover"]
    banner = cover.cell(row=HEADER_ROWS + 2, column=1)
    assert banner.value.startswith("DOCUMENT FAILED")
    assert "password-protected" in banner.value
    assert banner.fill.fgColor.rgb.endswith("C00000") and banner.font.b
    pairs = {r[0]: r[1] for r in cover.iter_rows(values_only=True) if r[0]}
    assert pairs["Client"] == (client or "(not given)")
    assert pairs["Status"] == "FAILED" and pairs["Pages"] == "(not read)"
    names, rows = table(wb["Exceptions"])
    assert rows[0]["severity"] == "FATAL" and rows[0]["code"] == "encrypted"
    assert "ask the client for an unlocked copy" in rows[0]["message"]
    sentences = wb["Sentences"].cell(row=HEADER_ROWS + 2, column=1).value
    assert sentences.startswith("No sentences: DOCUMENT FAILED")


def test_a_result_without_document_bytes_gets_a_workpaper(tmp_path):
    result = DocumentResult(
        source="/clients/missing.pdf",
        document=None,
        status="failed",
        stamp=make_stamp(),
        errors=(
            StageError(
                stage="ingest", code="not_found", fatal=True, message="missing.pdf: file not found."
            ),
        ),
    )
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    assert "sha256 (not read)" in header_text(wb["Summary"])
    assert "missing.pdf" in header_text(wb["Cover"])


def test_reviews_fill_the_review_columns_and_the_log(tmp_path):
    reviews = [
        review(
            3,
            2,
            "override",
            10,
            label="neutral",
            previous_label="negative",
            comment="boilerplate",
            reviewer="asmith",
            model_version="7",
        ),
        review(1, 2, "agree", 0, label="negative", previous_label="negative"),
        review(2, 5, "comment", 5, comment="=ask management"),
        review(4, None, "signoff_preparer", 20),
    ]
    wb = load_workbook(write_workpaper(make_result(), tmp_path / "wp.xlsx", reviews=reviews))
    _, rows = table(wb["Sentences"])
    by_index = {r["sentence id"]: r for r in rows}
    # The latest decision wins the label; jdoe agreed with negative and asmith chose
    # neutral, so the sentence is disputed; every comment is kept.
    assert by_index[2]["review status"] == "disputed"
    assert by_index[2]["reviewer label"] == "neutral"
    assert by_index[2]["review comment"] == "asmith: boilerplate"
    assert by_index[2]["reviewer"] == "asmith"
    assert by_index[2]["reviewed at (UTC)"] == datetime(2025, 4, 1, 9, 10)
    assert by_index[5]["review status"] is None
    assert by_index[5]["review comment"] == "jdoe: =ask management"
    assert by_index[1]["review status"] is None
    _, log = table(wb["Review log"])
    assert [(r["action"], r["sentence id"]) for r in log] == [
        ("agree", 2),
        ("comment", 5),
        ("override", 2),
        ("signoff_preparer", None),
    ]
    assert log[2]["label before"] == "negative" and log[2]["label after"] == "neutral"
    assert log[3]["sentence"] == "(whole document)"
    assert log[2]["dispute"] == "opens dispute (asmith: neutral, jdoe: negative)"
    assert log[0]["dispute"] is None
    cover = {r[0]: r[1] for r in wb["Cover"].iter_rows(values_only=True) if r[0]}
    assert cover["Preparer"] == "jdoe, 2025-04-01 09:20 UTC [in force]"
    assert cover["Open disputes"] == "sentence 2"


def test_the_cover_shows_superseded_and_exception_signoffs(tmp_path):
    reviews = [
        review(1, None, "signoff_preparer", 0),
        review(2, 2, "agree", 5, label="negative", previous_label="negative"),
        review(
            3,
            None,
            "signoff_reviewer_exception",
            10,
            reviewer="asmith",
            comment="Exception (1 open dispute (#2)): partner approved",
        ),
        review(4, 2, "agree", 15, label="negative", previous_label="negative", reviewer="asmith"),
        review(5, 2, "resolve", 16, comment="settled", reviewer="asmith"),
    ]
    path = write_workpaper(
        make_result(),
        tmp_path / "wp.xlsx",
        reviews=reviews,
        signoff=SignoffOptions(resign_after_decisions=False),
    )
    cover = [r for r in load_workbook(path)["Cover"].iter_rows(values_only=True) if r[0]]
    signed = [v for k, v in cover if k in ("Preparer", "Reviewer")]
    assert signed == [
        "jdoe, 2025-04-01 09:00 UTC [in force]",
        "asmith, 2025-04-01 09:10 UTC [exception]: "
        "Exception (1 open dispute (#2)): partner approved",
    ]
    wb = load_workbook(write_workpaper(make_result(), tmp_path / "wp2.xlsx", reviews=reviews))
    cover = [r for r in wb["Cover"].iter_rows(values_only=True) if r[0]]
    signed = [v for k, v in cover if k in ("Preparer", "Reviewer")]
    assert signed[0].endswith("[superseded]")
    assert "[superseded exception]" in signed[1]


def test_without_reviews_the_log_says_none_were_recorded(tmp_path):
    wb = load_workbook(write_workpaper(make_result(), tmp_path / "wp.xlsx"))
    assert (
        wb["Review log"]
        .cell(row=HEADER_ROWS + 2, column=1)
        .value.startswith("No review actions recorded")
    )


def test_reviews_of_another_document_are_refused(tmp_path):
    other = ReviewAction(
        id=1,
        result_id=9,
        doc_id="b2" * 32,
        sentence_index=0,
        action="agree",
        reviewer="jdoe",
        created_at=datetime(2025, 4, 1, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="reviews of other documents"):
        write_workpaper(make_result(), tmp_path / "wp.xlsx", reviews=[other])
    assert not (tmp_path / "wp.xlsx").exists()


def test_control_characters_are_shown_not_fatal(tmp_path):
    result = make_result(texts=["Net\x00 loss\x07 of \ud800 €1m"])
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    _, rows = table(wb["Sentences"])
    assert rows[-1]["sentence"] == "Net\ufffd loss\ufffd of \ufffd €1m"


def test_unwritable_destination_is_an_export_error(tmp_path):
    (tmp_path / "taken.xlsx").mkdir()
    with pytest.raises(ExportError, match="could not be written"):
        write_workpaper(make_result(), tmp_path / "taken.xlsx")
    assert list(tmp_path.iterdir()) == [tmp_path / "taken.xlsx"]  # no temporary file left


def test_workpaper_goes_into_a_new_folder(tmp_path):
    path = write_workpaper(make_result(), tmp_path / "out" / "deep" / "wp.xlsx")
    assert path.is_file()


def test_batch_workpaper_has_one_row_per_document_and_every_exception(tmp_path):
    ok, partial, failed = make_result(), make_result("partial"), make_result("failed")
    # A Ray worker sends the small batch_row dict back; the driver may also pass results.
    items = [ok, batch_row(partial), failed]
    path = write_batch_workpaper(items, tmp_path / "batch.xlsx", title="Nightly 2025-03-31")
    wb = load_workbook(path)
    assert wb.sheetnames == list(BATCH_SHEETS)
    for ws in wb.worksheets:
        assert MODEL_SHA in header_text(ws) and "run-20250331-ab12" in header_text(ws)
    assert wb["Batch"].cell(row=1, column=1).value == "Nightly 2025-03-31"
    banner = wb["Batch"].cell(row=HEADER_ROWS + 2, column=1).value
    assert banner.startswith("3 documents: 1 ok, 1 partial, 1 failed")
    names, rows = table(wb["Documents"])
    assert [r["status"] for r in rows] == ["ok", "partial", "failed"]
    assert rows[0]["sentences"] == 7 and rows[0]["negative"] == 3  # the heading not counted
    assert rows[0]["scoring (s)"] == 2.5 and rows[0]["seconds"] == pytest.approx(2.9)
    assert rows[1]["errors"] == 2 and rows[2]["pages"] is None
    assert "password-protected" in rows[2]["first problem"]
    assert all(r["input sha256"] == SHA and r["model sha256"] == MODEL_SHA for r in rows)
    _, errors = table(wb["Exceptions"])
    assert len(errors) == 3 and errors[0]["severity"] == "FATAL"
    assert errors[0]["document"] == "locked.pdf"


def test_batch_row_keys_are_checked(tmp_path):
    row = batch_row(make_result())
    row["colour"] = "red"
    with pytest.raises(ValueError, match="unknown batch row keys"):
        write_batch_workpaper([row], tmp_path / "batch.xlsx")


def test_empty_batch_gets_a_workpaper(tmp_path):
    wb = load_workbook(write_batch_workpaper([], tmp_path / "b.xlsx", stamp=make_stamp()))
    assert wb["Batch"].cell(row=HEADER_ROWS + 2, column=1).value.startswith("0 documents")


def test_rows_with_long_text_are_tall_enough_to_show_it(tmp_path):
    long = "The group recorded an impairment of goodwill. " * 8
    wb = load_workbook(write_workpaper(make_result(texts=[long, "Short."]), tmp_path / "wp.xlsx"))
    ws = wb["Sentences"]
    heights = {
        ws.cell(row=r, column=5).value: ws.row_dimensions[r].height
        for r in range(HEADER_ROWS + 2, ws.max_row + 1)
    }
    # 376 characters in a 55-wide column wrap to six or seven lines of 15 points.
    assert heights[long] >= 6 * 15
    assert heights["Short."] is None  # one line: the default height


def test_ocr_pages_are_on_the_cover_in_exceptions_and_marked_on_their_sentences(tmp_path):
    base = make_result()
    # pages 2 and 3 read by OCR, page 3 below the bar of 0.9 the result was read with
    pages = tuple(
        p.model_copy(update={"ocr": True, "ocr_confidence": conf, "ocr_language": "nld"})
        if conf is not None
        else p
        for p, conf in zip(base.pages, (None, 0.94, 0.71), strict=True)
    )
    sentences = tuple(s.model_copy(update={"ocr": s.page_no > 1}) for s in base.sentences)
    result = base.model_copy(
        update={
            "pages": pages,
            "sentences": sentences,
            "settings": {**base.settings, "ingest": {"ocr": "auto", "ocr_min_confidence": 0.9}},
        }
    )
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))

    pairs = {r[0]: r[1] for r in wb["Cover"].iter_rows(values_only=True) if r[0]}
    assert pairs["OCR"] == (
        "2 of 3 pages read by OCR; language nld; mean word confidence 82%. Below 90%, check "
        "against the page image: page 3 (71%)."
    )
    _, errors = table(wb["Exceptions"])
    assert [(r["severity"], r["code"], r["page"]) for r in errors] == [
        ("warning", "ocr_low_confidence", 3)
    ]
    assert "mean word confidence of 71%" in errors[0]["message"]
    _, rows = table(wb["Sentences"])
    assert {r["page"]: r["OCR"] for r in rows} == {1: None, 2: "OCR"}
    assert result.status == "ok"  # a page to check by eye is no failure of the analysis

    data = result_to_json(result)
    assert [(p["page_no"], p["ocr"], p["ocr_confidence"]) for p in data["pages"]] == [
        (1, False, None),
        (2, True, 0.94),
        (3, True, 0.71),
    ]
    assert data["ocr"]["low_confidence_pages"] == [3] and data["ocr"]["languages"] == ["nld"]
    assert [s["ocr"] for s in data["sentences"]] == [s.page_no > 1 for s in sentences]


def test_text_pdf_workpaper_says_no_page_was_ocrd(tmp_path):
    wb = load_workbook(write_workpaper(make_result(), tmp_path / "wp.xlsx"))
    pairs = {r[0]: r[1] for r in wb["Cover"].iter_rows(values_only=True) if r[0]}
    assert pairs["OCR"] == "no page read by OCR"
    assert result_to_json(make_result())["ocr"] is None


def test_most_negative_says_none_without_a_negative_sentence_and_rows_stay_out(tmp_path):
    base = make_result()
    neutral = {"positive": 0.1, "negative": 0.1, "neutral": 0.8}
    scores = tuple(
        s.model_copy(update={"label": "neutral", "probabilities": neutral, "confidence": 0.8})
        for s in base.scores
    )
    row = base.sentences[-1].model_copy(
        update={"index": len(base.sentences), "text": "Net sales $ 62,151 $ 57,394 8.3%"}
    )
    row = row.model_copy(update={"kind": "table_row"})
    table_score = scores[-1].model_copy(
        update={
            "sentence_index": row.index,
            "label": "negative",
            "probabilities": {"positive": 0.0, "negative": 0.9, "neutral": 0.1},
        }
    )
    result = base.model_copy(
        update={"sentences": (*base.sentences, row), "scores": (*scores, table_score)}
    )
    wb = load_workbook(write_workpaper(result, tmp_path / "wp.xlsx"))
    values = [[c.value for c in row] for row in wb["Summary"].iter_rows()]
    by_first = {row[0]: row for row in values if row[0] is not None}
    # the table row, scored negative, counts in neither the labels nor the most-negative list
    assert by_first["negative"][1] == 0
    assert by_first["table row (not counted)"][1] == 1
    start = next(i for i, r in enumerate(values) if str(r[0]).startswith("Most negative"))
    assert [r[0] for r in values[start + 2 :] if r[0]] == [
        "None: no sentence is labelled negative."
    ]
    summary = result_to_json(result)["summary"]
    assert summary["labels"]["negative"] == 0 and summary["kinds"]["table_row"] == 1
    # and it is still on the Sentences sheet, with its kind
    cells = [[c.value for c in r] for r in wb["Sentences"].iter_rows()]
    assert any("table_row" in r and "Net sales $ 62,151 $ 57,394 8.3%" in r for r in cells)
