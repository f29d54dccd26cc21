"""Text repair inside a block: closing hyphenated line breaks, joining a block's lines with their
spans, spelling out ligature glyphs a font left unmapped, and the vocabulary both decisions rest
on. Its own module because it works on strings only, whichever reader produced them.
"""

from __future__ import annotations

import re

_HYPHENS = ("-", "\u00ad", "\u2010", "\x02")
_SOFT_HYPHENS = ("\u00ad", "\x02")
_CONJUNCTIONS = frozenset(("and", "or", "to", "en", "of", "tot", "und", "oder", "bis", "et", "ou"))
VOCAB_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W\d_]")
_LEAD_LETTERS = re.compile(r"[^\W\d_]+")
_LIGATURE_WORD = re.compile(r"[^\W\d_]*\ufffe[\w\ufffe]*")
_LIGATURES = ("fi", "ff", "fl", "ffi", "ffl")
_LIGATURE_TEXT = """
affect affected affecting affects afford affordable afflicted benefit benefits benefited
classified conflict conflicts deficit deficits define defined definition definitive difference
differences different differentiated differ differs difficult difficulties effect effective
effectively effects efficiency efficient effort efforts field figure figures file filed filing
final finally finance financed financial financially financing find finding findings firm
firms first fiscal fit five fixed flat fleet flexibility flexible flight floor flow flows
fluctuation fluctuations fluid fly identified identify influence inflation insufficient
justified modified notified off offer offered offering offerings offers office officer
officers offices official offset offsets offshore profit profitability profitable profits
qualified reaffirmed reflect reflected reflecting reflects refinance refinancing sacrifice
satisfied significant significantly specific specifically staff staffing sufficient
sufficiently tariff tariffs traffic unaffiliated affiliate affiliates affiliated outflow
outflows inflow inflows cashflow deflation unprofitable diversified certified certificate
"""
_LIGATURE_WORDS = frozenset(_LIGATURE_TEXT.split())
"""Words spelt with fi/ff/fl ligatures, to spell out glyphs a font left unmapped."""


def join_lines(lines: list[str], vocab: set[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join a block's lines with spaces, closing hyphenated breaks; spans of each line.

    "finan-" + "cial" becomes "financial"; the hyphen stays when the document writes the
    word with a hyphen elsewhere and never without ("value-" + "added" -> "value-added").
    """
    out = ""
    spans: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        start = len(out)
        out += line
        end = len(out)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (
            nxt
            and line.endswith(_HYPHENS)
            and len(line) >= 2
            and line[-2].isalpha()
            and nxt[:1].islower()
        ):
            if nxt.split(" ", 1)[0] in _CONJUNCTIONS and not line.endswith(_SOFT_HYPHENS):
                out += " "  # "short-" + "and long-term": the hyphen stands for a word part
            elif line.endswith(_SOFT_HYPHENS) or not _keeps_hyphen(line, nxt, vocab):
                out = out[:-1]
                end = len(out)
        elif nxt:
            out += " "
        spans.append((start, end))
    return out, spans


def fix_ligatures(text: str, vocab: set[str]) -> str:
    """Spell out ligatures whose glyph had no Unicode mapping ("\ufffers" -> "first")."""

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        for lig in _LIGATURES:
            candidate = word.replace("\ufffe", lig)
            key = candidate.lower().rstrip("s") if candidate.lower() not in vocab else ""
            if (
                candidate.lower() in vocab
                or candidate.lower() in _LIGATURE_WORDS
                or key in _LIGATURE_WORDS
            ):
                return candidate
        return word.replace("\ufffe", "fi")  # the most common ligature by far

    return _LIGATURE_WORD.sub(fix, text)


def _keeps_hyphen(line: str, nxt: str, vocab: set[str]) -> bool:
    head = line[:-1].rsplit(" ", 1)[-1].lower()
    tail_match = _LEAD_LETTERS.match(nxt)
    tail = tail_match.group(0).lower() if tail_match else ""
    return f"{head}-{tail}" in vocab and f"{head}{tail}" not in vocab
