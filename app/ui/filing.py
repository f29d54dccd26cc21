"""An HTML filing's sentence shown where it stands, for the review screen: the fragment of the
filing around it with the sentence highlighted, in place of a PDF's page image, and the
sentence's tagged facts beside its evidence.

The fragment is cut from the kept filing (or the report inside a kept ESEF package) by the
sentence's `Anchor`: the markup is read again with the walk that read it (`htmltext`), so the
anchor's offsets fall on the same characters, which are wrapped in `<mark>`. Tagged facts are
underlined with their concept as a tooltip. What reaches the browser is sanitised with nh3
(ammonia): no scripts, event handlers, forms, images, links or any URL, and only inline styles
that set text, boxes and tables (no positioning, no backgrounds that could load a URL). The
screen then renders it with `st.html`, which purifies it again and runs no JavaScript.
"""

from __future__ import annotations

import copy
import html
import logging
from typing import Any

import nh3
from lxml import etree

from app.config import IngestOptions
from app.ingest import report_bytes
from app.ingest.htmltext import (
    FACT_TAGS,
    Markup,
    Run,
    TextWalker,
    attr,
    element_at,
    name_of,
    parse_markup,
    visible_text,
)
from app.records import Anchor, DocumentResult, Sentence
from app.ui.common import get_settings
from app.ui.documents import find_document

_log = logging.getLogger(__name__)

CONTEXT = 2
"""Block elements shown before and after the ones holding the sentence."""
_CLIMB_CHARS = 4000
"""An element holding the sentence is widened to its ancestors while they hold less text."""
HIGHLIGHT = "background-color:#ffd54f;color:#000"
FACT_STYLE = "border-bottom:2px dotted #1b5e20"
_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "a", "area", "map"}
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "white-space",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-collapse",
    "border-spacing",
    "width",
    "min-width",
    "max-width",
    "list-style-type",
}
_FRAME = (
    '<div class="sesame-filing" style="max-height:560px;overflow:auto;border:1px solid #c8c8c8;'
    'border-radius:4px;padding:12px;background-color:#ffffff;color:#000000">{}</div>'
)


def sanitize(fragment: str) -> str:
    """Filing markup made safe to show: text, boxes and tables only, nothing that runs or
    fetches."""
    return nh3.clean(
        fragment,
        tags=_TAGS,
        clean_content_tags={"script", "style", "noscript", "template", "iframe", "object"},
        attributes={"*": {"style", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan"}},
        url_schemes=set(),
        strip_comments=True,
        link_rel=None,
        filter_style_properties=_STYLE_PROPERTIES,
    )


def sentence_fragment(
    data: bytes,
    sentence: Sentence,
    *,
    file_name: str | None = None,
    context: int = CONTEXT,
    options: IngestOptions | None = None,
) -> str | None:
    """The sanitised HTML around a sentence of a kept filing (HTML, or an ESEF package), the
    sentence in `<mark>`; None when the sentence has no anchor or the markup lacks it."""
    anchor = sentence.anchor
    if anchor is None:
        return None
    markup = parse_markup(report_bytes(data, file_name, options or IngestOptions()))
    start = element_at(markup.root, anchor.path)
    end = element_at(markup.root, anchor.end_path)
    if start is None or end is None:
        _log.info("sentence %d: its anchor %s is not in the markup", sentence.index, anchor)
        return None
    _highlight(markup, anchor, start, end)
    parts = [_clean_copy(el, markup) for el in _around(markup, start, end, context)]
    return _FRAME.format(sanitize("".join(p for p in parts if p)))


def _highlight(markup: Markup, anchor: Anchor, start: Any, end: Any) -> None:
    if start is end:
        _mark(markup, start, anchor.start, anchor.end)
        return
    _mark(markup, start, anchor.start, None)
    _mark(markup, end, 0, anchor.end)


def _mark(markup: Markup, container: Any, a: int, b: int | None) -> None:
    """Wrap characters [a, b) of an element's rendered text (b None: to its end) in <mark>."""
    walker = TextWalker(markup, track=True).walk(container)
    ranges: dict[tuple[int, str], list[Any]] = {}
    pos = 0
    for item in walker.items:
        if not isinstance(item, Run):
            continue
        base = pos + (1 if pos else 0)
        pos = base + len(item.text)
        for owner, slot, r0, r1, at in item.slots or ():
            lo, hi = base + at, base + at + (r1 - r0)
            stop = hi if b is None else b
            if hi <= a or lo >= stop:
                continue
            raw0 = r0 + max(0, a - lo)
            raw1 = r0 + min(r1 - r0, stop - lo)
            key = (id(owner), slot)
            if key in ranges:
                ranges[key][2] = max(ranges[key][2], raw1)
            else:
                ranges[key] = [owner, raw0, raw1, slot]
    root_tag = markup.root.tag
    tag = root_tag.split("}")[0] + "}mark" if root_tag.startswith("{") else "mark"
    for k, (owner, raw0, raw1, slot) in enumerate(ranges.values()):
        text = (owner.text if slot == "text" else owner.tail) or ""
        while k and raw0 > 0 and text[raw0 - 1].isspace():
            raw0 -= 1  # the space before a later piece is the sentence's too
        _wrap(owner, slot, raw0, raw1, tag)


def _wrap(owner: Any, slot: str, raw0: int, raw1: int, tag: str) -> None:
    mark = etree.Element(tag, style=HIGHLIGHT)
    if slot == "text":
        text = owner.text or ""
        owner.text, mark.text, mark.tail = text[:raw0], text[raw0:raw1], text[raw1:]
        owner.insert(0, mark)
    else:
        text = owner.tail or ""
        owner.tail, mark.text, mark.tail = text[:raw0], text[raw0:raw1], text[raw1:]
        owner.addnext(mark)  # the owner keeps the text before; the mark takes the rest


def _around(markup: Markup, start: Any, end: Any, context: int) -> list[Any]:
    """The elements to show: those holding the sentence, widened to a readable block, with
    `context` siblings on each side."""
    body = markup.body
    ancestors = {id(a) for a in (start, *start.iterancestors())}
    common = next((a for a in (end, *end.iterancestors()) if id(a) in ancestors), body)
    if common is body or id(body) not in {id(a) for a in common.iterancestors()}:
        first, last, parent = _child_of(start, body), _child_of(end, body), body
    else:
        node = common
        while True:
            up = node.getparent()
            if up is None or up is body or len(visible_text(up, markup)) > _CLIMB_CHARS:
                break
            node = up
        first = last = node
        parent = node.getparent()
    siblings = [el for el in parent if isinstance(el.tag, str)]
    if first not in siblings or last not in siblings:  # text straight in the body
        return [common]
    i, j = siblings.index(first), siblings.index(last)
    return siblings[max(0, i - context) : j + context + 1]


def _child_of(el: Any, body: Any) -> Any:
    """The child of body that holds el (el itself when it is one)."""
    node = el
    while node.getparent() is not None and node.getparent() is not body:
        node = node.getparent()
    return node


def _clean_copy(el: Any, markup: Markup) -> str:
    """An element as plain HTML: namespaces gone, hidden parts dropped, facts underlined."""
    if markup.style(el).hidden or name_of(el) in ("ix:header", "script", "style"):
        return ""
    out = copy.deepcopy(el)
    for node in list(out.iter()):
        if node is not out and (markup.style(node).hidden or name_of(node) == "ix:header"):
            node.getparent().remove(node)  # the tail goes with it: hidden text has none
            continue
    for node in out.iter():
        name = name_of(node)
        if name in FACT_TAGS:
            title = _fact_title(node)
            node.attrib.clear()
            node.set("title", title)
            node.set("style", FACT_STYLE)
            node.tag = "span"
        elif name.startswith("ix:"):
            node.tag = "span"
            node.attrib.clear()
        else:
            node.tag = name or "span"
        for key in list(node.attrib):
            if key.startswith("{"):
                del node.attrib[key]
    etree.cleanup_namespaces(out)
    return etree.tostring(out, method="html", encoding="unicode", with_tail=False)


def _fact_title(el: Any) -> str:
    return f"{attr(el, 'name') or 'fact'} ({attr(el, 'contextRef') or ''})"


# ---------------------------------------------------------------------------------------------
# the review screen


def fact_rows(sentence: Sentence) -> list[dict[str, str]]:
    """The sentence's tagged facts as table rows."""
    return [
        {
            "concept": f.concept,
            "value": "nil" if f.value is None else f.value,
            "unit": f.unit or "",
            "period": f.period_label(),
            "dimensions": "; ".join(f"{a} = {m}" for a, m in f.dimensions.items()),
            "as printed": f.text,
        }
        for f in sentence.facts
    ]


def show_facts(sentence: Sentence) -> None:
    """The sentence's tagged facts, beside its evidence (nothing for sentences without)."""
    import streamlit as st

    if not sentence.facts:
        return
    st.markdown(f"**Tagged facts (inline XBRL)** · {len(sentence.facts)} in this sentence")
    st.dataframe(fact_rows(sentence), hide_index=True, width="stretch")


def show_in_filing(result: DocumentResult, sentence: Sentence, sources: tuple[str, ...]) -> None:
    """The sentence highlighted in the rendered filing (the HTML counterpart of page images)."""
    import streamlit as st

    anchor = sentence.anchor
    assert anchor is not None
    try:
        fragment = _cached_fragment()(
            result.doc_id or "",
            sources,
            result.document.file_name if result.document else result.source,
            sentence.model_dump_json(),
        )
    except Exception as e:  # a damaged kept file must not break the review
        _log.warning("filing fragment %s #%d failed: %s", result.doc_id, sentence.index, e)
        st.info(f"The filing could not be shown here ({html.escape(type(e).__name__)}).")
        return
    if fragment is None:
        st.info(
            "The filing is not on this server (it was analysed elsewhere, or its source file "
            "has moved or changed), so the sentence cannot be shown in it."
        )
        return
    labels = {p.page_no: p.label for p in result.pages}
    printed = labels.get(sentence.page_no)
    where = f"Page {sentence.page_no}" + (f" (printed page {printed})" if printed else "")
    st.caption(f"{where} of the filing, the sentence highlighted; tagged facts underlined.")
    st.html(fragment)


_FRAGMENTS: Any = None


def _cached_fragment() -> Any:
    global _FRAGMENTS
    if _FRAGMENTS is None:
        import streamlit as st

        @st.cache_data(show_spinner=False, max_entries=64, ttl=600)
        def fragment(
            doc_id: str, sources: tuple[str, ...], file_name: str, sentence_json: str
        ) -> str | None:

            settings = get_settings()
            data = find_document(settings, doc_id, sources)
            if data is None:
                return None
            sentence = Sentence.model_validate_json(sentence_json)
            return sentence_fragment(data, sentence, file_name=file_name, options=settings.ingest)

        _FRAGMENTS = fragment
    return _FRAGMENTS
