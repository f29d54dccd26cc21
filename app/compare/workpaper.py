"""The comparison workpaper: Cover, Section shifts, New and removed, Edited, Numbers changed.

Built with the document workpaper's machinery (`app.workpaper`): streaming sheets whose first
rows carry the stamp (and are the print titles), cells that hold document text as data, never
as a formula. The stamp names the model and both inputs' sha256; every table row repeats it in
its right-hand columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from app.compare.findings import (
    edited,
    flipped,
    new_negatives,
    numbers_changed,
    removed_negatives,
)
from app.records import (
    CHANGE_KINDS,
    ComparedDocument,
    ComparedSentence,
    Comparison,
    Explanation,
    SectionShift,
    SentenceChange,
    WordDiff,
)
from app.workpaper import (
    _FILLS,
    _FONT,
    HEADER_ROWS,
    TONE_DEFINITION,
    _save,
    _Sheet,
    _Styler,
    evidence_text,
    flatten_settings,
    safe_text,
)
from explain.render import LABEL_RGB, hex_rgb

COMPARISON_SHEETS = ("Cover", "Section shifts", "New and removed", "Edited", "Numbers changed")
"""A comparison workpaper's sheets, in order."""

_STAMP_KEYS = (
    "model_name",
    "model_version",
    "model_sha256",
    "prior_sha256",
    "current_sha256",
    "run_id",
    "created_at",
)
_STAMP_COLUMNS: tuple[tuple[str, float], ...] = tuple(
    (k.replace("_", " "), 18) for k in _STAMP_KEYS
)

HOW_TO_READ = (
    "Section shifts: each section of this year's report beside last year's (aligned by section "
    "type, else by heading), with label shares and the tone index of each year and the shift. "
    "Sections whose shift's 95% interval excludes zero are marked moved and listed first.",
    "Intervals: a year's tone interval resamples its sentences (bootstrap, 95%); the shift's "
    "interval resamples sentence changes, so sentences unchanged between the years count once "
    "for both years (a paired bootstrap).",
    "New and removed: new negative sentences (and edits that turned negative) first, most "
    "confident first; then last year's negative sentences that are gone; then every other new "
    "and removed sentence.",
    "Edited: sentences found in both years with changed wording (at least the similarity in "
    "the settings), labels that flipped first; the word difference shows deleted words struck "
    "through in red and inserted words in green.",
    "Numbers changed: sentences that are the same but for their figures or dates (unchanged), "
    "with the figures of both years.",
    "Provenance: the model (name, registry version, weights sha256), the code, the run and the "
    "sha256 of both reports are at the top of every sheet and on every row. Both reports were "
    "scored by that one model; where one had been scored by another, it was rescored (Cover).",
    "The model's labels and the alignment are an aid to reading the reports, not an audit "
    "conclusion.",
)


def comparison_stamp_lines(comparison: Comparison) -> list[str]:
    """The stamp as the three lines under every sheet's title."""
    f = comparison.stamp_fields()
    p, c = comparison.prior, comparison.current
    return [
        f"Model {f['model_name']} · registry version {f['model_version']} · "
        f"weights sha256 {f['model_sha256']}",
        f"Code {f['code_version']} · git {f['git_commit']} · run {f['run_id']} · "
        f"created {f['created_at']}",
        f"Prior {p.file_name or p.source} sha256 {p.doc_id or '(not read)'} · "
        f"Current {c.file_name or c.source} sha256 {c.doc_id or '(not read)'}",
    ]


def diff_rich_text(diff: Sequence[WordDiff]) -> CellRichText | str:
    """A word diff as rich text: deleted words struck through in red, inserted in green."""
    if not diff:
        return ""
    deleted = InlineFont(rFont=_FONT, sz=11, color=hex_rgb(LABEL_RGB["negative"]), strike=True)
    inserted = InlineFont(
        rFont=_FONT, sz=11, color=hex_rgb(LABEL_RGB["positive"]), b=True, u="single"
    )
    parts: list[str | TextBlock] = []
    for i, run in enumerate(diff):
        text = safe_text(run.text) + (" " if i < len(diff) - 1 else "")
        if run.op == "equal":
            parts.append(text)
        else:
            parts.append(TextBlock(deleted if run.op == "delete" else inserted, text))
    return CellRichText(parts)


def _evidence(side: ComparedSentence | None) -> CellRichText | str:
    if side is None or side.evidence_label is None:
        return ""
    expl = Explanation(
        sentence_index=side.index,
        label=side.evidence_label,
        words=(),
        values=(),
        base_value=0.0,
        output_value=0.0,
        additivity_error=0.0,
        top_for=side.evidence_for,
        top_against=side.evidence_against,
    )
    return evidence_text(expl)


def write_comparison_workpaper(comparison: Comparison, path: Path) -> Path:
    """Write the comparison's Excel workpaper to `path` (atomically); returns the path."""
    wb = Workbook(write_only=True)
    styler = _Styler(wb)
    lines = comparison_stamp_lines(comparison)
    stamp = comparison.stamp_fields()
    tail = [stamp[k] for k in _STAMP_KEYS]
    _cover(wb, styler, comparison, lines)
    _sections(wb, styler, comparison, lines, tail)
    _new_and_removed(wb, styler, comparison, lines, tail)
    _edited(wb, styler, comparison, lines, tail)
    _numbers(wb, styler, comparison, lines, tail)
    styler.done()
    return _save(wb, path)


def _fmt_tone(value: float | None) -> str:
    return "(none)" if value is None else f"{value:+.3f}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"


def _pages(pages: tuple[int, int] | None) -> str:
    if pages is None:
        return ""
    return str(pages[0]) if pages[0] == pages[1] else f"{pages[0]}-{pages[1]}"


_HOW = {
    "pdf": "analyzed again from its PDF",
    "sentences": "its stored sentences rescored",
    "stored": "its stored result by the current model used",
}


def _document_pairs(d: ComparedDocument) -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = [
        ("File name", d.file_name or d.source),
        ("Input sha256", d.doc_id or "(not read)"),
        ("Period (engagement)", d.engagement or "(not given)"),
        ("Pages", d.n_pages),
        ("Sentences", f"{d.n_sentences:,}"),
        ("Status", d.status.upper()),
        ("Stored result", d.result_id if d.result_id is not None else "(not stored)"),
        (
            "Scored by",
            f"{d.model_name} {d.model_version or 'unregistered'} (sha256 {d.model_digest})",
        ),
        ("Scored at", d.created_at.isoformat(timespec="seconds")),
    ]
    if d.rescored_from:
        r = d.rescored_from
        pairs.append(
            (
                "Rescored",
                f"yes, {_HOW.get(str(r.get('how')), 'from its stored sentences')}"
                f"; it had been scored by {r.get('model_name')} "
                f"{r.get('model_version') or 'unregistered'} (sha256 {r.get('model_digest')})"
                + (f", stored result {r['result_id']}" if r.get("result_id") is not None else ""),
            )
        )
    return pairs


def _cover(wb: Workbook, styler: _Styler, comparison: Comparison, lines: list[str]) -> None:
    sheet = _Sheet(
        wb,
        styler,
        "Cover",
        "sesame workpaper: this year against last year",
        lines,
        (30, 95),
        landscape=False,
    )
    n = comparison.counts
    sheet.blank()
    partial = (
        "partial" if "partial" in (comparison.prior.status, comparison.current.status) else "ok"
    )
    sheet.banner(
        f"{n['prior']:,} sentences last year, {n['current']:,} this year: "
        f"{n['unchanged']:,} unchanged, {n['edited']:,} edited, {n['new']:,} new, "
        f"{n['removed']:,} removed."
        + (
            " One of the reports was not read fully: see its own workpaper."
            if partial != "ok"
            else ""
        ),
        partial,
    )
    sheet.blank()
    sheet.section("Engagement")
    sheet.key_values(
        [
            ("Client", comparison.current.client or comparison.prior.client or "(not given)"),
            ("Last year (prior)", comparison.prior.engagement or comparison.prior.source),
            ("This year (current)", comparison.current.engagement or comparison.current.source),
        ]
    )
    for title, doc in (
        ("Last year (prior)", comparison.prior),
        ("This year (current)", comparison.current),
    ):
        sheet.blank()
        sheet.section(title)
        sheet.key_values(_document_pairs(doc))
    sheet.blank()
    sheet.section("Every sentence in exactly one class")
    sheet.key_values(
        [
            *((kind.capitalize(), f"{n[kind]:,}") for kind in CHANGE_KINDS),
            (
                "Last year",
                f"{n['prior']:,} = {n['unchanged']:,} unchanged + {n['edited']:,} edited + "
                f"{n['removed']:,} removed",
            ),
            (
                "This year",
                f"{n['current']:,} = {n['unchanged']:,} unchanged + {n['edited']:,} edited + "
                f"{n['new']:,} new",
            ),
        ]
    )
    sheet.blank()
    sheet.section("What to read first")
    moved = [s for s in comparison.sections if s.moved]
    sheet.key_values(
        [
            (
                "Tone, whole report",
                f"{_fmt_tone(comparison.whole.prior.tone)} last year, "
                f"{_fmt_tone(comparison.whole.current.tone)} this year; shift "
                f"{_fmt_tone(comparison.whole.shift)} "
                f"{_interval(comparison.whole.shift_low, comparison.whole.shift_high)}"
                + (" (moved)" if comparison.whole.moved else ""),
            ),
            ("Sections whose tone moved", f"{len(moved)} (first on Section shifts)"),
            ("New negative sentences", f"{len(new_negatives(comparison)):,}"),
            ("Removed negative sentences", f"{len(removed_negatives(comparison)):,}"),
            ("Labels flipped", f"{len(flipped(comparison)):,}"),
        ]
    )
    sheet.note(TONE_DEFINITION)
    if comparison.notes:
        sheet.blank()
        sheet.section("Notes")
        for note in comparison.notes:
            sheet.note(note)
    sheet.blank()
    sheet.section("Model and code (stamp)")
    f = comparison.stamp_fields()
    sheet.key_values(
        [
            ("Model name", f["model_name"]),
            ("Registry version", f["model_version"]),
            ("Weights sha256", f["model_sha256"]),
            ("Code version", f["code_version"]),
            ("Git commit", f["git_commit"]),
            ("Run id", f["run_id"]),
            ("Created at", f["created_at"]),
        ]
    )
    sheet.blank()
    sheet.section("Settings")
    sheet.key_values(flatten_settings(comparison.settings) or [("(none recorded)", "")])
    sheet.blank()
    sheet.section("How to read this workpaper")
    for text in HOW_TO_READ:
        sheet.note(text)
    sheet.ws.print_area = f"A1:B{sheet.rows}"


_SECTION_COLUMNS: tuple[tuple[str, float], ...] = (
    ("section", 34),
    ("type", 14),
    ("in", 11),
    ("aligned by", 11),
    ("pages last year", 9),
    ("pages this year", 9),
    ("sentences last year", 9),
    ("negative last year", 9),
    ("positive last year", 9),
    ("tone last year", 8),
    ("95% interval last year", 15),
    ("sentences this year", 9),
    ("negative this year", 9),
    ("positive this year", 9),
    ("tone this year", 8),
    ("95% interval this year", 15),
    ("shift", 8),
    ("95% interval of the shift", 15),
    ("moved", 7),
    ("unchanged", 9),
    ("edited", 8),
    ("new", 7),
    ("removed", 8),
    ("new headings", 30),
    ("removed headings", 30),
    ("headings last year", 30),
)
_PRINTED_SECTION_COLUMNS = 23
_PRESENCE = {"both": "both years", "prior_only": "last year", "current_only": "this year"}


def _table(
    wb: Workbook,
    styler: _Styler,
    name: str,
    title: str,
    lines: list[str],
    columns: Sequence[tuple[str, float]],
    *,
    freeze_col: str,
) -> _Sheet:
    """A table sheet with its stamp lines and its header row written."""
    sheet = _Sheet(wb, styler, name, title, lines, [w for _, w in columns], freeze_col=freeze_col)
    sheet.header([n for n, _ in columns])
    return sheet


def _close(sheet: _Sheet, n_columns: int, printed: int, *, empty: str | None = None) -> None:
    """A table sheet's filter, print area and widths; `empty` noted when it has no rows."""
    header_row = HEADER_ROWS + 1
    if empty and sheet.rows == header_row:
        sheet.note(empty, merge_to=printed)
    sheet.table_setup(header_row, sheet.rows, n_columns, print_cols=printed)


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def _sections(
    wb: Workbook, styler: _Styler, comparison: Comparison, lines: list[str], tail: list[str]
) -> None:
    columns = [*_SECTION_COLUMNS, *_STAMP_COLUMNS]
    sheet = _table(
        wb,
        styler,
        "Section shifts",
        "Section shifts: tone this year against last",
        lines,
        columns,
        freeze_col="B",
    )
    cell = sheet.cell

    def row(s: SectionShift) -> None:
        fill = _FILLS["warning"] if s.moved else None
        if s.presence != "both":
            fill = _FILLS["unscored"]
        sheet.append(
            [
                cell(s.title, "wrap", fill),
                cell(s.section_type or "", "text", fill),
                cell(_PRESENCE[s.presence] if s.key != "whole" else "both years", "text", fill),
                cell(
                    s.matched_by.replace("_", " ")
                    + (f" ({s.heading_similarity:.2f})" if s.heading_similarity else ""),
                    "text",
                    fill,
                ),
                cell(_pages(s.prior_pages), "text", fill),
                cell(_pages(s.current_pages), "text", fill),
                cell(s.prior.n, "int", fill),
                cell(_share(s.prior.negative, s.prior.n), "pct", fill),
                cell(_share(s.prior.positive, s.prior.n), "pct", fill),
                cell(s.prior.tone, "tone", fill),
                cell(_interval(s.prior.low, s.prior.high), "text", fill),
                cell(s.current.n, "int", fill),
                cell(_share(s.current.negative, s.current.n), "pct", fill),
                cell(_share(s.current.positive, s.current.n), "pct", fill),
                cell(s.current.tone, "tone", fill),
                cell(_interval(s.current.low, s.current.high), "text", fill),
                cell(s.shift, "tone", fill),
                cell(_interval(s.shift_low, s.shift_high), "text", fill),
                cell("MOVED" if s.moved else "", "key", fill),
                *(cell(s.changes.get(k, 0), "int", fill) for k in CHANGE_KINDS),
                cell("\n".join(s.new_headings[:20]), "wrap", fill),
                cell("\n".join(s.removed_headings[:20]), "wrap", fill),
                cell(
                    "\n".join(s.prior_headings[:5]) if s.matched_by == "fuzzy_heading" else "",
                    "wrap",
                    fill,
                ),
                *(cell(v, "text", fill) for v in tail),
            ]
        )

    row(comparison.whole)
    for s in comparison.sections:
        row(s)
    _close(sheet, len(columns), _PRINTED_SECTION_COLUMNS)


_CHANGE_COLUMNS: tuple[tuple[str, float], ...] = (
    ("finding", 15),
    ("rank", 6),
    ("change", 9),
    ("page this year", 7),
    ("page last year", 7),
    ("section", 20),
    ("kind", 8),
    ("sentence", 60),
    ("label", 9),
    ("P(negative)", 9),
    ("confidence", 9),
    ("evidence (SHAP)", 34),
    ("label last year", 9),
    ("word difference (edited)", 60),
    ("sentence id this year", 9),
    ("sentence id last year", 9),
)
_PRINTED_CHANGE_COLUMNS = 14


def _new_and_removed(
    wb: Workbook, styler: _Styler, comparison: Comparison, lines: list[str], tail: list[str]
) -> None:
    columns = [*_CHANGE_COLUMNS, *_STAMP_COLUMNS]
    sheet = _table(
        wb,
        styler,
        "New and removed",
        "New and removed sentences: negative ones first",
        lines,
        columns,
        freeze_col="A",
    )
    cell = sheet.cell
    listed: set[int] = set()

    def row(finding: str, rank: int | None, c: SentenceChange) -> None:
        listed.add(id(c))
        side = c.current if c.current is not None else c.prior
        assert side is not None
        fill = _FILLS.get(side.label or "") if finding.endswith("negative") else None
        sheet.append(
            [
                cell(finding, "key", fill),
                cell(rank, "int", fill),
                cell(c.change, "text", fill),
                cell(c.current.page_no if c.current else None, "int", fill),
                cell(c.prior.page_no if c.prior else None, "int", fill),
                cell(side.section or "", "wrap", fill),
                cell(side.kind, "text", fill),
                cell(side.text, "wrap", fill),
                cell(side.label or "not scored", "text", fill),
                cell(side.p_negative, "prob", fill),
                cell(side.confidence, "prob", fill),
                _evidence_cell(sheet, side, fill),
                cell(c.prior.label if c.change == "edited" and c.prior else None, "text", fill),
                _diff_cell(sheet, c, fill),
                cell(c.current.index if c.current else None, "int", fill),
                cell(c.prior.index if c.prior else None, "int", fill),
                *(cell(v, "text", fill) for v in tail),
            ]
        )

    for rank, c in enumerate(new_negatives(comparison), start=1):
        row("new negative" if c.change == "new" else "edited to negative", rank, c)
    for rank, c in enumerate(removed_negatives(comparison), start=1):
        row("removed negative", rank, c)
    for c in comparison.changes:
        if c.change in ("new", "removed") and id(c) not in listed:
            row(c.change, None, c)
    _close(sheet, len(columns), _PRINTED_CHANGE_COLUMNS, empty="No new or removed sentences.")


def _evidence_cell(sheet: _Sheet, side: ComparedSentence | None, fill: str | None) -> Any:
    c = sheet.cell(None, "wrap", fill)
    text = _evidence(side)
    if text:
        c.value = text
    return c


def _diff_cell(sheet: _Sheet, change: SentenceChange, fill: str | None) -> Any:
    c = sheet.cell(None, "wrap", fill)
    if change.diff:
        c.value = diff_rich_text(change.diff)
    return c


_EDIT_COLUMNS: tuple[tuple[str, float], ...] = (
    ("flipped", 8),
    ("label last year", 9),
    ("label this year", 9),
    ("P(negative) last year", 9),
    ("P(negative) this year", 9),
    ("similarity", 9),
    ("page last year", 7),
    ("page this year", 7),
    ("section this year", 20),
    ("word difference", 70),
    ("sentence last year", 45),
    ("sentence this year", 45),
    ("evidence this year (SHAP)", 34),
    ("moved section", 8),
    ("sentence id last year", 9),
    ("sentence id this year", 9),
)
_PRINTED_EDIT_COLUMNS = 10


def _edited(
    wb: Workbook, styler: _Styler, comparison: Comparison, lines: list[str], tail: list[str]
) -> None:
    columns = [*_EDIT_COLUMNS, *_STAMP_COLUMNS]
    sheet = _table(
        wb,
        styler,
        "Edited",
        "Edited sentences: flipped labels first",
        lines,
        columns,
        freeze_col="A",
    )
    cell = sheet.cell
    for c in edited(comparison):
        a, b = c.prior, c.current
        assert a is not None and b is not None
        fill = _FILLS.get(b.label or "") if c.flipped else None
        sheet.append(
            [
                cell("FLIPPED" if c.flipped else "", "key", fill),
                cell(a.label or "not scored", "text", fill),
                cell(b.label or "not scored", "text", fill),
                cell(a.p_negative, "prob", fill),
                cell(b.p_negative, "prob", fill),
                cell(c.similarity, "prob", fill),
                cell(a.page_no, "int", fill),
                cell(b.page_no, "int", fill),
                cell(b.section or "", "wrap", fill),
                _diff_cell(sheet, c, fill),
                cell(a.text, "wrap", fill),
                cell(b.text, "wrap", fill),
                _evidence_cell(sheet, b, fill),
                cell(c.moved, "text", fill),
                cell(a.index, "int", fill),
                cell(b.index, "int", fill),
                *(cell(v, "text", fill) for v in tail),
            ]
        )
    _close(sheet, len(columns), _PRINTED_EDIT_COLUMNS, empty="No edited sentences.")


_NUMBER_COLUMNS: tuple[tuple[str, float], ...] = (
    ("page last year", 7),
    ("page this year", 7),
    ("section this year", 22),
    ("sentence this year", 60),
    ("figures last year -> this year", 40),
    ("label last year", 9),
    ("label this year", 9),
    ("sentence last year", 50),
    ("sentence id last year", 9),
    ("sentence id this year", 9),
)
_PRINTED_NUMBER_COLUMNS = 7


def _numbers(
    wb: Workbook, styler: _Styler, comparison: Comparison, lines: list[str], tail: list[str]
) -> None:
    columns = [*_NUMBER_COLUMNS, *_STAMP_COLUMNS]
    sheet = _table(
        wb,
        styler,
        "Numbers changed",
        "Unchanged but for their figures",
        lines,
        columns,
        freeze_col="A",
    )
    cell = sheet.cell
    for c in numbers_changed(comparison):
        a, b = c.prior, c.current
        assert a is not None and b is not None
        fill = _FILLS.get(b.label or "") if c.flipped else None
        sheet.append(
            [
                cell(a.page_no, "int", fill),
                cell(b.page_no, "int", fill),
                cell(b.section or "", "wrap", fill),
                cell(b.text, "wrap", fill),
                cell("; ".join(f"{n.prior} -> {n.current}" for n in c.numbers), "wrap", fill),
                cell(a.label or "not scored", "text", fill),
                cell(b.label or "not scored", "text", fill),
                cell(a.text, "wrap", fill),
                cell(a.index, "int", fill),
                cell(b.index, "int", fill),
                *(cell(v, "text", fill) for v in tail),
            ]
        )
    _close(
        sheet,
        len(columns),
        _PRINTED_NUMBER_COLUMNS,
        empty="No sentence changed in its figures only.",
    )
