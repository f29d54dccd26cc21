"""A sentence's SHAP features: the token groups of shap's Text partition tree, within words.

shap's Text masker hides sub-tokens (one mask token each) and builds its Partition hierarchy
with a heuristic over the tokens (word pieces first, then neighbours, reaching across commas,
connectors and sentence ends last: `shap.maskers._text.partition_tree`). Owen values depend on
that hierarchy, so a different word tree gives different values even at an unlimited budget.

Here the same tree is built over the same tokens, then cut at the coarsest nodes that lie inside
one whitespace word: those nodes are the features ("loss" and "," of "loss," may be two, when
shap joins "Net loss" before the comma). Above the features the tree is shap's, and a node's
Owen value is the sum of its tokens' values, so with a budget large enough for the whole tree
the per-word sums equal shap's token values summed per word (tested). Masked texts are built as
the Text masker builds them (kept tokens' text, " [MASK]" per hidden token, spaces collapsed),
so the model sees the same strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explain.words import split_words

_OPENERS = {"(": ")"}
_CLOSERS = {")": "("}
_CONNECTORS = ("but", "and", "or")
_SPACES = re.compile(r"\s+")
_SPACE_END = re.compile(r"^.*\W$")
_LETTER_START = re.compile(r"^[A-Za-z]")


@dataclass
class _Token:
    s: str
    balanced: bool


def _merge_score(g1: list[_Token], g2: list[_Token]) -> float:
    """shap's merge_score (maskers/_text.py, shap 0.51) without separator tokens."""
    score = 0.0
    if g2[0].s.startswith("##"):
        score += 20  # word pieces first
    if g2[0].s == "'" and (len(g2) == 1 or (len(g2) == 2 and g2[1].s in ("t", "s"))):
        score += 15
    if g1[-1].s == "'" and g2[0].s in ("t", "s"):
        score += 15
    start_ctrl = g1[0].s.startswith("[") and g1[0].s.endswith("]")
    end_ctrl = g2[-1].s.startswith("[") and g2[-1].s.endswith("]")
    if start_ctrl != end_ctrl:
        score -= 1000
    if g2[0].s in _OPENERS and not g2[0].balanced:
        score -= 100
    if g1[-1].s in _CLOSERS and not g1[-1].balanced:
        score -= 100
    # shap compares a token object with the closer strings here, which is never equal; kept so
    # the trees stay identical
    if g1[0].s in _OPENERS:
        score -= 2
    if g1[-1].s in _CONNECTORS or g2[0].s in _CONNECTORS:
        score -= 2
    if g1[-1].s == ",":
        score -= 10
    if g2[0].s == ",":
        score -= 10 if len(g2) > 1 else 1
    if g1[-1].s in (".", "?", "!"):
        score -= 20
    if g2[0].s in (".", "?", "!"):
        score -= 20 if len(g2) > 1 else 1
    return score - len(g1) - len(g2)


def partition_tree(tokens: Sequence[str]) -> np.ndarray:
    """shap's Text partition tree over clustering tokens, in scipy linkage layout.

    The same greedy merges as shap (best-scoring neighbours first, the leftmost on ties), but
    only the two scores next to a merge are recomputed, so a 200-token sentence stays cheap.
    """
    m = len(tokens)
    rows = np.zeros((max(m - 1, 0), 4))
    groups = [[_Token(t, t not in _OPENERS and t not in _CLOSERS)] for t in tokens]
    index = list(range(m))
    size = [1] * m
    scores = [_merge_score(groups[i], groups[i + 1]) for i in range(m - 1)]
    for r in range(m - 1):
        ind = max(range(len(scores)), key=scores.__getitem__)  # first maximum, as np.argmax
        left, right = groups[ind], groups[ind + 1]
        rows[r] = [index[ind], index[ind + 1], 0.0, size[ind] + size[ind + 1]]
        if left[0].s in _OPENERS and right[-1].s == _OPENERS[left[0].s]:
            left[0].balanced = True
            right[-1].balanced = True
        groups[ind] = left + right
        index[ind], size[ind] = m + r, size[ind] + size[ind + 1]
        del groups[ind + 1], index[ind + 1], size[ind + 1], scores[ind]
        if ind > 0:
            scores[ind - 1] = _merge_score(groups[ind - 1], groups[ind])
        if ind < len(scores):
            scores[ind] = _merge_score(groups[ind], groups[ind + 1])
    if len(rows):
        # shap's Text masker uses the cluster sizes as heights
        rows[:, 2] = rows[:, 3] / rows[:, 3].max()
    return rows


@dataclass
class SentenceFeatures:
    """The features of one sentence: token groups inside words, their tree, their masking."""

    words: list[str]
    """The sentence's whitespace words (what the values are summed into)."""
    word_of: np.ndarray
    """Feature -> index of the word it lies in."""
    tree: np.ndarray
    """Binary tree over the features, scipy linkage layout (rows merge, root last)."""
    token_of: list[list[int]]
    """Feature -> the token positions it hides."""
    segments: list[str]
    """Each token's text with the gap after it, as shap's Text masker cuts it."""
    fixed: np.ndarray
    """Tokens never hidden (the tokenizer's special tokens)."""
    mask_token: str

    @property
    def n(self) -> int:
        """The number of features."""
        return len(self.token_of)

    def render(self, keep: np.ndarray) -> str:
        """The sentence with the features not kept hidden, one mask token per sub-token."""
        show = self.fixed.copy()
        for f in np.flatnonzero(keep):
            show[self.token_of[f]] = True
        hidden = " " + self.mask_token
        text = "".join(seg if s else hidden for seg, s in zip(self.segments, show, strict=True))
        return _SPACES.sub(" ", text).strip()

    def word_values(self, values: np.ndarray) -> np.ndarray:
        """Feature values summed into the sentence's words."""
        out = np.zeros(len(self.words))
        np.add.at(out, self.word_of, values)
        return out


def sentence_features(
    text: str, tokenizer: Any, mask_token: str, *, max_tokens: int | None = None
) -> SentenceFeatures | None:
    """The features of `text` under `tokenizer`; None when the tokenizer gives no offsets.

    Tokens at or past `max_tokens` (the model's truncation length) are never hidden: the model
    does not see them, so they would only cost evaluations.
    """
    spans = split_words(text)
    words = [text[a:b] for a, b in spans]
    try:
        enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        offsets = [(0, 0) if o is None else (int(o[0]), int(o[1])) for o in enc["offset_mapping"]]
        special = np.array(enc["special_tokens_mask"], dtype=bool)
    except (NotImplementedError, TypeError, KeyError, ValueError):
        return None  # a slow tokenizer: the caller falls back to whole words
    t = len(offsets)
    segments = [text[offsets[i][0] : max(offsets[i][1], offsets[i + 1][0])] for i in range(t - 1)]
    segments.append(text[offsets[-1][0] : offsets[-1][1]] if t else "")
    # the tokens the Text masker clusters: a piece glued to a letter before it is "##piece"
    tokens: list[str] = []
    for i, seg in enumerate(segments):
        glued = (
            i > 0
            and _SPACE_END.match(segments[i - 1]) is None
            and _LETTER_START.match(seg) is not None
            and tokens[i - 1] != ""
        )
        tokens.append("##" + seg.strip() if glued else seg.strip())
    starts = [a for a, _ in spans]
    word = np.full(t, -1)
    trailing = next((k for k in range(t) if not special[t - 1 - k]), t)
    seen = t if max_tokens is None else max_tokens - trailing  # truncation keeps the end tokens
    for i, (a, b) in enumerate(offsets):
        if not special[i] and b > a and i < seen:
            word[i] = int(np.searchsorted(starts, b - 1, side="right")) - 1
    token_of, word_of, tree = _collapse(partition_tree(tokens), word, t)
    return SentenceFeatures(
        words=words,
        word_of=np.array(word_of, dtype=int),
        tree=tree,
        token_of=token_of,
        segments=segments,
        fixed=special | (word < 0),
        mask_token=mask_token,
    )


def _collapse(
    tree: np.ndarray, word: np.ndarray, t: int
) -> tuple[list[list[int]], list[int], np.ndarray]:
    """Cut the token tree at the coarsest nodes inside one word (tokens outside words dropped).

    Returns each feature's tokens, each feature's word and the tree over the features.
    """
    if t == 0:
        return [], [], np.zeros((0, 4))
    children: dict[int, tuple[int, int]] = {
        t + r: (int(a), int(b)) for r, (a, b, _h, _s) in enumerate(tree)
    }

    def tokens_under(node: int) -> list[int]:
        stack, out = [node], []
        while stack:
            n = stack.pop()
            if n < t:
                out.append(n)
            else:
                stack.extend(children[n])
        return sorted(out)

    token_of: list[list[int]] = []
    word_of: list[int] = []
    rows: list[list[float]] = []

    def build(node: int) -> tuple[int, int] | None:
        """(collapsed node id, size) of the subtree, or None when it holds no word token."""
        toks = [i for i in tokens_under(node) if word[i] >= 0]
        if not toks:
            return None
        if len({int(word[i]) for i in toks}) == 1:
            token_of.append(toks)
            word_of.append(int(word[toks[0]]))
            return -len(token_of), 1  # leaves numbered later, in sentence order
        left, right = (build(c) for c in children[node])
        if left is None or right is None:
            return left or right
        rows.append([left[0], right[0], 0.0, left[1] + right[1]])
        return len(rows) - 1 + (1 << 30), left[1] + right[1]

    build(2 * t - 2 if t > 1 else 0)
    m = len(token_of)
    # leaves in sentence order (a subtree is a contiguous run of tokens)
    order = sorted(range(m), key=lambda f: token_of[f][0])
    leaf_id = {-(f + 1): new for new, f in enumerate(order)}

    def renumber(x: float) -> int:
        x = int(x)
        return leaf_id[x] if x < 0 else m + (x - (1 << 30))

    out = np.array([[renumber(a), renumber(b), 0.0, s] for a, b, _h, s in rows], dtype=float)
    if len(out):
        out[:, 2] = out[:, 3] / out[:, 3].max()
    return [token_of[f] for f in order], [word_of[f] for f in order], out.reshape(-1, 4)
