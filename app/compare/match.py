"""Sentences paired between two years: unchanged (one normal form), edited (similar words),
and what is left over is new (this year only) or removed (last year only).

1. Exact pass: sentences with one normal form (`app.compare.text.normal_form`) pair up, first
   within their aligned section in reading order, then across sections (a paragraph that
   moved); repeated sentences pair one to one.
2. Similar pass: of what is left, pairs whose word similarity (`text.similarity` of their
   words, figures and dates left out: 2 x common words / all words, the measure the word diff
   shows) reaches `edit_similarity` pair up as edited, most similar first (a sentence of
   figures and dates only, such as an exhibit list's "4.2 February 5, 2015", is never edited:
   it has no words to share); a pair within one aligned section is preferred to a pair across
   sections unless the latter is more similar by `SAME_SECTION_BONUS`.

Headings pair with headings only, other kinds with each other (a sentence may become a list
item). Scoring every pair of two 10-Ks (5,000 x 5,000 sentences) costs seconds, so candidates
come from a sparse product of word counts first: 2 x min(counts of a against words of b, words
of a against counts of b) bounds the common words of a pair from above, and only pairs whose
bound reaches the threshold are scored. The bound never drops a pair that would match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Indel
from scipy import sparse

from app.compare.text import content_words
from app.records import Sentence

SAME_SECTION_BONUS = 0.05
_CHUNK_ROWS = 512  # prior sentences per sparse product: bounds memory on the largest pairs


@dataclass(frozen=True, slots=True)
class Pair:
    """Two sentences (positions in each year's sentence list) found to be one disclosure."""

    prior: int
    current: int
    exact: bool
    similarity: float


@dataclass(slots=True)
class Matching:
    """The pairs found, and the positions of each year left unpaired."""

    pairs: list[Pair]
    removed: list[int]
    new: list[int]
    candidates: int = 0
    """Pairs scored in the similar pass (after the bound)."""


def _family(sentence: Sentence) -> str:
    return "heading" if sentence.kind == "heading" else "text"


def match_sentences(
    prior: Sequence[Sentence],
    current: Sequence[Sentence],
    prior_words: Sequence[tuple[str, ...]],
    current_words: Sequence[tuple[str, ...]],
    prior_sections: Sequence[str],
    current_sections: Sequence[str],
    *,
    edit_similarity: float,
) -> Matching:
    """Pair the sentences of two years (see the module docstring)."""
    pairs: list[Pair] = []
    # 1. exact: one normal form (and one family of kinds)
    by_form: dict[tuple[str, tuple[str, ...]], tuple[list[int], list[int]]] = defaultdict(
        lambda: ([], [])
    )
    for i, (s, w) in enumerate(zip(prior, prior_words, strict=True)):
        by_form[(_family(s), w)][0].append(i)
    for j, (s, w) in enumerate(zip(current, current_words, strict=True)):
        by_form[(_family(s), w)][1].append(j)
    for olds, news in by_form.values():
        if not olds or not news:
            continue
        free_old, free_new = list(olds), list(news)
        if len(olds) > 1 or len(news) > 1:
            for j in news:  # same section first, in reading order
                same = next((i for i in free_old if prior_sections[i] == current_sections[j]), None)
                if same is not None:
                    pairs.append(Pair(same, j, True, 1.0))
                    free_old.remove(same)
                    free_new.remove(j)
        for i, j in zip(free_old, free_new, strict=False):
            pairs.append(Pair(i, j, True, 1.0))
    paired_old = {p.prior for p in pairs}
    paired_new = {p.current for p in pairs}

    # 2. similar: scored candidates, most similar first
    scored: list[tuple[float, int, int, float]] = []
    n_candidates = 0
    for family in ("text", "heading"):
        olds = [i for i, s in enumerate(prior) if i not in paired_old and _family(s) == family]
        news = [j for j, s in enumerate(current) if j not in paired_new and _family(s) == family]
        if not olds or not news:
            continue
        found, n = _similar(
            [content_words(prior_words[i]) for i in olds],
            [content_words(current_words[j]) for j in news],
            edit_similarity,
        )
        n_candidates += n
        for r, c, sim in found:
            i, j = olds[r], news[c]
            bonus = SAME_SECTION_BONUS if prior_sections[i] == current_sections[j] else 0.0
            scored.append((sim + bonus, j, i, sim))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    for _, j, i, sim in scored:
        if i in paired_old or j in paired_new:
            continue
        paired_old.add(i)
        paired_new.add(j)
        pairs.append(Pair(i, j, False, sim))
    pairs.sort(key=lambda p: (p.current, p.prior))
    return Matching(
        pairs,
        [i for i in range(len(prior)) if i not in paired_old],
        [j for j in range(len(current)) if j not in paired_new],
        n_candidates,
    )


def _similar(
    a: Sequence[tuple[str, ...]], b: Sequence[tuple[str, ...]], threshold: float
) -> tuple[list[tuple[int, int, float]], int]:
    """(row in a, row in b, similarity) for every pair at or above the threshold."""
    vocab: dict[str, int] = {}
    a_ids = [[vocab.setdefault(w, len(vocab)) for w in ws] for ws in a]
    b_ids = [[vocab.setdefault(w, len(vocab)) for w in ws] for ws in b]
    a_len = np.array([len(x) for x in a_ids], dtype=np.float64)
    b_len = np.array([len(x) for x in b_ids], dtype=np.float64)
    b_count, b_has = _counts(b_ids, len(vocab))
    b_has_t, b_count_t = b_has.T.tocsr(), b_count.T.tocsr()
    found: list[tuple[int, int, float]] = []
    n_candidates = 0
    for start in range(0, len(a_ids), _CHUNK_ROWS):
        a_count, a_has = _counts(a_ids[start : start + _CHUNK_ROWS], len(vocab))
        bound = (a_count @ b_has_t).minimum(a_has @ b_count_t).tocoo()
        rows, cols = bound.row, bound.col
        keep = 2 * bound.data >= threshold * (a_len[rows + start] + b_len[cols]) - 1e-9
        for r, c in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
            n_candidates += 1
            sim = Indel.normalized_similarity(a_ids[r + start], b_ids[c], score_cutoff=threshold)
            if sim >= threshold:
                found.append((r + start, c, float(sim)))
    return found, n_candidates


def _counts(rows: Sequence[list[int]], n_cols: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Word-count and word-presence matrices of word-id lists (one row each)."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.fromiter((w for r in rows for w in r), dtype=np.int64, count=int(indptr[-1]))
    data = np.ones(len(indices), dtype=np.int32)
    count = sparse.csr_matrix((data, indices, indptr), shape=(len(rows), n_cols))
    count.sum_duplicates()
    has = count.copy()
    has.data[:] = 1
    return count, has
