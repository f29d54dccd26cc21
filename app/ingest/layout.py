"""One page's layout: segments -> blocks (regular line pitch, same size and weight) -> tables
gathered into one block each -> reading order by recursive XY-cut -> block kinds -> the `Page`
record with its text, lines and blocks. Its own module because it is the page-level geometry,
independent of how the segments were read.
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

from app.ingest.running import EDGE_ZONE, WORDISH
from app.ingest.segments import RawPage, Seg
from app.ingest.text import fix_ligatures, join_lines
from app.records import Page

_log = logging.getLogger(__name__)


_MAX_SEGMENTS = 1200
"""Pages with more line segments than this (report pages have a few hundred) are read line by
line: the layout's cost grows faster than linearly."""
_NUM_TOKEN = re.compile(
    r"[(\[]?[-–—−+]?[$€£¥]?\(?\d[\d,.]*\)?%?[)\]]?[*†‡a-d]?|[-–—−]+|n/?a|nm|x|[$€£¥%]|eur|usd",
    re.IGNORECASE,
)
_LEADERS = re.compile(r"(\.\s?){4,}|…{2,}|_{4,}")
_ORDERED_ITEM = re.compile(r"(\(?[0-9]{1,2}[.)]|\(?[a-z][.)]|\([ivx]{1,4}\))\s")


def body_size(raw_pages) -> float:  # noqa: ANN001 - an iterable of RawPage
    """The font size most characters are set in: the body text's."""
    sizes: Counter[float] = Counter()
    for raw in raw_pages:
        for s in raw.segs:
            if s.running is None:
                sizes[round(s.size * 2) / 2] += s.n_chars
    return sizes.most_common(1)[0][0] if sizes else 10.0


@dataclass(slots=True)
class _Blk:
    segs: list[Seg]
    x0: float
    top: float
    x1: float
    bottom: float
    kind: str = "text"
    pitch: float = 0.0

    def add(self, s: Seg) -> None:
        if len(self.segs) == 1:
            self.pitch = s.top - self.segs[0].top
        self.segs.append(s)
        self.x0, self.top = min(self.x0, s.x0), min(self.top, s.top)
        self.x1, self.bottom = max(self.x1, s.x1), max(self.bottom, s.bottom)


def _classify_cells(segs: list[Seg]) -> None:
    """Numeric cells, and row labels: a numeric cell of a number column follows on the row."""
    for s in segs:
        s.numeric = _is_number(s.text)
    numeric = sorted((s for s in segs if s.numeric), key=lambda s: s.top)
    in_column: set[int] = set()
    for i, s in enumerate(numeric):
        for t in numeric[i + 1 :]:
            if t.top > s.bottom + 4 * s.h:
                break
            if t.row != s.row and min(s.x1, t.x1) - max(s.x0, t.x0) > 0:
                in_column.update((id(s), id(t)))
    rows: dict[int, list[Seg]] = {}
    for s in segs:
        rows.setdefault(s.row, []).append(s)
    for row in rows.values():
        row.sort(key=lambda s: s.x0)
        for left, right in zip(row, row[1:], strict=False):
            if id(right) in in_column and not left.numeric and not _between(segs, left, right):
                left.label = True
        for s in row:
            if s.numeric or _LEADERS.search(s.text) or _ends_with_numbers(s.text):
                s.tabular = True
    for s in segs:
        if s.label and _in_paragraph(segs, s):
            s.label = False


def _is_number(text: str) -> bool:
    """A figure, an amount, a dash standing for zero: a table cell, not prose."""
    tokens = text.split()
    # "2018." ending a sentence is prose, not a cell
    return (
        bool(tokens)
        and all(_NUM_TOKEN.fullmatch(t) for t in tokens)
        and any(ch.isdigit() or ch in "–—-$€£¥%" for ch in text)
        and not text.endswith((".", ",", ";", ":"))
    )


def _in_paragraph(segs: list[Seg], s: Seg) -> bool:
    """A long line set flush with a long line of prose right above or below it is prose too,
    whatever stands to its right (a spread's facing page, a chart across the gutter)."""
    if len(s.text.split()) < 6:
        return False
    for t in segs:
        if t is s or t.label or t.tabular or len(t.text.split()) < 6:
            continue
        step = abs(t.top - s.top)
        if 0.5 * s.h < step <= 2.2 * max(s.size, 1.0) and abs(t.x0 - s.x0) <= 2 * s.h:
            return True
    return False


def _between(segs: list[Seg], left: Seg, right: Seg) -> bool:
    """Whether text on nearby rows lies wholly between two cells: then a column gutter and
    another column's table separate them, and `left` is body text, not the row's label."""
    reach = 5 * left.h
    return any(
        t.x0 > left.x1 and t.x1 < right.x0 and not t.numeric and abs(t.top - left.top) < reach
        for t in segs
    )


def _ends_with_numbers(text: str) -> bool:
    tokens = text.split()
    if len(tokens) < 3:
        return False
    tail = [t for t in tokens[-3:] if t not in ("$", "€", "£", "%")]
    return len(tail) >= 2 and all(
        _NUM_TOKEN.fullmatch(t) and any(c.isdigit() for c in t) for t in tail
    )


def _pitches(segs: list[Seg]) -> tuple[float, dict[int, float]]:
    """The page's usual line pitch (in font sizes), and each segment's step to its next line."""
    ratios: Counter[float] = Counter()
    step_below: dict[int, float] = {}
    ordered = sorted(segs, key=lambda s: s.top)
    for i, s in enumerate(ordered):
        for t in ordered[i + 1 : i + 12]:
            if t.top <= s.top + 0.5 * s.h or abs(t.size - s.size) > 0.12 * s.size:
                continue
            if min(s.x1, t.x1) - max(s.x0, t.x0) > 0 and s.size > 0:
                step_below[id(s)] = t.top - s.top
                ratios[round((t.top - s.top) / s.size * 20) / 20] += 1
                break
    common = [r for r, _ in ratios.most_common() if 0.9 <= r <= 3.0]
    return (common[0] if common else 1.25), step_below


def _blocks(segs: list[Seg]) -> list[_Blk]:
    """Stack segments into blocks: same column, same size and weight, regular line pitch."""
    pitch, step_below = _pitches(segs)
    blocks: list[_Blk] = []
    open_: list[_Blk] = []
    for s in sorted(segs, key=lambda s: (s.top, s.x0)):
        best, best_gap = None, math.inf
        keep: list[_Blk] = []
        for b in open_:
            last = b.segs[-1]
            if last.bottom < s.top - 3 * max(s.h, last.h):
                continue  # too far above to take more lines
            keep.append(b)
            if s.bullet or (
                (s.tabular or s.label) != (last.tabular or last.label) and not _body_line(s, b)
            ):
                continue
            size = max(s.size, last.size, 0.1)
            if abs(s.size - last.size) > 0.12 * size or s.bold != last.bold:
                continue
            if s.bold and s.font != last.font:
                continue  # "Note 5 - Income Taxes" over an italic bold sub-heading
            step = s.top - last.top
            gap = s.top - last.bottom
            if len(b.segs) >= 2:
                regular = b.pitch * 0.8 - 0.5 <= step <= b.pitch * 1.15 + 0.5
            else:
                # the page's usual pitch, or a wider one this line keeps to the next (double
                # spacing) -- a paragraph break is wider than the lines around it
                nxt = step_below.get(id(s))
                regular = step <= (pitch + 0.3) * size or (
                    step <= 2.6 * size and nxt is not None and abs(nxt - step) <= 0.12 * step
                )
            if step <= 0.5 * last.h or not regular or gap < -0.3 * s.h:
                continue
            overlap = min(s.x1, b.x1) - max(s.x0, b.x0)
            # the second line may start well left of an indented first line
            outdent = 3.0 * s.h if len(b.segs) == 1 else 1.5 * s.h
            if overlap < 0.5 * min(s.x1 - s.x0, b.x1 - b.x0) or s.x0 < b.x0 - outdent:
                continue
            if gap < best_gap:
                best, best_gap = b, gap
        open_ = keep
        if best is not None:
            best.add(s)
            continue
        blk = _Blk([s], s.x0, s.top, s.x1, s.bottom)
        blocks.append(blk)
        open_.append(blk)
    return blocks


def _body_line(s: Seg, b: _Blk) -> bool:
    """A possible row label as wide as the paragraph it continues: a line of that paragraph."""
    last = b.segs[-1]
    return (
        s.label
        and not s.tabular
        and len(b.segs) >= 2
        and not (last.tabular or last.label)
        and s.x1 - s.x0 >= 0.8 * (b.x1 - b.x0)
    )


def _gaps(intervals: list[tuple[float, float]], min_gap: float) -> list[float]:
    """Cut points between the union's pieces of 1-D intervals, where gaps exceed min_gap."""
    cuts: list[float] = []
    ordered = sorted(intervals)
    reach = ordered[0][1]
    for lo, hi in ordered[1:]:
        if lo - reach > min_gap:
            cuts.append((lo + reach) / 2)
        reach = max(reach, hi)
    return cuts


def _split(blks: list[_Blk], axis: str, min_gap: float) -> list[list[_Blk]]:
    if axis == "x":
        cuts = _gaps([(b.x0, b.x1) for b in blks], min_gap)
        key = lambda b: (b.x0 + b.x1) / 2  # noqa: E731
    else:
        cuts = _gaps([(b.top, b.bottom) for b in blks], min_gap)
        key = lambda b: (b.top + b.bottom) / 2  # noqa: E731
    if not cuts:
        return [blks]
    groups: list[list[_Blk]] = [[] for _ in range(len(cuts) + 1)]
    for b in blks:
        groups[bisect_left(cuts, key(b))].append(b)
    return [g for g in groups if g]


def _reading_order(blks: list[_Blk]) -> list[_Blk]:
    """Recursive XY-cut: columns left to right, bands top to bottom; bands that share a
    gutter are read as one set of columns (two columns whose paragraph gaps happen to line
    up are not interleaved)."""
    if len(blks) <= 1:
        return list(blks)
    columns = _split(blks, "x", 1.0)
    if len(columns) > 1:
        return [b for col in columns for b in _reading_order(col)]
    bands = _split(blks, "y", 0.0)
    if len(bands) == 1:
        return sorted(blks, key=lambda b: (b.top, b.x0))
    groups: list[list[_Blk]] = [bands[0]]
    for band in bands[1:]:
        joined = groups[-1] + band
        if len(_split(joined, "x", 1.0)) > 1:
            groups[-1] = joined
        else:
            groups.append(band)
    if len(groups) == 1 and len(groups[0]) == len(blks) and len(_split(blks, "x", 1.0)) == 1:
        return sorted(blks, key=lambda b: (b.top, b.x0))
    return [b for g in groups for b in _reading_order(g)]


def _kind(blk: _Blk, body_size: float) -> str:
    segs = blk.segs
    if sum(1.0 if s.tabular else 0.5 if s.label else 0.0 for s in segs) * 2 >= len(segs):
        return "table"
    if segs[0].bullet or _ORDERED_ITEM.match(segs[0].text):
        return "list_item"
    text = " ".join(s.text for s in segs)
    n_words = len(text.split())
    size = max(s.size for s in segs)
    if len(segs) <= 3 and n_words <= 20 and WORDISH.search(text):
        if size >= 1.15 * body_size:
            return "heading"
        if (
            all(s.bold for s in segs)
            and size >= 0.95 * body_size
            and not text.endswith((".", ",", ";", ":"))
        ):
            return "heading"
    return "text"


def _bbox(x0: float, top: float, x1: float, bottom: float) -> dict[str, float]:
    # records are built from plain dicts in one validation per page (pydantic-core is faster
    # at that than constructing thousands of models one by one)
    return {
        "x0": round(x0, 2),
        "top": round(top, 2),
        "x1": round(x1, 2),
        "bottom": round(bottom, 2),
    }


def _table_text(blks: list[_Blk]) -> str:
    segs = sorted((s for b in blks for s in b.segs), key=lambda s: (s.row, s.x0))
    rows: list[list[str]] = []
    last_row = None
    for s in segs:
        cell = _LEADERS.sub(" ", s.text).strip()
        if s.row != last_row:
            rows.append([])
            last_row = s.row
        rows[-1].append(cell)
    return "\n".join("\t".join(c for c in r if c) for r in rows)


def build_page(raw: RawPage, doc_id: str, body_size: float, vocab: set[str]) -> Page:
    running = [s for s in raw.segs if s.running]
    body = [s for s in raw.segs if not s.running]
    if len(body) > _MAX_SEGMENTS:
        # maps, charts drawn as text, glyph clouds: read line by line, top to bottom, rather
        # than spend seconds on a layout no report page has
        _log.info("page %d: %d line segments; reading it line by line", raw.page_no, len(body))
        return _plain_page(raw, body, running, doc_id)
    _classify_cells(body)
    blks = _blocks(body)
    for b in blks:
        b.kind = _kind(b, body_size)
        if b.kind != "table" and all(len(s.text) <= 2 for s in b.segs) and len(b.segs) >= 3:
            b.kind = "debris"  # letters of vertical text stacked one per line
    blks = [b for b in blks if b.kind != "debris"]
    _absorb_into_tables(blks)
    # a table is ordered as one unit: its column gaps must not pass for page columns
    ordered = _reading_order(_merge_tables(blks))

    parts: list[str] = []
    pos = 0
    lines: list[dict[str, object]] = []
    blocks: list[dict[str, object]] = []
    header = [
        s
        for s in running
        if s.running == "header"
        or (s.running == "page_number" and s.bottom <= raw.height * EDGE_ZONE)
    ]
    footer = [s for s in running if s not in header]
    for s in sorted(header, key=lambda s: (s.top, s.x0)):
        blocks.append(_block(s.running or "header", s.x0, s.top, s.x1, s.bottom, text=s.text))
    for b in ordered:
        if b.kind == "table":
            blocks.append(_block("table", b.x0, b.top, b.x1, b.bottom, text=_table_text([b])))
            continue
        line_texts = [
            s.text if "\ufffe" not in s.text else fix_ligatures(s.text, vocab) for s in b.segs
        ]
        text, spans = join_lines(line_texts, vocab)
        if parts:
            pos += 2
        start = pos
        for s, (a, e) in zip(b.segs, spans, strict=True):
            lines.append(
                {"start": start + a, "end": start + e, "bbox": _bbox(s.x0, s.top, s.x1, s.bottom)}
            )
        parts.append(text)
        pos += len(text)
        blocks.append(_block(b.kind, b.x0, b.top, b.x1, b.bottom, start=start, end=pos))
    for s in sorted(footer, key=lambda s: (s.top, s.x0)):
        blocks.append(_block(s.running or "header", s.x0, s.top, s.x1, s.bottom, text=s.text))
    return Page.model_validate(
        {
            "doc_id": doc_id,
            "page_no": raw.page_no,
            "width": round(raw.width, 2),
            "height": round(raw.height, 2),
            "rotation": raw.rotation,
            "text": "\n\n".join(parts),
            "lines": lines,
            "blocks": blocks,
            "status": "ok",
        }
    )


def _plain_page(raw: RawPage, body: list[Seg], running: list[Seg], doc_id: str) -> Page:
    """A page of too many pieces for the layout: its figures in one table block, the rest in
    one text block, rows top to bottom."""
    ordered = sorted(body, key=lambda s: (s.row, s.x0))
    figures = [s for s in ordered if _is_number(s.text)]
    words = [s for s in ordered if not _is_number(s.text)]
    lines: list[dict[str, object]] = []
    text = ""
    for s in words:
        if text:
            text += " "
        lines.append(
            {
                "start": len(text),
                "end": len(text) + len(s.text),
                "bbox": _bbox(s.x0, s.top, s.x1, s.bottom),
            }
        )
        text += s.text
    blocks = []
    for kind, segs in (("text", words), ("table", figures)):
        if segs:
            blocks.append(
                _block(
                    kind,
                    min(s.x0 for s in segs),
                    min(s.top for s in segs),
                    max(s.x1 for s in segs),
                    max(s.bottom for s in segs),
                    start=0 if kind == "text" else -1,
                    end=len(text) if kind == "text" else -1,
                    text="" if kind == "text" else " ".join(s.text for s in segs),
                )
            )
    blocks += [
        _block(s.running or "header", s.x0, s.top, s.x1, s.bottom, text=s.text) for s in running
    ]
    return Page.model_validate(
        {
            "doc_id": doc_id,
            "page_no": raw.page_no,
            "width": round(raw.width, 2),
            "height": round(raw.height, 2),
            "rotation": raw.rotation,
            "text": text,
            "lines": lines,
            "blocks": blocks,
            "status": "ok",
        }
    )


def _block(
    kind: str,
    x0: float,
    top: float,
    x1: float,
    bottom: float,
    *,
    start: int = -1,
    end: int = -1,
    text: str = "",
) -> dict[str, object]:
    return {
        "kind": kind,
        "start": start,
        "end": end,
        "bbox": _bbox(x0, top, x1, bottom),
        "text": text,
    }


def _absorb_into_tables(ordered: list[_Blk]) -> None:
    """Short text inside a table (section rows, column heads) belongs to the table."""
    tables = [b for b in ordered if b.kind == "table"]
    if not tables:
        return
    for b in ordered:
        if b.kind not in ("text", "heading") or len(b.segs) > 4:
            continue
        h = max(s.h for s in b.segs)
        above = any(
            t.bottom <= b.top + 0.3 * h
            and b.top - t.bottom < 2 * h
            and min(t.x1, b.x1) > max(t.x0, b.x0)
            for t in tables
        )
        below = any(
            t.top >= b.bottom - 0.3 * h
            and t.top - b.bottom < 1.5 * h
            and min(t.x1, b.x1) > max(t.x0, b.x0)
            for t in tables
        )
        text = " ".join(s.text for s in b.segs)
        column_head = len(text.split()) <= 6 and not text.endswith((".", "!", "?", ":"))
        # a chart's or figure's labels next to its numbers ("DK", "'16", "30-44")
        label = (
            len(text.split()) <= 3
            and len(text) <= 25
            and (not any(ch.islower() for ch in text) or any(ch.isdigit() for ch in text))
            and any(_distance(b, t) < 3 * h for t in tables)
        )
        if (above and below and len(b.segs) <= 2) or (below and column_head) or label:
            b.kind = "table"


def _distance(a: _Blk, b: _Blk) -> float:
    dx = max(0.0, max(a.x0, b.x0) - min(a.x1, b.x1))
    dy = max(0.0, max(a.top, b.top) - min(a.bottom, b.bottom))
    return max(dx, dy)


def _merge_tables(blks: list[_Blk]) -> list[_Blk]:
    """Gather table blocks that touch or share rows into one block per table; short text
    lying inside a table's box (section rows like "Receipts:") joins that table."""
    tables = [b for b in blks if b.kind == "table"]
    if not tables:
        return blks
    others = [b for b in blks if b.kind != "table"]
    parent = list(range(len(tables)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = [{s.row for s in t.segs} for t in tables]
    # side by side on shared rows: neighbours along each row are enough to connect a table
    by_row: dict[int, list[int]] = {}
    for i, row_set in enumerate(rows):
        for r in row_set:
            by_row.setdefault(r, []).append(i)
    pairs: set[tuple[int, int]] = set()
    for members in by_row.values():
        members.sort(key=lambda i: tables[i].x0)
        pairs.update(zip(members, members[1:], strict=False))
    for i, j in pairs:
        a, b = tables[i], tables[j]
        if min(a.x1, b.x1) > max(a.x0, b.x0):
            continue  # stacked, not side by side: handled below
        h = max(a.segs[0].h, b.segs[0].h)
        gap = max(a.x0, b.x0) - min(a.x1, b.x1)
        shared = len(rows[i] & rows[j])
        if (
            gap < 8 * h or (shared >= 2 and shared * 2 >= min(len(rows[i]), len(rows[j])))
        ) and not _text_between(others, a, b):
            parent[find(j)] = find(i)
    # stacked: one table block right above another
    order = sorted(range(len(tables)), key=lambda i: tables[i].top)
    for k, i in enumerate(order):
        a = tables[i]
        for j in order[k + 1 :]:
            b = tables[j]
            h = max(a.segs[0].h, b.segs[0].h)
            if b.top > a.bottom + 2 * h:
                break
            if min(a.x1, b.x1) > max(a.x0, b.x0) and b.top - a.bottom > -h:
                parent[find(j)] = find(i)
    groups: dict[int, list[_Blk]] = {}
    for i, t in enumerate(tables):
        groups.setdefault(find(i), []).append(t)
    merged: list[_Blk] = []
    for group in groups.values():
        segs = [s for g in group for s in g.segs]
        m = _Blk(
            segs,
            min(g.x0 for g in group),
            min(g.top for g in group),
            max(g.x1 for g in group),
            max(g.bottom for g in group),
            kind="table",
        )
        merged.append(m)
    kept: list[_Blk] = []
    for b in others:
        home = next(
            (
                m
                for m in merged
                if len(m.segs) >= 4
                and len(b.segs) <= 2
                and b.x0 >= m.x0 - 1
                and b.x1 <= m.x1 + 1
                and b.top >= m.top - 1
                and b.bottom <= m.bottom + 1
            ),
            None,
        )
        if home is not None:
            home.segs.extend(b.segs)
        else:
            kept.append(b)
    return kept + merged


def _text_between(others: list[_Blk], a: _Blk, b: _Blk) -> bool:
    left, right = (a, b) if a.x1 <= b.x0 else (b, a)
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    return any(
        o.x0 >= left.x1 and o.x1 <= right.x0 and o.top < bottom and o.bottom > top for o in others
    )
