"""The spaCy side of sentence splitting: spaCy's blank English tokenizer plus the rule-based
`financial_sentencizer` component (abbreviation, reference-word and sentence-starter lists, and
the boundary rules that read them from token arrays), `make_nlp` and a cache of pipelines per
options. Its own module because it is the only part that works on spaCy tokens; the others work
on character spans of page text. Lowest module of the package: it imports none of the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from app.config import SentenceOptions

if TYPE_CHECKING:  # spaCy is imported when a pipeline is made, not with the package
    from spacy.language import Language
    from spacy.tokens import Doc

COMPONENT = "financial_sentencizer"
"""Name of the rule-based sentence component in `make_nlp`'s pipeline."""


def words(listing: str) -> frozenset[str]:
    return frozenset(listing.split())


# Never end a sentence: titles and Latin/short forms that always lead into more words.
_NEVER_END = words("""
    mr. mrs. ms. messrs. dr. prof. st. mt. gen. gov. sen. rep. hon. rev. e.g. i.e. eg. ie. vs. v.
    cf. approx. appx. ca. incl. excl. esp. viz. resp. dept. ave. blvd. ref. abt. pub. stat.
""")

# End a sentence only when no number follows ("No. 5", "Jan. 31, 2022", "fig. 3", "pp. 12-14").
_BEFORE_NUMBER = words("""
    no. nos. nr. fig. figs. p. pp. art. sec. para. vol. ch. tab. ex.
    jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec.
""")

# May end a sentence ("... of Apple Inc. The company ..."): split only before a sentence starter.
_MAY_END = words("""
    inc. corp. co. cos. ltd. plc. llc. llp. lp. l.p. n.a. s.a. n.v. b.v. ag. se. gmbh. bhd. pty.
    pte. sa. nv. bv. kk. spa. sarl. sas. oyj. ab. asa.
    etc. jr. sr. al. est. yr. yrs. mo. hr. hrs. bn. mn. mln. m. k. bros. intl. int'l. dept. govt.
""")

# A number after one of these words is a reference, not the end of a sentence ("Note 3. Revenue").
_NUMBERED = words("""
    note notes item items section sections part article schedule exhibit figure fig table chapter
    page pages appendix annex step phase level tier stage rule paragraph clause no number class
    series round
""")

# Capitalised words that open a sentence in reports; after an ambiguous abbreviation only these
# start a new one ("U.S. GAAP" stays whole, "in the U.S. We expect" splits).
_STARTERS = words("""
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
        from spacy.attrs import IDX, IS_SPACE, LENGTH, SUFFIX

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
        from spacy.attrs import SENT_START

        for doc, idx in zip(docs, starts, strict=True):
            if not len(doc):
                continue
            arr = np.full((len(doc), 1), -1, dtype="int64")
            arr[idx, 0] = 1
            doc.from_array([SENT_START], arr.astype("uint64"))  # type: ignore[arg-type]


def _make_financial_sentencizer(nlp: Language, name: str) -> FinancialSentencizer:
    return FinancialSentencizer(name)


def make_nlp(options: SentenceOptions) -> Language:
    """A blank English pipeline with the financial sentence rules; nothing is downloaded."""
    import spacy
    from spacy.language import Language

    del options  # the rules have no settings yet; the signature is kept for the pipeline
    if not Language.has_factory(COMPONENT):
        Language.factory(COMPONENT, func=_make_financial_sentencizer)
    nlp = spacy.blank("en")
    nlp.add_pipe(COMPONENT)
    return nlp


_NLP_CACHE: dict[str, Language] = {}


def default_nlp(options: SentenceOptions) -> Language:
    key = options.model_dump_json()
    if key not in _NLP_CACHE:
        _NLP_CACHE[key] = make_nlp(options)
    return _NLP_CACHE[key]
