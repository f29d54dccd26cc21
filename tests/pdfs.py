"""Small PDFs for tests, written with reportlab (or by hand where reportlab cannot).

Every writer takes a path, writes one PDF there and returns the path, so a test reads

    pdf = write_two_column_page(tmp_path / "two_columns.pdf")

The texts are module constants, so tests assert against exactly what was drawn. Everything is
set with the standard PDF fonts and explicit coordinates, so the layout (columns, line breaks,
hyphens) is known to the point. Shared by the ingest, sentence, pipeline, batch and UI tests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pypdfium2
from PIL import Image, ImageFilter
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

PAGE_W, PAGE_H = A4
MARGIN = 72.0
BODY_FONT, BOLD_FONT = "Helvetica", "Helvetica-Bold"
BODY_SIZE, LEADING = 10.0, 13.0
HEADING_SIZE = 15.0

# ---------------------------------------------------------------------------------------------
# texts the writers draw (tests assert against these)

REPORT_TITLE = "Acme Holdings plc Annual Report 2023"
REPORT_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Risk factors",
        (
            "Our results depend on a small number of large customers. The loss of any one of them "
            "would reduce revenue and could lead to an impairment of goodwill.",
            "Energy prices rose sharply during the year and remain volatile. We hedge part of our "
            "exposure, but higher costs may not be passed on to customers in full.",
        ),
    ),
    (
        "Going concern",
        (
            "The directors have reviewed cash-flow forecasts for the next eighteen months. They "
            "expect the group to meet its obligations as they fall due.",
        ),
    ),
    (
        "Outlook",
        (
            "We expect revenue to grow by about five percent next year. Margins should recover as "
            "the new plant reaches full capacity in the second half.",
        ),
    ),
)
REPORT_BULLETS: tuple[str, ...] = (
    "Revenue grew by twelve percent to a record level.",
    "Net debt fell for the third year in a row.",
    "The board proposes a higher dividend.",
)
"""Bullet points drawn under the Outlook section of `write_clean_report`."""

LEFT_COLUMN = (
    "The board approved the merger with Globex Corporation after a long review of its accounts "
    "and its pension obligations. The combined group will have more than ten thousand employees "
    "in twelve countries and a strong position in industrial pumps."
)
RIGHT_COLUMN = (
    "Revenue in the northern region fell sharply because two large customers moved their "
    "orders to cheaper suppliers in Asia. Management expects the decline to continue until the "
    "new product line is launched next spring."
)
TWO_COLUMN_HEADING = "Review of the year"

RUNNING_HEADER = "Acme Holdings plc - Annual Report 2023"
RUNNING_FOOTER = "Confidential draft for the audit committee"
RUNNING_BODY = (
    "Sales in the first quarter were in line with our expectations.",
    "The second quarter brought a recovery in industrial demand.",
    "In the third quarter we completed the sale of the packaging unit.",
    "Fourth quarter orders were the highest in the history of the company.",
    "Cash generation remained strong throughout the year.",
    "The pension deficit narrowed after a rise in long-term interest rates.",
)
"""One body sentence per page of `write_running_headers` (page i gets RUNNING_BODY[i - 1])."""

HYPHENATED_LINES = (
    "The group's finan-",
    "cial position remained strong through-",
    "out the year, and we signed a long-",
    "term supply contract with a new customer.",
    "A second long-term contract followed in May. Both short-",
    "and long-term debt fell.",
)
HYPHENATED_TEXT = (
    "The group's financial position remained strong throughout the year, and we signed a "
    "long-term supply contract with a new customer. A second long-term contract followed in May. "
    "Both short- and long-term debt fell."
)
"""`HYPHENATED_LINES` as one paragraph: breaks closed, the compound's hyphen kept (the report
writes "long-term" elsewhere), the hyphen before "and" kept with its space."""

TABLE_INTRO = "The table below summarises the results of the last two years."
TABLE_OUTRO = "Operating profit improved because of lower raw material costs."
TABLE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("", "2023", "2022"),
    ("Revenue", "1,234.5", "1,100.2"),
    ("Cost of sales", "(812.0)", "(790.4)"),
    ("Gross profit", "422.5", "309.8"),
    ("Operating profit", "131.7", "88.1"),
)

ROTATED_LINES = (
    "Adjusted baseline by category",
    "Outlays grew in every year of the forecast period.",
    "Receipts recovered after the second year.",
)
"""Drawn turned on a sideways-stored page (/Rotate 90) so that they read upright."""

DENSE_SENTENCE = "The appendix lists every measurement taken during the year."

SCANNED_LOOK = "image-only page: a grey page with black bars, no text layer"

GARBLED_LINES = (
    "=LMBFGNOCFGFPQJBOAGRJSSFBQC6FBHHCAAHGSDGIH ?SCATHGDQJGHCAGH QJBKGF",
    "?OAATGCF6BDECFCAGHCAGHSFGQBKGF >LPCIJ6BDECFCAGSOGH6BOIHSFGQZL 6BDECF",
    ')[)5\\]-4^&2_#,+3`!)#$*#$,"\'#"#3,a,#02 3$ !0+"!b#$"c b#0$"cd0,$" $,3a',
    "f]0$522 + $,\"'g\"c 5$2c !!\"$,\" ga'!3$''gg$#h\"c,3e0'+3'ge$,3!\"$ g\"c-3 +'",
)
"""Glyph soup like a font without a Unicode map yields (McDonald's 2022 Q4 release)."""

DUTCH_HEADING = "Verslag van de raad van bestuur"
DUTCH_PARAGRAPHS = (
    "De omzet van de groep steeg in het afgelopen jaar met zeven procent tot een recordniveau. "
    "Vooral de vraag van klanten in Duitsland en België nam sterk toe.",
    "De brutomarge daalde licht doordat de prijzen van grondstoffen en energie hoger waren dan "
    "verwacht. Wij verwachten dat de marge volgend jaar weer herstelt.",
    "De raad van bestuur stelt voor om een hoger dividend uit te keren aan de aandeelhouders. "
    "De schuldpositie van de onderneming is verder verbeterd.",
)
"""A Dutch report page (`write_text_page`), for the OCR language to be detected."""

NOT_A_PDF = (
    b"<!doctype html>\n<html><head><title>FOMC meeting</title></head>\n"
    b"<body><p>The page you requested has moved.</p></body></html>\n"
)


# ---------------------------------------------------------------------------------------------
# helpers


def _canvas(path: Path, **kwargs: object) -> Canvas:
    path.parent.mkdir(parents=True, exist_ok=True)
    c = Canvas(str(path), pagesize=A4, invariant=1, **kwargs)
    c.setTitle(path.stem)
    return c


def wrap(text: str, width: float, font: str = BODY_FONT, size: float = BODY_SIZE) -> list[str]:
    """Break text into lines no wider than `width` points (greedy, at spaces)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if line and stringWidth(trial, font, size) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


def _paragraph(
    c: Canvas,
    text: str,
    x: float,
    y: float,
    width: float,
    font: str = BODY_FONT,
    size: float = BODY_SIZE,
) -> float:
    """Draw a wrapped paragraph from baseline y down; return the baseline below it."""
    c.setFont(font, size)
    for line in wrap(text, width, font, size):
        c.drawString(x, y, line)
        y -= LEADING
    return y


# ---------------------------------------------------------------------------------------------
# good documents


def write_clean_report(path: Path) -> Path:
    """A one-page report: a title, headings (Risk factors, Going concern, Outlook), paragraphs
    and three bullet points, single column."""
    c = _canvas(path)
    width = PAGE_W - 2 * MARGIN
    y = PAGE_H - MARGIN
    c.setFont(BOLD_FONT, 18)
    c.drawString(MARGIN, y, REPORT_TITLE)
    y -= 34
    for heading, paragraphs in REPORT_SECTIONS:
        c.setFont(BOLD_FONT, HEADING_SIZE)
        c.drawString(MARGIN, y, heading)
        y -= 22
        for text in paragraphs:
            y = _paragraph(c, text, MARGIN, y, width) - 8
        y -= 8
    c.setFont(BODY_FONT, BODY_SIZE)
    for item in REPORT_BULLETS:
        c.drawString(MARGIN + 6, y, "•")
        c.drawString(MARGIN + 18, y, item)
        y -= LEADING + 4
    c.showPage()
    c.save()
    return path


def write_two_column_page(path: Path) -> Path:
    """A page with a full-width heading over two columns whose lines share baselines (the
    layout plain pdfplumber interleaves): LEFT_COLUMN on the left, RIGHT_COLUMN on the right."""
    c = _canvas(path)
    gutter = 24.0
    col_w = (PAGE_W - 2 * MARGIN - gutter) / 2
    y = PAGE_H - MARGIN
    c.setFont(BOLD_FONT, HEADING_SIZE)
    c.drawString(MARGIN, y, TWO_COLUMN_HEADING)
    y -= 26
    _paragraph(c, LEFT_COLUMN, MARGIN, y, col_w)
    _paragraph(c, RIGHT_COLUMN, MARGIN + col_w + gutter, y, col_w)
    c.showPage()
    c.save()
    return path


def write_running_headers(path: Path, n_pages: int = 4) -> Path:
    """`n_pages` pages, each with RUNNING_HEADER at the top, RUNNING_FOOTER and "Page i of n"
    at the bottom, and one body sentence (RUNNING_BODY[i - 1]) in between."""
    if n_pages > len(RUNNING_BODY):
        raise ValueError(f"at most {len(RUNNING_BODY)} pages")
    c = _canvas(path)
    for i in range(1, n_pages + 1):
        c.setFont(BODY_FONT, 8)
        c.drawString(MARGIN, PAGE_H - 36, RUNNING_HEADER)
        c.drawString(MARGIN, 36, RUNNING_FOOTER)
        c.drawRightString(PAGE_W - MARGIN, 36, f"Page {i} of {n_pages}")
        _paragraph(c, RUNNING_BODY[i - 1], MARGIN, PAGE_H - MARGIN - 20, PAGE_W - 2 * MARGIN)
        c.showPage()
    c.save()
    return path


def write_hyphenated(path: Path) -> Path:
    """A paragraph whose lines end in hyphenated breaks (HYPHENATED_LINES, drawn as given)."""
    c = _canvas(path)
    c.setFont(BODY_FONT, BODY_SIZE)
    y = PAGE_H - MARGIN
    for line in HYPHENATED_LINES:
        c.drawString(MARGIN, y, line)
        y -= LEADING
    c.showPage()
    c.save()
    return path


def write_table_page(path: Path) -> Path:
    """A paragraph (TABLE_INTRO), a table of figures (TABLE_ROWS: a label column and two number
    columns, right-aligned) and a paragraph after it (TABLE_OUTRO)."""
    c = _canvas(path)
    y = PAGE_H - MARGIN
    y = _paragraph(c, TABLE_INTRO, MARGIN, y, PAGE_W - 2 * MARGIN) - 12
    for label, a, b in TABLE_ROWS:
        c.setFont(BOLD_FONT if not label else BODY_FONT, BODY_SIZE)
        if label:
            c.drawString(MARGIN, y, label)
        c.drawRightString(MARGIN + 300, y, a)
        c.drawRightString(MARGIN + 380, y, b)
        y -= LEADING
    y -= 14
    _paragraph(c, TABLE_OUTRO, MARGIN, y, PAGE_W - 2 * MARGIN)
    c.showPage()
    c.save()
    return path


def write_pages(path: Path, n_pages: int) -> Path:
    """`n_pages` plain pages, page i saying "This is page i of the test document." (limits)."""
    c = _canvas(path)
    for i in range(1, n_pages + 1):
        c.setFont(BODY_FONT, BODY_SIZE)
        c.drawString(MARGIN, PAGE_H - MARGIN, f"This is page {i} of the test document.")
        c.showPage()
    c.save()
    return path


def write_rotated_page(path: Path) -> Path:
    """A page stored sideways (landscape media box, /Rotate 90) with its text drawn turned, so
    a viewer shows a portrait page with ROTATED_LINES upright, one inch from the top left."""
    c = _canvas(path)
    c.setPageRotation(90)
    c.setFont(BODY_FONT, BODY_SIZE)
    for k, line in enumerate(ROTATED_LINES):
        # text running up the portrait page reads left to right once the page is turned
        c.saveState()
        c.translate(MARGIN + k * 2 * LEADING, MARGIN)
        c.rotate(90)
        c.drawString(0, 0, line)
        c.restoreState()
    c.showPage()
    c.save()
    return path


def write_dense_page(path: Path, rows: int = 150, cols: int = 18) -> Path:
    """One page packed with `rows` x `cols` tiny figures (about 2,700 cells, far more than a
    report page holds) and one sentence, DENSE_SENTENCE, above them."""
    c = _canvas(path)
    c.setFont(BODY_FONT, BODY_SIZE)
    c.drawString(MARGIN, PAGE_H - 30, DENSE_SENTENCE)
    c.setFont(BODY_FONT, 4)
    for r in range(rows):
        for k in range(cols):
            c.drawRightString(60 + k * 29, PAGE_H - 50 - r * 5, f"{(r * 31 + k * 7) % 9999:,}")
    c.showPage()
    c.save()
    return path


# ---------------------------------------------------------------------------------------------
# bad documents


def write_encrypted(
    path: Path, user_password: str = "userpass", owner_password: str = "ownerpass"
) -> Path:
    """The clean report's first section, encrypted (RC4/AES by reportlab) with a user password."""
    from reportlab.lib.pdfencrypt import StandardEncryption

    enc = StandardEncryption(
        user_password,
        ownerPassword=owner_password,
        canPrint=1,
        canModify=0,
        canCopy=1,
        canAnnotate=0,
    )
    c = _canvas(path, encrypt=enc)
    heading, paragraphs = REPORT_SECTIONS[0]
    c.setFont(BOLD_FONT, HEADING_SIZE)
    c.drawString(MARGIN, PAGE_H - MARGIN, heading)
    _paragraph(c, paragraphs[0], MARGIN, PAGE_H - MARGIN - 24, PAGE_W - 2 * MARGIN)
    c.showPage()
    c.save()
    return path


def write_truncated(path: Path, keep: float = 0.5) -> Path:
    """A three-page report cut after `keep` of its bytes (a download that stopped half way)."""
    full = io.BytesIO()
    c = Canvas(full, pagesize=A4, invariant=1)
    for i in range(3):
        _paragraph(c, f"Page {i + 1}. " + LEFT_COLUMN, MARGIN, PAGE_H - MARGIN, PAGE_W - 2 * MARGIN)
        c.showPage()
    c.save()
    data = full.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_blank_pages(path: Path, n_pages: int = 2, text_on: Sequence[int] = ()) -> Path:
    """`n_pages` pages with nothing on them, except "Text on page i." on the pages in
    `text_on` (1-based)."""
    c = _canvas(path)
    for i in range(1, n_pages + 1):
        if i in text_on:
            c.setFont(BODY_FONT, BODY_SIZE)
            c.drawString(MARGIN, PAGE_H - MARGIN, f"Text on page {i}.")
        c.showPage()
    c.save()
    return path


def _scan_image(seed: int = 0) -> ImageReader:
    """A grey 'scanned page' image with black bars where lines of type would be."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (620, 877), 235)
    draw = ImageDraw.Draw(img)
    for row in range(14):
        y = 70 + row * 48
        draw.rectangle((60, y, 560 - ((row + seed) % 4) * 60, y + 14), fill=20)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    return ImageReader(buf)


def write_image_only(path: Path, n_pages: int = 2) -> Path:
    """A scanned document: every page is one image, with no text layer at all."""
    c = _canvas(path)
    for i in range(n_pages):
        c.drawImage(_scan_image(i), 0, 0, width=PAGE_W, height=PAGE_H)
        c.showPage()
    c.save()
    return path


def write_text_page(path: Path, heading: str, paragraphs: Sequence[str]) -> Path:
    """One page: a bold heading over plain paragraphs (any language)."""
    c = _canvas(path)
    c.setFont(BOLD_FONT, HEADING_SIZE)
    y = PAGE_H - MARGIN
    c.drawString(MARGIN, y, heading)
    y -= 24
    for text in paragraphs:
        y = _paragraph(c, text, MARGIN, y, PAGE_W - 2 * MARGIN) - 8
    c.showPage()
    c.save()
    return path


def page_images(pdf: Path, dpi: int = 200) -> list[object]:
    """Each page of a PDF rendered with pypdfium2, as a grey PIL image (what a scanner sees)."""
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return [page.render(scale=dpi / 72, grayscale=True).to_pil() for page in doc]
    finally:
        doc.close()


def write_image_pages(path: Path, pages: Sequence[object]) -> Path:
    """A PDF of A4 pages, each an image drawn over the whole page (a scan: no text layer) or,
    given a tuple of strings, those paragraphs set as text (a born-digital page)."""
    c = _canvas(path)
    for page in pages:
        if isinstance(page, tuple):
            y = PAGE_H - MARGIN
            for text in page:
                y = _paragraph(c, text, MARGIN, y, PAGE_W - 2 * MARGIN) - 8
        else:
            buf = io.BytesIO()
            page.save(buf, format="PNG")  # type: ignore[attr-defined]
            buf.seek(0)
            c.drawImage(ImageReader(buf), 0, 0, width=PAGE_W, height=PAGE_H)
        c.showPage()
    c.save()
    return path


def write_soup_over_image(path: Path, image: object) -> Path:
    """A page that shows words (an image of them) while its text layer, set invisibly over
    it, is glyph soup (GARBLED_LINES): how a font without a Unicode map reads."""
    c = _canvas(path)
    buf = io.BytesIO()
    image.save(buf, format="PNG")  # type: ignore[attr-defined]
    buf.seek(0)
    c.drawImage(ImageReader(buf), 0, 0, width=PAGE_W, height=PAGE_H)
    text = c.beginText(MARGIN, PAGE_H - MARGIN)
    text.setFont("Courier", 8)
    text.setTextRenderMode(3)  # invisible, as an OCR layer or a hidden font is
    for _ in range(6):
        for line in GARBLED_LINES:
            text.textLine(line)
    c.drawText(text)
    c.showPage()
    c.save()
    return path


def write_rendered_scan(source: Path, path: Path, dpi: int = 200) -> Path:
    """`source` rendered page by page into an image-only PDF: a scan of a known document."""
    return write_image_pages(path, page_images(source, dpi))


def noise_image(seed: int = 0, density: float = 0.5) -> object:
    """An A4 page of blurred black-and-white noise at 100 dpi (a bad fax, a dark photocopy)."""
    rng = np.random.default_rng(seed)
    pixels = np.where(rng.random((1170, 827)) < density, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(1.2))


def blank_image() -> object:
    """An A4 page scanned blank (white) at 100 dpi."""
    return Image.new("L", (827, 1170), 255)


def write_garbled(path: Path, n_pages: int = 1) -> Path:
    """Pages whose text layer is glyph soup (GARBLED_LINES), as fonts without a Unicode map
    give: the file renders, but its text is unreadable."""
    c = _canvas(path)
    for _ in range(n_pages):
        c.setFont("Courier", 8)
        y = PAGE_H - MARGIN
        for _ in range(6):
            for line in GARBLED_LINES:
                c.drawString(MARGIN, y, line)
                y -= 11
        c.showPage()
    c.save()
    return path


def write_mixed(path: Path) -> Path:
    """Three pages: a readable report page, a scanned (image-only) page, a garbled page."""
    c = _canvas(path)
    heading, paragraphs = REPORT_SECTIONS[0]
    c.setFont(BOLD_FONT, HEADING_SIZE)
    c.drawString(MARGIN, PAGE_H - MARGIN, heading)
    _paragraph(c, " ".join(paragraphs), MARGIN, PAGE_H - MARGIN - 24, PAGE_W - 2 * MARGIN)
    c.showPage()
    c.drawImage(_scan_image(), 0, 0, width=PAGE_W, height=PAGE_H)
    c.showPage()
    c.setFont("Courier", 8)
    y = PAGE_H - MARGIN
    for _ in range(6):
        for line in GARBLED_LINES:
            c.drawString(MARGIN, y, line)
            y -= 11
    c.showPage()
    c.save()
    return path


def zero_page_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty (/Count 0), written by hand."""
    objects: Sequence[bytes] = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def write_zero_pages(path: Path) -> Path:
    """A well-formed PDF with no pages (see `zero_page_pdf`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zero_page_pdf())
    return path


def write_not_a_pdf(path: Path) -> Path:
    """An HTML page saved under a .pdf name (as a scraper does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(NOT_A_PDF)
    return path


def write_sections_report(
    path: Path, title: str, sections: Sequence[tuple[str, Sequence[str]]]
) -> Path:
    """A report of headed sections (heading, paragraphs), single column, over as many pages as
    it takes: the year-against-year tests write two years of one report with it."""
    c = _canvas(path)
    width = PAGE_W - 2 * MARGIN
    y = PAGE_H - MARGIN
    c.setFont(BOLD_FONT, 18)
    c.drawString(MARGIN, y, title)
    y -= 34
    for heading, paragraphs in sections:
        if y < MARGIN + 80:
            c.showPage()
            y = PAGE_H - MARGIN
        c.setFont(BOLD_FONT, HEADING_SIZE)
        c.drawString(MARGIN, y, heading)
        y -= 22
        for text in paragraphs:
            if y < MARGIN + 2 * LEADING:
                c.showPage()
                y = PAGE_H - MARGIN
            y = _paragraph(c, text, MARGIN, y, width) - 8
        y -= 8
    c.showPage()
    c.save()
    return path


RELEASE_PROSE = (
    "Net sales for the quarter increased 8 percent to $62.2 billion, driven by strong "
    "membership growth in every region.",
    "Management expects the pressure on margins to ease in the second half of the year.",
)
RELEASE_LABELS = "REVENUE Net sales Membership fees Total revenue"
RELEASE_CAPTION = "(dollars in millions, except per share data)"


def write_earnings_release(path: Path, n_pages: int = 3) -> Path:
    """An earnings release as text layers give it: on every page two prose paragraphs, a
    table's label column and caption drawn as body lines, and a footer "Acme Annual Report
    2024 | n" with the page number; a title on page 1 only."""
    c = _canvas(path)
    width = PAGE_W - 2 * MARGIN
    for n in range(1, n_pages + 1):
        y = PAGE_H - MARGIN
        if n == 1:
            c.setFont(BOLD_FONT, HEADING_SIZE)
            c.drawString(MARGIN, y, "Results of Operations")
            y -= 2 * LEADING
        for text in RELEASE_PROSE:
            y = _paragraph(c, text, MARGIN, y, width) - LEADING
        for line in (RELEASE_CAPTION, RELEASE_LABELS):
            c.setFont(BODY_FONT, BODY_SIZE)
            c.drawString(MARGIN, y, line)
            y -= 2 * LEADING
        c.setFont(BODY_FONT, 8)
        c.drawString(MARGIN, MARGIN / 2, f"Acme Annual Report 2024 | {n}")
        c.showPage()
    c.save()
    return path
