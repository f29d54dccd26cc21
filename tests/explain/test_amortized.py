"""The amortized explainer's building blocks: exact additivity, fidelity figures, and a network
trained in seconds on a tiny model that ranks the obvious word first."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import NEGATIVE_WORDS, POSITIVE_WORDS, template_sentences

from app.records import LABELS
from explain.amortized import (
    Explainer,
    TrainConfig,
    additive,
    fidelity,
    sampled_values,
    train,
)


def test_additive_values_add_up_exactly_to_the_output():
    values = np.array([0.3, -0.1, 0.05, 0.0])
    fixed = additive(values, base=0.2, output=0.9)
    assert abs(0.2 + fixed.sum() - 0.9) < 1e-12
    # the shape is kept: an equal shift, so the order of the words does not change
    assert list(np.argsort(fixed)) == list(np.argsort(values))


def test_fidelity_agrees_with_itself_and_disagrees_with_its_reverse():
    ref = [np.array([0.5, 0.1, -0.2, 0.05]), np.array([0.0, 0.3, 0.2, -0.4, 0.1])]
    same = fidelity(ref, ref)
    assert same["spearman"] == 1.0 and same["top1"] == 1.0 and same["top3"] == 1.0
    assert same["sign"] == 1.0
    flipped = fidelity([-r for r in ref], ref)
    assert flipped["spearman"] == -1.0 and flipped["sign"] == 0.0
    assert flipped["top1"] == 1.0  # by |value| the strongest word is the same


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, local_files_only=True
    ).eval()
    order = [list(model.config.id2label.values()).index(lab) for lab in LABELS]

    def predict(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
            return torch.softmax(model(**enc).logits.double(), -1).numpy()[:, order]

    return tok, predict


def test_an_explainer_trained_in_seconds_ranks_the_obvious_word_first(
    tiny, tiny_model_dir, tmp_path
):
    tok, predict = tiny
    texts = [t for t, lab in template_sentences(40, seed=3) if lab != "neutral"]
    columns = [int(predict([t])[0].argmax()) for t in texts]
    targets = sampled_values(
        texts, columns, predict, tok, mask_token=tok.mask_token, evals_per_word=4
    )
    explainer = train(tiny_model_dir, tok, targets, TrainConfig(epochs=8, lr=1e-3, head_lr=1e-2))
    # saved and loaded back, it gives the same values
    explainer.save(tmp_path / "explainer")
    loaded = Explainer.load(tmp_path / "explainer", tok)

    held_out = ["Net loss widened sharply in the quarter.", "Revenue growth was strong this year."]
    cols = [int(predict([t])[0].argmax()) for t in held_out]
    assert [LABELS[c] for c in cols] == ["negative", "positive"]
    for text, col, values in zip(held_out, cols, loaded.word_values(held_out, cols), strict=True):
        words = text.split()
        top = words[int(np.argmax(values))].strip(".").lower()
        assert top in (NEGATIVE_WORDS if LABELS[col] == "negative" else POSITIVE_WORDS), (
            text,
            dict(zip(words, np.round(values, 3), strict=True)),
        )
    again = loaded.word_values(held_out, cols)
    first = explainer.word_values(held_out, cols)
    assert all(np.allclose(a, b, atol=1e-2) for a, b in zip(again, first, strict=True))
    # and it agrees with sampling on sentences it was not trained on
    fresh = [t for t, lab in template_sentences(10, seed=99) if lab != "neutral"][:20]
    fcols = [int(predict([t])[0].argmax()) for t in fresh]
    ref = sampled_values(fresh, fcols, predict, tok, mask_token=tok.mask_token, evals_per_word=8)
    got = fidelity(loaded.word_values(fresh, fcols), [r.values for r in ref])
    assert got["top1"] >= 0.8, got
