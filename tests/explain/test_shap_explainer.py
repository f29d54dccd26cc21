"""SentenceExplainer: additivity, obvious evidence, budgets, cache, lengths, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from app.config import ExplainOptions, ScoringOptions, Settings
from app.errors import ExplainError
from app.pipeline import make_explainer
from app.records import LABELS, Score, Sentence
from explain.shap_explainer import (
    ADDITIVITY_TOLERANCE,
    SentenceExplainer,
    evaluation_budget,
    select_for_explanation,
)
from models.scoring import SentimentScorer


@pytest.fixture(scope="module")
def predict_proba(tiny_model_dir: Path):
    """The tiny model's probabilities in LABELS order, built with transformers directly."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir)).eval()
    label2col = {model.config.id2label[i]: i for i in range(3)}
    order = [label2col[lab] for lab in LABELS]

    def predict(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            enc = tok(
                list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            return torch.softmax(model(**enc).logits.double(), -1)[:, order].numpy()

    predict.calls = []  # type: ignore[attr-defined]

    def counting(texts: list[str]) -> np.ndarray:
        predict.calls.append(len(texts))  # type: ignore[attr-defined]
        return predict(texts)

    counting.calls = predict.calls  # type: ignore[attr-defined]
    counting.tokenizer = tok  # type: ignore[attr-defined]
    return counting


def records(texts: list[str], predict) -> tuple[list[Sentence], list[Score]]:
    """Sentences and the model's own scores for them."""
    probs = predict(texts)
    sentences = [
        Sentence(doc_id="d" * 64, index=10 + i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]
    scores = []
    for s, p in zip(sentences, probs, strict=True):
        best = int(np.argmax(p))
        scores.append(
            Score(
                sentence_index=s.index,
                label=LABELS[best],
                probabilities=dict(zip(LABELS, map(float, p), strict=True)),
                confidence=float(p[best]),
            )
        )
    return sentences, scores


def explainer(predict, cache_dir: Path | None = None, **options) -> SentenceExplainer:
    return SentenceExplainer(
        predict,
        model_digest="sha-test",
        cache_dir=cache_dir,
        tokenizer=getattr(predict, "tokenizer", None),
        options=ExplainOptions(**options),
    )


def test_attributions_add_up_to_the_model_output(predict_proba):
    texts = [
        "Net loss widened sharply in the quarter .",
        "Revenue rose to a record in Europe during 2023 , while margins were strong .",
    ]
    sentences, scores = records(texts, predict_proba)
    for exp, score in zip(
        explainer(predict_proba, cache=False).explain(sentences, scores), scores, strict=True
    ):
        assert exp.additivity_error < ADDITIVITY_TOLERANCE
        assert abs(exp.base_value + sum(exp.values) - exp.output_value) < ADDITIVITY_TOLERANCE
        # the explained output is the model's probability of the scored label
        assert exp.output_value == pytest.approx(score.probabilities[score.label], abs=1e-5)
        assert exp.settings["additivity_tolerance"] == ADDITIVITY_TOLERANCE
        assert exp.model_digest == "sha-test"


def test_net_loss_sentence_names_loss_as_negative_evidence(predict_proba):
    sentences, scores = records(["Net loss widened sharply"], predict_proba)
    assert scores[0].label == "negative"
    (exp,) = explainer(predict_proba, cache=False).explain(sentences, scores)
    assert exp.label == "negative"
    assert exp.words == ("Net", "loss", "widened", "sharply")
    assert "loss" in [w.word for w in exp.top_for]
    assert exp.top_for[0].word == "loss"
    assert all(w.weight > 0 for w in exp.top_for)
    assert all(w.weight < 0 for w in exp.top_against)


def test_positive_sentence_names_its_positive_word(predict_proba):
    sentences, scores = records(["Sales growth was strong compared with last year."], predict_proba)
    assert scores[0].label == "positive"
    (exp,) = explainer(predict_proba, cache=False).explain(sentences, scores)
    top = {w.word for w in exp.top_for[:2]}
    assert top & {"growth", "strong"}
    # evidence words are shown bare, without the sentence's punctuation
    assert all(w.word.isalnum() for w in exp.top_for)


def test_budget_is_respected_and_tied_to_length(predict_proba):
    texts = ["Revenue fell .", " ".join(["The company reported a decline in sales ."] * 6)]
    sentences, scores = records(texts, predict_proba)
    options = {"evals_per_word": 3.0, "cache": False}
    exps = explainer(predict_proba, **options).explain(sentences, scores)
    for exp, text in zip(exps, texts, strict=True):
        budget = evaluation_budget(len(text.split()), ExplainOptions(**options))
        assert exp.settings["budget"] == budget
        assert 2 <= exp.settings["evals"] <= budget
    assert exps[1].settings["budget"] > exps[0].settings["budget"]
    # the long sentence spends (nearly) its whole budget, and still adds up
    assert exps[1].settings["evals"] >= 0.95 * exps[1].settings["budget"]
    assert exps[1].additivity_error < ADDITIVITY_TOLERANCE

    fixed = explainer(predict_proba, max_evals=20, cache=False).explain(sentences, scores)
    assert all(e.settings["evals"] <= 20 for e in fixed)


def test_masked_variants_of_many_sentences_share_model_calls(predict_proba):
    texts = [
        f"The segment {w} in the quarter ."
        for w in ("rose", "fell", "declined", "improved", "exceeded", "weak")
    ]
    sentences, scores = records(texts, predict_proba)
    predict_proba.calls.clear()
    exp = explainer(predict_proba, cache=False)
    exp.explain(sentences, scores)
    # one call per round for all six sentences, not one per sentence per round
    assert len(predict_proba.calls) < exp.model_calls / 6
    assert max(predict_proba.calls) > 6


def test_cache_explains_a_repeated_sentence_once(predict_proba, tmp_path):
    texts = ["The board held an impairment review .", "Cash flow fell this year ."]
    sentences, scores = records(texts, predict_proba)
    first = explainer(predict_proba, cache_dir=tmp_path).explain(sentences, scores)
    assert not any(e.cached for e in first)

    # a new explainer (another run, another process) over the same data directory
    again = explainer(predict_proba, cache_dir=tmp_path)
    predict_proba.calls.clear()
    second = again.explain(sentences, scores)
    assert all(e.cached for e in second)
    assert predict_proba.calls == [] and again.model_calls == 0
    assert again.cache is not None and again.cache.hits == 2
    for a, b in zip(first, second, strict=True):
        assert a.values == b.values and a.top_for == b.top_for
        assert a.sentence_index == b.sentence_index


def test_cache_misses_on_another_model_or_setting(predict_proba, tmp_path):
    sentences, scores = records(["Cash flow fell this year ."], predict_proba)
    explainer(predict_proba, cache_dir=tmp_path).explain(sentences, scores)
    other_model = SentenceExplainer(
        predict_proba, model_digest="another", cache_dir=tmp_path, options=ExplainOptions()
    )
    assert not other_model.explain(sentences, scores)[0].cached
    other_budget = explainer(predict_proba, cache_dir=tmp_path, evals_per_word=6)
    assert not other_budget.explain(sentences, scores)[0].cached
    assert explainer(predict_proba, cache_dir=tmp_path).explain(sentences, scores)[0].cached


def test_repeated_text_in_one_document_is_explained_once(predict_proba):
    text = "Operating margin decreased during 2023 ."
    sentences, scores = records([text, "Sales rose .", text], predict_proba)
    exp = explainer(predict_proba, cache=False)
    out = exp.explain(sentences, scores)
    assert [e.sentence_index for e in out] == [10, 11, 12]
    assert out[0].values == out[2].values
    single = explainer(predict_proba, cache=False)
    single.explain(sentences[:2], scores[:2])
    assert exp.model_calls == single.model_calls


def test_hidden_words_show_one_mask_per_sub_token(predict_proba):
    sentences, scores = records(["Unquestionably impairment"], predict_proba)
    seen: list[str] = []

    def spy(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return predict_proba(texts)

    tok = predict_proba.tokenizer
    with_tok = SentenceExplainer(
        spy, model_digest="m", options=ExplainOptions(cache=False), tokenizer=tok
    )
    with_tok.explain(sentences, scores)
    n_pieces = len(tok.tokenize("Unquestionably"))
    assert n_pieces > 1
    # as shap's Text masker writes it: the hidden word's trailing space goes with it
    hidden_first = " ".join(["[MASK]"] * n_pieces) + "impairment"
    assert hidden_first in seen
    assert tok.tokenize(hidden_first) == ["[MASK]"] * n_pieces + tok.tokenize("impairment")
    assert with_tok.settings()["features"] == "shap-text-tree"

    seen.clear()
    without = SentenceExplainer(spy, model_digest="m", options=ExplainOptions(cache=False))
    without.explain(sentences, scores)
    assert "[MASK] impairment" in seen and without.settings()["features"] == "words"


def test_at_full_budget_word_values_are_shaps_token_values_summed(predict_proba):
    shap = pytest.importorskip("shap")
    texts = [
        "Net loss widened sharply, while revenue (excluding Xilinx) rose to a record.",
        "The company's sales didn't grow; cash flow fell.",
    ]
    sentences, scores = records(texts, predict_proba)
    tok = predict_proba.tokenizer
    ours = explainer(predict_proba, max_evals=10**6, cache=False).explain(sentences, scores)
    reference = shap.Explainer(lambda x: predict_proba([str(t) for t in x]), shap.maskers.Text(tok))
    for text, score, exp in zip(texts, scores, ours, strict=True):
        res = reference([text], max_evals=10**6, silent=True)
        column = LABELS.index(score.label)
        token_values = np.asarray(res.values[0])[:, column]
        words = np.zeros(len(exp.words))
        starts = [m.start() for m in re.finditer(r"\S+", text)]
        for (a, b), v in zip(
            tok(text, return_offsets_mapping=True)["offset_mapping"], token_values, strict=True
        ):
            if b > a:
                words[int(np.searchsorted(starts, a, side="right")) - 1] += v
        # float32 model outputs: batches of other sizes change the last bits (2e-9 seen)
        np.testing.assert_allclose(exp.values, words, rtol=0, atol=1e-7)
        assert exp.base_value == pytest.approx(float(res.base_values[0][column]))


def test_one_word_sentence(predict_proba):
    sentences, scores = records(["Impairment"], predict_proba)
    (exp,) = explainer(predict_proba, cache=False).explain(sentences, scores)
    assert exp.words == ("Impairment",)
    assert exp.values[0] == pytest.approx(exp.output_value - exp.base_value)
    assert exp.settings["evals"] == 2


def test_two_hundred_token_sentence(predict_proba):
    phrase = (
        "the group reported a decline in revenue and an impairment loss while cash flow improved , "
    )
    words = phrase.split()
    text = " ".join((words * 20)[:150]) + " ."
    sentences, scores = records([text], predict_proba)
    (exp,) = explainer(predict_proba, cache=False).explain(sentences, scores)
    assert len(exp.words) == 151
    assert exp.additivity_error < ADDITIVITY_TOLERANCE
    assert exp.settings["evals"] <= exp.settings["budget"]
    assert exp.top_for or exp.top_against


def test_sentences_without_scores_are_refused(predict_proba):
    sentences, scores = records(["Sales rose .", "Sales fell ."], predict_proba)
    with pytest.raises(ExplainError, match="no score for sentence"):
        explainer(predict_proba, cache=False).explain(sentences, scores[:1])


def test_a_failing_model_is_reported_as_an_explain_error(predict_proba):
    sentences, scores = records(["Sales rose ."], predict_proba)

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("out of memory")

    with pytest.raises(ExplainError, match="out of memory") as info:
        explainer(broken, cache=False).explain(sentences, scores)
    record = info.value.to_record()
    assert record.stage == "explain" and not record.fatal

    def wrong_shape(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 2))

    with pytest.raises(ExplainError, match="expected"):
        explainer(wrong_shape, cache=False).explain(sentences, scores)


def test_an_unwritable_cache_does_not_stop_explanations(predict_proba, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    sentences, scores = records(["Sales rose ."], predict_proba)
    exp = explainer(predict_proba, cache_dir=blocker)
    (out,) = exp.explain(sentences, scores)
    assert not out.cached and out.words == ("Sales", "rose", ".")


def test_selection_modes():
    def score(i: int, label: str) -> Score:
        return Score(sentence_index=i, label=label, probabilities={}, confidence=0.5)  # type: ignore[arg-type]

    scores = [score(3, "positive"), score(4, "neutral"), score(7, "negative")]
    assert select_for_explanation(scores, "none") == []
    assert select_for_explanation(scores, "flagged") == [3, 7]
    assert select_for_explanation(scores, "all") == [3, 4, 7]
    with pytest.raises(ValueError, match="unknown explain mode"):
        select_for_explanation(scores, "some")


def test_the_pipelines_explainer_is_given_the_scorers_tokenizer_and_truncation(
    tiny_model_dir, tmp_path
):
    scorer = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(max_length=16))
    exp = make_explainer(Settings(data_dir=tmp_path), scorer)
    assert exp.tokenizer is scorer.tokenizer
    assert exp.max_tokens == scorer.max_length == 16
    # without the parameter nothing is guessed from the callable
    bare = SentenceExplainer(scorer.predict_proba, model_digest="m", options=ExplainOptions())
    assert bare.max_tokens is None and bare.tokenizer is None
