"""Which units are no sentences: table rows, table captions, broken headings and page furniture.

Layout blocks and line heuristics (`segment`) catch most tables, headers and footers before
spaCy sees any text, but text layers still hand over pieces of them as paragraphs: a table's
label column read as one line ("REVENUE Net sales Membership fees Total revenue"), a column
header ("Years Ended December 31,"), a caption ("(dollars in millions, except per share
data)"), a running footer with its page number ("2021 FORM 10-K 23", "Page |23"). They are
kept and shown with their kind, and kept out of the tone (`app.records.TONE_KINDS`).

The rules read the shape of a unit, not the words of one report, so they hold for 10-Ks,
annual reports and earnings releases alike:

* furniture: a page label ("Page 3 of 40", "Page |23", "Annual Report 2024 | 17"), a bare date
  line, or a short text that recurs on many pages with only its figures changing
  (`repeated_furniture`);
* table row: figures where the words should be (half the tokens, or two or more figures
  closing a label), a label column (two or more labels run together: a lower-case word
  followed by a capitalised one, with hardly a function word), a column header of periods
  ("Three Months Ended ..."), a caption of units ("in millions"), a phrase printed twice (one
  header per column), or a line wholly in brackets ("(unaudited)");
* heading: a short all-capitals line without a stop ("ITEM 4. MINE SAFETY DISCLOSURES").

A unit that ends like a sentence (".", "!", "?") is a table row only by its figures, never by
its words. A title from layout is a row only by closing figures, and keeps its kind when it
names a section. Imports `sentencizer`, `segment` and `sections`; `assemble` imports it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from app.records import SentenceKind
from app.sentences.sections import classify_section
from app.sentences.segment import has_word
from app.sentences.sentencizer import words

# A figure in a row: "(1,690)", "3.2%", "(8)pts", "12x"; a dash or "n/a" stands for a nil figure
# only among figures ("Net sales — 1,234"), never between words ("NOTE 2 — INVENTORIES").
_FIGURE = re.compile(
    r"^[(\[+\-\u2013\u2014$\u20ac\u00a3\u00a5]*\d[\d.,]*\)?"
    r"(?:%|pts?|bps?|x|bn|m)?[)\]%*,;]*$",
    re.IGNORECASE,
)
_NIL = re.compile(r"^(?:[\u2013\u2014\-]+|n/?a|nm|\*+|\.{3,})$", re.IGNORECASE)
_CURRENCY = frozenset("$\u20ac\u00a3\u00a5")
_PAGE_LABEL = re.compile(
    r"^(?:page|pg\.?|p\.)\s*[|:#.\-\u2013]?\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$"
    r"|^[\-\u2013\u2014]\s*\d{1,4}\s*[\-\u2013\u2014]$",
    re.IGNORECASE,
)
# "Annual Report 2024 | 17", "17 | Acme plc": a short title and a page number apart by a bar.
_BAR_PAGE = re.compile(r"^(?:.{2,60}?\s*\|\s*\d{1,4}|\d{1,4}\s*\|\s*.{2,60})$")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE_LINE = re.compile(
    rf"^(?:(?:{_MONTHS})\.?\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{4}})$",
    re.IGNORECASE,
)
_PERIODS = re.compile(
    r"^(?:for\s+the\s+)?(?:(?:three|six|nine|twelve|\d{1,2})[\s-]+months?|(?:fiscal\s+)?years?"
    r"|quarters?|(?:\d{1,2}|thirteen|twenty-six|fifty-two|fifty-three)[\s-]+weeks?|periods?)"
    r"\s+(?:ended|ending)\b",
    re.IGNORECASE,
)
_UNITS = re.compile(
    r"\bin\s+(?:millions|thousands|billions|000s?)\b|\bexcept\s+(?:per[\s-]share|par\s+value"
    r"|share|percentages)",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"^\([^()]{1,60}\)$")
_LEADING_CAPTION = re.compile(
    r"^\((?:[^()]{0,40}?\s)?in\s+(?:millions|thousands|billions)\b[^()]*\)", re.IGNORECASE
)
_FUNCTION_WORDS = words("""
    a an the of to in on at for from by with and or but nor as that which who whose whom than
    our its their his her your my this these those such into onto upon over under between
    among against about after before during through including excluding within without per
    is are was were be been being has have had will would shall should may might can could
    not no also both either neither whether if when where while because although though we it
    they he she you i there here what how
""")
# A verb that only prose carries; a caption or a column of labels has none.
_AUXILIARIES = words("""
    is are was were be been being has have had will would shall should may might can could
    does did
""")
_ENDS = (".", "!", "?", ".\u201d", '."', ".)", "?\u201d", '?"')
_LETTERS = re.compile(r"[^\W\d_]")
_HEADING_WORDS = 14


def _figures(tokens: list[str]) -> tuple[int, int]:
    """(figures among the tokens, figures and nils closing the unit); a currency sign alone is
    skipped, and a closing date ("... ended May 28, 2023") is words, not two figures."""
    real = [t for t in tokens if t not in _CURRENCY]
    figures = sum(1 for t in real if _FIGURE.match(t))
    tail = real
    if len(real) >= 3 and _DATE_LINE.match(" ".join(real[-3:]).rstrip(",;.")):
        tail = real[:-3]
    trailing = 0
    for tok in reversed(tail):
        if not (_FIGURE.match(tok) or _NIL.match(tok)):
            break
        trailing += 1
    return figures, trailing


def _restarts(tokens: list[str]) -> int:
    """How often a capitalised word follows a plain lower-case one: labels run together
    ("Net sales Membership fees Total revenue") restart, prose restarts at proper nouns only."""
    n = 0
    for prev, tok in zip(tokens, tokens[1:], strict=False):
        word = tok.strip("\"'\u201c\u2018(")
        if (
            prev.isalpha()
            and prev.islower()
            and prev not in _FUNCTION_WORDS
            and word[:1].isupper()
            and word not in ("I", "I'm")
        ):
            n += 1
        elif prev.isalpha() and prev.isupper() and len(prev) > 1 and tok.istitle() and len(tok) > 1:
            n += 1  # an all-capitals caption before its labels ("CURRENT ASSETS Cash and ...")
    return n


def _printed_twice(tokens: list[str]) -> bool:
    half = len(tokens) // 2
    return len(tokens) >= 4 and len(tokens) % 2 == 0 and tokens[:half] == tokens[half:]


def is_furniture(text: str) -> bool:
    """A page label or a bare date line (repeats across pages: `repeated_furniture`)."""
    core = " ".join(text.split())
    return bool(
        _PAGE_LABEL.match(core)
        or (_BAR_PAGE.match(core) and len(core.split()) <= 10 and not core.endswith(_ENDS))
        or _DATE_LINE.match(core)
    )


def is_table_row(text: str, *, heading: bool = False) -> bool:
    """Whether a unit reads as part of a table rather than as prose (module docstring).

    `heading`: layout saw a title. Then only closing figures make it a row ("8.2.7 2018
    Annual Incentive" is numbered, "Total revenue 1,234 1,100" is a row), and a title that
    names a section keeps it ("Condensed Consolidated Balance Sheets (In thousands)")."""
    core = " ".join(text.split())
    tokens = core.split()
    if not tokens:
        return False
    figures, trailing = _figures(tokens)
    n = len([t for t in tokens if t not in _CURRENCY])
    if figures >= 2 and trailing >= 2 and not core.endswith("."):
        return True
    if heading and classify_section(core) is not None:
        return False
    if not heading and figures >= 2 and figures * 2 >= n and not core.endswith("."):
        return True
    if core.endswith(_ENDS) or core.endswith(":"):
        # a sentence's stop, or the colon of a lead-in ("The following table shows ... (in
        # millions):"): its words are prose, whatever their case
        return False
    if _BRACKETED.match(core) or _LEADING_CAPTION.match(core):
        return True  # "(unaudited)", "(In millions, except ...) Net sales ...", "(Continued)"
    if any(t.islower() and t.strip(",;:") in _AUXILIARIES for t in tokens):
        return False  # "The activity was recognized ... as follows: (Dollars in millions)"
    if len(tokens) <= 40 and (_UNITS.search(core) or _PERIODS.match(core)):
        return True
    if _printed_twice(tokens):
        return True
    plain = [t.lower().strip(",;:()") for t in tokens]
    function = sum(1 for t in plain if t in _FUNCTION_WORDS)
    restarts = _restarts(tokens)
    return restarts >= 2 and restarts * 5 >= len(tokens) and function * 5 <= len(tokens)


def _is_caps_heading(text: str) -> bool:
    core = " ".join(text.split())
    letters = _LETTERS.findall(core)
    return (
        len(core.split()) <= _HEADING_WORDS
        and len(letters) >= 4
        and core.upper() == core
        and not core.endswith((".", ",", ";", ":", "!", "?"))
        and has_word(core)
    )


def classify_text(text: str, kind: SentenceKind) -> SentenceKind:
    """The kind of one unit, given the kind layout and line heuristics gave it."""
    if is_furniture(text):
        return "furniture"
    if is_table_row(text, heading=kind == "heading"):
        return "table_row"
    if kind == "sentence" and _is_caps_heading(text):
        return "heading"
    return kind


def _key(text: str) -> str:
    """A unit's text with its figures blanked: "2021 FORM 10-K 23" and "... 24" share it."""
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def repeated_furniture(units: Iterable[tuple[int, str]], n_pages: int) -> frozenset[str]:
    """Keys of short texts that recur on many pages (running headers and footers that ingest
    did not catch, often because their page number changes): on at least three pages and at
    least a fifth of them. `units` holds (page number, text) of the units that may be one."""
    pages: defaultdict[str, set[int]] = defaultdict(set)
    for page_no, text in units:
        if len(text.split()) <= 12 and not text.rstrip().endswith(_ENDS):
            pages[_key(text)].add(page_no)
    need = max(3, -(-n_pages // 5))
    return frozenset(k for k, found in pages.items() if len(found) >= need)


def is_repeated(text: str, keys: frozenset[str]) -> bool:
    return _key(text) in keys
