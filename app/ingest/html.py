"""Read an HTML or XHTML filing (inline XBRL, as the SEC and ESEF receive them) into the same
`Document` and `Page` records as a PDF, with the tagged facts on each page.

    document, pages, errors = read_html(Path("aapl-10-k.htm"), settings.ingest)
    sentences = link_sentences(split_sentences(pages, ...), pages)   # anchors and facts

How a filing is read (see `htmltext` for the walk itself):

1. parse (lxml: XML for XHTML, libxml2's repairing HTML parser otherwise), then walk the body
   as a reader sees it: `ix:header`, `display:none` and other hidden content left out.
2. pages: CSS page breaks (`page-break-before/after`, `break-before/after`) end a page, so
   `page_no` counts pages as a PDF printed from the filing does (the cover is page 1).
3. running headers, footers and page numbers: the first and last two runs of each page that
   repeat over the pages (digits aside) or are a page number alone; the number they carry
   becomes `Page.label`, the page number printed on the page ("1" on Apple's third page).
4. blocks: each run of text is a `text`, `heading` (h1-h6, or short and bold, italic or larger
   than the body text) or `list_item` (li, or a bullet or "(1)" first); tables of figures are
   `table` blocks with their text in `Block.text`, out of the sentence flow, as for PDFs.
   Every block has an `Anchor` into the markup.
5. facts: every shown `ix:nonFraction` / `ix:nonNumeric` becomes a `Fact` on its page, with its
   span in `Page.text` (-1 inside tables and page furniture); `link_sentences` hands each
   sentence the facts inside it and its own anchor.

`Page.text` joins body blocks with blank lines, like the PDF reader; pages carry no lines or
boxes (HTML has no geometry: `width` and `height` are 0). Bad input is reported as for PDFs:
not HTML, an empty body, markup that cannot be parsed, or an inline-XBRL file that is not
well-formed XHTML (read with the repairing parser; a non-fatal warning), over `max_bytes` or
`max_pages`.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.config import IngestOptions
from app.errors import (
    EmptyDocumentError,
    IngestError,
    MalformedMarkupError,
    OnError,
    TooManyPagesError,
    UnsupportedFileError,
)
from app.ingest.files import content_kind, error_class, load_bytes
from app.ingest.htmltext import (
    Markup,
    MarkupError,
    Run,
    TableItem,
    TextWalker,
    name_of,
    parse_markup,
    tags,
)
from app.ingest.ixbrl import FactReader
from app.ingest.pdf import _resolve_range, _with  # one rule for ranges and fatal errors
from app.records import Anchor, Document, Fact, Page, Sentence, StageError

_log = logging.getLogger(__name__)

_EDGE = 2
"""Runs at the top and at the bottom of a page that may be running headers or footers."""
_FURNITURE_WORDS = 15
_PAGE_NUMBER = re.compile(
    r"(page\s*)?[-–—]?\s*([0-9]{1,4}|[ivxlc]{1,6}|[a-z]-[0-9]{1,3})\s*[-–—]?(\s*(of|/)\s*[0-9]{1,4})?",
    re.IGNORECASE,
)
_LEAD_NUMBER = re.compile(r"^\s*(?:page\s+)?([0-9]{1,4}|[A-Z]-[0-9]{1,3})\b")
_TAIL_NUMBER = re.compile(r"(?<![\w-])([0-9]{1,4}|[A-Z]-[0-9]{1,3})\s*$")
_WORDISH = re.compile(r"[^\W\d_]{2,}")
_LIST_START = re.compile(
    r"[\u2022\u25cf\u25aa\u25a0\u25a1\u25e6\u2023\u2043\u2219\u00b7*\u27a2\u2713\u2714"
    r"\uf0b7\uf0a7\uf0d8\u25ba\u25b6\u2013\u2014-]\s|(\(?[0-9]{1,2}\)|\(?[a-z]\)|\([ivx]{1,4}\))\s"
)
_BREAK_DECLARATION = re.compile(
    rb"(?:page-)?break-(?:before|after)\s*:\s*(?:always|page|left|right|recto|verso)",
    re.IGNORECASE,
)
_PRODUCER = re.compile(
    rb"<!--\s*([^<>]{0,120}?(?:created|generated|produced)[^<>]{0,120}?)\s*-->", re.IGNORECASE
)
FACT_ELEMENTS = (*tags("nonFraction", "ix:"), *tags("nonNumeric", "ix:"))
_ZERO_BOX = {"x0": 0.0, "top": 0.0, "x1": 0.0, "bottom": 0.0}


def read_html(
    source: Path | bytes,
    options: IngestOptions,
    *,
    file_name: str | None = None,
    page_range: tuple[int, int] | None = None,
    on_error: OnError = "record",
) -> tuple[Document | None, list[Page], list[StageError]]:
    """Read an HTML/XHTML filing's pages into records; problems become StageErrors.

    Args and returns as `read_pdf`: `page_range` keeps the pages of a 1-based inclusive
    range (the whole filing is parsed either way); `document` is None when the bytes are
    not HTML at all.
    """
    name = file_name or (source.name if isinstance(source, Path) else "document.html")
    errors: list[StageError] = []
    try:
        data = load_bytes(source, options, name)
        kind = content_kind(data)
        if kind != "html":
            raise UnsupportedFileError(
                f"{name}: "
                + ("the file is empty (0 bytes)" if kind == "empty" else "not HTML or XHTML")
                + "; no text read. Submit the filing itself (.htm, .html or .xhtml) or its "
                "PDF."
            )
    except IngestError as exc:
        return recorded(exc, errors, on_error)
    return read_report(data, data, name, options, page_range, on_error, errors)


def read_report(
    data: bytes,
    report: bytes,
    name: str,
    options: IngestOptions,
    page_range: tuple[int, int] | None,
    on_error: OnError,
    errors: list[StageError],
) -> tuple[Document | None, list[Page], list[StageError]]:
    """Read the markup `report` as the document whose bytes are `data`: the filing itself, or
    the ESEF package that holds it (its sha256 and size are the document's)."""
    try:
        document, pages = read_markup(
            report,
            doc_id=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            name=name,
            options=options,
            page_range=page_range,
            errors=errors,
        )
    except IngestError as exc:
        return recorded(exc, errors, on_error)
    return finished(document, pages, errors, on_error)


def recorded(
    exc: IngestError, errors: list[StageError], on_error: OnError
) -> tuple[Document | None, list[Page], list[StageError]]:
    """A fatal ingest error as the reader's result (or raised in raise mode)."""
    if on_error == "raise":
        raise exc
    errors.append(exc.to_record())
    return getattr(exc, "document", None), [], errors


def finished(
    document: Document, pages: list[Page], errors: list[StageError], on_error: OnError
) -> tuple[Document | None, list[Page], list[StageError]]:
    """The reader's result; in raise mode a recorded problem is raised instead."""
    if on_error == "raise" and errors:
        first = errors[0]
        raise error_class(first.code)(first.message, page_no=first.page_no, fatal=first.fatal)
    return document, pages, errors


def read_markup(
    data: bytes,
    *,
    doc_id: str,
    size_bytes: int,
    name: str,
    options: IngestOptions,
    page_range: tuple[int, int] | None,
    errors: list[StageError],
) -> tuple[Document, list[Page]]:
    """Parse and read HTML bytes (a file's, or the report inside an ESEF package)."""
    try:
        markup = parse_markup(data)
    except MarkupError as e:
        raise MalformedMarkupError(
            f"{name}: the markup could not be parsed ({e}); no text read. Ask the client for "
            "the filing as submitted (the .htm or .xhtml file, or the ESEF package)."
        ) from e
    walker = TextWalker(markup).walk(markup.body)
    document = Document(
        doc_id=doc_id,
        file_name=name,
        size_bytes=size_bytes,
        n_pages=walker.n_pages,
        title=_title(markup),
        producer=_producer(data),
    )
    tagged = bool(walker.facts) or next(markup.root.iter(*FACT_ELEMENTS), None) is not None
    if not walker.items:
        if markup.xml_error:
            raise _with(
                MalformedMarkupError(
                    f"{name}: not well-formed XHTML ({markup.xml_error}), and no text could be "
                    "recovered from it; nothing read. Ask the client for the filing as "
                    "submitted."
                ),
                document,
            )
        raise _with(
            EmptyDocumentError(
                f"{name}: the HTML body shows no text (it is empty, or all of it is hidden); "
                "nothing to read. Check that this is the filing itself, not an index or a "
                "cover page of the submission."
            ),
            document,
        )
    if markup.xml_error and tagged:
        errors.append(
            MalformedMarkupError(
                f"{name}: not well-formed XHTML ({markup.xml_error}); it was read with a "
                "repairing HTML parser. Check the sentences and tagged facts near that line "
                "against the filing, or ask the client for the file as submitted.",
                fatal=False,
            ).to_record()
        )
    first, last = _resolve_range(page_range, walker.n_pages, name)
    if last - first + 1 > options.max_pages:
        what = f"{walker.n_pages} pages" if page_range is None else f"pages {first}-{last}"
        raise _with(
            TooManyPagesError(
                f"{name}: {what} (CSS page breaks) is over the limit of {options.max_pages} "
                "pages; not read. Raise ingest.max_pages (SESAME_INGEST__MAX_PAGES) or read it "
                "in page ranges."
            ),
            document,
        )
    pages = build_pages(markup, walker, doc_id, remove_running=options.remove_running)
    return document, [p for p in pages if first <= p.page_no <= last]


def _title(markup: Markup) -> str | None:
    for el in markup.root.iter():
        if name_of(el) == "title":
            text = " ".join("".join(el.itertext()).split())
            return text or None
    return None


def _producer(data: bytes) -> str | None:
    m = _PRODUCER.search(data[:4096])
    if m is None:
        return None
    return " ".join(m.group(1).decode("utf-8", "replace").split())


def html_page_count(data: bytes) -> int:
    """The pages of an HTML filing, estimated cheaply: CSS page-break declarations + 1, less
    one when no text follows the last (for limits and progress; the reader counts exactly)."""
    breaks = list(_BREAK_DECLARATION.finditer(data))
    if not breaks:
        return 1
    tag_end = data.find(b">", breaks[-1].end()) + 1  # past the tag declaring the break
    after = re.sub(rb"<[^>]*>|&#160;|&nbsp;|\s", b"", data[tag_end:]) if tag_end else b"?"
    return len(breaks) + (1 if after else 0)


# ---------------------------------------------------------------------------------------------
# pages


def _norm(text: str) -> str:
    return re.sub(r"[0-9]+", "#", text.lower()).replace(" ", "")


def _furniture(pages: list[list[Run]]) -> tuple[dict[int, str], dict[int, str]]:
    """Kinds of the runs that are running headers, footers and page numbers (by `id`), and the
    printed page number of each page that shows one (by 0-based page)."""
    n_pages = sum(1 for runs in pages if runs)
    edges: dict[int, list[tuple[str, Run]]] = {}
    seen: dict[tuple[str, str], set[int]] = {}
    for p, runs in enumerate(pages):
        picked = [("header", r) for r in runs[:_EDGE]]
        picked += [("footer", r) for r in runs[max(_EDGE, len(runs) - _EDGE) :]]
        edges[p] = picked
        for zone, r in picked:
            if _WORDISH.search(r.text) and len(r.text.split()) <= _FURNITURE_WORDS:
                seen.setdefault((zone, _norm(r.text)), set()).add(p)
    need = 2 if n_pages <= 4 else 3
    kinds: dict[int, str] = {}
    numbers: dict[tuple[str, str], dict[int, tuple[str | None, str | None]]] = {}
    labels: dict[int, str] = {}
    for p, picked in edges.items():
        runs = pages[p]
        for zone, r in picked:
            text = r.text.strip()
            if (r is runs[0] or r is runs[-1]) and _PAGE_NUMBER.fullmatch(text):
                kinds[id(r)] = "page_number"
                labels[p] = _PAGE_NUMBER.fullmatch(text).group(2)  # type: ignore[union-attr]
            elif len(seen.get((zone, _norm(text)), ())) >= need:
                kinds[id(r)] = zone
                lead, tail = _LEAD_NUMBER.match(text), _TAIL_NUMBER.search(text)
                numbers.setdefault((zone, _norm(text)), {})[p] = (
                    lead.group(1) if lead else None,
                    tail.group(1) if tail else None,
                )
    # a number in repeating furniture is the page number when it changes from page to page
    # ("Apple Inc. | 2024 Form 10-K | 1"), not when it stays ("2024 Annual Report")
    for found in numbers.values():
        for side in (1, 0):
            values = [v[side] for v in found.values() if v[side] is not None]
            if len(set(values)) > 1:
                for p, v in found.items():
                    if v[side] is not None:
                        labels.setdefault(p, v[side])  # type: ignore[arg-type]
                break
    return kinds, labels


def _kind(run: Run, body_size: float) -> str:
    text = run.text
    if run.list_item or _LIST_START.match(text):
        return "list_item"
    words = len(text.split())
    open_end = text.rstrip("\"')]\u201d\u2019")[-1:] not in (".", ",", ";", ":")
    if words <= 20 and open_end and _WORDISH.search(text):
        if run.heading or run.bold * 10 >= run.letters * 9 or run.size >= 1.15 * body_size:
            return "heading"
        # italic or underlined subheads ("Fair value hedges") are short and stand alone
        styled = max(run.italic, run.underline)
        if styled * 10 >= run.letters * 9 and words <= 12 and text[:1].isupper():
            return "heading"
    if run.heading and words <= 30:
        return "heading"
    return "text"


def _run_in(run: Run) -> int:
    """Where the text after a bold run-in heading starts in the run ("Pension Benefits" +
    " Pension cash requirements ..."); 0 when the run has none. A lead-in ending in a stop
    ("Government Contracts. The ...") is a sentence of its own already."""
    lead = run.lead
    if not lead or "\n" in run.text[:lead]:
        return 0
    head, rest = run.text[:lead], run.text[lead:]
    cut = lead + len(rest) - len(rest.lstrip())
    words = len(head.split())
    if (
        2 <= words <= 12
        and _WORDISH.search(head)
        and head.rstrip()[-1:] not in ".,;:!?"
        and rest.strip()[:1].isupper()
        and len(rest.split()) >= 4
    ):
        return cut
    return 0


def _kind_of_rest(run: Run, rest: str) -> str:
    return "list_item" if _LIST_START.match(rest) else "text"


def _body_size(runs: list[Run]) -> float:
    sizes: Counter[float] = Counter()
    for r in runs:
        sizes[round(r.size * 2) / 2] += r.letters
    return sizes.most_common(1)[0][0] if sizes else 12.0


def build_pages(
    markup: Markup, walker: TextWalker, doc_id: str, *, remove_running: bool = True
) -> list[Page]:
    """Pages from a walk: text, blocks with anchors, running furniture, labels, facts."""
    by_page: list[list[Run | TableItem]] = [[] for _ in range(walker.n_pages)]
    for item in walker.items:
        by_page[min(item.page, walker.n_pages - 1)].append(item)
    runs = [[i for i in items if isinstance(i, Run)] for items in by_page]
    kinds, labels = _furniture(runs) if remove_running else ({}, {})
    body_size = _body_size([r for rs in runs for r in rs if id(r) not in kinds])
    # id(run) -> (page index, its start in Page.text, where a run-in heading's text resumes in
    # the run, and how much further on it stands in Page.text)
    where: dict[int, tuple[int, int, int, int]] = {}
    pages: list[dict[str, Any]] = []
    for p, items in enumerate(by_page):
        parts: list[str] = []
        pos = 0
        blocks: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, TableItem):
                blocks.append(_block("table", item.path, 0, 0, text=item.text))
                continue
            kind = kinds.get(id(item))
            end = item.offset + len(item.text)
            if kind is not None:
                blocks.append(_block(kind, item.path, item.offset, end, text=item.text))
                continue
            if parts:
                pos += 2
            cut = _run_in(item)
            if cut:
                # a run-in heading: its own heading block, the text after it a block of its own
                head, rest = item.text[: item.lead], item.text[cut:]
                where[id(item)] = (p, pos, cut, len(head) + 2 - cut)
                blocks.append(
                    _block("heading", item.path, item.offset, item.offset + len(head), start=pos)
                )
                pos += len(head) + 2
                blocks.append(
                    _block(_kind_of_rest(item, rest), item.path, item.offset + cut, end, start=pos)
                )
                parts.append(f"{head}\n\n{rest}")
                pos += len(rest)
                continue
            where[id(item)] = (p, pos, len(item.text) + 1, 0)
            blocks.append(_block(_kind(item, body_size), item.path, item.offset, end, start=pos))
            parts.append(item.text)
            pos += len(item.text)
        pages.append(
            {
                "doc_id": doc_id,
                "page_no": p + 1,
                "width": 0.0,
                "height": 0.0,
                "text": "\n\n".join(parts),
                "blocks": blocks,
                "status": "ok" if items else "empty",
                "label": labels.get(p),
                "facts": [],
            }
        )
    _place_facts(markup, walker, where, pages)
    return [Page.model_validate(p) for p in pages]


def _block(
    kind: str, path: str, a: int, b: int, *, start: int = -1, text: str = ""
) -> dict[str, Any]:
    return {
        "kind": kind,
        "start": start,
        "end": start + (b - a) if start >= 0 else -1,
        "bbox": _ZERO_BOX,
        "text": text,
        "anchor": {"path": path, "start": a, "end_path": path, "end": b},
    }


def _place_facts(
    markup: Markup,
    walker: TextWalker,
    where: dict[int, tuple[int, int, int, int]],
    pages: list[dict[str, Any]],
) -> None:
    reader = FactReader(markup)
    items = walker.items

    def locate(run_index: int, offset: int) -> tuple[int, int] | None:
        if not 0 <= run_index < len(items):
            return None
        found = where.get(id(items[run_index]))
        if found is None:
            return None
        page, start, cut, shift = found
        return page, start + offset + (shift if offset >= cut else 0)

    for mark in walker.facts:
        fact = reader.fields(mark.element)
        page = mark.page
        if not mark.in_table:
            a, b = locate(mark.start_run, mark.start), locate(mark.end_run, mark.end)
            if a is not None and b is not None and a[0] == b[0]:
                page = a[0]
                fact["start"], fact["end"] = a[1], b[1]
            elif a is not None:
                page = a[0]
            elif 0 <= mark.start_run < len(items):
                page = items[mark.start_run].page
        pages[min(page, len(pages) - 1)]["facts"].append(fact)


# ---------------------------------------------------------------------------------------------
# sentences: anchors and facts


def link_sentences(sentences: Sequence[Sentence], pages: Sequence[Page]) -> list[Sentence]:
    """Each sentence of an HTML filing with its anchor and the facts tagged inside it; the
    sentences of other documents are returned as they are."""
    by_no = {p.page_no: p for p in pages}
    if not any(b.anchor is not None for p in pages for b in p.blocks):
        return list(sentences)
    index = {no: _BlockIndex(p) for no, p in by_no.items()}
    out: list[Sentence] = []
    for s in sentences:
        page = by_no.get(s.page_no)
        if page is None:
            out.append(s)
            continue
        start = index[s.page_no].at(s.start)
        if s.end_page_no is not None and s.end_page_no in by_no:
            end = index[s.end_page_no].at(s.end_page_end or 0, end=True)
            raw = [(page, s.start, s.end), (by_no[s.end_page_no], 0, s.end_page_end or 0)]
        else:
            end = index[s.page_no].at(s.end, end=True)
            raw = [(page, s.start, s.end)]
        anchor = (
            Anchor(path=start[0], start=start[1], end_path=end[0], end=end[1])
            if start is not None and end is not None
            else None
        )
        out.append(s.model_copy(update={"anchor": anchor, "facts": _facts_in(raw), "boxes": ()}))
    return out


class _BlockIndex:
    """Body blocks of a page by their start in `Page.text`."""

    def __init__(self, page: Page) -> None:
        self.blocks = sorted(
            (b for b in page.blocks if b.start >= 0 and b.anchor is not None),
            key=lambda b: b.start,
        )
        self.starts = [b.start for b in self.blocks]

    def at(self, pos: int, *, end: bool = False) -> tuple[str, int] | None:
        """(element path, offset in its rendered text) of a position in `Page.text`."""
        k = bisect.bisect_right(self.starts, pos - (1 if end else 0)) - 1
        if k < 0:
            return None
        b = self.blocks[k]
        assert b.anchor is not None
        return b.anchor.path, b.anchor.start + min(max(pos - b.start, 0), b.end - b.start)


def _facts_in(raw: list[tuple[Page, int, int]]) -> tuple[Fact, ...]:
    """The facts inside a sentence's spans, their offsets moved into `Sentence.text`."""
    found: list[tuple[Fact, int, int]] = []
    text = ""  # the sentence's raw text so far (its spans joined with a space)
    for page, a, b in raw:
        base = len(text) + (1 if text else 0)
        for f in page.facts:
            if f.start >= 0 and a <= f.start and f.end <= b:
                found.append((f, base + f.start - a, base + f.end - a))
        text = f"{text} {page.text[a:b]}" if text else page.text[a:b]
    return tuple(
        f.model_copy(update={"start": _norm_pos(text, ra), "end": _norm_pos(text, rb)})
        for f, ra, rb in found
    )


def _norm_pos(raw: str, k: int) -> int:
    """Where raw position k lands in `" ".join(raw.split())`."""
    head = " ".join(raw[:k].split())
    if head and k < len(raw) and raw[k - 1].isspace() and not raw[k].isspace():
        return len(head) + 1
    return len(head)
