"""Write the bundled sample report: a fictional six-page annual report for `make demo`.

    .venv/bin/python samples/make_sample.py [--out samples/sample_annual_report.pdf]

Northwind Components N.V. and everyone in the report are made up; the text was written for
sesame. The report exercises what real ones throw at the pipeline: a cover page, running
headers and footers with page numbers, a chairman's letter with good and bad news, a two-column
page, a word hyphenated across a line break, bullet lists, a table of figures, amounts such as
€1.5 million and 3.2%, abbreviations (Inc., e.g., U.S., N.V.) and the headings Risk factors,
Going concern, Outlook and Independent auditor's report.

The output is byte-for-byte reproducible (reportlab's invariant mode, standard PDF fonts, no
images), so the committed PDF can be checked against this script. reportlab is a development
dependency only: `make demo` reads the committed PDF.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

OUT = Path(__file__).with_name("sample_annual_report.pdf")
COMPANY = "Northwind Components N.V."
TITLE = "Annual Report 2024"

PAGE_W, PAGE_H = A4
MARGIN_X, TOP, BOTTOM = 62.0, 70.0, 72.0
BODY, BOLD, SANS, SANS_BOLD = "Times-Roman", "Times-Bold", "Helvetica", "Helvetica-Bold"
SIZE, LEADING = 10.5, 14.0
NAVY = (0.10, 0.20, 0.38)

# Where a word may break across lines, as a typesetter would hyphenate it. `build` checks that at
# least one break happens, so the sample always has a hyphenated line end to join.
HYPHENATION = {
    "manufacturing": ("manu", "facturing"),
    "semiconductor": ("semi", "conductor"),
    "profitability": ("profit", "ability"),
    "intralogistics": ("intra", "logistics"),
    "expenditure": ("expen", "diture"),
    "installation": ("instal", "lation"),
    "restructuring": ("re", "structuring"),
    "significantly": ("signifi", "cantly"),
    "performance": ("perfor", "mance"),
    "automation": ("auto", "mation"),
    "concentrates": ("concen", "trates"),
    "investment": ("invest", "ment"),
}
HYPHENATED: list[str] = []
"""The words `wrap` broke across lines, in order (filled while typesetting)."""


@dataclass
class Column:
    """A text area: left edge and width; text flows down from `y` to the bottom margin."""

    x: float
    width: float


class Report:
    """A tiny typesetter on a reportlab canvas: headings, wrapped paragraphs, bullets, tables."""

    def __init__(self, path: Path) -> None:
        self.c = Canvas(str(path), pagesize=A4, invariant=1, pageCompression=1)
        self.c.setTitle(f"{COMPANY} {TITLE}")
        self.c.setAuthor(COMPANY)
        self.c.setSubject("Fictional sample report for sesame")
        self.c.setCreator("sesame samples/make_sample.py")
        self.page = 0
        self.section = ""
        self.columns = [Column(MARGIN_X, PAGE_W - 2 * MARGIN_X)]
        self.col = 0
        self.y = PAGE_H - TOP

    # -- pages ---------------------------------------------------------------------------------

    def new_page(self, section: str, *, two_columns: bool = False) -> None:
        """Finish the current page and start one with the running header and footer."""
        self._finish_page()
        self.page += 1
        self.section = section
        self._running_header()
        if two_columns:
            gap = 22.0
            width = (PAGE_W - 2 * MARGIN_X - gap) / 2
            self.columns = [Column(MARGIN_X, width), Column(MARGIN_X + width + gap, width)]
        else:
            self.columns = [Column(MARGIN_X, PAGE_W - 2 * MARGIN_X)]
        self.col = 0
        self.y = PAGE_H - TOP

    def _running_header(self) -> None:
        c = self.c
        c.setFont(SANS, 8)
        c.setFillColorRGB(0.35, 0.35, 0.35)
        c.drawString(MARGIN_X, PAGE_H - 36, f"{COMPANY}  |  {TITLE}")
        c.drawRightString(PAGE_W - MARGIN_X, PAGE_H - 36, self.section)
        c.setStrokeColorRGB(0.7, 0.7, 0.7)
        c.setLineWidth(0.5)
        c.line(MARGIN_X, PAGE_H - 42, PAGE_W - MARGIN_X, PAGE_H - 42)
        c.setFillColorRGB(0, 0, 0)

    def _finish_page(self) -> None:
        """The running footer with the page number (drawn last, as many generators do)."""
        if not self.page:
            return
        c = self.c
        if self.page > 1:
            c.setFont(SANS, 8)
            c.setFillColorRGB(0.35, 0.35, 0.35)
            c.setStrokeColorRGB(0.7, 0.7, 0.7)
            c.setLineWidth(0.5)
            c.line(MARGIN_X, 48, PAGE_W - MARGIN_X, 48)
            c.drawString(MARGIN_X, 36, "Northwind Components N.V., Eindhoven")
            c.drawRightString(PAGE_W - MARGIN_X, 36, f"{self.page}")
            c.setFillColorRGB(0, 0, 0)
        c.showPage()

    def _need(self, height: float) -> None:
        """Move to the next column (or fail loudly) when `height` does not fit."""
        if self.y - height >= BOTTOM:
            return
        if self.col + 1 < len(self.columns):
            self.col += 1
            self.y = PAGE_H - TOP
            return
        raise RuntimeError(f"page {self.page} ({self.section}) overflows; shorten its text")

    def column_break(self) -> None:
        """Continue at the top of the next column."""
        self.col += 1
        self.y = PAGE_H - TOP

    @property
    def column(self) -> Column:
        return self.columns[self.col]

    # -- text ----------------------------------------------------------------------------------

    def heading(self, text: str, size: float = 15, space_before: float = 10) -> None:
        """A sans-serif heading in the house colour."""
        self._need(space_before + size + 8)
        self.y -= space_before + size
        self.c.setFont(SANS_BOLD, size)
        self.c.setFillColorRGB(*NAVY)
        self.c.drawString(self.column.x, self.y, text)
        self.c.setFillColorRGB(0, 0, 0)
        self.y -= 8

    def paragraph(
        self,
        text: str,
        *,
        indent: float = 0,
        font: str = BODY,
        size: float = SIZE,
        space_after: float = 6,
    ) -> None:
        """Wrapped, left-aligned text; long words break at their hyphenation point."""
        width = self.column.width - indent
        for line in wrap(text, font, size, width):
            self._need(LEADING)
            self.y -= LEADING
            self.c.setFont(font, size)
            self.c.drawString(self.column.x + indent, self.y, line)
        self.y -= space_after

    def bullets(self, items: list[str]) -> None:
        """A bullet list with hanging indents."""
        for item in items:
            self._need(LEADING)
            self.c.setFont(BODY, SIZE)
            self.c.drawString(self.column.x + 6, self.y - LEADING, "\u2022")
            self.paragraph(item, indent=18, space_after=3)
        self.y -= 4

    def table(
        self, header: list[str], rows: list[list[str]], widths: list[float], note: str
    ) -> None:
        """A ruled table of figures: first column left-aligned, numbers right-aligned."""
        c = self.c
        x0, row_h = self.column.x, 16.0
        total = sum(widths)
        self._need(row_h * (len(rows) + 2) + 20)

        def draw_row(cells: list[str], font: str) -> None:
            self.y -= row_h
            c.setFont(font, 9.5)
            x = x0
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
                if i == 0:
                    c.drawString(x + 2, self.y + 4, cell)
                else:
                    c.drawRightString(x + w - 4, self.y + 4, cell)
                x += w

        c.setLineWidth(0.8)
        c.line(x0, self.y, x0 + total, self.y)
        draw_row(header, SANS_BOLD)
        c.setLineWidth(0.4)
        c.line(x0, self.y, x0 + total, self.y)
        for row in rows:
            draw_row(row, SANS)
        c.setLineWidth(0.8)
        c.line(x0, self.y, x0 + total, self.y)
        self.y -= 4
        self.paragraph(note, font="Times-Italic", size=8.5, space_after=8)

    def save(self) -> None:
        """Finish the last page and write the file."""
        self._finish_page()
        self.c.save()


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line breaking; a word in HYPHENATION may split across lines with a hyphen."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if stringWidth(candidate, font, size) <= width:
            line = candidate
            continue
        core = word.rstrip(".,;:")
        if core.lower() in HYPHENATION:
            head, tail = HYPHENATION[core.lower()]
            head = core[: len(head)]
            first = f"{line} {head}-" if line else f"{head}-"
            if stringWidth(first, font, size) <= width:
                HYPHENATED.append(core)
                lines.append(first)
                line = tail + word[len(core) :]
                continue
        lines.append(line)
        line = word
    if line:
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------
# The report's text (fictional)

LETTER = [
    "Dear shareholders,",
    "2024 was a year of two halves for Northwind. Revenue rose 8.4% to €412.6 million, the "
    "highest in our history, and our order book ended the year at €265.0 million, up 14.5%. "
    "Demand from builders of packaging lines and warehouse robots was strong throughout the "
    "year, and our new sensor housings won three important customers in Germany and Poland.",
    "Profitability, however, disappointed. Operating profit fell to €13.2 million from €23.2 "
    "million, and the operating margin dropped to 3.2% from 6.1%. Energy and aluminium costs "
    "rose sharply in the first half, and we were too slow to pass them on to customers. Net "
    "debt increased to €96.4 million.",
    "In September we decided to close our plant in Leeds and move its work to Eindhoven and "
    "Brno. This was the hardest decision of the year: 74 colleagues lost their jobs, and the "
    "closure cost €6.8 million in restructuring charges. We are grateful for their years of "
    "service. The move concentrates nearly all of our precision manufacturing in two modern "
    "plants and should save about €4 million a year from 2026.",
    "Our U.S. subsidiary, Northwind Controls Inc., had an excellent year: sales grew 19% and it "
    "signed its first multi-year contract with a semiconductor equipment maker in Arizona. We "
    "also received a €1.5 million government grant for the new training centre in Brno.",
    "We are investing in markets where precision matters most, e.g. medical robotics and "
    "laboratory automation. I am confident that a leaner Northwind will return to a margin "
    "above 6% within two years. I thank our customers, our employees and you, our "
    "shareholders, for your trust.",
    "J. van der Berg, Chairman of the Board",
]

MARKETS = [
    "Northwind designs and makes precision metal and polymer components for industrial "
    "automation: actuator bodies, sensor housings, linear guides and custom assemblies. About "
    "2,140 employees (FTE) work in Eindhoven (the Netherlands), Brno (Czech Republic) and "
    "Columbus, Ohio (U.S.).",
    "Packaging machinery remained our largest market at 38% of revenue. Orders from "
    "intralogistics customers grew by more than 20%, helped by the expansion of automated "
    "warehouses in Northern Europe.",
    "Sales to machine-tool builders declined by 11% as German customers postponed investment. "
    "We expect this market to stay weak in the first half of 2025.",
    "Medical and laboratory automation is still small, at 7% of revenue, but it grew 31% and "
    "carries margins well above the group average.",
    "By region, the Netherlands and Germany together provided 46% of revenue, the rest of "
    "Europe 29% and North America 25%. Sales in North America rose for the fourth year in a "
    "row, and we now serve customers in 31 countries. Prices rose by 3.5% on average, which "
    "recovered only part of the increase in our costs.",
]

OPERATIONS = [
    "Delivery performance recovered to 94% on time (2023: 88%) after we added a second shift "
    "in Brno. Scrap rates fell to 1.9% of production value.",
    "The Leeds closure is on schedule. Transfer of the tooling to Eindhoven will be completed "
    "in the second quarter of 2025; until then some customers may face longer lead times.",
    "Capital expenditure was €21.3 million, mainly on five-axis machining centres and a "
    "rooftop solar installation in Eindhoven that covers about 15% of the plant's power.",
    "Our priorities for the coming year are:",
]

PRIORITIES = [
    "finish the Leeds transfer without losing customers;",
    "raise prices where contracts allow, so that cost increases are recovered within one quarter;",
    "reduce working capital by €10 million through lower safety stocks.",
]

KEY_FIGURES = [
    ["Revenue", "412.6", "380.7", "8.4%"],
    ["EBITDA", "38.9", "47.2", "-17.6%"],
    ["Operating profit (EBIT)", "13.2", "23.2", "-43.1%"],
    ["Operating margin", "3.2%", "6.1%", ""],
    ["Net result", "4.1", "15.8", "-74.1%"],
    ["Net debt", "96.4", "71.0", "35.8%"],
    ["Net debt / EBITDA (times)", "2.5", "1.5", ""],
    ["Order book", "265.0", "231.5", "14.5%"],
    ["Employees (FTE, year end)", "2,140", "2,215", "-3.4%"],
]

RISKS_INTRO = (
    "The board reviews the main risks every quarter. The risks below could, alone or together, "
    "have a material adverse effect on our results and financial position."
)

RISKS = [
    "Supply of raw materials: about 60% of our aluminium comes from two suppliers. A "
    "disruption at either could halt production for several weeks.",
    "Customer concentration: our five largest customers account for 41% of revenue. The loss "
    "of one of them would reduce operating profit significantly.",
    "Energy prices: a 10% rise in electricity and gas prices would lower operating profit by "
    "about €1.1 million if it could not be passed on.",
    "Currency: about 22% of revenue is earned in U.S. dollars, while most costs are in euros "
    "and Czech koruna.",
    "Cyber security: an attack on our production systems could stop deliveries; we have not "
    "suffered a material incident.",
]

GOING_CONCERN = [
    "The financial statements have been prepared on a going concern basis. The group has a "
    "revolving credit facility of €150 million, of which €58 million was undrawn at year end. "
    "The facility requires net debt to stay below 3.0 times EBITDA; at 31 December 2024 the "
    "ratio was 2.5 times (2023: 1.5 times).",
    "Management prepared a cash-flow forecast for the 18 months to June 2026, including a "
    "severe but plausible downside in which revenue falls 12% and cost savings are delayed by "
    "a year. In that scenario headroom under the covenant narrows to 0.2 times in the third "
    "quarter of 2025, and the group would need to defer capital expenditure.",
    "Having considered these forecasts and the mitigating actions available, the board "
    "concluded that no material uncertainty exists that may cast significant doubt on the "
    "group's ability to continue as a going concern.",
]

OUTLOOK = [
    "We expect revenue growth of 4% to 6% in 2025, with a weaker first half and a stronger "
    "second half as the Leeds work is absorbed. The operating margin should recover gradually "
    "towards 5%, helped by price increases and lower energy costs.",
    "Uncertainty about U.S. tariffs on European machinery could delay orders from American "
    "customers. We do not expect to pay a dividend over 2024, so that net debt can be reduced "
    "before the facility is refinanced in 2026.",
]

AUDITOR = [
    (
        "Opinion",
        [
            "We have audited the financial statements 2024 of Northwind Components N.V., based in "
            "Eindhoven. In our opinion, the financial statements give a true and fair view of the "
            "financial position of the company as at 31 December 2024 and of its result and cash "
            "flows for 2024, in accordance with IFRS as adopted by the European Union.",
        ],
    ),
    (
        "Basis for our opinion",
        [
            "We conducted our audit in accordance with Dutch law, including the Dutch Standards on "
            "Auditing. We are independent of the company and have fulfilled our other ethical "
            "responsibilities. We believe the audit evidence we obtained is sufficient and "
            "appropriate to provide a basis for our opinion.",
        ],
    ),
    (
        "Materiality",
        [
            "We set materiality for the financial statements as a whole at €2.1 million (0.5% of "
            "revenue).",
        ],
    ),
    (
        "Key audit matters",
        [
            "valuation of inventories, given slow-moving stock at the Leeds plant;",
            "revenue recognition on long-term supply contracts;",
            "the restructuring provision of €4.9 million for the closure of the Leeds plant.",
        ],
    ),
    (
        "Going concern",
        [
            "We evaluated management's forecasts and the downside scenario described in the going "
            "concern section. We agree that the use of the going concern basis is appropriate and "
            "we have not identified a material uncertainty.",
        ],
    ),
]


def build(path: Path) -> Path:
    """Typeset the whole report to `path`."""
    HYPHENATED.clear()
    r = Report(path)
    _cover(r)

    r.new_page("Chairman's letter")
    r.heading("Chairman's letter", 18, space_before=4)
    for text in LETTER[:-1]:
        r.paragraph(text)
    r.y -= 6
    r.paragraph(LETTER[-1], font="Times-Italic")

    r.new_page("Business review", two_columns=True)
    r.heading("Business review", 18, space_before=4)
    r.heading("Markets", 12)
    for text in MARKETS:
        r.paragraph(text)
    r.column_break()
    r.heading("Operations", 12, space_before=4)
    for text in OPERATIONS:
        r.paragraph(text)
    r.bullets(PRIORITIES)

    r.new_page("Key figures and risks")
    r.heading("Key figures", 18, space_before=4)
    r.table(
        ["(€ million unless stated)", "2024", "2023", "Change"],
        KEY_FIGURES,
        [210, 80, 80, 80],
        "EBITDA is operating profit before depreciation and amortisation. Net debt is "
        "borrowings less cash. Figures are audited.",
    )
    r.heading("Risk factors", 15, space_before=14)
    r.paragraph(RISKS_INTRO)
    r.bullets(RISKS)

    r.new_page("Going concern and outlook")
    r.heading("Going concern", 15, space_before=4)
    for text in GOING_CONCERN:
        r.paragraph(text)
    r.heading("Outlook", 15, space_before=14)
    for text in OUTLOOK:
        r.paragraph(text)

    r.new_page("Independent auditor's report")
    r.heading("Independent auditor's report", 18, space_before=4)
    r.paragraph(
        "To: the general meeting and the supervisory board of Northwind Components N.V.",
        font="Times-Italic",
    )
    for title, texts in AUDITOR:
        r.heading(title, 12, space_before=6)
        if title == "Key audit matters":
            r.paragraph("The matters of most significance in our audit were:")
            r.bullets(texts)
        else:
            for text in texts:
                r.paragraph(text)
    r.y -= 8
    r.paragraph("Eindhoven, 12 March 2025")
    r.paragraph("Hollander & Vos Accountants B.V.  -  drs. M. de Wit RA", font=BOLD)
    r.save()
    if not HYPHENATED:
        raise RuntimeError("no word was hyphenated across a line; adjust the text or HYPHENATION")
    return path


def _cover(r: Report) -> None:
    c = r.c
    r.page = 1
    c.setFillColorRGB(*NAVY)
    c.rect(0, PAGE_H - 300, PAGE_W, 300, stroke=0, fill=1)
    c.setFillColorRGB(1, 1, 1)
    c.setFont(SANS_BOLD, 30)
    c.drawString(MARGIN_X, PAGE_H - 170, COMPANY)
    c.setFont(SANS, 20)
    c.drawString(MARGIN_X, PAGE_H - 205, TITLE)
    c.setFillColorRGB(0, 0, 0)
    c.setFont(SANS, 12)
    c.drawString(MARGIN_X, PAGE_H - 350, "Precision components for industrial automation")
    c.setFont(BODY, 10)
    for i, line in enumerate(
        [
            "Eindhoven, the Netherlands",
            "Published 14 March 2025",
            "This report is fictional: a sample for the sesame demo.",
        ]
    ):
        c.drawString(MARGIN_X, 120 - i * 14, line)


def main() -> None:
    """Write the sample report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the PDF")
    args = parser.parse_args()
    path = build(args.out)
    print(f"{path}: {path.stat().st_size:,} bytes; hyphenated: {', '.join(HYPHENATED)}")


if __name__ == "__main__":
    main()
