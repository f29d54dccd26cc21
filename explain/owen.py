"""Owen values over a feature tree, for many sentences at once, in few big model calls.

This is the recursion of shap's PartitionExplainer (`owen`, fixed_context=None): split a node
of the tree into its two children in both contexts (sibling absent, sibling present), recurse
into the children whose output moved most first. With the budget large enough for the whole
tree the values equal shap's PartitionExplainer on the same tree (tested).

Where the budget is short, shap leaves the unexplained change on the open nodes and shares it
evenly among their features, so most words of a sentence tie, and rank correlation with a
high-budget run collapses. Here every open node keeps a reserve of two evaluations per split
below it: a node is split in both contexts only while the reserve for all open nodes still
fits the budget, and otherwise in one context (the Shapley split between its two children is
still exact; each child recurses in the context where it moved the output most, scaled to
its exact share). So any budget of at least twice the feature count reaches every feature,
and an additive model gets exact values at that budget (tested).

Each sentence is one `OwenGame`; `play` runs all games in lock-step rounds and sends every
round's masked texts from every sentence to the model in one length-sorted call, where shap
calls the model with about five texts at a time, one sentence after another. Each game expands
a fixed number of nodes per round, so a sentence's values do not depend on which other
sentences share its rounds: the same sentence gets the same evidence in any report.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from explain.features import SentenceFeatures, sentence_features
from explain.words import node_masks, node_sizes, word_tree

_log = logging.getLogger(__name__)

Predict = Callable[[list[str]], np.ndarray]
Render = Callable[[np.ndarray], str]
PAIRS_PER_ROUND = 2
"""Tree nodes each sentence splits per round: few keeps the most-moving-first order of shap."""
MAX_SCALE = 4.0
"""Largest factor a one-context child's attributions are scaled by to meet its exact share."""


def evaluation_budget(n_words: int, evals_per_word: float, max_evals: int | None = None) -> int:
    """Model evaluations allowed for a sentence of `n_words` words: `max_evals` when set, else
    2 + evals_per_word x the word count."""
    if max_evals is not None:
        return max(2, max_evals)
    return 2 + math.ceil(evals_per_word * max(n_words, 1))


def feature_game(
    text: str,
    column: int,
    budget: int,
    tokenizer: Any,
    mask_token: str,
    *,
    max_tokens: int | None = None,
    pairs_per_round: int = PAIRS_PER_ROUND,
) -> tuple[OwenGame, SentenceFeatures] | None:
    """The Owen game of one sentence over shap's token tree; None without a fast tokenizer."""
    features = sentence_features(text, tokenizer, mask_token, max_tokens=max_tokens)
    if features is None:
        return None
    game = OwenGame(
        features.n, features.tree, features.render, column, budget, pairs_per_round=pairs_per_round
    )
    return game, features


def word_render(
    words: Sequence[str], mask_token: str, pieces: Sequence[int] | None = None
) -> Render:
    """Render whole words, a hidden word as one mask token per sub-token (`pieces`)."""
    pieces = pieces if pieces is not None else [1] * len(words)
    hidden = [" ".join([mask_token] * max(1, n)) if mask_token else "" for n in pieces]

    def render(keep: np.ndarray) -> str:
        return " ".join(
            w if k else h for w, h, k in zip(words, hidden, keep, strict=True) if k or h
        )

    return render


class OwenGame:
    """One sentence's Owen-value estimate of one output column under an evaluation budget.

    `n` features sit at the leaves of `tree` (scipy linkage layout); `render(keep)` is the text
    the model sees with only the features in the boolean mask `keep` shown.
    """

    def __init__(
        self,
        n: int,
        tree: np.ndarray,
        render: Render,
        column: int,
        budget: int,
        *,
        pairs_per_round: int = 2,
    ) -> None:
        if budget < 2:
            raise ValueError(f"an explanation needs at least 2 model evaluations, not {budget}")
        self.m = n
        self.tree = tree
        self.render = render
        self.column = column
        self.budget = budget
        self.pairs_per_round = pairs_per_round
        self._masks = node_masks(self.tree, self.m) if self.m else np.zeros((0, 0), bool)
        # evaluations needed to split every node under a node once (one context): 2 per split
        self._cost: list[int] = (
            [2 * (int(s) - 1) for s in node_sizes(self.tree, self.m)] if self.m else []
        )
        self._reserved = 0
        self._dvalues = np.zeros(max(2 * self.m - 1, 0))
        self._queue: list[tuple[float, int, tuple[np.ndarray, float, float, int, float]]] = []
        self._tick = itertools.count()
        self._pending: list[
            tuple[np.ndarray, np.ndarray, np.ndarray, float, float, int, float, bool]
        ]
        self._pending = []
        self._started = False
        self.evals = 0
        self.base_value = float("nan")
        self.output_value = float("nan")
        self.done = self.m == 0

    @classmethod
    def of_words(
        cls,
        words: Sequence[str],
        column: int,
        budget: int,
        *,
        mask_token: str = "[MASK]",
        pieces: Sequence[int] | None = None,
        pairs_per_round: int = 2,
    ) -> OwenGame:
        """A game over whitespace words and the clause-aware word tree."""
        return cls(
            len(words),
            word_tree(words),
            word_render(words, mask_token, pieces),
            column,
            budget,
            pairs_per_round=pairs_per_round,
        )

    def requests(self) -> list[str]:
        """The masked texts this game needs evaluated next; [] once it is done."""
        if self.done:
            return []
        if not self._started:
            none = np.zeros(self.m, dtype=bool)
            return [self.render(none), self.render(~none)]
        texts: list[str] = []
        while self._queue and len(self._pending) < self.pairs_per_round:
            committed = self.evals + 2 * len(self._pending)
            if committed + 2 > self.budget:
                break
            _prio, _t, (m00, f00, f11, ind, weight) = heapq.heappop(self._queue)
            self._reserved -= self._cost[ind]
            if ind < self.m:
                self._dvalues[ind] += (f11 - f00) * weight
                continue
            left, right = (int(c) for c in self.tree[ind - self.m, :2])
            children = self._cost[left] + self._cost[right]
            # full Owen split (both contexts) only while every open node can still be split
            # once more down to its features; otherwise one context, so none is left unvisited
            full = committed + 2 + self._reserved + 2 * children <= self.budget
            self._reserved += 2 * children if full else children
            m10 = m00 | self._masks[left]
            m01 = m00 | self._masks[right]
            self._pending.append((m00, m10, m01, f00, f11, ind, weight, full))
            texts.append(self.render(m10))
            texts.append(self.render(m01))
        if not self._pending:
            # budget spent or tree exhausted: open nodes keep their unexplained change
            for _prio, _t, (_m00, f00, f11, ind, weight) in self._queue:
                self._dvalues[ind] += (f11 - f00) * weight
            self._queue.clear()
            self.done = True
        return texts

    def receive(self, outputs: np.ndarray) -> None:
        """Take the model's outputs (rows of class probabilities) for the last requests."""
        values = np.asarray(outputs, dtype=float)[:, self.column]
        self.evals += len(values)
        if not self._started:
            self._started = True
            self.base_value, self.output_value = float(values[0]), float(values[1])
            root = 2 * self.m - 2
            none = np.zeros(self.m, dtype=bool)
            self._reserved = self._cost[root]
            self._push(none, self.base_value, self.output_value, root, 1.0)
            return
        for i, (m00, m10, m01, f00, f11, ind, weight, full) in enumerate(self._pending):
            f10, f01 = float(values[2 * i]), float(values[2 * i + 1])
            left, right = (int(c) for c in self.tree[ind - self.m, :2])
            if full:
                half = weight / 2
                self._push(m00, f00, f10, left, half)
                self._push(m00, f00, f01, right, half)
                self._push(m01, f01, f11, left, half)
                self._push(m10, f10, f11, right, half)
                continue
            # one context per child: the Shapley split of this node between its two children
            # is exact; each child recurses in the context where it moved the output most,
            # scaled to its exact share, so its features keep their proportions (when the
            # scale would be extreme, unscaled, with the difference left on the child instead)
            share_left = ((f10 - f00) + (f11 - f01)) / 2
            share_right = ((f01 - f00) + (f11 - f10)) / 2
            for child, share, alone, along in (
                (left, share_left, (m00, f00, f10), (m01, f01, f11)),
                (right, share_right, (m00, f00, f01), (m10, f10, f11)),
            ):
                ctx = alone if abs(alone[2] - alone[1]) >= abs(along[2] - along[1]) else along
                moved = ctx[2] - ctx[1]
                scale = share / moved if abs(moved) > 1e-9 else 0.0
                if 0.0 < scale <= MAX_SCALE:
                    self._push(ctx[0], ctx[1], ctx[2], child, weight * scale)
                else:
                    self._dvalues[child] += (share - moved) * weight
                    self._push(ctx[0], ctx[1], ctx[2], child, weight)
        self._pending = []

    def _push(self, m00: np.ndarray, f00: float, f11: float, ind: int, weight: float) -> None:
        # strongest change first, ties in insertion order (deterministic, unlike shap's randn)
        heapq.heappush(
            self._queue, (-abs(f11 - f00) * weight, next(self._tick), (m00, f00, f11, ind, weight))
        )

    def values(self) -> np.ndarray:
        """Per-feature attributions: credit left on inner nodes is shared down by size."""
        if self.m == 0:
            return np.zeros(0)
        vals = self._dvalues.copy()
        sizes = node_sizes(self.tree, self.m)
        for ind in range(2 * self.m - 2, self.m - 1, -1):
            left, right = (int(c) for c in self.tree[ind - self.m, :2])
            vals[left] += vals[ind] * sizes[left] / sizes[ind]
            vals[right] += vals[ind] * sizes[right] / sizes[ind]
        return vals[: self.m]


def play(
    games: Sequence[OwenGame],
    predict: Predict,
    *,
    chunk_size: int = 512,
    on_round: Callable[[int, int], None] | None = None,
) -> int:
    """Run all games to the end; returns how many texts were sent to the model.

    Each round gathers every open game's masked texts, sends each distinct text once, shortest
    first (so the scorer's own batches pad little), in chunks of `chunk_size`.
    """
    open_games = [g for g in games if not g.done]
    sent = 0
    rounds = 0
    while open_games:
        batch: list[tuple[OwenGame, list[str]]] = []
        for game in open_games:
            texts = game.requests()
            if texts:
                batch.append((game, texts))
        distinct = sorted({t for _, texts in batch for t in texts}, key=len)
        if distinct:
            outputs: dict[str, np.ndarray] = {}
            for start in range(0, len(distinct), chunk_size):
                part = distinct[start : start + chunk_size]
                probs = predict(part)
                outputs.update(zip(part, probs, strict=True))
            sent += len(distinct)
            for game, texts in batch:
                game.receive(np.stack([outputs[t] for t in texts]))
        rounds += 1
        open_games = [g for g in open_games if not g.done]
        if on_round:
            on_round(rounds, len(open_games))
    _log.debug("owen: %d games, %d rounds, %d texts sent", len(games), rounds, sent)
    return sent
