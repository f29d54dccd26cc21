"""Page text -> sentences, tuned for financial reports (spaCy, no model download).

The pipeline is spaCy's blank English tokenizer plus one rule-based component,
`financial_sentencizer`, that knows report prose: abbreviations (Inc., U.S., e.g., No. 5,
Jan. 31, Note 3.) do not end a sentence unless a clear sentence starter follows ("... in the
U.S. We ..."), and amounts (EUR 1.5 million, $2.3 billion, 3.2%, (1,234.5), 1.5x) never split
because the tokenizer keeps them whole.

Before spaCy sees any text, each page is cut into units: headings and list items are units of
their own (their `Sentence.kind`), paragraphs are split into sentences. Layout blocks from ingest
are trusted when present; inside text blocks, and on pages without blocks, line heuristics find
headings (short title-case lines after a finished sentence), list items (lines starting with a
bullet, a dash, "(a)" or "1.") and table rows (mostly numbers).

What holds for every `Sentence` s of page p, with `norm(x) == " ".join(x.split())`:

* `s.text == norm(p.text[s.start:s.end])` when `s.end_page_no is None`;
* a sentence that runs across a page break (p's last paragraph stops mid-sentence and the next
  page opens with its continuation) is one Sentence on p: then `s.end_page_no == q.page_no ==
  p.page_no + 1` and `s.text == norm(p.text[s.start:s.end] + " " + q.text[:s.end_page_end])`;
* the span starts and ends on a non-space character; list markers (bullet, dash, "(a)", "1.")
  stay outside it;
* `s.boxes` holds one box per visual line the sentence touches (lines of `Page.lines`), clipped
  to the covered characters proportionally to their position in the line's character span
  (glyph widths are not known here, so the clip is exact only for even-width text); each box's
  `page_no` is the page it lies on. Pages without lines get the boxes of the blocks the sentence
  touches (unclipped), or none.
* `s.index` is dense and 0-based over the pages passed, in reading order.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import spacy
from spacy.attrs import IDX, IS_SPACE, LENGTH, SENT_START, SUFFIX
from spacy.language import Language
from spacy.tokens import Doc

from app.config import SentenceOptions
from app.records import BBox, Block, Line, Page, Sentence, SentenceKind

_log = logging.getLogger(__name__)

COMPONENT = "financial_sentencizer"
"""Name of the rule-based sentence component in `make_nlp`'s pipeline."""

# ---------------------------------------------------------------------------------------------
# Sentence-boundary rules (token level)
# ---------------------------------------------------------------------------------------------


def _words(listing: str) -> frozenset[str]:
    return frozenset(listing.split())


# Never end a sentence: titles and Latin/short forms that always lead into more words.
_NEVER_END = _words("""
    mr. mrs. ms. messrs. dr. prof. st. mt. gen. gov. sen. rep. hon. rev. e.g. i.e. eg. ie. vs. v.
    cf. approx. appx. ca. incl. excl. esp. viz. resp. dept. ave. blvd. ref. abt. pub. stat.
""")

# End a sentence only when no number follows ("No. 5", "Jan. 31, 2022", "fig. 3", "pp. 12-14").
_BEFORE_NUMBER = _words("""
    no. nos. nr. fig. figs. p. pp. art. sec. para. vol. ch. tab. ex.
    jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec.
""")

# May end a sentence ("... of Apple Inc. The company ..."): split only before a sentence starter.
_MAY_END = _words("""
    inc. corp. co. cos. ltd. plc. llc. llp. lp. l.p. n.a. s.a. n.v. b.v. ag. se. gmbh. bhd. pty.
    pte. sa. nv. bv. kk. spa. sarl. sas. oyj. ab. asa.
    etc. jr. sr. al. est. yr. yrs. mo. hr. hrs. bn. mn. mln. m. k. bros. intl. int'l. dept. govt.
""")

# A number after one of these words is a reference, not the end of a sentence ("Note 3. Revenue").
_NUMBERED = _words("""
    note notes item items section sections part article schedule exhibit figure fig table chapter
    page pages appendix annex step phase level tier stage rule paragraph clause no number class
    series round
""")

# Capitalised words that open a sentence in reports; after an ambiguous abbreviation only these
# start a new one ("U.S. GAAP" stays whole, "in the U.S. We expect" splits).
_STARTERS = _words("""
    The This These That Those There Their They Then Thus Therefore Furthermore Further Moreover
    Meanwhile Nevertheless Nonetheless Consequently Accordingly Additionally Also Finally Overall
    Similarly Likewise However In On At As For From During After Before Since While Although
    Though When Where If Unless Because With Without By To Under Our We It Its He She His Her I
    You Your Each Every Such Any All Both Most Many Some Several A An No None Other
""")

# Lower-case words that may still open a sentence.
_LOWER_STARTERS = frozenset({"iPhone", "iPad", "iPod", "iOS", "iCloud", "iMac", "eBay", "eToro"})

_ABBREVIATED_STARTERS = frozenset({"No", "A", "I"})
_OPENING_QUOTES = frozenset({"\u201c", "\u2018", "\u00ab"})
_CLOSERS = frozenset({'"', "'", "\u201d", "\u2019", ")", "]", "}", "\u00bb"})
_TERMINAL = frozenset({".", "!", "?", "!?", "?!", "..", "...", "\u2026", "!!", "??"})
_ACRONYM = re.compile(r"^(?:[a-z]\.){2,}$")
_REF_NUMBER = re.compile(r"^(?:\d{1,3}[a-z]?|[ivx]{1,5}|[a-z])$", re.IGNORECASE)


def _is_lower_start(word: str) -> bool:
    return word[:1].islower() and word not in _LOWER_STARTERS


# Lexeme suffix hash -> whether it ends in a stop. Hashes are the same in every vocabulary and
# there are only so many three-letter suffixes, so the cache stays small.
_STOP_SUFFIX: dict[int, bool] = {}


class _Tokens:
    """A doc's tokens as plain arrays: the rules read only the few words they need.

    Building a spaCy `Token` (or `Doc.text`) for every token costs more than the tokenizer
    itself, so candidates come from `Doc.to_array` (a token ends in a stop when its lexeme's
    suffix does) and words are fetched on demand.
    """

    def __init__(self, doc: Doc) -> None:
        arr = doc.to_array([IDX, LENGTH, IS_SPACE, SUFFIX])
        self.doc = doc
        self.n = n = len(doc)
        starts = arr[:, 0].astype(np.int64)
        ends = starts + arr[:, 1].astype(np.int64)
        space = arr[:, 2].astype(bool)
        gaps = np.empty(n, dtype=bool)
        gaps[:-1] = ends[:-1] < starts[1:]
        gaps[-1] = bool(doc[-1].whitespace_)
        suffixes, inverse = np.unique(arr[:, 3], return_inverse=True)
        known, strings = _STOP_SUFFIX, doc.vocab.strings
        stops = np.empty(len(suffixes), dtype=bool)
        for pos, h in enumerate(suffixes.tolist()):
            stop = known.get(h)
            if stop is None:
                stop = known[h] = strings[h][-1:] in ".!?\u2026"
            stops[pos] = stop
        self.candidates = np.flatnonzero(stops[inverse.reshape(-1)] & ~space).tolist()
        self.gaps, self.spaces = gaps.tolist(), space.tolist()
        self._words: dict[int, str] = {}

    def word(self, i: int) -> str:
        w = self._words.get(i)
        if w is None:
            w = self._words[i] = self.doc[i].text
        return w


def _sentence_starts(tok: _Tokens) -> list[int]:
    """Token indices (> 0) that open a new sentence."""
    n = tok.n
    starts: list[int] = []
    done = 0
    for i in tok.candidates:
        if i < done:
            continue
        # The sentence would end after the token plus closing quotes/brackets glued to it.
        j = i + 1
        while j < n and not tok.gaps[j - 1] and tok.word(j) in _CLOSERS:
            j += 1
        k = j
        while k < n and tok.spaces[k]:
            k += 1
        if k >= n:
            break
        if not tok.gaps[j - 1] and k == j:
            continue  # no whitespace after the stop: "U.S.-based", "Inc.,", glued text
        if _ends_here(tok, i, k):
            starts.append(k)
        done = k
    return starts


def _opens_sentence(tok: _Tokens, k: int) -> bool:
    """Whether token k clearly opens a sentence (used after an ambiguous abbreviation)."""
    word = tok.word(k)
    after = tok.word(k + 1) if k + 1 < tok.n else ""
    if word in _STARTERS:
        # "Pub. L. No. 107-56": "No" (or "A.") glued to a stop is an abbreviation, not a start.
        return not (word in _ABBREVIATED_STARTERS and after == "." and not tok.gaps[k])
    if word in _OPENING_QUOTES:
        return True  # '... Markets Inc. “Code” means ...'
    # "... Section 2.13. (c) If ...": an enumerator opens a new provision.
    return (
        word == "(" and k + 2 < tok.n and tok.word(k + 2) == ")" and bool(_REF_NUMBER.match(after))
    )


def _ends_here(tok: _Tokens, i: int, k: int) -> bool:
    """Whether the terminal token at i ends its sentence, the next word being token k."""
    word = tok.word(i)
    nxt = tok.word(k)
    if word in _TERMINAL and word != ".":
        # "!", "?" and ellipses end a sentence unless the text goes on in lower case.
        if word in {"..", "...", "\u2026"}:
            return nxt[:1].isupper()
        return not _is_lower_start(nxt)
    if word == ".":
        if i == 0 or tok.gaps[i - 1] or tok.spaces[i - 1]:
            return not _is_lower_start(nxt)  # a stray " ." after a space
        prev = tok.word(i - 1)
        if _REF_NUMBER.match(prev) and i > 1 and tok.word(i - 2).lower().rstrip(".") in _NUMBERED:
            return _opens_sentence(tok, k)  # "Note 3. Revenue", "Item 7. Management's ..."
    else:
        # The tokenizer kept the stop: "Inc.", "U.S.", "1A.", "EMEA.".
        prev = word[:-1]
        if (
            i > 0
            and any(c.isdigit() for c in prev)
            and tok.word(i - 1).lower().rstrip(".") in _NUMBERED
        ):
            return _opens_sentence(tok, k)  # "Item 1A. Risk Factors"
    abbr = prev.lower() + "."
    acronym = len(prev) >= 3 and prev.isupper()  # "the SEC.", "EMEA.": not "Sec." or "Dec."
    if abbr in _NEVER_END and not acronym:
        return False
    if abbr in _MAY_END or _ACRONYM.match(abbr) or (len(prev) == 1 and prev.isalpha()):
        return _opens_sentence(tok, k)  # "U.S.", "Inc.", "INC.", initials ("J. Smith")
    if acronym:
        return not _is_lower_start(nxt)
    if abbr in _BEFORE_NUMBER:
        return not nxt[:1].isdigit() and _opens_sentence(tok, k)
    return not _is_lower_start(nxt)


class FinancialSentencizer:
    """spaCy component: rule-based sentence starts for financial report prose."""

    def __init__(self, name: str = COMPONENT) -> None:
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        """Set `Token.is_sent_start` on one doc."""
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 256) -> Iterator[Doc]:
        """Set sentence starts on a stream of docs."""
        for doc in stream:
            yield self(doc)

    def predict(self, docs: Sequence[Doc]) -> list[list[int]]:
        """Per doc, the token indices that open a sentence (0 included for non-empty docs)."""
        out: list[list[int]] = []
        for doc in docs:
            if not len(doc):
                out.append([])
                continue
            out.append([0, *_sentence_starts(_Tokens(doc))])
        return out

    def set_annotations(self, docs: Sequence[Doc], starts: Sequence[list[int]]) -> None:
        """Write the predicted starts as `SENT_START` (1 start, -1 inside a sentence)."""
        for doc, idx in zip(docs, starts, strict=True):
            if not len(doc):
                continue
            arr = np.full((len(doc), 1), -1, dtype="int64")
            arr[idx, 0] = 1
            doc.from_array([SENT_START], arr.astype("uint64"))  # type: ignore[arg-type]


@Language.factory(COMPONENT)
def _make_financial_sentencizer(nlp: Language, name: str) -> FinancialSentencizer:
    return FinancialSentencizer(name)


def make_nlp(options: SentenceOptions) -> Language:
    """A blank English pipeline with the financial sentence rules; nothing is downloaded."""
    del options  # the rules have no settings yet; the signature is kept for the pipeline
    nlp = spacy.blank("en")
    nlp.add_pipe(COMPONENT)
    return nlp


_NLP_CACHE: dict[str, Language] = {}


def _default_nlp(options: SentenceOptions) -> Language:
    key = options.model_dump_json()
    if key not in _NLP_CACHE:
        _NLP_CACHE[key] = make_nlp(options)
    return _NLP_CACHE[key]


# ---------------------------------------------------------------------------------------------
# Section headings -> normalised section types
# ---------------------------------------------------------------------------------------------

# First match wins, so narrower phrases come before the broad ones they contain
# ("Notes to the Financial Statements" is notes, "Opinion on the Financial Statements" is the
# auditor's report, "Statements of Cash Flows" is a statement, not liquidity).
_SECTION_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("forward_looking", r"forward[- ]looking|cautionary (note|statement)|safe harbou?r"),
        ("going_concern", r"going concern"),
        (
            "auditors_report",
            r"report of (the )?independent|independent (registered|auditor)"
            r"|auditor'?s'? report|audit report|registered public accounting"
            r"|opinions? on (the )?(consolidated )?financial statements"
            r"|opinions? on (the company's )?internal control"
            r"|basis for (the )?opinion|(critical|key) audit matters?",
        ),
        ("subsequent_events", r"subsequent events?|events after the (balance sheet|reporting)"),
        ("legal_proceedings", r"legal proceedings|litigation"),
        ("market_risk", r"market risk"),
        (
            "risk_factors",
            r"risk factors|principal risks|risks? (related|relating) to"
            r"|risk management|\brisks and uncertainties|\brisks$",
        ),
        (
            "notes",
            r"notes to (the )?(consolidated |condensed |group |company )*financial"
            r"|^note \d+",
        ),
        (
            "financial_statements",
            r"financial statements|(?<!off-)(?<!off )balance sheets?"
            r"|income statements?"
            r"|statements? of (consolidated )?(operations|income|earnings"
            r"|cash flows?|comprehensive|financial (position|condition)"
            r"|changes in|stockholders|shareholders|equity)",
        ),
        (
            "management_discussion",
            r"management'?s discussion|\bmd&a\b|management discussion"
            r"|operating and financial review|results of operations"
            r"|financial review|performance review",
        ),
        ("liquidity", r"liquidity|capital resources|cash flows?\b|funding and capital"),
        ("outlook", r"outlook|guidance|looking ahead|prospects|future developments"),
        ("critical_accounting", r"critical accounting"),
        ("controls_procedures", r"controls and procedures|internal control"),
        ("corporate_governance", r"corporate governance|^governance"),
        ("remuneration", r"remuneration|executive compensation"),
        (
            "shareholder_letter",
            r"letter (to|from)|chairman'?s|chief executive'?s|ceo'?s"
            r"|message from",
        ),
        ("highlights", r"highlights|at a glance|key figures"),
        ("sustainability", r"sustainab|\besg\b|environmental, social|climate"),
        ("business", r"^item \d+\.?\s*business\b|^business( overview)?$|^our business$"),
    )
)

# A section type carries over to the unrecognised headings below it only from a top-level
# heading ("Item 1A. Risk Factors" covers "Operational Risks"; "Item 9. Changes in ..." ends
# "Notes") or from a major part of a report; narrower types (liquidity, outlook, ...) stay with
# their own heading, so "Liquidity" does not leak into the next subsection.
_MAJOR_TYPES = frozenset(
    {
        "risk_factors",
        "management_discussion",
        "financial_statements",
        "notes",
        "auditors_report",
        "business",
    }
)
# Once a report shows Item/Part structure (a 10-K), only these parts of Item 8 may open a new
# top-level type without an Item heading; "Risks and Uncertainties" inside a note stays local.
_MAJOR_IN_ITEMS = frozenset({"financial_statements", "notes", "auditors_report"})
_TOP_LEVEL = re.compile(
    r"^(part\s+[ivx]+\b|item\s+\d+[a-z]?\b|article\s+\w+|exhibit\b|schedule\b|signatures?\b"
    r"|appendix\b|annex\b)",
    re.IGNORECASE,
)
_PART = re.compile(r"^part\s+[ivx]+\b", re.IGNORECASE)
_ITEM = re.compile(r"^(part\s+[ivx]+|item\s+\d)", re.IGNORECASE)
# Titles that do not open a section: contents pages, and table column headers that look like
# titles ("Year Ended", "Outstanding", "(In millions)").
_NOT_A_SECTION = re.compile(
    r"^(table of )?contents$|^index$|^\(?continued\)?$"
    r"|^(fiscal )?(years?|quarters?|(three|six|nine|twelve) months|periods?|weeks?) ended\b"
    r"|^as of\b|^\(?in (millions|thousands|billions)\b"
    r"|^(outstanding|value|amount|total|balance|shares|number|price|date|percent|change"
    r"|description|name|title)$",
    re.IGNORECASE,
)


def classify_section(heading: str) -> str | None:
    """The normalised section type of a heading (risk_factors, notes, ...), or None."""
    text = " ".join(heading.replace("\u2019", "'").split())
    for name, pattern in _SECTION_TYPES:
        if pattern.search(text):
            return name
    return None


# ---------------------------------------------------------------------------------------------
# Page text -> units (headings, list items, paragraphs, table rows)
# ---------------------------------------------------------------------------------------------

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
_SMALL_WORDS = _words("""
    a an and as at by for from in into of on or per the to with within vs vs. its our their
    &
""")
_FURNITURE = re.compile(r"^(page|p\.|pg\.?)?\s*[a-z]?-?\d+(\s*(of|/)\s*\d+)?$", re.IGNORECASE)
_ENUMERATOR = re.compile(r"^[(\[]?([ivxlc]{1,6}|[a-z]|\d{1,3})[)\].]?[.:]?$", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
_FIGURE = re.compile(r"[$\u20ac\u00a3%]|\d,\d{3}")
_BRACKETS = "[](){}\"'\u201c\u201d\u2018\u2019"
_ENDS_SENTENCE = frozenset(".!?:;\u2026")
_CLOSING_CHARS = "\"')]}\u201d\u2019\u00bb*"
_FUNCTION_WORDS = _words("""
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


def _has_word(text: str) -> bool:
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
    core = line.rstrip(_CLOSING_CHARS)
    return bool(core) and core[-1] in _ENDS_SENTENCE


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
    if not significant or figures > len(significant) or not _has_word(line):
        return False
    capitalised = sum(1 for w in significant if w[0].isupper())
    return capitalised / len(significant) >= 0.75


class _Segmenter:
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
                s, e = _strip_span(self.text, block.start, block.end)
                if s < e:
                    units.append(_Unit("heading", s, e))
            elif block.kind == "list_item":
                s, e = _strip_span(self.text, block.start, block.end)
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
            if not _has_word(line):
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
                and not _open_end(text[cur.start : cur.end])
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


def _open_end(text: str) -> bool:
    """Whether text stops where a sentence cannot ("... which raise our", "... and,")."""
    core = text.rstrip()
    return (
        not core or core[-1] in ",-\u2013\u2014/&" or (core.split()[-1].lower() in _FUNCTION_WORDS)
    )


def _strip_span(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _body_blocks(page: Page) -> list[Block]:
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


# ---------------------------------------------------------------------------------------------
# Sentences across units and pages
# ---------------------------------------------------------------------------------------------

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
    core = tail.rstrip(_CLOSING_CHARS + " ")
    if not core or core[-1] in _ENDS_SENTENCE:
        return False
    first = head[:1]
    if first.islower() or first.isdigit() or first in "($\u20ac\u00a3%" or _open_end(core):
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
    return _continues(texts[tp][ts:te], texts[hp][hs:he], strict=kind == "list_item")


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
                a, b = _strip_span(texts[p], s + lo - off, s + hi - off)
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
    nlp = nlp or _default_nlp(options)
    ordered = sorted(pages, key=lambda p: p.page_no)
    texts = [p.text for p in ordered]
    page_units = [_Segmenter(p).units(_body_blocks(p)) for p in ordered]

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
            heading = " ".join(texts[pi][u.start : u.end].split()) if u.kind == "heading" else None
            for s, e in spans.get((pi, ui), [(u.start, u.end)]):
                s, e = _strip_span(texts[pi], s, e)
                if s < e and _has_word(texts[pi][s:e]):
                    sents.append(
                        _Sent(kind, [(pi, s, e)], (pi, ui), heading, {"unit_kind": u.kind})
                    )
        per_page.append(sents)

    _join_blocks(texts, per_page)
    _join_page_breaks(ordered, texts, per_page)

    flat = [
        piece
        for sents in per_page
        for sent in sents
        for piece in _split_long(sent, texts, options.max_chars)
    ]
    return _records(ordered, texts, flat)


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
        if sent.heading_text and sent.unit != seen_unit and _is_section(sent.heading_text):
            seen_unit = sent.unit
            section = sent.heading_text
            found = classify_section(section)
            if _PART.match(section) and not found:
                pass  # "PART II" only groups Items; each Item sets its own type
            elif _TOP_LEVEL.match(section):
                top_type = found
                itemised = itemised or bool(_ITEM.match(section))
            elif found in _MAJOR_IN_ITEMS or (
                found in _MAJOR_TYPES and (not itemised or section.isupper())
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


def _is_section(heading: str) -> bool:
    return _has_word(heading) and not _NOT_A_SECTION.match(heading)
