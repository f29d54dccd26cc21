"""The raw layout of a page before blocks are built: line segments (`Seg`), the page they lie on
(`RawPage`) and the row helpers that group and join segments on one baseline. Its own module
because every reader feeds it (pdfium's characters today, OCR words next) and the layout reads
it, so it must not depend on pdfium.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SEG_GAP = 0.9
"""Largest gap between words of one line segment, in line heights (about one em)."""
_BULLETS = frozenset("•●▪■□◦○·‣⁃∙►▶➢➤✓✔–—-*")
_ENUMERATOR = re.compile(
    r"\(?[0-9]{1,3}(\.[0-9]{1,3}){0,3}[.)]?|\(?[a-zA-Z][.)]|\([ivxlc]{1,5}\)|[ivxlc]{1,5}\.|"
    r"(section|article|item|note)\s+[0-9][0-9.a-z]*\.?",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Seg:
    """A run of words on one line, with no gap wider than about an em inside it."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    bold: bool
    n_chars: int
    numeric: bool = False
    tabular: bool = False
    """A table cell for sure: a number, dot leaders, or a label with its numbers on the line."""
    label: bool = False
    """Possibly a table row label: a cell of a number column follows it on its row."""
    bullet: bool = False
    row: int = -1
    running: str | None = None
    h: float = 0.0
    """Line height (bottom - top), kept as a field: the layout loops read it constantly."""
    font: int = 0
    """pdfium's font handle at the first character (only compared within one page)."""

    def __post_init__(self) -> None:
        self.h = self.bottom - self.top


@dataclass(slots=True)
class RawPage:
    page_no: int
    width: float
    height: float
    rotation: int
    segs: list[Seg] = field(default_factory=list)
    n_chars: int = 0
    n_bad: int = 0
    n_words: int = 0
    n_odd_words: int = 0
    has_image: bool = False
    error: str | None = None
    vocab: set[str] = field(default_factory=set)
    """Lower-cased words of the page, to decide which hyphens at line ends to keep."""
    ocr: bool = False
    """Read by OCR from the page image (app/ingest/ocr.py), not from the text layer."""
    ocr_confidence: float | None = None
    """Mean OCR word confidence, 0-1."""
    ocr_language: str | None = None
    ocr_blank: bool = False
    """OCR found no ink on the rendered page."""


def _rows(segs: list[Seg]) -> list[list[Seg]]:
    """Group segments sharing a baseline band into rows (each row sorted left to right)."""
    rows: list[list[Seg]] = []
    bands: list[tuple[float, float]] = []
    for s in sorted(segs, key=lambda s: (s.top + s.bottom) / 2):
        mid = (s.top + s.bottom) / 2
        if bands:
            t, b = bands[-1]
            if t <= mid <= b and min(b, s.bottom) - max(t, s.top) > 0.4 * min(b - t, s.h):
                rows[-1].append(s)
                continue
        rows.append([s])
        bands.append((s.top, s.bottom))
    for r in rows:
        r.sort(key=lambda s: s.x0)
    return rows


def merge_rows(segs: list[Seg]) -> list[Seg]:
    """Join segments of one row that the content order left apart; attach lone bullets."""
    out: list[Seg] = []
    for row_no, row in enumerate(_rows(segs)):
        merged: list[Seg] = []
        for s in row:
            if merged:
                prev = merged[-1]
                h = max(prev.h, s.h, 0.1)
                gap = s.x0 - prev.x1
                lone_bullet = len(prev.text) == 1 and prev.text in _BULLETS and gap < 4 * h
                similar = abs(prev.size - s.size) <= 0.2 * max(prev.size, s.size)
                # "5.15" or "(k)" before a hanging paragraph: its number, not a table cell
                numbered = (
                    similar
                    and 0 < gap < 8 * h
                    and len(prev.text) <= 12
                    and _ENUMERATOR.fullmatch(prev.text) is not None
                    and s.text[:1].isalpha()
                )
                if lone_bullet or numbered or (-0.5 * h < gap < SEG_GAP * h and similar):
                    merged[-1] = _join(prev, s)
                    merged[-1].bullet = lone_bullet or prev.bullet
                    continue
            merged.append(s)
        for s in merged:
            s.row = row_no
            if not s.bullet and len(s.text) > 2 and s.text[0] in _BULLETS and s.text[1] == " ":
                s.bullet = True
            out.append(s)
    return out


def _join(a: Seg, b: Seg) -> Seg:
    n = a.n_chars + b.n_chars
    return Seg(
        text=f"{a.text} {b.text}",
        x0=min(a.x0, b.x0),
        top=min(a.top, b.top),
        x1=max(a.x1, b.x1),
        bottom=max(a.bottom, b.bottom),
        size=a.size if a.n_chars >= b.n_chars else b.size,
        bold=(a.bold * a.n_chars + b.bold * b.n_chars) * 2 > n,
        n_chars=n,
        font=a.font,
    )
