"""Running headers, footers and page numbers: the rows at a page's edges that stand apart from
the body and repeat across the document (digits aside), or stand where repeating ones stand.
Its own module because it is decided over all pages read, before each page's layout, and
marks segments (`Seg.running`) whichever reader produced them.
"""

from __future__ import annotations

import re

from app.ingest.segments import RawPage, Seg

EDGE_ZONE = 0.1
"""Share of the page height at the top and bottom where running headers/footers may sit."""
_PAGE_NUMBER = re.compile(
    r"(page\s*)?[-–—]?\s*(\d{1,3}|[ivxlc]{1,6})\s*[-–—]?(\s*(of|/)\s*\d{1,4})?", re.IGNORECASE
)
WORDISH = re.compile(r"[^\W\d_]{2,}")


def _norm_running(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower()).replace(" ", "")


def _edge_segments(raw: RawPage) -> list[tuple[str, Seg]]:
    """Segments of the rows at the top and bottom edges that stand apart from the body: in the
    edge zones, at most two rows, with a clear gap (a line height) between them and the body."""
    if not raw.segs or raw.height <= 0:
        return []
    rows: dict[int, list[Seg]] = {}
    for s in raw.segs:
        rows.setdefault(s.row, []).append(s)
    order = sorted(rows, key=lambda r: min(s.top for s in rows[r]))
    bands = [
        (min(s.top for s in rows[r]), max(s.bottom for s in rows[r]), max(s.h for s in rows[r]))
        for r in order
    ]
    top_limit, bottom_limit = raw.height * EDGE_ZONE, raw.height * (1 - EDGE_ZONE)
    picked: list[tuple[str, Seg]] = []
    for k in range(min(2, len(order) - 1)):
        top, bottom, h = bands[k]
        if bottom > top_limit:
            break
        if bands[k + 1][0] - bottom >= h:
            picked += [("header", s) for r in order[: k + 1] for s in rows[r]]
            break
    taken = {id(s) for _, s in picked}
    for k in range(min(2, len(order) - 1)):
        i = len(order) - 1 - k
        top, bottom, h = bands[i]
        if top < bottom_limit:
            break
        if top - bands[i - 1][1] >= h:
            picked += [("footer", s) for r in order[i:] for s in rows[r] if id(s) not in taken]
            break
    return picked


def _outer_rows(raw: RawPage) -> tuple[int, int]:
    """The topmost and bottommost rows of a page (where a page number may stand)."""
    rows = {s.row: s.top for s in raw.segs}
    if not rows:
        return -1, -1
    return min(rows, key=rows.__getitem__), max(rows, key=rows.__getitem__)


def mark_running(raw_pages: dict[int, RawPage]) -> None:
    """Mark headers, footers and page numbers that repeat at the page edges."""
    pages = [p for p in raw_pages.values() if p.segs]
    seen: dict[tuple[str, str], set[int]] = {}
    edges = {p.page_no: _edge_segments(p) for p in pages}
    for page_no, cands in edges.items():
        for zone, s in cands:
            if WORDISH.search(s.text):  # figures alike after "#" are no running header
                seen.setdefault((zone, _norm_running(s.text)), set()).add(page_no)
    need = 2 if len(pages) <= 4 else 3
    slots: dict[tuple[str, int, float], set[int]] = {}
    for page_no, cands in edges.items():
        raw = raw_pages[page_no]
        top_row, bottom_row = _outer_rows(raw)
        for zone, s in cands:
            text = s.text.strip()
            if s.row in (top_row, bottom_row) and _PAGE_NUMBER.fullmatch(text):
                s.running = "page_number"
            elif len(seen.get((zone, _norm_running(text)), ())) >= need:
                s.running = zone
                slots.setdefault(_slot(zone, s), set()).add(page_no)
        # a number alone on the last row, wherever the page's content ends (EDGAR filings
        # put it under the text, a blank line below it)
        last_row = [s for s in raw.segs if s.row == bottom_row]
        if (
            len(last_row) == 1
            and last_row[0].running is None
            and _PAGE_NUMBER.fullmatch(last_row[0].text.strip())
        ):
            above = [
                s.bottom
                for s in raw.segs
                if s.row != bottom_row and s.bottom <= last_row[0].top + 0.5 * last_row[0].h
            ]
            if above and last_row[0].top - max(above) >= last_row[0].h:
                last_row[0].running = "page_number"
    # where running headers stand on many pages, what stands there is one too, even when its
    # text is new (a chapter's name on the chapter's only page)
    slots = {key: found for key, found in slots.items() if len(found) >= need}
    for cands in edges.values():
        for zone, s in cands:
            if s.running is None and _slot(zone, s) in slots:
                s.running = zone
        # what shares a row with a running header at the page's edge is furniture too
        # (a section name beside the report title, changing from chapter to chapter)
        furniture_rows = {s.row for _, s in cands if s.running}
        for zone, s in cands:
            if s.running is None and s.row in furniture_rows:
                s.running = zone


def _slot(zone: str, s: Seg) -> tuple[str, int, float]:
    """Where a running header stands: its edge, its line's top (to the point) and its size."""
    return zone, round(s.top), round(s.size * 2) / 2
