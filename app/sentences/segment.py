"""Page text -> units: before spaCy sees any text, each page is cut into headings, list items,
table rows and paragraphs, trusting ingest's layout blocks where present and line heuristics
(bullets, title-case lines after a finished sentence, mostly-numeric lines) elsewhere; plus the
span helpers (`strip_span`, `has_word`, `open_end`) that the later steps share. Its own module
because it works on one page's lines and characters, not on tokens and not across pages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.records import Block, Page
from app.sentences.sentencizer import words

_log = logging.getLogger(__name__)


_BULLET = re.compile(
    r"^(?:[\u2022\u25cf\u25aa\u25a0\u25a1\u25e6\u2023\u2043\u2219\u00b7*\u203a\u27a2\u2713"
    r"\u2714\uf0b7\uf0a7\uf0d8\u25ba\u25b6]"
    r"|(?P<dash>[-\u2013\u2014])"
    r"|(?P<enum>\(?[a-z]\)|\(?[ivx]{1,4}\)|\(\d{1,2}\)|\d{1,2}[.)]))\s+"
)
_INLINE_BULLET = re.compile(r"(?<=\S)\s+(?=[\u2022\u25cf\u25aa\u25a0\u25e6\u2023\uf0b7\uf0a7]\s)")
# A figure in a table row ("(1,690)", "$", "3.2%", "—", a dot leader); "2022," is prose.
_NUMBERISH = re.compile(
    r"^[(\[$\u20ac\u00a3\u00a5+\-\u2013\u2014]*(?:\d[\d.,]*)?\d[%)\]]*$"
    r"|^[$\u20ac\u00a3\u2013\u2014\-]$|^[.\u2026\u00b7_]{3,}$"
)
_SMALL_WORDS = words("""
    a an and as at by for from in into of on or per the to with within vs vs. its our their
    &
""")
_FURNITURE = re.compile(r"^(page|p\.|pg\.?)?\s*[a-z]?-?\d+(\s*(of|/)\s*\d+)?$", re.IGNORECASE)
_ENUMERATOR = re.compile(r"^[(\[]?([ivxlc]{1,6}|[a-z]|\d{1,3})[)\].]?[.:]?$", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
_FIGURE = re.compile(r"[$\u20ac\u00a3%]|\d,\d{3}")
_BRACKETS = "[](){}\"'\u201c\u201d\u2018\u2019"
ENDS_SENTENCE = frozenset(".!?:;\u2026")
CLOSING_CHARS = "\"')]}\u201d\u2019\u00bb*"
_FUNCTION_WORDS = words("""
    a an the of to in on at for from by with and or but nor as that which who whose whom than
    our its their his her your my this these those such into onto upon over under between
    among against about after before during through including excluding within without per
    is are was were be been being has have had will would shall should may might can could
    not no also both either neither whether if when where while because although though
""")


@dataclass
class _Unit:
    kind: str  # heading | list_item | text | row
    start: int
    end: int
    lines: int = 1
    indent: float | None = None  # x0 of the unit's first line, when line boxes are known


def has_word(text: str) -> bool:
    """Whether text carries a word: two letters in a row, page furniture and enumerators aside."""
    core = text.strip()
    if not _WORD.search(core) or _FURNITURE.match(core):
        return False
    # Enumerators ("(ii)", "iv.", "(b)") are not words either.
    return any(_WORD.search(t) and not _ENUMERATOR.match(t) for t in core.split())


def _line_spans(text: str, a: int, b: int) -> list[tuple[int, int] | None]:
    """Stripped (start, end) of each line in text[a:b]; None for blank lines."""
    out: list[tuple[int, int] | None] = []
    pos = a
    while pos < b:
        nl = text.find("\n", pos, b)
        if nl < 0:
            nl = b
        seg = text[pos:nl]
        lead = len(seg) - len(seg.lstrip())
        stripped = seg.strip()
        if not stripped:
            out.append(None)
        else:
            # Text layers often glue bullets onto one line ("... include: • Ridding ...").
            s = pos + lead
            for m in _INLINE_BULLET.finditer(stripped):
                out.append((s, pos + lead + m.start()))
                s = pos + lead + m.end()
            out.append((s, pos + lead + len(stripped)))
        pos = nl + 1
    return out


def _ends_sentence(line: str) -> bool:
    core = line.rstrip(CLOSING_CHARS)
    return bool(core) and core[-1] in ENDS_SENTENCE


def _is_row(line: str, prev_ended: bool) -> bool:
    tokens = line.split()
    if len(tokens) < 2 or line.endswith("."):
        return False
    numeric = sum(1 for t in tokens if _NUMBERISH.match(t))
    if not numeric:
        return False
    share = numeric / len(tokens)
    if share >= 0.6 or (share >= 0.5 and prev_ended):
        return True
    # A label and its figures: "Intangible assets $ 3,032 $ (620)", "Net loss (504)".
    trailing = 0
    while trailing < len(tokens) and _NUMBERISH.match(tokens[-1 - trailing]):
        trailing += 1
    return trailing >= 2 or (trailing == 1 and prev_ended and len(line) <= 60)


def _is_heading(line: str, prev_ended: bool, nxt: str | None) -> bool:
    if len(line) > 100 or line[-1] in ".,;:!?" or not line[0].isalnum():
        return False
    if not prev_ended and not (line.isupper() and len(line.split()) >= 2):
        return False  # mid-paragraph, only an all-caps line ("ITEM 7. MANAGEMENT'S ...") is a title
    if line[0].isalpha() and not line[0].isupper():
        return False
    if nxt is not None and nxt[:1].islower():
        return False  # the line wraps into more of the same sentence
    words = line.split()
    if len(words) > 14:
        return False
    if _FIGURE.search(line):
        return False  # amounts belong to table rows, not titles
    bare = [w.strip(_BRACKETS) for w in words]
    significant = [w for w in bare if w[:1].isalpha() and w.lower() not in _SMALL_WORDS]
    figures = sum(1 for w in bare if not w[:1].isalpha())
    if not significant or figures > len(significant) or not has_word(line):
        return False
    capitalised = sum(1 for w in significant if w[0].isupper())
    return capitalised / len(significant) >= 0.75


class Segmenter:
    """Cuts one page's text into units; line boxes (when known) tell list continuations apart."""

    def __init__(self, page: Page) -> None:
        self.text = page.text
        self.line_x0: dict[int, float] = {}
        for line in page.lines:
            self.line_x0.setdefault(line.start, line.bbox.x0)

    def units(self, blocks: Sequence[Block]) -> list[_Unit]:
        """The page's units in reading order."""
        units: list[_Unit] = []
        pos = 0
        for block in blocks:
            if block.start > pos:
                self._region(pos, block.start, units)  # body text that no block claims
            if block.kind == "heading":
                s, e = strip_span(self.text, block.start, block.end)
                if s < e:
                    units.append(_Unit("heading", s, e))
            elif block.kind == "list_item":
                s, e = strip_span(self.text, block.start, block.end)
                m = _BULLET.match(self.text[s:e]) if s < e else None
                if m:
                    s += m.end()
                if s < e:
                    units.append(_Unit("list_item", s, e))
            else:
                self._region(block.start, block.end, units)
            pos = block.end
        if pos < len(self.text):
            self._region(pos, len(self.text), units)
        return units

    def _region(self, a: int, b: int, units: list[_Unit]) -> None:
        text = self.text
        spans = _line_spans(text, a, b)
        filled = [k for k, s in enumerate(spans) if s]
        if not filled:
            return
        first, last = filled[0], filled[-1]
        mark = len(units)
        cur: _Unit | None = None
        prev_ended = True
        for k, span in enumerate(spans):
            if span is None:
                if cur:
                    units.append(cur)
                    cur = None
                prev_ended = True
                continue
            s, e = span
            line = text[s:e]
            nxt_span = spans[k + 1] if k + 1 < len(spans) else None
            nxt = text[nxt_span[0] : nxt_span[1]] if nxt_span else None
            x0 = self.line_x0.get(s)
            if not has_word(line):
                # Page numbers and stray figures: kept inside a running sentence, else skipped.
                if cur and cur.kind == "text" and not prev_ended and first < k < last:
                    cur.end = e
                elif cur:
                    units.append(cur)
                    cur = None
                continue
            bullet = _BULLET.match(line)
            if (
                bullet
                and (bullet.group("dash") or bullet.group("enum"))
                and not (prev_ended or (cur and cur.kind == "list_item"))
            ):
                bullet = None  # "31. The ..." wrapped from the line before is not a list
            if bullet and len(line) > bullet.end():
                if cur:
                    units.append(cur)
                cur = _Unit("list_item", s + bullet.end(), e, indent=x0)
                prev_ended = _ends_sentence(line)
                continue
            if _is_row(line, prev_ended):
                if cur:
                    units.append(cur)
                    cur = None
                units.append(_Unit("row", s, e))
                prev_ended = True
                continue
            # List items often end without a stop; a title after one still opens a section.
            after_item = (
                cur is not None
                and cur.kind == "list_item"
                and not open_end(text[cur.start : cur.end])
            )
            if _is_heading(line, prev_ended or after_item, nxt):
                if (
                    cur
                    and cur.kind == "heading"
                    and cur.lines < 3
                    and _wraps(text[cur.start : cur.end], line)
                ):
                    cur.end, cur.lines = e, cur.lines + 1
                else:
                    if cur:
                        units.append(cur)
                    cur = _Unit("heading", s, e)
                prev_ended = True
                continue
            if cur and cur.kind == "list_item" and self._leaves_list(cur, x0):
                units.append(cur)
                cur = None
            if cur and cur.kind in ("text", "list_item"):
                cur.end, cur.lines = e, cur.lines + 1
            else:
                if cur:
                    units.append(cur)
                cur = _Unit("text", s, e, indent=x0)
            prev_ended = _ends_sentence(line)
        if cur:
            units.append(cur)
        for a_unit, b_unit in zip(units[mark:], units[mark + 1 :], strict=False):
            if a_unit.kind == "heading" and b_unit.kind == "row":
                a_unit.kind = "row"  # column headers over figures, not a section title

    @staticmethod
    def _leaves_list(item: _Unit, x0: float | None) -> bool:
        # A hanging indent continues a bullet; a line at or left of the bullet starts a paragraph.
        return item.indent is not None and x0 is not None and x0 <= item.indent + 1.0


def _wraps(heading: str, line: str) -> bool:
    """Whether line continues a heading ("Report of Independent Registered Public / Accounting
    Firm" wraps only when split at a small word; two titles in a row stay two)."""
    last, first = heading.split()[-1], line.split()[0]
    return (
        last.lower() in _SMALL_WORDS
        or last.lower() in _FUNCTION_WORDS
        or last[-1] in ",&-"
        or first.lower() in _SMALL_WORDS
        or first[:1].islower()
    )


def open_end(text: str) -> bool:
    """Whether text stops where a sentence cannot ("... which raise our", "... and,")."""
    core = text.rstrip()
    return (
        not core or core[-1] in ",-\u2013\u2014/&" or (core.split()[-1].lower() in _FUNCTION_WORDS)
    )


def strip_span(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def body_blocks(page: Page) -> list[Block]:
    """Blocks whose text is in Page.text, in text order; malformed ones are skipped."""
    n = len(page.text)
    body = sorted(
        (b for b in page.blocks if b.kind in ("text", "heading", "list_item")),
        key=lambda b: (b.start, b.end),
    )
    out: list[Block] = []
    pos = 0
    for b in body:
        if not (0 <= b.start < b.end <= n) or b.start < pos:
            _log.warning(
                "page %d: %s block [%d, %d) is outside the text or overlaps; its "
                "text is read with line heuristics",
                page.page_no,
                b.kind,
                b.start,
                b.end,
            )
            continue
        out.append(b)
        pos = b.end
    return out
