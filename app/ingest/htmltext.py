"""HTML and XHTML as a reader sees it: parsing (lxml), the styles that decide what is shown,
and the walk that turns visible markup into runs of text, tables and page breaks.

    markup = parse_markup(data)
    items = TextWalker(markup).walk(markup.body)

Parsing: a document that declares itself XML (an `<?xml` prolog or an XHTML namespace, as
every inline-XBRL filing does) is parsed as XML first, so self-closing elements
(`<ix:nonFraction ... xsi:nil="true"/>`) and namespaces are read as the filer wrote them; HTML
that is not XML, and XHTML that is not well-formed, goes through libxml2's HTML parser, which
repairs what it can (`Markup.xml_error` says why XML failed). Comments and processing
instructions are dropped while parsing (the text around them joins up). External entities,
DTDs and the network are never touched.

What is shown: `display:none`, `visibility:hidden`, the `hidden` attribute, `ix:header`,
`<head>`, scripts and styles are left out. Styles come from `style` attributes and from simple
rules in `<style>` elements (`tag`, `.class`, `tag.class` selectors, top level or inside
`@media print|all`).

Runs: a run is the inline text between two block boundaries (block elements such as `div`,
`p`, `li`, headings, table cells of prose tables, `<br>` pairs, page breaks), whitespace
collapsed as a browser does (`&nbsp;` too), `<br>` kept as a line break. An inline element set
apart by padding or margin (`<span>Item 1A.</span><span style="padding-left:..">Risk
Factors</span>`, a bullet and its text) is joined with a space. Tables whose cells hold figures
are one `TableItem` each (cells separated by tabs, rows by newlines, "$" and ")" joined to their
figure); tables that hold prose (an auditor's critical audit matters, footnotes set as
tables) are read cell by cell like divs, a row whose first cell is only a bullet or "(1)"
being one run.

Anchors: each run knows the element that holds it (its nearest block ancestor) as a path
(`/html[1]/body[1]/div[212]`: lower-case local names with an `ix:` prefix for inline XBRL,
1-based positions among same-name siblings) and its offset in that element's rendered text:
the runs of the element's subtree joined with one newline. Walking that element alone gives
the same runs, so a sentence's character offsets can be found again in the markup
(`TextWalker(markup, track=True)` keeps, for every word, where it lies in the DOM).
Its own module because the reader and the review screen's highlight must read a filing the
same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_PREFIXES = {
    XHTML_NS: "",
    "http://www.xbrl.org/2013/inlineXBRL": "ix:",
    "http://www.xbrl.org/2008/inlineXBRL": "ix:",
    "http://www.xbrl.org/2003/instance": "xbrli:",
    "http://xbrl.org/2006/xbrldi": "xbrldi:",
    "http://www.xbrl.org/2003/linkbase": "link:",
}
FACT_TAGS = frozenset({"ix:nonfraction", "ix:nonnumeric"})
_SKIP = frozenset(
    {"head", "script", "style", "noscript", "template", "title", "meta", "link", "ix:header"}
)


def _names(listing: str) -> frozenset[str]:
    return frozenset(listing.split())


_BLOCK = _names(
    """address article aside blockquote body center dd details dialog dir div dl dt fieldset
    figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li main menu
    nav ol p pre section summary ul table caption thead tbody tfoot tr td th"""
)
_HEADING_TAGS = {"h1": 2.0, "h2": 1.5, "h3": 1.17, "h4": 1.0, "h5": 0.83, "h6": 0.67}
_BOLD_TAGS = frozenset({"b", "strong", "th", *_HEADING_TAGS})
_ITALIC_TAGS = frozenset({"i", "em", "cite", "var", "dfn"})
_CONTENT_TAGS = frozenset({"hr", "img", "svg", "canvas", "object", "embed", "iframe", "video"})
"""Elements a printed page shows without text: a page holding one is not blank."""
_BREAK_VALUES = frozenset({"always", "page", "left", "right", "recto", "verso"})
_MARKER = re.compile(
    r"[\u2022\u25cf\u25aa\u25a0\u25a1\u25e6\u2023\u2043\u2219\u00b7*\u2013\u2014\u27a2\u2713"
    r"\u2714\uf0b7\uf0a7\uf0d8\u25ba\u25b6-]|\(?[0-9]{1,2}[.)]|\(?[a-zA-Z][.)]|\([ivx]{1,4}\)"
)
"""A bullet or enumerator alone in a table cell: the row is one list item."""
_TABLE_SENTENCE_END = re.compile(r"[.!?:;][\"')\]\u201d\u2019]*$")
_FONT_KEYWORDS = {
    "xx-small": 7.0,
    "x-small": 7.5,
    "small": 10.0,
    "medium": 12.0,
    "large": 13.5,
    "x-large": 18.0,
    "xx-large": 24.0,
}
DEFAULT_SIZE = 12.0
"""A browser's default font size, in points (16 px)."""


# ---------------------------------------------------------------------------------------------
# parsing


@dataclass
class Markup:
    """A parsed document: its tree, how it was parsed, and its style rules."""

    root: Any
    """The lxml root element."""
    xml: bool
    """Parsed as XML (XHTML); False: libxml2's HTML parser read it."""
    xml_error: str | None = None
    """Why a document that declares itself XML could not be parsed as XML (then it was read
    with the HTML parser), e.g. "line 12: Opening and ending tag mismatch: span and div"."""
    rules: dict[str, dict[str, str]] = field(default_factory=dict)
    """Style rules from `<style>` elements by selector (`div`, `.c1`, `p.c1`)."""
    _styles: dict[tuple[str, str, str], Style] = field(default_factory=dict, repr=False)
    _mixed: set[Any] | None = field(default=None, repr=False)

    def plain(self, el: Any) -> bool:
        """Whether nothing inside an element is hidden or a line break: then its shown text
        is simply all its text (read by libxml2, not walked in Python)."""
        if self._mixed is None:
            # elements are kept, not their id(): lxml proxies of dropped references are freed
            # and their ids reused
            mixed: set[Any] = set()
            for node in self.root.iter():
                name = name_of(node)
                if not (
                    name == "br"
                    or name in _SKIP
                    or node.get("hidden") is not None
                    or ((node.get("style") or node.get("class")) and self.style(node).hidden)
                ):
                    continue
                for anc in node.iterancestors():
                    if anc in mixed:
                        break
                    mixed.add(anc)
            self._mixed = mixed
        return el not in self._mixed

    def style(self, el: Any) -> Style:
        """An element's own style (cached: filings repeat the same few style attributes)."""
        key = (name_of(el), el.get("class") or "", el.get("style") or "")
        found = self._styles.get(key)
        if found is None:
            found = self._styles[key] = resolve_style(*key, self.rules)
        return found

    @property
    def body(self) -> Any:
        """The body element (the root when there is none)."""
        for el in self.root.iter():
            if name_of(el) == "body":
                return el
        return self.root


class MarkupError(ValueError):
    """The bytes could not be parsed as HTML at all."""


def parse_markup(data: bytes) -> Markup:
    """Parse HTML or XHTML bytes (XML first when they declare themselves XML)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    xml_error = None
    if head.startswith(b"<?xml") or XHTML_NS.encode() in head:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
            remove_comments=True,
            remove_pis=True,
        )
        try:
            root = etree.fromstring(data, parser)
            return Markup(root, xml=True, rules=_style_rules(root))
        except etree.XMLSyntaxError as e:
            line = f"line {e.lineno}: " if e.lineno else ""
            xml_error = f"{line}{e.msg}".strip()
    parser = etree.HTMLParser(
        no_network=True, huge_tree=True, remove_comments=True, remove_pis=True
    )
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise MarkupError(str(e) or "no markup") from e
    if root is None:
        raise MarkupError("the parser found no elements")
    return Markup(root, xml=False, xml_error=xml_error, rules=_style_rules(root))


_NAMES: dict[Any, str] = {}


def _tag_name(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""  # an entity, comment or processing instruction
    if tag[:1] == "{":
        ns, local = tag[1:].split("}", 1)
        name = _PREFIXES.get(ns, "") + local.lower()
    else:
        name = tag.lower()
    if len(_NAMES) < 10_000:  # a bound, though a document has a few dozen names
        _NAMES[tag] = name
    return name


def name_of(el: Any) -> str:
    """An element's name as paths write it: `div`, `ix:nonfraction`; "" for comments."""
    tag = el.tag
    try:
        return _NAMES[tag]
    except (KeyError, TypeError):
        return _tag_name(tag)


def tags(local: str, prefix: str = "") -> tuple[str, ...]:
    """The tag names `iter()` needs to find elements of one name in either parse mode."""
    namespaces = [ns for ns, p in _PREFIXES.items() if p == prefix]
    found = [f"{{{ns}}}{local}" for ns in namespaces]
    if prefix:
        found.append(f"{prefix}{local.lower()}")
    else:
        found.append(local)
    return tuple(found)


def attr(el: Any, name: str) -> str | None:
    """An attribute as XHTML spells it (`contextRef`) or as the HTML parser left it."""
    value = el.get(name)
    if value is None and not name.islower():
        value = el.get(name.lower())
    return value


def is_nil(el: Any) -> bool:
    """Whether a fact is nil (`xsi:nil="true"`)."""
    return (el.get(XSI_NIL) or el.get("xsi:nil") or "").strip().lower() == "true"


# ---------------------------------------------------------------------------------------------
# styles


@lru_cache(maxsize=8192)
def parse_style(text: str) -> dict[str, str]:
    """A style attribute's declarations, lower-cased: {"display": "none", ...}."""
    out: dict[str, str] = {}
    for decl in text.split(";"):
        key, sep, value = decl.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip().lower().replace("!important", "").strip()
    return out


_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_SIMPLE_SELECTOR = re.compile(r"[a-z][a-z0-9]*|[a-z][a-z0-9]*\.[\w-]+|\.[\w-]+", re.IGNORECASE)


def _style_rules(root: Any) -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    for el in root.iter(*tags("style")):
        if not el.text:
            continue
        for selectors, body in _css_blocks(_COMMENT.sub("", el.text)):
            decls = parse_style(body)
            for sel in selectors.split(","):
                sel = sel.strip()
                if _SIMPLE_SELECTOR.fullmatch(sel):
                    key = (
                        sel.lower()
                        if "." not in sel
                        else sel.split(".", 1)[0].lower() + ("." + sel.split(".", 1)[1])
                    )
                    rules.setdefault(key, {}).update(decls)
    return rules


def _css_blocks(css: str) -> Iterator[tuple[str, str]]:
    """(selectors, declarations) of the rules that apply in print: top-level ones and those
    inside `@media print` or `@media all`; other at-rules are skipped."""
    pos, n = 0, len(css)
    while pos < n:
        open_ = css.find("{", pos)
        if open_ < 0:
            return
        head = css[pos:open_].strip()
        if head.startswith("@"):
            depth, i = 1, open_ + 1
            while i < n and depth:
                depth += {"{": 1, "}": -1}.get(css[i], 0)
                i += 1
            query = head.lower()
            if query.startswith("@media") and ("print" in query or "all" in query):
                yield from _css_blocks(css[open_ + 1 : i - 1])
            pos = i
            continue
        close = css.find("}", open_)
        if close < 0:
            return
        yield head, css[open_ + 1 : close]
        pos = close + 1


@dataclass(frozen=True, slots=True)
class Style:
    """What the walk needs of an element's own style (inherited values resolved later)."""

    block: bool
    hidden: bool
    bold: bool | None
    italic: bool | None
    size: tuple[float, str] | None
    """Font size as (value, unit): pt, px, em or % ("em" for keywords relative to nothing)."""
    break_before: bool
    break_after: bool
    underline: bool | None
    gap: bool
    """Set apart from what precedes it on the line (padding, margin, inline-block)."""


def _weight(value: str) -> bool | None:
    if value in ("bold", "bolder"):
        return True
    if value in ("normal", "lighter"):
        return False
    if value.isdigit():
        return int(value) >= 600
    return None


def _size(value: str) -> tuple[float, str] | None:
    if value in _FONT_KEYWORDS:
        return _FONT_KEYWORDS[value], "pt"
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(pt|px|em|rem|%)", value)
    if not m:
        return None
    return float(m.group(1)), m.group(2)


def _positive(value: str | None) -> bool:
    if not value:
        return False
    m = re.match(r"\s*([0-9]*\.?[0-9]+)", value)
    return m is not None and float(m.group(1)) > 0


def resolve_style(name: str, classes: str, inline: str, rules: dict[str, dict[str, str]]) -> Style:
    """An element's own style from its tag, class rules and style attribute."""
    decls: dict[str, str] = {}
    if rules:
        decls.update(rules.get(name, {}))
        for cls in classes.split():
            decls.update(rules.get("." + cls, {}))
            decls.update(rules.get(f"{name}.{cls}", {}))
    if inline:
        decls.update(parse_style(inline))
    display = decls.get("display")
    block = name in _BLOCK if display is None else display not in ("inline", "contents")
    hidden = display == "none" or decls.get("visibility") in ("hidden", "collapse")
    bold = _weight(decls.get("font-weight", ""))
    if bold is None and name in _BOLD_TAGS:
        bold = True
    italic = None
    if "font-style" in decls:
        italic = decls["font-style"] in ("italic", "oblique")
    elif name in _ITALIC_TAGS:
        italic = True
    underline = None
    if "text-decoration" in decls or "text-decoration-line" in decls:
        line = decls.get("text-decoration", "") + decls.get("text-decoration-line", "")
        underline = "underline" in line
    elif name in ("u", "ins"):
        underline = True
    size = _size(decls.get("font-size", ""))
    if size is None and name in _HEADING_TAGS:
        size = (_HEADING_TAGS[name], "em")
    before = decls.get("page-break-before") or decls.get("break-before") or ""
    after = decls.get("page-break-after") or decls.get("break-after") or ""
    gap = (
        _positive(decls.get("padding-left"))
        or _positive(decls.get("margin-left"))
        or display == "inline-block"
    )
    return Style(
        block=block,
        hidden=hidden,
        bold=bold,
        italic=italic,
        size=size,
        break_before=before in _BREAK_VALUES,
        break_after=after in _BREAK_VALUES,
        underline=underline,
        gap=gap,
    )


def _absolute(size: tuple[float, str] | None, parent: float) -> float:
    if size is None:
        return parent
    value, unit = size
    if unit == "pt":
        return value
    if unit == "px":
        return value * 0.75
    if unit == "%":
        return parent * value / 100
    if unit == "rem":
        return DEFAULT_SIZE * value
    return parent * value


# ---------------------------------------------------------------------------------------------
# the walk


@dataclass(slots=True)
class FactMark:
    """Where a fact's text starts and ends among the walk's runs (run index, offset)."""

    element: Any
    start_run: int = -1
    start: int = -1
    end_run: int = -1
    end: int = -1
    in_table: bool = False
    page: int = 0


@dataclass(slots=True)
class Run:
    """Inline text between two block boundaries, with what decides its kind."""

    text: str
    path: str
    """Path of the element holding the run (its nearest block ancestor)."""
    offset: int
    """Where the run starts in that element's rendered text."""
    page: int
    """0-based page (CSS page breaks before it)."""
    letters: int = 0
    bold: int = 0
    italic: int = 0
    underline: int = 0
    lead: int = 0
    """Length of a bold lead-in followed by other text in the run ("Pension Benefits Pension
    cash requirements ..."): a run-in heading; 0 when there is none."""
    size: float = DEFAULT_SIZE
    """The font size most of its characters are set in, in points."""
    heading: bool = False
    """Inside h1-h6."""
    list_item: bool = False
    """Inside li."""
    slots: list[tuple[Any, str, int, int, int]] | None = None
    """With tracking: per word (element, "text" | "tail", raw start, raw end, run offset)."""


@dataclass(slots=True)
class TableItem:
    """A table of figures: kept out of the prose flow as one table block."""

    text: str
    path: str
    page: int


@dataclass(slots=True)
class _Frame:
    el: Any
    path: str
    block: bool
    bold: bool
    italic: bool
    size: float
    counts: dict[str, int]
    emitted: int = 0
    """Rendered characters of the runs inside this element so far (separators included)."""
    fact: FactMark | None = None
    underline: bool = False
    break_after: bool = False
    row_inline: bool = False
    """A prose-table row read as one run (its cells are inline)."""


class TextWalker:
    """Walks visible markup into runs, tables and facts, page by page.

    `walk(element)` reads an element's subtree; the result is `items` (runs and tables in
    reading order), `facts` (every ix:nonFraction / ix:nonNumeric shown, in document order) and
    `n_pages` (CSS page breaks + 1; a break with nothing after it opens no page).
    """

    def __init__(self, markup: Markup, *, track: bool = False) -> None:
        self.markup = markup
        self.track = track
        self.items: list[Run | TableItem] = []
        self.facts: list[FactMark] = []
        self.n_pages = 1
        self._tables: dict[Any, tuple[str, list[list[str]]]] = {}
        self._page_content = False
        self._opening: list[FactMark] = []
        """Facts opened whose first character has not come yet."""
        self._reset_run()

    # -- the run being built -----------------------------------------------------------------

    def _reset_run(self) -> None:
        self._buf: list[str] = []
        self._len = 0
        self._space = False
        self._newlines = 0
        self._bold = self._italic = self._underline = 0
        self._lead = 0
        self._lead_state = "start"  # "bold" while all its text so far is bold, then "done"
        self._sizes: dict[float, int] = {}
        self._slots: list[tuple[Any, str, int, int, int]] = []

    def _start_text(self) -> None:
        if self._len and self._space and not self._newlines:
            self._buf.append(" ")
            self._len += 1
        self._newlines = 0
        if self._opening:
            for mark in self._opening:
                mark.start_run, mark.start = len(self.items), self._len
            self._opening = []

    def _add(self, raw: str | None, frame: _Frame, owner: Any, slot: str) -> None:
        """Append raw text, collapsing whitespace as a browser does."""
        if not raw:
            return
        if raw[0].isspace() and self._len:
            self._space = True
        before = self._len
        n = 0
        if self.track:
            for m in re.finditer(r"\S+", raw):
                self._start_text()
                self._slots.append((owner, slot, m.start(), m.end(), self._len))
                self._buf.append(m.group(0))
                self._len += m.end() - m.start()
                n += m.end() - m.start()
                self._space = True
        else:
            words = raw.split()
            if words:
                self._start_text()
                piece = " ".join(words)
                self._buf.append(piece)
                self._len += len(piece)
                n = len(piece)
        if n:
            self._page_content = True
            if frame.bold:
                self._bold += n
            if frame.italic:
                self._italic += n
            if frame.underline:
                self._underline += n
            if self._lead_state == "start":
                self._lead_state = "bold" if frame.bold else "done"
            elif self._lead_state == "bold" and not frame.bold:
                self._lead, self._lead_state = before, "done"
            self._sizes[frame.size] = self._sizes.get(frame.size, 0) + n
        self._space = raw[-1].isspace()

    def _line_break(self) -> None:
        if self._len and self._newlines < 2:
            self._buf.append("\n")
            self._len += 1
            self._newlines += 1
            self._space = False

    def _flush(self, stack: list[_Frame]) -> None:
        """End the run: drop trailing newlines, hand it to its block."""
        while self._buf and self._buf[-1] == "\n":
            self._buf.pop()
            self._len -= 1
        if self._len:
            text = "".join(self._buf)
            container = next(f for f in reversed(stack) if f.block)
            offset = container.emitted + (1 if container.emitted else 0)
            for f in stack:
                if f.block:
                    f.emitted += (1 if f.emitted else 0) + len(text)
            names = [name_of(f.el) for f in stack]
            self.items.append(
                Run(
                    text=text,
                    path=container.path,
                    offset=offset,
                    page=self.n_pages - 1,
                    letters=self._len,
                    bold=self._bold,
                    italic=self._italic,
                    underline=self._underline,
                    lead=self._lead,
                    size=max(self._sizes.items(), key=lambda kv: kv[1])[0],
                    heading=any(n in _HEADING_TAGS for n in names),
                    list_item="li" in names,
                    slots=self._slots if self.track else None,
                )
            )
        self._reset_run()

    def _page_break(self, stack: list[_Frame]) -> None:
        self._flush(stack)
        if self._page_content:
            self.n_pages += 1
            self._page_content = False

    # -- the walk ----------------------------------------------------------------------------

    def walk(self, top: Any) -> TextWalker:
        """Read `top`'s subtree (the body, or one element for a highlight)."""
        markup = self.markup
        size, bold, italic = DEFAULT_SIZE, False, False
        for anc in reversed(list(top.iterancestors())):  # what the ancestors pass down
            st = markup.style(anc)
            size = _absolute(st.size, size)
            bold = st.bold if st.bold is not None else bold
            italic = st.italic if st.italic is not None else italic
        stack: list[_Frame] = []
        walker = etree.iterwalk(top, events=("start", "end"))
        for event, el in walker:
            if event == "end":
                frame = stack.pop()
                if frame.fact is not None:
                    self._close_fact(frame.fact)
                if frame.block:
                    self._flush([*stack, frame])
                if frame.break_after:
                    self._page_break([*stack, frame])
                if stack:
                    self._add(el.tail, stack[-1], el, "tail")
                continue
            name = name_of(el)
            st = markup.style(el)
            up = stack[-1] if stack else None
            if up is None:
                path = element_path(el)
            else:
                up.counts[name] = up.counts.get(name, 0) + 1
                path = f"{up.path}/{name}[{up.counts[name]}]"
            if not name or name in _SKIP or st.hidden or el.get("hidden") is not None:
                walker.skip_subtree()
                stack.append(_Frame(el, path, False, False, False, 0.0, {}))
                continue
            block = st.block or up is None  # the element read is a block of its own
            if up is not None and up.row_inline and name in ("td", "th"):
                block = False
                if self._len:
                    self._space = True
            if block:
                self._flush(stack)
            if st.break_before:
                self._page_break(stack)
            frame = _Frame(
                el,
                path,
                block,
                st.bold if st.bold is not None else (up.bold if up else bold),
                st.italic if st.italic is not None else (up.italic if up else italic),
                _absolute(st.size, up.size if up else size),
                {},
                break_after=st.break_after,
                underline=st.underline if st.underline is not None else bool(up and up.underline),
            )
            stack.append(frame)
            if name == "table" and self._table_kind(el) == "figures":
                self._table(el, path)
                walker.skip_subtree()
                continue
            if name == "tr" and self._row_is_item(el):
                frame.row_inline = True
            if name in FACT_TAGS:
                frame.fact = FactMark(el, page=self.n_pages - 1)
                self.facts.append(frame.fact)
                self._opening.append(frame.fact)
            if name == "br":
                self._line_break()
            elif name in _CONTENT_TAGS:
                self._page_content = True
            if st.gap and self._len and not block:
                self._space = True
            self._add(el.text, frame, el, "text")
        if not self._page_content and self.n_pages > 1:
            self.n_pages -= 1  # a break after the last content opens no page
        return self

    def _table(self, table: Any, path: str) -> None:
        text = table_text(self._tables[table][1])
        if text:
            self.items.append(TableItem(text, path, self.n_pages - 1))
            self._page_content = True
        for el in table.iter():
            if name_of(el) in FACT_TAGS and _shown(el, table, self.markup):
                self.facts.append(FactMark(el, in_table=True, page=self.n_pages - 1))

    def _close_fact(self, mark: FactMark) -> None:
        if mark in self._opening:  # no text inside (nil, or empty): a point where it stands
            self._opening.remove(mark)
            mark.start_run, mark.start = len(self.items), self._len
        mark.end_run, mark.end = len(self.items), self._len

    def _table_kind(self, table: Any) -> str:
        """figures (a table block) or prose (read cell by cell)."""
        if table not in self._tables:
            rows = table_rows(table, self.markup)
            self._tables[table] = (table_kind(rows), rows)
        return self._tables[table][0]

    def _row_is_item(self, row: Any) -> bool:
        texts = [visible_text(c, self.markup) for c in row if name_of(c) in ("td", "th")]
        texts = [t for t in texts if t]
        return len(texts) >= 2 and _MARKER.fullmatch(texts[0]) is not None


# ---------------------------------------------------------------------------------------------
# tables and visible text


def _shown(el: Any, top: Any, markup: Markup) -> bool:
    node = el
    while node is not None and node is not top:
        if name_of(node) in _SKIP or markup.style(node).hidden:
            return False
        node = node.getparent()
    return True


def visible_text(el: Any, markup: Markup) -> str:
    """An element's shown text, whitespace collapsed (hidden descendants left out)."""
    if markup.plain(el):
        return " ".join("".join(el.itertext()).split())
    parts: list[str] = []
    walker = etree.iterwalk(el, events=("start", "end"))
    for event, node in walker:
        name = name_of(node)
        if event == "start":
            if name in _SKIP or markup.style(node).hidden:
                walker.skip_subtree()
                continue
            if name == "br":
                parts.append(" ")
            if node.text:
                parts.append(node.text)
        elif node is not el and node.tail:
            parts.append(node.tail)
    return " ".join("".join(parts).split())


def _own_rows(table: Any) -> Iterator[Any]:
    """The rows of a table, not those of tables nested in its cells."""
    for row in table.iter(*tags("tr")):
        if next(row.iterancestors(*tags("table")), None) is table:
            yield row


def _cells(row: Any, markup: Markup) -> list[str]:
    cells = [visible_text(c, markup) for c in row if name_of(c) in ("td", "th")]
    out: list[str] = []
    for cell in cells:
        if not cell:
            continue
        if out and (out[-1] in ("$", "€", "£", "¥", "(", "$(") or cell in (")", "%", ")%", "%)")):
            out[-1] = out[-1] + cell if out[-1] != "$" else f"$ {cell}".replace("$ (", "$(")
            continue
        out.append(cell)
    return out


def table_rows(table: Any, markup: Markup) -> list[list[str]]:
    """A table's shown cells, row by row ("$" and ")" joined to their figures)."""
    return [c for c in (_cells(r, markup) for r in _own_rows(table)) if c]


def table_text(rows: list[list[str]]) -> str:
    """A table's text: rows on lines, cells separated by tabs."""
    return "\n".join("\t".join(c) for c in rows)


def table_kind(rows: list[list[str]]) -> str:
    """ "prose" when most of a table's text stands in cells of running prose (at least 15
    words ending a sentence, or 40 words); else "figures"."""
    total = prose = 0
    for row in rows:
        for cell in row:
            total += len(cell)
            words = len(cell.split())
            if words >= 40 or (words >= 15 and _TABLE_SENTENCE_END.search(cell)):
                prose += len(cell)
    return "prose" if total and prose * 2 >= total else "figures"


# ---------------------------------------------------------------------------------------------
# paths


def element_path(el: Any) -> str:
    """The path of an element: `/html[1]/body[1]/div[3]` (see the module docstring)."""
    parts: list[str] = []
    node = el
    while node is not None:
        name = name_of(node)
        parent = node.getparent()
        if parent is None:
            parts.append(f"{name}[1]")
            break
        index = 1
        for sib in node.itersiblings(preceding=True):
            if name_of(sib) == name:
                index += 1
        parts.append(f"{name}[{index}]")
        node = parent
    return "/" + "/".join(reversed(parts))


_STEP = re.compile(r"([^/\[\]]+)\[(\d+)\]")


def element_at(root: Any, path: str) -> Any | None:
    """The element a path names, or None when the markup has no such element."""
    steps = [s for s in path.split("/") if s]
    if not steps:
        return None
    first = _STEP.fullmatch(steps[0])
    if first is None or first.group(1) != name_of(root):
        return None
    node = root
    for step in steps[1:]:
        m = _STEP.fullmatch(step)
        if m is None:
            return None
        name, wanted = m.group(1), int(m.group(2))
        seen = 0
        found = None
        for child in node:
            if name_of(child) == name:
                seen += 1
                if seen == wanted:
                    found = child
                    break
        if found is None:
            return None
        node = found
    return node
