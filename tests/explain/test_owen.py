"""The batched Owen recursion: equal to shap's PartitionExplainer, additive, within budget."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from explain.owen import OwenGame, play
from explain.words import node_masks, split_words, word_tree

SENTENCE = "Net loss widened sharply , while revenue rose to a record ."


def render_masked(words: Sequence[str], keep: np.ndarray, mask_token: str) -> str:
    """The sentence with the words not kept replaced by `mask_token` (dropped when '')."""
    if mask_token:
        return " ".join(w if k else mask_token for w, k in zip(words, keep, strict=True))
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


def toy_model(texts: list[str]) -> np.ndarray:
    """A model with interactions: 'loss' matters, more so next to 'net'; 'record' pushes back."""
    out = []
    for t in texts:
        w = t.lower().split()
        z = 2.0 * ("loss" in w) + 1.5 * ("loss" in w and "net" in w) - 1.0 * ("record" in w)
        z += 0.3 * ("widened" in w) - 0.1 * w.count("[mask]")
        neg = 1 / (1 + np.exp(-z))
        out.append([(1 - neg) / 2, neg, (1 - neg) / 2])
    return np.array(out)


def test_words_and_tree_cover_the_sentence():
    text = "Net loss widened , while revenue rose to a record ."
    spans = split_words(text)
    words = [text[a:b] for a, b in spans]
    assert words[:3] == ["Net", "loss", "widened"] and len(words) == 11
    tree = word_tree(words)
    masks = node_masks(tree, len(words))
    assert tree.shape == (10, 4)
    assert masks[-1].all()  # the root holds every word
    # the first split falls at the comma clause boundary
    left, right = (int(i) for i in tree[-1, :2])
    assert masks[left].sum() == 4 and masks[right].sum() == 7


def test_owen_values_equal_shap_partition_explainer_on_the_same_tree():
    shap = pytest.importorskip("shap")
    words = SENTENCE.split()
    game = OwenGame.of_words(words, column=1, budget=10**6)
    play([game], toy_model)
    ours = game.values()

    def masker(mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.array([render_masked(list(x), mask, "[MASK]")])

    masker.clustering = game.tree  # type: ignore[attr-defined]
    masker.shape = (1, len(words))  # type: ignore[attr-defined]
    ref = shap.explainers.Partition(lambda t: toy_model(list(t))[:, 1], masker)(
        np.array([words]), max_evals=10**6, silent=True
    )
    np.testing.assert_allclose(ours, ref.values[0], atol=1e-9)
    assert game.base_value == pytest.approx(float(ref.base_values[0]))


@pytest.mark.parametrize("budget", [2, 6, 11, 30, 10**6])
def test_any_budget_is_respected_and_additive(budget):
    words = SENTENCE.split()
    game = OwenGame.of_words(words, column=1, budget=budget)
    play([game], toy_model)
    assert game.evals <= budget
    assert game.base_value + game.values().sum() == pytest.approx(game.output_value, abs=1e-12)


def test_a_sentence_gets_the_same_values_alone_or_among_others():
    words = SENTENCE.split()
    alone = OwenGame.of_words(words, column=1, budget=25)
    play([alone], toy_model)
    crowd = [OwenGame.of_words(("Revenue " + "x " * k + "rose").split(), 1, 25) for k in range(5)]
    together = OwenGame.of_words(words, column=1, budget=25)
    play([*crowd, together], toy_model, chunk_size=7)
    np.testing.assert_allclose(alone.values(), together.values())


def test_removal_masking_drops_words():
    words = ["Net", "loss", "widened"]
    assert render_masked(words, np.array([True, False, True]), "") == "Net widened"
    assert render_masked(words, np.array([True, False, True]), "[MASK]") == "Net [MASK] widened"


def additive_model(texts: list[str]) -> np.ndarray:
    """Each word adds its own amount to column 1: Owen (and Shapley) values are those amounts."""
    weights = {"net": 0.05, "loss": 0.4, "widened": 0.1, "record": -0.2, "rose": -0.05}
    col = np.array([sum(weights.get(w.lower(), 0.0) for w in t.split()) for t in texts])
    return np.stack([np.zeros_like(col), col, np.zeros_like(col)], axis=1)


@pytest.mark.parametrize("per_word", [2, 3, 6])
def test_a_small_budget_still_reaches_every_word(per_word):
    words = SENTENCE.split()
    budget = 2 + per_word * len(words)
    game = OwenGame.of_words(words, column=1, budget=budget)
    play([game], additive_model)
    assert game.evals <= budget
    expected = [
        {"net": 0.05, "loss": 0.4, "widened": 0.1, "record": -0.2, "rose": -0.05}.get(
            w.lower(), 0.0
        )
        for w in words
    ]
    np.testing.assert_allclose(game.values(), expected, atol=1e-12)
