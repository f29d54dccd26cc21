"""The Excel workpaper: one per document, and one summary per batch.

A document's workpaper has five sheets: Cover (what was read, by which model, with which
settings, and whether it worked), Summary (label counts and tone overall and per section, the
most negative sentences), Sentences (one row per sentence with its scores, SHAP evidence as
coloured rich text, review columns and the stamp), Exceptions (every stage error) and Review log
(every reviewer action). Every sheet's first rows carry the stamp; they are also the print
titles, so each printed page carries it too.

Two things matter beyond looks:
- Document text is data, never a formula. Every string is written as a string cell (openpyxl
  would otherwise turn text starting with "=" into a formula and "#N/A" into an error), and text
  starting with = + - @ or a tab or line break also gets Excel's quote prefix, so re-entering
  the cell in Excel keeps it text. Nothing is prepended: the cell holds the document's text.
- A 300-page 10-K has about 10,000 sentences: the workbook is written in openpyxl's streaming
  (write-only) mode, and each cell copies one of a few prebuilt styles instead of building its
  own.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties

from app.config import SignoffOptions
from app.errors import ExportError
from app.export import counts_in_tone, label_counts, not_counted, tone_index, tone_scores
from app.ocr_report import ocr_checks, ocr_summary, ocr_threshold
from app.records import (
    LABELS,
    DocumentResult,
    Explanation,
    ReviewAction,
    Score,
    Sentence,
    StageError,
    Stamp,
    count_line,
)
from app.reviewing import dispute_marks, open_disputes, signoff_entries
from explain.render import TOP_K, evidence_rich_text, method_line

_log = logging.getLogger(__name__)

SHEETS = ("Cover", "Summary", "Sentences", "Exceptions", "Review log")
"""A document workpaper's sheets, in order."""
BATCH_SHEETS = ("Batch", "Documents", "Exceptions")
"""A batch workpaper's sheets, in order."""

HEADER_ROWS = 4
"""Title and stamp lines at the top of every sheet; a table's column headers follow them."""

TONE_DEFINITION = (
    "Tone index = (positive sentences - negative sentences) / all scored sentences. "
    "It runs from -1 (every sentence negative) to +1 (every sentence positive); 0 means "
    "balanced or wholly neutral. The same figure is in the JSON output (summary.tone_index)."
)

DRIFT_UNKNOWN = (
    "not known when this workpaper was written: the run tests its sentences against the "
    "model's reference after its documents are written; see the run summary (drift) or the "
    "Monitoring page"
)
"""The Cover's drift line when the verdict was not given."""

EVIDENCE_LEGEND = (
    "Evidence: the words that most moved the model's probability of the label it chose "
    "(SHAP values, shown in brackets). Green words push towards a positive reading, red words "
    "towards a negative one. For a positive sentence the words 'for' it are green and those "
    "'against' it red; for a negative sentence the reverse. For a neutral sentence grey words "
    "push towards neutral and blue words away from it (towards positive or negative)."
)

HOW_TO_READ = (
    "Summary: label counts and the tone index overall and per section, and the ten sentences "
    "the model found most negative.",
    "Sentences: one row per sentence in reading order, with its page, section, label, "
    "probabilities and evidence; the row colour follows the model's label (green positive, "
    "red negative, none neutral, grey not scored). Filter on any column; the review columns "
    "show the latest reviewer decision. OCR marks a sentence read from a page image by OCR "
    "(a scan, or a text layer that could not be read): a word in it may be misread.",
    EVIDENCE_LEGEND,
    "Exceptions: every page or stage that could not be read or scored. A sentence missing from "
    "Sentences is explained there, never dropped silently. Pages read by OCR with a low mean "
    "word confidence are listed there too, to be checked against the page image.",
    "Review log: every reviewer action in time order (agreements, overrides, comments, sign-offs).",
    "Provenance: the model (name, registry version, weights sha256), the code version, the run "
    "and the input's sha256 are at the top of every sheet and on every sentence row. The input "
    "is identified by its sha256, not by its file name.",
    "The model's labels are an aid to reading the report, not an audit conclusion.",
)

# Review actions shown as a sentence's review status (the latest one wins).
_REVIEW_STATUS = {"agree": "agreed", "override": "overridden"}

# Text starting with these is a formula (or a DDE payload) to Excel, LibreOffice or a CSV reader.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# Characters XML 1.0 cannot hold (openpyxl raises on the control ones; lone surrogates fail at
# save): shown as U+FFFD so the reader sees that something was there.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_CELL = 32767

# Named on every font: a font without a name falls back to the viewer's default (a serif in
# LibreOffice), not to the workbook's Calibri.
_FONT = "Calibri"
_FILLS = {
    "positive": "E8F3E1",
    "negative": "FBE4E1",
    "unscored": "EDEDED",
    "header": "DCE4EE",
    "fatal": "F6CFCF",
    "warning": "FFF2CC",
}
_BANNERS = {
    "ok": ("FFFFFF", "2E7D32"),
    "partial": ("000000", "FFC000"),
    "failed": ("FFFFFF", "C00000"),
}
_BOX = Border(*(Side(style="thin", color="BFBFBF") for _ in range(4)))
_TOP = Alignment(vertical="top")
_WRAP = Alignment(vertical="top", wrap_text=True)
_FORMATS: dict[str, dict[str, Any]] = {
    "text": {"alignment": _TOP},
    "wrap": {"alignment": _WRAP},
    "int": {"alignment": _TOP, "number_format": "0"},
    "prob": {"alignment": _TOP, "number_format": "0.000"},
    "pct": {"alignment": _TOP, "number_format": "0.0%"},
    "tone": {"alignment": _TOP, "number_format": "+0.00;-0.00;0.00"},
    "secs": {"alignment": _TOP, "number_format": "0.0"},
    "time": {"alignment": _TOP, "number_format": "yyyy-mm-dd hh:mm"},
    "header": {
        "alignment": Alignment(vertical="bottom", wrap_text=True),
        "font": Font(name=_FONT, bold=True),
        "border": Border(bottom=Side(style="thin", color="7F7F7F")),
    },
    "title": {"font": Font(name=_FONT, bold=True, size=14)},
    "stamp": {"font": Font(name=_FONT, size=9, color="404040")},
    "key": {"alignment": _TOP, "font": Font(name=_FONT, bold=True)},
    "section": {"font": Font(name=_FONT, bold=True, size=12)},
    "note": {"alignment": _WRAP, "font": Font(name=_FONT, italic=True, color="404040")},
}


# ---------------------------------------------------------------------------------------------
# Cells: safe strings, shared styles


def safe_text(value: object) -> str:
    """Text that a worksheet can hold: illegal XML characters shown as U+FFFD, capped length."""
    text = value if isinstance(value, str) else str(value)
    # XML turns a lone CR into LF on reading; doing it here keeps what is written what is read.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ILLEGAL.sub("\ufffd", text)
    return text[:_MAX_CELL]


def _excel_time(value: datetime) -> datetime:
    """Excel has no time zones: aware times become naive UTC (headers say so)."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class _Styler:
    """Builds cells for one workbook, each copying a prebuilt style (cheap in streaming mode)."""

    def __init__(self, wb: Workbook) -> None:
        self._wb = wb
        self._styles: dict[tuple[str, str | None, bool], Any] = {}
        self._probe = wb.create_sheet("_probe")

    def done(self) -> None:
        """Drop the sheet the style templates were built on."""
        self._wb.remove(self._probe)

    def _style(self, fmt: str, fill: str | None, boxed: bool) -> Any:
        key = (fmt, fill, boxed)
        if key not in self._styles:
            template = WriteOnlyCell(self._probe)
            for attr, value in _FORMATS[fmt].items():
                setattr(template, attr, value)
            if fill is not None:
                template.fill = PatternFill("solid", fgColor=fill)
            if boxed:
                template.border = _BOX
            self._styles[key] = template._style
        return self._styles[key]

    def cell(
        self,
        ws: Any,
        value: object,
        fmt: str = "text",
        fill: str | None = None,
        boxed: bool = False,
    ) -> WriteOnlyCell:
        """A cell holding `value` as data: strings stay strings, whatever they start with."""
        cell = WriteOnlyCell(ws)
        if isinstance(value, str):
            text = safe_text(value)
            cell.value = text
            # Forced: openpyxl reads "=..." as a formula and "#N/A" as an error value.
            cell.data_type = "s"
        elif isinstance(value, datetime):
            cell.value = _excel_time(value)
        elif isinstance(value, bool):
            cell.value = "yes" if value else "no"
        else:
            cell.value = value
        cell._style = copy(self._style(fmt, fill, boxed))
        if isinstance(value, str) and text.startswith(_FORMULA_START):
            cell.quotePrefix = True
        return cell


# ---------------------------------------------------------------------------------------------
# Sheets: header rows with the stamp, widths, print setup


def wrapped_lines(text: str, width: float) -> int:
    """About how many lines `text` takes when wrapped in a column `width` characters wide."""
    # A column unit is one "0" of the default font. Rendered (LibreOffice, Carlito), a line of
    # report text held 55 to 63 characters in a 55-wide column; the low end is taken, since a
    # row too tall wastes a little paper and a row too short hides words.
    per_line = max(1.0, width * 1.05 - 3)
    return sum(max(1, -(-len(part) // int(per_line))) for part in text.split("\n"))


def stamp_lines(stamp: Stamp, *, input_sha256: str | None, file_name: str | None) -> list[str]:
    """The stamp as the three lines under every sheet's title."""
    f = stamp.fields()
    return [
        f"Model {f['model_name']} · registry version {f['model_version']} · "
        f"weights sha256 {f['model_sha256']}",
        f"Code {f['code_version']} · git {f['git_commit']} · run {f['run_id']} · "
        f"created {f['created_at']}",
        f"Input {file_name or '(unknown)'} · sha256 {input_sha256 or '(not read)'}",
    ]


class _Sheet:
    """A streaming worksheet with the title and stamp rows written first."""

    def __init__(
        self,
        wb: Workbook,
        styler: _Styler,
        title: str,
        heading: str,
        lines: Sequence[str],
        widths: Sequence[float],
        *,
        landscape: bool = True,
        freeze_col: str | None = None,
    ) -> None:
        self.ws = wb.create_sheet(title)
        self.styler = styler
        self.rows = 0
        self.widths = list(widths)
        self.n_cols = len(widths)
        # Streaming sheets write widths, panes and views before the first row.
        for i, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(i)].width = width
        self._page_setup(landscape, title_rows=HEADER_ROWS + (1 if freeze_col else 0))
        if freeze_col:
            # A table's column headers follow the header rows; everything above its data stays
            # in view, and so do the columns left of `freeze_col`.
            self.ws.freeze_panes = f"{freeze_col}{HEADER_ROWS + 2}"
        self.boxed = False
        self.append([self.cell(heading, "title")])
        for line in lines:
            self.append([self.cell(line, "stamp")])
        # Table cells get thin borders (not printed grid lines, which would cross the header).
        self.boxed = freeze_col is not None

    def _page_setup(self, landscape: bool, title_rows: int) -> None:
        ws = self.ws
        ws.page_setup.orientation = "landscape" if landscape else "portrait"
        ws.page_setup.paperSize = 9  # A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        ws.page_margins.left = ws.page_margins.right = 0.4
        ws.page_margins.top = ws.page_margins.bottom = 0.6
        # Every printed page repeats the stamp rows (and a table's column headers).
        ws.print_title_rows = f"1:{title_rows}"
        ws.HeaderFooter.oddFooter.left.text = "&A"
        ws.HeaderFooter.oddFooter.right.text = "page &P of &N"
        ws.HeaderFooter.oddFooter.left.size = ws.HeaderFooter.oddFooter.right.size = 8

    def cell(self, value: object, fmt: str = "text", fill: str | None = None) -> WriteOnlyCell:
        """A styled cell for this sheet (with a thin border in a table)."""
        return self.styler.cell(self.ws, value, fmt, fill, self.boxed and fmt != "note")

    def append(
        self,
        cells: Iterable[WriteOnlyCell | None],
        merge_to: int | None = None,
        height: float | None = None,
    ) -> int:
        """Write one row, tall enough for its wrapped text; returns its 1-based row number.

        Neither Excel nor LibreOffice grows a row for wrapped text it did not lay out itself, so
        the height is estimated here from the text length and the column width.
        """
        cells = list(cells)
        self.rows += 1
        lines = 1
        for i, cell in enumerate(cells):
            if cell is None or cell.value is None:
                continue
            text = str(cell.value)
            width = sum(self.widths[i:merge_to]) if merge_to else self.widths[i]
            if (len(text) > width or "\n" in text) and cell.alignment.wrap_text:
                lines = max(lines, wrapped_lines(text, width))
        if height is not None or lines > 1:
            self.ws.row_dimensions[self.rows].height = min(409, height or 15 * lines + 2)
        self.ws.append(cells)
        return self.rows

    def blank(self) -> None:
        """An empty row."""
        self.append([])

    def header(self, names: Sequence[str]) -> int:
        """A bold header row with a shaded fill."""
        return self.append(self.cell(n, "header", _FILLS["header"]) for n in names)

    def key_values(self, pairs: Iterable[tuple[str, object]], fmt: str = "wrap") -> None:
        """Two-column rows: a bold name, then its value."""
        for key, value in pairs:
            self.append([self.cell(key, "key"), self.cell(value, fmt)])

    def note(self, text: str, merge_to: int | None = None) -> None:
        """An italic, wrapped note (merged across columns so it reads as one paragraph)."""
        merge_to = merge_to or self.n_cols
        row = self.append([self.cell(text, "note")], merge_to=merge_to)
        self._merge(row, merge_to)

    def section(self, text: str) -> None:
        """A bold sub-heading."""
        self.append([self.cell(text, "section")])

    def banner(self, text: str, status: str, merge_to: int | None = None) -> None:
        """A full-width coloured line stating the document's status."""
        color, fill = _BANNERS[status]
        cell = self.cell(text, "wrap", fill)
        cell.font = Font(name=_FONT, bold=True, size=13, color=color)
        merge_to = merge_to or self.n_cols
        # Bold 13 pt takes about 1.4 times the width of body text.
        lines = wrapped_lines(text, sum(self.widths[:merge_to]) / 1.4)
        row = self.append([cell], merge_to=merge_to, height=20 * lines + 4)
        self._merge(row, merge_to)

    def _merge(self, row: int, merge_to: int) -> None:
        last = merge_to
        if last > 1:
            self.ws.merged_cells.add(f"A{row}:{get_column_letter(last)}{row}")

    def table_setup(
        self, header_row: int, last_row: int, n_cols: int, print_cols: int | None = None
    ) -> None:
        """Freeze everything above the first data row, filter the table, set the print area."""
        last_col = get_column_letter(n_cols)
        self.ws.auto_filter.ref = f"A{header_row}:{last_col}{max(last_row, header_row)}"
        self.ws.print_area = (
            f"A1:{get_column_letter(print_cols or n_cols)}{max(last_row, header_row)}"
        )


# ---------------------------------------------------------------------------------------------
# Evidence as rich text


def evidence_text(expl: Explanation, k: int = TOP_K) -> CellRichText | str:
    """The explanation's top words as a cell's rich text (explain.render's rule and palette)."""
    return evidence_rich_text(expl, k=k, font=_FONT, clean=safe_text)


def evidence_cell(expl: Explanation, k: int = TOP_K) -> CellRichText | str:
    """The evidence cell: the top words, then on a line of its own how they were made (sampled
    with its budget, or amortized with the explainer's measured fidelity). Why that method, when
    it is not the one asked for, is said once, on the Cover sheet."""
    words = evidence_text(expl, k=k)
    how = safe_text(method_line(expl, note=False))
    if not words:
        return how
    small = InlineFont(rFont=_FONT, sz=9, color="595959", i=True)
    return CellRichText([*words, "\n", TextBlock(small, how)])


def evidence_methods(result: DocumentResult) -> list[str]:
    """How the result's evidence was made: each distinct method line with its count, and why
    when it is not the method asked for (for the Cover sheet)."""
    lines = Counter(method_line(e) for e in result.explanations)
    if not lines:
        return ["no SHAP evidence"]
    if len(lines) == 1:
        return list(lines)
    return [f"{line} ({n:,} sentence{'' if n == 1 else 's'})" for line, n in lines.most_common()]


# ---------------------------------------------------------------------------------------------
# Reviews


class _ReviewState:
    """What the reviewers decided about one sentence, after replaying its actions in order."""

    __slots__ = ("status", "label", "comments", "reviewer", "at")

    def __init__(self) -> None:
        self.status: str | None = None
        self.label: str | None = None
        self.comments: list[str] = []
        self.reviewer: str | None = None
        self.at: datetime | None = None


def _ordered(reviews: Sequence[ReviewAction]) -> list[ReviewAction]:
    return sorted(reviews, key=lambda r: (_excel_time(r.created_at), r.id))


def review_states(reviews: Sequence[ReviewAction]) -> dict[int, _ReviewState]:
    """Each reviewed sentence's latest status, label, comments, reviewer and time."""
    states: dict[int, _ReviewState] = defaultdict(_ReviewState)
    for action in _ordered(reviews):
        if action.sentence_index is None:
            continue
        state = states[action.sentence_index]
        if action.action in _REVIEW_STATUS:
            state.status = _REVIEW_STATUS[action.action]
            state.label = action.label
        if action.comment:
            state.comments.append(f"{action.reviewer}: {action.comment}")
        state.reviewer, state.at = action.reviewer, action.created_at
    for index in open_disputes(reviews):
        states[index].status = "disputed"
    return dict(states)


# ---------------------------------------------------------------------------------------------
# The document workpaper


def flatten_settings(settings: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as `scoring.batch_size = 64` pairs, sorted by name."""
    pairs: list[tuple[str, str]] = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            pairs.extend(flatten_settings(value, f"{name}."))
        elif isinstance(value, list | tuple):
            pairs.append((name, ", ".join(str(v) for v in value)))
        else:
            pairs.append((name, "(none)" if value is None else str(value)))
    return sorted(pairs)


def _file_name(result: DocumentResult) -> str:
    if result.document is not None:
        return result.document.file_name
    return Path(result.source).name or result.source


def _status_line(result: DocumentResult) -> str:
    fatal = [e for e in result.errors if e.fatal]
    if result.status == "failed":
        why = fatal[0].message if fatal else "see the Exceptions sheet"
        return f"DOCUMENT FAILED: not analysed. {why} The Exceptions sheet lists every problem."
    if result.status == "partial":
        pages = sorted({e.page_no for e in result.errors if e.page_no is not None})
        where = (
            f" (page{'s' if len(pages) > 1 else ''} {', '.join(map(str, pages))})" if pages else ""
        )
        return (
            f"PARTIAL: {len(result.errors)} problem(s){where}; the rest of the document was "
            f"analysed. See the Exceptions sheet."
        )
    return "OK: every page was read and every sentence scored."


def _label_fill(score: Score | None) -> str | None:
    if score is None:
        return _FILLS["unscored"]
    return _FILLS.get(score.label)


_SENTENCE_COLUMNS: tuple[tuple[str, float], ...] = (
    ("sentence id", 8),
    ("page", 5),
    ("section", 16),
    ("kind", 8),
    ("sentence", 55),
    ("label", 9),
    ("P(positive)", 10),
    ("P(negative)", 10),
    ("P(neutral)", 10),
    ("confidence", 10),
    ("evidence (SHAP)", 38),
    ("review status", 10),
    ("reviewer label", 9),
    ("review comment", 22),
    ("reviewer", 10),
    ("reviewed at (UTC)", 15),
    ("model version", 11),
    ("OCR", 6),
    # The stamp on every row, right of what is printed (the printed header rows carry it).
    ("model name", 18),
    ("model sha256", 20),
    ("code version", 10),
    ("git commit", 14),
    ("run id", 18),
    ("created at", 19),
    ("input sha256", 20),
)
_PRINTED_SENTENCE_COLUMNS = 18
_FACTS_COLUMN = ("tagged facts (iXBRL)", 34)
"""After the evidence, for HTML filings: each fact tagged inside the sentence."""
_PRINTED_PAGE_COLUMN = ("printed page", 7)
"""After the page, for HTML filings: the page number the filing prints on that page."""


def write_workpaper(
    result: DocumentResult,
    path: Path,
    *,
    reviews: Sequence[ReviewAction] = (),
    drift: str | None = None,
    signoff: SignoffOptions | None = None,
) -> Path:
    """Write the document's Excel workpaper to `path`; returns the path.

    Args:
        result: the document's result, whatever its status (a failed one gets a workpaper too).
        path: where to write (.xlsx); written to a temporary file first, then moved into place.
        reviews: the result's review actions from the store, in any order; the Sentences sheet
            shows each sentence's latest decision and the Review log lists them all.
        drift: the drift verdict of the run that made the result (`verdict_line`: drift, no
            drift or not tested, with why); None when it was not known (a run tests its
            sentences after writing its documents' workpapers): the Cover says so.
        signoff: the firm's sign-off rules, which decide when a sign-off is superseded
            (default: the defaults of `[signoff]`).
    """
    foreign = {r.doc_id for r in reviews} - {result.doc_id}
    if foreign:
        raise ValueError(
            f"reviews of other documents passed to the workpaper of "
            f"{result.doc_id}: {sorted(foreign)}"
        )
    wb = Workbook(write_only=True)
    styler = _Styler(wb)
    lines = stamp_lines(result.stamp, input_sha256=result.doc_id, file_name=_file_name(result))
    _cover_sheet(wb, styler, result, lines, reviews, drift, signoff or SignoffOptions())
    _summary_sheet(wb, styler, result, lines)
    _sentences_sheet(wb, styler, result, lines, reviews)
    checks = ocr_checks(result)
    _exceptions_sheet(
        wb, styler, (("", None, e) for e in (*result.errors, *checks)), lines, batch=False
    )
    _review_log_sheet(wb, styler, result, lines, reviews)
    styler.done()
    return _save(wb, path)


def _save(wb: Workbook, path: Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        wb.save(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"{path}: the workpaper could not be written ({e.strerror or e}). "
            f"Check that the folder exists, is writable and has space, and that "
            f"the file is not open in Excel."
        ) from e
    _log.info("workpaper written: %s", path)
    return path


def _cover_sheet(
    wb: Workbook,
    styler: _Styler,
    result: DocumentResult,
    lines: list[str],
    reviews: Sequence[ReviewAction],
    drift: str | None,
    signoff: SignoffOptions,
) -> None:
    sheet = _Sheet(
        wb,
        styler,
        "Cover",
        "sesame workpaper: sentence sentiment",
        lines,
        (28, 90),
        landscape=False,
    )
    sheet.blank()
    sheet.banner(_status_line(result), result.status)
    sheet.blank()
    doc = result.document
    sheet.section("Engagement")
    sheet.key_values(
        [
            ("Client", result.client or "(not given)"),
            ("Engagement", result.engagement or "(not given)"),
        ]
    )
    sheet.blank()
    sheet.section("Document")
    counts = label_counts(tone_scores(result))
    pages_ok = sum(1 for p in result.pages if p.status == "ok")
    ocr = ocr_summary(result.pages, ocr_threshold(result))
    sheet.key_values(
        [
            ("File name", _file_name(result)),
            ("Source", result.source),
            ("Input sha256", result.doc_id or "(the file could not be read)"),
            ("Size (bytes)", f"{doc.size_bytes:,}" if doc else "(unknown)"),
            (
                "Pages",
                f"{doc.n_pages} ({pages_ok} read as text)" if doc and doc.n_pages else "(not read)",
            ),
            ("OCR", ocr or "no page read by OCR"),
            ("Title (PDF metadata)", (doc.title if doc and doc.title else "(none)")),
            ("Status", result.status.upper()),
            (
                "Sentences",
                f"{len(result.sentences):,} ({len(result.scores):,} scored, "
                f"{len(result.explanations):,} with SHAP evidence)",
            ),
            (
                "Labels",
                ", ".join(f"{counts[label]:,} {label}" for label in LABELS)
                + " (sentences and list items; headings, table rows and page furniture are "
                "shown but not counted)",
            ),
            *(("Evidence made by", line) for line in evidence_methods(result)),
            ("Exceptions", f"{len(result.errors)} (see the Exceptions sheet)"),
        ]
    )
    sheet.blank()
    sheet.section("Model and code (stamp)")
    f = result.stamp.fields()
    sheet.key_values(
        [
            ("Model name", f["model_name"]),
            ("Registry version", f["model_version"]),
            ("Weights sha256", f["model_sha256"]),
            ("Code version", f["code_version"]),
            ("Git commit", f["git_commit"]),
            ("Run id", f["run_id"]),
            ("Created at", f["created_at"]),
            ("Drift check (the run)", drift or DRIFT_UNKNOWN),
        ]
    )
    signoffs = signoff_entries(reviews, signoff)
    disputed = open_disputes(reviews)
    sheet.blank()
    sheet.section("Sign-off")
    if signoffs:
        sheet.key_values(
            (
                e.role.capitalize(),
                f"{e.action.reviewer}, {_excel_time(e.action.created_at):%Y-%m-%d %H:%M} UTC"
                + f" [{e.state}]"
                + (f": {e.action.comment}" if e.action.comment else ""),
            )
            for e in signoffs
        )
        if disputed:
            sheet.key_values(
                [("Open disputes", ", ".join(f"sentence {i}" for i in sorted(disputed)))]
            )
    else:
        sheet.key_values([("Sign-off", "not signed off when this workpaper was written")])
    sheet.blank()
    sheet.section("Settings")
    sheet.key_values(flatten_settings(result.settings) or [("(none recorded)", "")])
    if result.timings:
        sheet.blank()
        sheet.section("Time per stage (seconds)")
        sheet.key_values((stage, f"{secs:.1f}") for stage, secs in result.timings.items())
    sheet.blank()
    sheet.section("How to read this workpaper")
    for text in HOW_TO_READ:
        sheet.note(text)
    sheet.ws.print_area = f"A1:B{sheet.rows}"


def _summary_sheet(wb: Workbook, styler: _Styler, result: DocumentResult, lines: list[str]) -> None:
    sheet = _Sheet(
        wb,
        styler,
        "Summary",
        f"Summary: {_file_name(result)}",
        lines,
        (64, 18, 11, 11, 11, 11, 11, 11),
    )
    scores = {s.sentence_index: s for s in result.scores}
    counts = label_counts(tone_scores(result))
    n_scored = sum(counts.values())
    sheet.blank()
    if result.status == "failed":
        sheet.banner(_status_line(result), "failed")
        sheet.blank()

    sheet.section("Labels, whole document")
    sheet.header(["label", "sentences", "share"])
    for label in LABELS:
        share = counts[label] / n_scored if n_scored else None
        sheet.append(
            [
                sheet.cell(label, fill=_FILLS.get(label)),
                sheet.cell(counts[label], "int"),
                sheet.cell(share, "pct"),
            ]
        )
    for text, n in not_counted(result):
        sheet.append(
            [
                sheet.cell(f"{text.split(' ', 1)[1]} (not counted)"),
                sheet.cell(n, "int"),
                sheet.cell(None, "pct"),
            ]
        )
    unscored = sum(1 for s in result.sentences if counts_in_tone(s)) - n_scored
    if unscored > 0:
        sheet.append(
            [
                sheet.cell("not scored", fill=_FILLS["unscored"]),
                sheet.cell(unscored, "int"),
                sheet.cell(None, "pct"),
            ]
        )
    tone = tone_index(counts)
    sheet.append([sheet.cell("tone index", "key"), sheet.cell(tone, "tone")])
    sheet.note(TONE_DEFINITION)
    sheet.blank()

    sheet.section("Labels per section")
    sheet.header(
        [
            "section (heading as printed)",
            "section type",
            "sentences",
            "positive",
            "negative",
            "neutral",
            "share negative",
            "tone index",
        ]
    )
    groups: dict[tuple[str, str], list[Sentence]] = {}
    for sentence in result.sentences:
        key = (sentence.section or "(before the first heading)", sentence.section_type or "")
        groups.setdefault(key, []).append(sentence)
    for (section, section_type), members in groups.items():
        sec_counts = label_counts(
            [scores[s.index] for s in members if s.index in scores and counts_in_tone(s)]
        )
        total = sum(sec_counts.values())
        sheet.append(
            [
                sheet.cell(section, "wrap"),
                sheet.cell(section_type),
                sheet.cell(sum(1 for s in members if counts_in_tone(s)), "int"),
                *(sheet.cell(sec_counts[label], "int") for label in LABELS),
                sheet.cell(sec_counts["negative"] / total if total else None, "pct"),
                sheet.cell(tone_index(sec_counts), "tone"),
            ]
        )
    if not groups:
        sheet.note("No sentences.")
    sheet.blank()

    sheet.section(
        "Most negative sentences (top 10 labelled negative, by P(negative); headings, table "
        "rows and page furniture left out)"
    )
    sheet.header(["sentence", "section", "page", "P(negative)", "label", "sentence id"])
    candidates = [
        (s, scores[s.index])
        for s in result.sentences
        if s.index in scores and counts_in_tone(s) and scores[s.index].label == "negative"
    ]
    candidates.sort(key=lambda p: (-p[1].probabilities.get("negative", 0.0), p[0].index))
    for sentence, score in candidates[:10]:
        fill = _label_fill(score)
        sheet.append(
            [
                sheet.cell(sentence.text, "wrap", fill),
                sheet.cell(sentence.section or "", "wrap", fill),
                sheet.cell(sentence.page_no, "int", fill),
                sheet.cell(score.probabilities.get("negative"), "prob", fill),
                sheet.cell(score.label, "text", fill),
                sheet.cell(sentence.index, "int", fill),
            ]
        )
    if not candidates:
        sheet.note("None: no sentence is labelled negative.")
    sheet.ws.print_area = f"A1:H{sheet.rows}"


def _sentences_sheet(
    wb: Workbook,
    styler: _Styler,
    result: DocumentResult,
    lines: list[str],
    reviews: Sequence[ReviewAction],
) -> None:
    # HTML filings add their printed page numbers and tagged facts (PDF workpapers unchanged)
    labels = {p.page_no: p.label for p in result.pages if p.label}
    facts = any(s.facts for s in result.sentences)
    columns = list(_SENTENCE_COLUMNS)
    if facts:
        columns.insert(columns.index(("evidence (SHAP)", 38)) + 1, _FACTS_COLUMN)
    if labels:
        columns.insert(2, _PRINTED_PAGE_COLUMN)
    printed_cols = _PRINTED_SENTENCE_COLUMNS + len(columns) - len(_SENTENCE_COLUMNS)
    names = [name for name, _ in columns]
    sheet = _Sheet(
        wb,
        styler,
        "Sentences",
        f"Sentences: {_file_name(result)}",
        lines,
        [width for _, width in columns],
        freeze_col="A",
    )
    header_row = HEADER_ROWS + 1
    sheet.header(names)
    scores = {s.sentence_index: s for s in result.scores}
    explanations = {e.sentence_index: e for e in result.explanations}
    states = review_states(reviews)
    stamp = result.stamp.fields()
    model_version = stamp["model_version"]
    tail = [
        stamp["model_name"],
        stamp["model_sha256"],
        stamp["code_version"],
        stamp["git_commit"],
        stamp["run_id"],
        stamp["created_at"],
        result.doc_id or "",
    ]
    cell = sheet.cell
    for sentence in result.sentences:
        score = scores.get(sentence.index)
        fill = _label_fill(score)
        probs = score.probabilities if score else {}
        expl = explanations.get(sentence.index)
        state = states.get(sentence.index)
        evidence = cell(None, "wrap", fill)
        if expl is not None:
            evidence.value = evidence_cell(expl)
        row = [
            cell(sentence.index, "int", fill),
            cell(sentence.page_no, "int", fill),
            *([cell(labels.get(sentence.page_no), "text", fill)] if labels else []),
            cell(sentence.section or "", "wrap", fill),
            cell(sentence.kind, "text", fill),
            cell(sentence.text, "wrap", fill),
            cell(score.label if score else "not scored", "text", fill),
            cell(probs.get("positive"), "prob", fill),
            cell(probs.get("negative"), "prob", fill),
            cell(probs.get("neutral"), "prob", fill),
            cell(score.confidence if score else None, "prob", fill),
            evidence,
            *([cell(fact_lines(sentence) or None, "wrap", fill)] if facts else []),
            cell(state.status if state else None, "text", fill),
            cell(state.label if state else None, "text", fill),
            cell("\n".join(state.comments) if state else None, "wrap", fill),
            cell(state.reviewer if state else None, "text", fill),
            cell(state.at if state else None, "time", fill),
            cell(model_version, "text", fill),
            cell("OCR" if sentence.ocr else None, "text", fill),
            *(cell(value, "text", fill) for value in tail),
        ]
        sheet.append(row)
    if not result.sentences:
        sheet.note("No sentences: " + _status_line(result), merge_to=printed_cols)
    sheet.table_setup(header_row, sheet.rows, len(names), print_cols=printed_cols)


def fact_lines(sentence: Sentence) -> str:
    """A sentence's tagged facts, one per line: `us-gaap:Revenues = 39000000000 USD, FY2024
    (...) ["39.0"]`."""
    return "\n".join(f'{f.describe()} ["{f.text}"]' for f in sentence.facts)


_ERROR_COLUMNS: tuple[tuple[str, float], ...] = (
    ("severity", 10),
    ("stage", 10),
    ("code", 14),
    ("page", 6),
    ("message", 100),
)


def _exceptions_sheet(
    wb: Workbook,
    styler: _Styler,
    errors: Iterable[tuple[str, str | None, StageError]],
    lines: list[str],
    *,
    batch: bool,
) -> None:
    """Errors as rows of (document, input sha256, error); a batch workpaper shows the first two."""
    columns = list(_ERROR_COLUMNS)
    if batch:
        columns = [("document", 30), ("input sha256", 20), *columns]
    sheet = _Sheet(
        wb,
        styler,
        "Exceptions",
        "Exceptions: what could not be read or scored",
        lines,
        [w for _, w in columns],
        freeze_col="A",
    )
    header_row = HEADER_ROWS + 1
    sheet.header([name for name, _ in columns])
    # Fatal problems first: they explain a failed document.
    rows = sorted(errors, key=lambda r: not r[2].fatal)
    for doc, sha, err in rows:
        fill = _FILLS["fatal" if err.fatal else "warning"]
        cells = (
            [sheet.cell(doc, "wrap", fill), sheet.cell(sha or "", "text", fill)] if batch else []
        )
        cells += [
            sheet.cell("FATAL" if err.fatal else "warning", "key", fill),
            sheet.cell(err.stage, "text", fill),
            sheet.cell(err.code, "text", fill),
            sheet.cell(err.page_no, "int", fill),
            sheet.cell(err.message, "wrap", fill),
        ]
        sheet.append(cells)
    if not rows:
        sheet.note("No exceptions: every page was read and every sentence scored.")
    sheet.table_setup(header_row, sheet.rows, len(columns))


_REVIEW_COLUMNS: tuple[tuple[str, float], ...] = (
    ("time (UTC)", 16),
    ("reviewer", 14),
    ("action", 16),
    ("sentence id", 8),
    ("page", 6),
    ("sentence", 50),
    ("label before", 10),
    ("label after", 10),
    ("comment", 40),
    ("dispute", 24),
    ("model version", 10),
)


def _review_log_sheet(
    wb: Workbook,
    styler: _Styler,
    result: DocumentResult,
    lines: list[str],
    reviews: Sequence[ReviewAction],
) -> None:
    sheet = _Sheet(
        wb,
        styler,
        "Review log",
        f"Review log: {_file_name(result)}",
        lines,
        [w for _, w in _REVIEW_COLUMNS],
        freeze_col="A",
    )
    header_row = HEADER_ROWS + 1
    sheet.header([name for name, _ in _REVIEW_COLUMNS])
    by_index = {s.index: s for s in result.sentences}
    marks = dispute_marks(reviews)
    for action in _ordered(reviews):
        sentence = (
            by_index.get(action.sentence_index) if action.sentence_index is not None else None
        )
        sheet.append(
            [
                sheet.cell(action.created_at, "time"),
                sheet.cell(action.reviewer),
                sheet.cell(action.action),
                sheet.cell(action.sentence_index, "int"),
                sheet.cell(sentence.page_no if sentence else None, "int"),
                sheet.cell(sentence.text if sentence else "(whole document)", "wrap"),
                sheet.cell(action.previous_label),
                sheet.cell(action.label),
                sheet.cell(action.comment, "wrap"),
                sheet.cell(marks.get(action.id), "wrap"),
                sheet.cell(action.model_version),
            ]
        )
    if not reviews:
        sheet.note("No review actions recorded when this workpaper was written.")
    sheet.table_setup(header_row, sheet.rows, len(_REVIEW_COLUMNS))


# ---------------------------------------------------------------------------------------------
# The batch workpaper

BATCH_ROW_KEYS = (
    "source",
    "file_name",
    "sha256",
    "status",
    "pages",
    "sentences",
    "scored",
    "explained",
    "positive",
    "negative",
    "neutral",
    "tone_index",
    "seconds",
    "timings",
    "errors",
    "stamp",
    "client",
    "engagement",
)
"""The keys of a batch row (see `batch_row`); a mapping passed to the batch workpaper uses them."""


def batch_row(result: DocumentResult) -> dict[str, Any]:
    """A document's one-row summary for the batch workpaper: small and JSON-ready (label
    counts and tone over sentences and list items, as on the Summary sheet)."""
    counts = label_counts(tone_scores(result))
    return {
        "source": result.source,
        "file_name": _file_name(result),
        "sha256": result.doc_id,
        "status": result.status,
        "pages": (result.document.n_pages or None) if result.document else None,
        "sentences": len(result.sentences),
        "scored": len(result.scores),
        "explained": len(result.explanations),
        **counts,
        "tone_index": tone_index(counts),
        "seconds": round(sum(result.timings.values()), 3),
        "timings": dict(result.timings),
        "errors": [e.model_dump(mode="json") for e in result.errors],
        "stamp": result.stamp.fields(),
        "client": result.client,
        "engagement": result.engagement,
    }


def _as_batch_row(item: DocumentResult | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, DocumentResult):
        return batch_row(item)
    unknown = set(item) - set(BATCH_ROW_KEYS)
    if unknown:
        raise ValueError(f"unknown batch row keys {sorted(unknown)}; expected {BATCH_ROW_KEYS}")
    return {key: item.get(key) for key in BATCH_ROW_KEYS}


def write_batch_workpaper(
    items: Sequence[DocumentResult | Mapping[str, Any]],
    path: Path,
    *,
    stamp: Stamp | None = None,
    title: str | None = None,
    drift: str | None = None,
) -> Path:
    """Write a batch's summary workpaper: one row per document, every exception, the stamp.

    Args:
        items: DocumentResults, or their `batch_row` dicts (what a Ray worker sends back).
        path: where to write (.xlsx).
        stamp: the batch's stamp (model and run); defaults to the first document's.
        title: heading of the first sheet, e.g. "Nightly batch 2025-03-31".
        drift: the run's drift verdict (`verdict_line`), None when no check was made.
    """
    rows = [_as_batch_row(item) for item in items]
    stamp_fields = stamp.fields() if stamp else (rows[0].get("stamp") or {}) if rows else {}
    lines = _batch_stamp_lines(stamp_fields, rows)
    wb = Workbook(write_only=True)
    styler = _Styler(wb)
    _batch_cover(wb, styler, rows, lines, title or "sesame batch summary", drift)
    _batch_documents(wb, styler, rows, lines)
    errors = [
        (
            row.get("file_name") or row.get("source") or "",
            row.get("sha256"),
            StageError.model_validate(err),
        )
        for row in rows
        for err in row.get("errors") or ()
    ]
    _exceptions_sheet(wb, styler, errors, lines, batch=True)
    styler.done()
    return _save(wb, path)


def _batch_stamp_lines(f: Mapping[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    models = {(r.get("stamp") or {}).get("model_sha256") for r in rows} - {None}
    mixed = " (documents used different models: see each row)" if len(models) > 1 else ""
    return [
        f"Model {f.get('model_name', '?')} · registry version {f.get('model_version', '?')} · "
        f"weights sha256 {f.get('model_sha256', '?')}{mixed}",
        f"Code {f.get('code_version', '?')} · git {f.get('git_commit', '?')} · run "
        f"{f.get('run_id', '?')} · created {f.get('created_at', '?')}",
        f"Inputs: {len(rows)} document(s), each identified by its sha256 on the Documents sheet",
    ]


def _batch_cover(
    wb: Workbook,
    styler: _Styler,
    rows: list[dict[str, Any]],
    lines: list[str],
    title: str,
    drift: str | None,
) -> None:
    sheet = _Sheet(wb, styler, "Batch", title, lines, (28, 90), landscape=False)
    sheet.blank()
    statuses = Counter(str(r.get("status")) for r in rows)
    status = "failed" if statuses["failed"] else "partial" if statuses["partial"] else "ok"
    verdict = {
        "ok": "every document was read fully.",
        "partial": "some documents were not read fully; see Exceptions.",
        "failed": "some documents FAILED; see Exceptions.",
    }[status]
    line = count_line(statuses, skipped=bool(statuses["skipped"]))
    sheet.banner(f"{line}: {verdict}", status)
    sheet.blank()
    totals: Counter[str] = Counter()
    for row in rows:
        for key in ("pages", "sentences", "scored", "explained", *LABELS):
            totals[key] += row.get(key) or 0
    sheet.section("Totals")
    sheet.key_values(
        [
            ("Documents", f"{len(rows):,}"),
            ("Pages", f"{totals['pages']:,}"),
            (
                "Sentences",
                f"{totals['sentences']:,} ({totals['scored']:,} scored, "
                f"{totals['explained']:,} with SHAP evidence)",
            ),
            ("Labels", ", ".join(f"{totals[label]:,} {label}" for label in LABELS)),
            ("Tone index", _fmt_tone(tone_index({k: totals[k] for k in LABELS}))),
            ("Exceptions", f"{sum(len(r.get('errors') or ()) for r in rows):,}"),
            ("Time (document seconds)", f"{sum(r.get('seconds') or 0 for r in rows):,.1f}"),
            ("Drift check", drift or "not made (no new sentences, or not asked for)"),
        ]
    )
    sheet.note(TONE_DEFINITION)
    sheet.blank()
    sheet.section("How to read this")
    sheet.note(
        "Documents: one row per input with its status, size, label counts, time and first "
        "problem; the stamp (model, code, run) is on every row. Exceptions: every problem "
        "of every document. Open a document's own workpaper for its sentences."
    )
    sheet.ws.print_area = f"A1:B{sheet.rows}"


def _fmt_tone(tone: float | None) -> str:
    return "(no scored sentences)" if tone is None else f"{tone:+.2f}"


def _batch_documents(
    wb: Workbook, styler: _Styler, rows: list[dict[str, Any]], lines: list[str]
) -> None:
    stages: list[str] = []
    for row in rows:
        for stage in row.get("timings") or {}:
            if stage not in stages:
                stages.append(stage)
    stamp_keys = (
        "model_name",
        "model_version",
        "model_sha256",
        "code_version",
        "git_commit",
        "run_id",
        "created_at",
    )
    columns: list[tuple[str, float]] = [
        ("document", 30),
        ("status", 9),
        ("pages", 7),
        ("sentences", 9),
        ("scored", 8),
        ("positive", 8),
        ("negative", 8),
        ("neutral", 8),
        ("tone index", 8),
        ("errors", 7),
        ("first problem", 50),
        ("seconds", 8),
        *((f"{s} (s)", 9) for s in stages),
        ("input sha256", 20),
        ("source", 30),
        ("client", 16),
        ("engagement", 16),
        *((key.replace("_", " "), 16) for key in stamp_keys),
    ]
    sheet = _Sheet(
        wb, styler, "Documents", "Documents", lines, [w for _, w in columns], freeze_col="B"
    )
    header_row = HEADER_ROWS + 1
    sheet.header([name for name, _ in columns])
    cell = sheet.cell
    for row in rows:
        status = row.get("status") or "?"
        fill = {"failed": _FILLS["fatal"], "partial": _FILLS["warning"]}.get(status)
        errors = row.get("errors") or []
        first = sorted(errors, key=lambda e: not e.get("fatal"))[0]["message"] if errors else ""
        timings = row.get("timings") or {}
        stamp = row.get("stamp") or {}
        sheet.append(
            [
                cell(row.get("file_name") or row.get("source") or "", "wrap", fill),
                cell(status, "key", fill),
                cell(row.get("pages"), "int", fill),
                cell(row.get("sentences"), "int", fill),
                cell(row.get("scored"), "int", fill),
                *(cell(row.get(label), "int", fill) for label in LABELS),
                cell(row.get("tone_index"), "tone", fill),
                cell(len(errors), "int", fill),
                cell(first, "wrap", fill),
                cell(row.get("seconds"), "secs", fill),
                *(cell(timings.get(s), "secs", fill) for s in stages),
                cell(row.get("sha256") or "(not read)", "text", fill),
                cell(row.get("source") or "", "text", fill),
                cell(row.get("client") or "", "text", fill),
                cell(row.get("engagement") or "", "text", fill),
                *(cell(stamp.get(key), "text", fill) for key in stamp_keys),
            ]
        )
    if not rows:
        sheet.note("No documents in this batch.")
    sheet.table_setup(header_row, sheet.rows, len(columns), print_cols=12 + len(stages))
