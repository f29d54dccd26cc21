"""Sentence text as the comparison sees it: a normal form, its words, its figures, word diffs.

Two sentences are the same disclosure when their normal forms are equal: case, typography,
punctuation and whitespace aside, and every figure and date replaced by a placeholder, so
"Revenue fell 12% to $4.1 billion in 2020." and "Revenue fell 8% to $4.5 billion in 2019." are
one sentence whose numbers changed. Figures and dates are found by one pattern, in reading
order, so two sentences with equal normal forms have their figures at the same places and
`changed_numbers` can pair them one by one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from rapidfuzz.distance import Indel

from app.records import NumberChange, WordDiff

NUMBER = "#"
DATE = "#date"

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
# A date first (it holds numbers), then a figure: "December 31, 2019", "31 March 2020",
# "3/31/2020", "2020-03-31"; "$1,234.5", "(1,690)", "3.2%", "2019", "10" in "10-K".
_FIGURE = re.compile(
    rf"(?P<date>\b{_MONTH}\.?(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?,?\s+\d{{4}}\b"
    rf"|\b\d{{1,2}}\s+{_MONTH}\.?,?\s+\d{{4}}\b"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b)"
    r"|(?P<number>[$\u20ac\u00a3\u00a5]?\(?\d+(?:[.,]\d+)*\)?%?)",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_TOKEN = re.compile(r"#date|#|[^\W_]+")
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)
# Headings: numbering and the Item / Part / Note prefixes of a 10-K are not part of the title.
_HEADING_PREFIX = re.compile(
    r"^\s*(?:(?:part|item|note|section|article)\s+(?:\d+[a-z]?|[ivxlc]+)\b\.?"
    r"|\d+(?:\.\d+)*[.)]?(?=\s)|[ivxlc]+[.)](?=\s)|\([a-z0-9]{1,4}\))\s*[-:.]?\s*",
    re.IGNORECASE,
)


def _masked(text: str) -> tuple[str, list[str]]:
    """The text with figures and dates replaced by placeholders, and the figures in order."""
    found: list[str] = []

    def mask(m: re.Match[str]) -> str:
        found.append(m.group(0))
        return f" {DATE} " if m.group("date") else f" {NUMBER} "

    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    if not _DIGIT.search(text):  # every figure and date holds a digit; most prose has none
        return text, found
    return _FIGURE.sub(mask, text), found


def words(text: str) -> tuple[str, ...]:
    """The sentence's normalised words: case folded, figures and dates as placeholders."""
    masked, _ = _masked(text)
    return tuple(_TOKEN.findall(masked.casefold()))


def normal_form(text: str) -> str:
    """The key two sentences share when only figures, dates, case, punctuation or spacing
    differ."""
    return " ".join(words(text))


def figures(text: str) -> list[str]:
    """The figures and dates of a sentence, in reading order, as printed."""
    return _masked(text)[1]


def changed_numbers(prior: str, current: str) -> tuple[NumberChange, ...]:
    """The figures that differ between two sentences of one normal form, prior -> current."""
    a, b = figures(prior), figures(current)
    if len(a) != len(b):  # not one normal form after all: pair what lines up
        ops = Indel.opcodes(a, b)
        a = [x for op in ops if op.tag != "equal" for x in a[op.src_start : op.src_end]]
        b = [x for op in ops if op.tag != "equal" for x in b[op.dest_start : op.dest_end]]
        if len(a) != len(b):
            return (NumberChange(prior=", ".join(a), current=", ".join(b)),) if a or b else ()
    return tuple(
        NumberChange(prior=x, current=y)
        for x, y in zip(a, b, strict=True)
        if x.strip() != y.strip()
    )


def word_diff(prior: str, current: str) -> tuple[WordDiff, ...]:
    """The word-level difference prior -> current: runs of kept, deleted and inserted words."""
    a, b = prior.split(), current.split()
    runs: list[WordDiff] = []

    def add(op: str, tokens: Sequence[str]) -> None:
        if not tokens:
            return
        text = " ".join(tokens)
        if runs and runs[-1].op == op:
            runs[-1] = WordDiff(op=op, text=f"{runs[-1].text} {text}")  # type: ignore[arg-type]
        else:
            runs.append(WordDiff(op=op, text=text))  # type: ignore[arg-type]

    # Deletions before insertions inside a changed stretch read as "was X, now Y".
    pending_delete: list[str] = []
    pending_insert: list[str] = []
    for op in Indel.opcodes(a, b):
        if op.tag == "equal":
            add("delete", pending_delete)
            add("insert", pending_insert)
            pending_delete, pending_insert = [], []
            add("equal", a[op.src_start : op.src_end])
        elif op.tag == "delete":
            pending_delete.extend(a[op.src_start : op.src_end])
        else:
            pending_insert.extend(b[op.dest_start : op.dest_end])
    add("delete", pending_delete)
    add("insert", pending_insert)
    return tuple(runs)


def diff_text(diff: Sequence[WordDiff]) -> str:
    """A word diff as plain text: [-deleted-] {+inserted+} (as `git diff --word-diff` prints)."""
    parts = []
    for run in diff:
        if run.op == "equal":
            parts.append(run.text)
        elif run.op == "delete":
            parts.append(f"[-{run.text}-]")
        else:
            parts.append(f"{{+{run.text}+}}")
    return " ".join(parts)


def heading_key(heading: str | None) -> str:
    """A heading as the years are matched on: its words, numbering and Item prefixes left out."""
    if not heading:
        return ""
    text = unicodedata.normalize("NFKC", heading).translate(_TYPOGRAPHY)
    previous = None
    while previous != text:
        previous, text = text, _HEADING_PREFIX.sub("", text, count=1)
    return " ".join(t for t in words(text) if t not in (NUMBER, DATE))


def content_words(tokens: Sequence[str]) -> tuple[str, ...]:
    """Normalised words without the figure and date placeholders."""
    return tuple(t for t in tokens if t not in (NUMBER, DATE))


def similarity(prior_words: Sequence[str], current_words: Sequence[str]) -> float:
    """The share of both sentences' words kept, in order: 2 x common words / all words (0-1).

    This is the normalised Indel similarity of the word sequences, the measure the word diff
    shows: at 0.5 the prior sentence survives whole in a current one up to three times its
    length, or half the words of two sentences of one length are common.
    """
    return float(Indel.normalized_similarity(prior_words, current_words))
