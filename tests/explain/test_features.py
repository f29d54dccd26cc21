"""Sentence features: shap's Text partition tree, cut at words, masked as shap masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explain.features import partition_tree, sentence_features
from explain.words import node_masks

SENTENCES = [
    "Net loss widened sharply, while revenue (excluding Xilinx) rose to a record.",
    "The company's CEO didn't say that; margins fell 3.5% y/y (non-GAAP) and cash rose.",
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 .",
    "Impairment",
    "(a) loss",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.mark.parametrize("text", SENTENCES)
def test_tree_and_masked_texts_are_shaps(tokenizer, text):
    shap = pytest.importorskip("shap")
    masker = shap.maskers.Text(tokenizer)
    reference = masker.clustering(text)
    features = sentence_features(text, tokenizer, "[MASK]")
    assert features is not None
    assert features.segments == list(masker._segments_s)  # the same token cut as shap's
    # the same tree over the same tokens (rebuilt from the masker's own clustering tokens)
    tokens = [t for t in _shap_tokens(list(masker._segments_s))]
    np.testing.assert_allclose(partition_tree(tokens), reference)
    # hiding features hides their tokens exactly as the Text masker hides them
    rng = np.random.default_rng(0)
    for _ in range(5):
        keep = rng.random(features.n) < 0.5
        show = features.fixed.copy()
        for f in np.flatnonzero(keep):
            show[features.token_of[f]] = True
        assert features.render(keep) == masker(show, text)[0][0]


def _shap_tokens(segments: list[str]) -> list[str]:
    import re

    tokens: list[str] = []
    for i, v in enumerate(segments):
        glued = (
            i > 0
            and re.match(r"^.*\W$", segments[i - 1]) is None
            and re.match(r"^[A-Za-z]", v) is not None
            and tokens[i - 1] != ""
        )
        tokens.append("##" + v.strip() if glued else v.strip())
    return tokens


def test_features_are_subtrees_inside_words_and_cover_every_token(tokenizer):
    text = SENTENCES[0]
    f = sentence_features(text, tokenizer, "[MASK]")
    assert f is not None
    assert f.words == text.split()
    # word pieces of one word are one feature; a comma shap splits off is its own feature
    pieces = {
        f.words[w]: [f.segments[i] for i in f.token_of[k]]
        for k, w in enumerate(f.word_of)
        if f.words[w] == "Xilinx)"
    }
    assert pieces["Xilinx)"] == ["Xi", "lin", "x", ") "]
    sharply = [k for k, w in enumerate(f.word_of) if f.words[w] == "sharply,"]
    assert len(sharply) == 2
    covered = sorted(i for toks in f.token_of for i in toks)
    assert covered == sorted(np.flatnonzero(~f.fixed))
    masks = node_masks(f.tree, f.n)
    assert masks[-1].all() and f.tree.shape == (f.n - 1, 4)
    assert list(f.word_of) == sorted(f.word_of)  # features in sentence order


def test_word_values_sum_features_into_words(tokenizer):
    f = sentence_features("Net loss, widened", tokenizer, "[MASK]")
    assert f is not None and f.words == ["Net", "loss,", "widened"]
    values = np.arange(1.0, f.n + 1)
    np.testing.assert_allclose(f.word_values(values).sum(), values.sum())
    assert len(f.word_values(values)) == 3


def test_tokens_past_the_truncation_are_not_features(tokenizer):
    text = " ".join(["revenue"] * 40)
    full = sentence_features(text, tokenizer, "[MASK]")
    cut = sentence_features(text, tokenizer, "[MASK]", max_tokens=12)
    assert full is not None and cut is not None
    assert full.n == 40 and cut.n == 10  # [CLS] + 10 words + [SEP] fit in 12 tokens
    assert set(cut.word_of) == set(range(10))
    # the text the model sees still holds every word
    assert cut.render(np.ones(cut.n, dtype=bool)) == text


def test_deletion_masking_drops_hidden_tokens(tokenizer):
    f = sentence_features("Net loss widened", tokenizer, "")
    assert f is not None
    keep = np.array([True, False, True])
    assert f.render(keep) == "Net widened"


def test_a_tokenizer_without_offsets_gives_no_features():
    def plain(text: str, **_kwargs: object) -> dict[str, list[int]]:
        raise NotImplementedError("no offsets")

    assert sentence_features("Sales rose", plain, "[MASK]") is None
