"""Units -> `Sentence` records: `split_sentences` runs the spaCy pipeline over every page's
paragraphs and list items in one stream, joins sentences that a block boundary or a page break
cut, splits over-long ones at clause breaks, assigns sections and builds each record with its
boxes. Its own module because it is the one step that sees all pages at once; the invariants it
keeps for every Sentence are listed in the package docstring. Highest module of the package.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.config import SentenceOptions
from app.records import BBox, Line, Page, Sentence, SentenceKind
from app.sentences.kinds import classify_text, is_repeated, is_table_row, repeated_furniture
from app.sentences.sections import (
    ITEM,
    MAJOR_IN_ITEMS,
    MAJOR_TYPES,
    PART,
    TOP_LEVEL,
    classify_section,
    is_section,
)
from app.sentences.segment import (
    CLOSING_CHARS,
    ENDS_SENTENCE,
    Segmenter,
    body_blocks,
    has_word,
    open_end,
    strip_span,
)
from app.sentences.sentencizer import default_nlp

if TYPE_CHECKING:
    from spacy.language import Language

_Seg = tuple[int, int, int]  # (position of the page in the ordered pages, start, end)


@dataclass
class _Sent:
    kind: SentenceKind
    segs: list[_Seg]
    unit: tuple[int, int]  # (page position, unit number): a heading's sentences share it
    heading_text: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _continues(tail: str, head: str, *, strict: bool = False) -> bool:
    """Whether a unit's last sentence (tail) goes on in the next unit's first one (head).

    `strict` is for list items, which often end without a stop: only a clearly open end or a
    lower-case continuation counts then.
    """
    core = tail.rstrip(CLOSING_CHARS + " ")
    if not core or core[-1] in ENDS_SENTENCE:
        return False
    first = head[:1]
    if first.islower() or first.isdigit() or first in "($\u20ac\u00a3%" or open_end(core):
        return True
    # A long run of prose stopping on a lower-case word is unfinished ("... 7% of our global"
    # / "Gross Bookings."); a short label ("Revenue by segment") is not.
    words = core.split()
    return not strict and len(words) >= 6 and words[-1][:1].islower()


def _joinable(tail: _Sent, head: _Sent, texts: Sequence[str]) -> bool:
    """Whether head (first sentence of a paragraph) continues tail (last of the unit before)."""
    kind = tail.extra.get("unit_kind")
    if (
        kind not in ("text", "list_item")
        or head.extra.get("unit_kind") != "text"
        or len(tail.segs) != 1
        or len(head.segs) != 1
    ):
        return False
    (tp, ts, te), (hp, hs, he) = tail.segs[0], head.segs[0]
    tail_text, head_text = texts[tp][ts:te], texts[hp][hs:he]
    if is_table_row(tail_text) or is_table_row(head_text):
        return False  # a table's label column ends without a stop; prose does not go on in it
    return _continues(tail_text, head_text, strict=kind == "list_item")


def _join_blocks(texts: Sequence[str], per_page: list[list[_Sent]]) -> None:
    """Join a sentence that a block boundary cut on the same page (layout split a paragraph)."""
    for sents in per_page:
        out: list[_Sent] = []
        for sent in sents:
            prev = out[-1] if out else None
            if (
                prev is not None
                and sent.unit[1] == prev.unit[1] + 1
                and _joinable(prev, sent, texts)
            ):
                # Adjacent units: prev ends its unit and sent opens the next, nothing between,
                # so one span on the page covers both (the blank line is whitespace).
                page, start, _ = prev.segs[0]
                prev.segs[0] = (page, start, sent.segs[0][2])
                prev.unit, prev.extra = sent.unit, sent.extra
                continue
            out.append(sent)
        sents[:] = out


_CLAUSE_CUTS = (
    re.compile(r";\s+"),
    re.compile(r":\s+"),
    re.compile(r",\s+"),
    re.compile(r"\s+(?=(?:and|or|but|while|whereas|which|including|because|although)\b)"),
    re.compile(r"\s+"),
)


def _cut_points(text: str, a: int, b: int, max_chars: int) -> list[int]:
    """Cut positions that split text[a:b] into pieces of at most max_chars, at clause breaks."""
    if b - a <= max_chars:
        return []
    margin = (b - a) // 8
    middle = (a + b) / 2
    for pattern in _CLAUSE_CUTS:
        cands = [m.end() for m in pattern.finditer(text, a + margin, b - margin)]
        if cands:
            cut = min(cands, key=lambda p: abs(p - middle))
            break
    else:
        cut = (a + b) // 2  # one unbroken token: cut it rather than exceed the model's reach
    return [*_cut_points(text, a, cut, max_chars), cut, *_cut_points(text, cut, b, max_chars)]


def _split_long(sent: _Sent, texts: Sequence[str], max_chars: int) -> list[_Sent]:
    """Split a sentence longer than max_chars at clause boundaries (across its page parts)."""
    if sum(len(" ".join(texts[p][s:e].split())) for p, s, e in sent.segs) <= max_chars:
        return [sent]
    # One virtual string over the parts, so a cut may fall on either page.
    pieces, offsets = [], []
    pos = 0
    for p, s, e in sent.segs:
        offsets.append((pos, p, s))
        pieces.append(texts[p][s:e])
        pos += e - s + 1
    virtual = " ".join(pieces)
    cuts = [0, *_cut_points(virtual, 0, len(virtual), max_chars), len(virtual)]
    out = []
    for va, vb in zip(cuts, cuts[1:], strict=False):
        segs: list[_Seg] = []
        for (off, p, s), piece in zip(offsets, pieces, strict=True):
            lo, hi = max(va, off), min(vb, off + len(piece))
            if lo < hi:
                a, b = strip_span(texts[p], s + lo - off, s + hi - off)
                if a < b:
                    segs.append((p, a, b))
        if segs:
            out.append(_Sent(sent.kind, segs, sent.unit, sent.heading_text))
    return out


def _boxes(page: Page, line_starts: list[int], lines: Sequence[Line], a: int, b: int) -> list[BBox]:
    """One box per line that [a, b) touches, clipped proportionally to the covered characters."""
    out = []
    if lines:
        k = max(bisect.bisect_right(line_starts, a) - 1, 0)
        while k < len(lines) and lines[k].start < b:
            line = lines[k]
            k += 1
            lo, hi = max(a, line.start), min(b, line.end)
            if lo >= hi or line.end <= line.start or not page.text[lo:hi].strip():
                continue
            box, width = line.bbox, line.bbox.x1 - line.bbox.x0
            span = line.end - line.start
            # Built without validation: every value is a float computed here (13k boxes a 10-K).
            out.append(
                BBox.model_construct(
                    x0=box.x0 + width * (lo - line.start) / span,
                    top=box.top,
                    x1=box.x0 + width * (hi - line.start) / span,
                    bottom=box.bottom,
                    page_no=page.page_no,
                )
            )
        return out
    for block in page.blocks:
        if block.start < b and a < block.end:
            out.append(block.bbox.model_copy(update={"page_no": page.page_no}))
    return out


def split_sentences(
    pages: Sequence[Page], options: SentenceOptions, nlp: Language | None = None
) -> list[Sentence]:
    """Split pages into sentences, headings and list items, with spans, boxes and sections."""
    nlp = nlp or default_nlp(options)
    ordered = sorted(pages, key=lambda p: p.page_no)
    texts = [p.text for p in ordered]
    page_units = [Segmenter(p).units(body_blocks(p)) for p in ordered]

    # spaCy sees paragraphs and list items, all pages in one stream (per-doc cost stays low).
    jobs = [
        (pi, ui)
        for pi, units in enumerate(page_units)
        for ui, u in enumerate(units)
        if u.kind in ("text", "list_item")
    ]
    stream = (texts[pi][page_units[pi][ui].start : page_units[pi][ui].end] for pi, ui in jobs)
    spans: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for (pi, ui), doc in zip(jobs, nlp.pipe(stream, batch_size=256), strict=True):
        base = page_units[pi][ui].start
        spans[(pi, ui)] = [(base + s.start_char, base + s.end_char) for s in doc.sents]

    per_page: list[list[_Sent]] = []
    for pi, units in enumerate(page_units):
        sents: list[_Sent] = []
        for ui, u in enumerate(units):
            kind: SentenceKind = "sentence"
            if u.kind in ("heading", "list_item"):
                kind = u.kind  # type: ignore[assignment]
            elif u.kind == "row":
                kind = "table_row"  # a mostly-numeric line (`segment`): one unit, no spaCy
            heading = " ".join(texts[pi][u.start : u.end].split()) if u.kind == "heading" else None
            for s, e in spans.get((pi, ui), [(u.start, u.end)]):
                s, e = strip_span(texts[pi], s, e)
                if s < e and has_word(texts[pi][s:e]):
                    sents.append(
                        _Sent(kind, [(pi, s, e)], (pi, ui), heading, {"unit_kind": u.kind})
                    )
        per_page.append(sents)

    _join_blocks(texts, per_page)
    _join_page_breaks(ordered, texts, per_page)
    _classify(ordered, texts, per_page)

    flat = [
        piece
        for sents in per_page
        for sent in sents
        for piece in _split_long(sent, texts, options.max_chars)
    ]
    return _records(ordered, texts, flat)


def _classify(ordered: Sequence[Page], texts: Sequence[str], per_page: list[list[_Sent]]) -> None:
    """Mark table rows, broken headings and page furniture (`app.sentences.kinds`); a unit
    that is no heading after all does not open a section."""

    def text_of(sent: _Sent) -> str:
        return " ".join(" ".join(texts[p][s:e] for p, s, e in sent.segs).split())

    units = [
        (ordered[sent.segs[0][0]].page_no, text_of(sent))
        for sents in per_page
        for sent in sents
        if sent.kind != "heading"  # a section's own title may also run as a header
    ]
    repeated = repeated_furniture(units, len(ordered))
    for sents in per_page:
        for sent in sents:
            text = text_of(sent)
            repeats = sent.kind != "heading" and is_repeated(text, repeated)
            kind: SentenceKind = "furniture" if repeats else classify_text(text, sent.kind)
            if kind != sent.kind:
                sent.kind = kind
                if kind != "heading" or sent.heading_text is None:
                    sent.heading_text = None


def _join_page_breaks(
    ordered: Sequence[Page], texts: Sequence[str], per_page: list[list[_Sent]]
) -> None:
    """Join a page's unfinished last sentence with its continuation at the top of the next."""
    for pi in range(len(ordered) - 1):
        if ordered[pi + 1].page_no != ordered[pi].page_no + 1:
            continue
        here, there = per_page[pi], per_page[pi + 1]
        if not here or not there:
            continue
        tail, head = here[-1], there[0]
        if not _joinable(tail, head, texts):
            continue
        hp, hs, he = head.segs[0]
        if texts[hp][:hs].strip():
            continue  # something precedes the head on its page: not a plain continuation
        tail.segs.append((hp, hs, he))
        there.pop(0)


def _records(ordered: Sequence[Page], texts: Sequence[str], flat: list[_Sent]) -> list[Sentence]:
    lines = [sorted(p.lines, key=lambda ln: ln.start) for p in ordered]
    line_starts = [[ln.start for ln in ls] for ls in lines]
    out: list[Sentence] = []
    section: str | None = None
    section_type: str | None = None
    top_type: str | None = None
    itemised = False
    seen_unit: tuple[int, int] | None = None
    for sent in flat:
        if sent.heading_text and sent.unit != seen_unit and is_section(sent.heading_text):
            seen_unit = sent.unit
            section = sent.heading_text
            found = classify_section(section)
            if PART.match(section) and not found:
                pass  # "PART II" only groups Items; each Item sets its own type
            elif TOP_LEVEL.match(section):
                top_type = found
                itemised = itemised or bool(ITEM.match(section))
            elif found in MAJOR_IN_ITEMS or (
                found in MAJOR_TYPES and (not itemised or section.isupper())
            ):
                top_type = found  # an all-caps "BUSINESS" is an Item title cut from its number
            section_type = found or top_type
        (p0, s0, e0) = sent.segs[0]
        page = ordered[p0]
        boxes: list[BBox] = []
        for p, s, e in sent.segs:
            boxes.extend(_boxes(ordered[p], line_starts[p], lines[p], s, e))
        text = " ".join(" ".join(texts[p][s:e] for p, s, e in sent.segs).split())
        tail = sent.segs[1] if len(sent.segs) > 1 else None
        out.append(
            Sentence(
                doc_id=page.doc_id,
                index=len(out),
                page_no=page.page_no,
                start=s0,
                end=e0,
                text=text,
                kind=sent.kind,
                section=section,
                section_type=section_type,
                boxes=tuple(boxes),
                end_page_no=ordered[tail[0]].page_no if tail else None,
                end_page_end=tail[2] if tail else None,
                ocr=any(ordered[p].ocr for p, _, _ in sent.segs),
            )
        )
    return out
