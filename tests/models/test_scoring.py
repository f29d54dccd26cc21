"""models/scoring.py against the tiny real model (label order negative/neutral/positive)."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from app.config import ScoringOptions
from app.errors import ModelError
from app.records import LABELS, Sentence
from models.scoring import SentimentScorer, resolve_label_map, weights_digest

TEXTS = [
    "Net loss widened sharply.",
    "Revenue growth was strong and reached a record in the quarter.",
    "The company comprises three segments.",
    "Impairment charges and a decline in sales led to a weak year, and the board warned "
    "that the group could default on its covenants if conditions do not improve.",
    "Sales rose.",
    "",
]


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> SentimentScorer:
    return SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(batch_size=4))


def _sentences(texts: list[str]) -> list[Sentence]:
    return [
        Sentence(doc_id="d" * 64, index=10 + i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]


def _copy_with_config(src: Path, dst: Path, **changes: object) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_scorer_maps_model_class_order_onto_labels_order(scorer, tiny_model_dir):
    assert scorer.label_map == {0: "negative", 1: "neutral", 2: "positive"}
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_model_dir), local_files_only=True
    )
    with torch.inference_mode():
        raw = model(**tokenizer(TEXTS[:3], padding=True, return_tensors="pt")).logits.softmax(-1)
    probs = scorer.predict_proba(TEXTS[:3])
    for model_index, label in ((0, "negative"), (1, "neutral"), (2, "positive")):
        np.testing.assert_allclose(
            probs[:, LABELS.index(label)], raw[:, model_index].numpy(), atol=1e-5
        )


def test_predict_proba_rows_are_probabilities(scorer):
    probs = scorer.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 3)
    assert (probs >= 0).all() and (probs <= 1).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_predict_proba_keeps_input_order_despite_length_sorting(scorer):
    together = scorer.predict_proba(TEXTS)
    one_by_one = np.vstack([scorer.predict_proba([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(scorer.predict_proba(TEXTS[::-1]), together[::-1], atol=1e-5)


def test_predict_proba_is_invariant_to_batch_size(tiny_model_dir, scorer):
    texts = TEXTS * 5
    single = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(batch_size=1))
    large = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(batch_size=64))
    np.testing.assert_allclose(single.predict_proba(texts), large.predict_proba(texts), atol=1e-5)
    np.testing.assert_allclose(scorer.predict_proba(texts), large.predict_proba(texts), atol=1e-5)


def test_predict_proba_reads_obvious_sentences(scorer):
    probs = scorer.predict_proba(
        [
            "Net loss widened sharply.",
            "Revenue growth was strong, a record year.",
            "The company comprises three segments.",
        ]
    )
    assert [LABELS[i] for i in probs.argmax(axis=1)] == ["negative", "positive", "neutral"]


def test_predict_proba_accepts_numpy_strings_as_shap_passes_them(scorer):
    np.testing.assert_allclose(
        scorer.predict_proba(np.array(TEXTS[:3])), scorer.predict_proba(TEXTS[:3]), atol=1e-9
    )


def test_long_sentences_are_truncated_at_max_length(tiny_model_dir):
    short = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(max_length=16))
    long = "Net loss widened sharply. " + "The board met in Helsinki. " * 200
    a, b = short.predict_proba([long, long + "Record growth was strong."])
    # Equal up to float32 batch noise (1.8e-9 seen with one OMP thread).
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert short.max_length == 16


def test_empty_input_gives_empty_results(scorer):
    assert scorer.predict_proba([]).shape == (0, 3)
    assert scorer.score([]) == []


def test_score_builds_one_record_per_sentence_in_order(scorer):
    sentences = _sentences(TEXTS)
    scores = scorer.score(sentences)
    probs = scorer.predict_proba(TEXTS)
    assert [s.sentence_index for s in scores] == [s.index for s in sentences]
    for score, row in zip(scores, probs, strict=True):
        assert score.label == LABELS[int(row.argmax())]
        assert score.confidence == pytest.approx(row.max())
        assert score.confidence == max(score.probabilities.values())
        assert list(score.probabilities) == list(LABELS)
    assert scores[0].label == "negative"


def test_weights_digest_is_sha256_of_the_weights_file(scorer, tiny_model_dir):
    expected = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert weights_digest(tiny_model_dir) == expected
    assert scorer.digest == expected


def test_matching_digest_loads_and_mismatch_raises(tiny_model_dir, scorer):
    ok = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(), expected_digest=scorer.digest)
    assert ok.digest == scorer.digest
    with pytest.raises(ModelError, match="digest mismatch") as info:
        SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(), expected_digest="0" * 64)
    record = info.value.to_record()
    assert record.stage == "scoring" and record.fatal and "0" * 64 in record.message


def test_missing_directory_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        SentimentScorer.from_dir(tmp_path / "nowhere", ScoringOptions())


def test_directory_without_config_or_weights_raises_model_error(tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="no config.json"):
        SentimentScorer.from_dir(tmp_path, ScoringOptions())
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny_model_dir, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no weights file"):
        SentimentScorer.from_dir(no_weights, ScoringOptions())


def test_corrupt_weights_raise_model_error(tmp_path, tiny_model_dir):
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot be loaded"):
        SentimentScorer.from_dir(broken, ScoringOptions())


def test_generic_label_names_are_refused_without_a_mapping(tmp_path, tiny_model_dir, scorer):
    generic = _copy_with_config(
        tiny_model_dir,
        tmp_path / "generic",
        id2label={"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
        label2id={"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    )
    with pytest.raises(ModelError, match="generic names.*label_map"):
        SentimentScorer.from_dir(generic, ScoringOptions())
    mapped = SentimentScorer.from_dir(
        generic, ScoringOptions(label_map={"LABEL_0": "negative", "1": "neutral", "2": "positive"})
    )
    np.testing.assert_allclose(mapped.predict_proba(TEXTS), scorer.predict_proba(TEXTS), atol=1e-5)


def test_base_encoder_without_a_trained_head_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
    )
    BertModel(config).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="not a trained classifier"):
        SentimentScorer.from_dir(tmp_path, ScoringOptions())


@pytest.mark.parametrize(
    "id2label, expected",
    [
        (
            {0: "positive", 1: "negative", 2: "neutral"},
            {0: "positive", 1: "negative", 2: "neutral"},
        ),  # ProsusAI/finbert
        (
            {0: "Neutral", 1: "Positive", 2: "Negative"},
            {0: "neutral", 1: "positive", 2: "negative"},
        ),  # yiyanghkust/finbert-tone
        ({0: "NEG", 1: "NEU", 2: "POS"}, {0: "negative", 1: "neutral", 2: "positive"}),
        ({"0": "neg", "1": "neutral", "2": "pos"}, {0: "negative", 1: "neutral", 2: "positive"}),
    ],
)
def test_label_names_are_recognised(id2label, expected):
    assert resolve_label_map(id2label) == expected


@pytest.mark.parametrize(
    "id2label, message",
    [
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, "generic names"),
        ({0: "negative", 1: "positive"}, "2 classes"),
        ({0: "negative", 1: "positive", 2: "positive"}, "exactly once"),
        ({0: "joy", 1: "anger", 2: "neutral"}, "not a known sentiment label"),
    ],
)
def test_unmappable_labels_are_refused_with_a_hint(id2label, message):
    with pytest.raises(ModelError, match=message) as info:
        resolve_label_map(id2label)
    assert "label_map" in info.value.message


def test_explicit_mapping_handles_two_and_five_class_models():
    assert resolve_label_map(
        {0: "negative", 1: "positive"}, {"0": "negative", "1": "positive"}
    ) == {0: "negative", 1: "positive"}
    stars = {i: f"{i + 1} stars" for i in range(5)}
    mapping = {
        "1 stars": "negative",
        "2 stars": "negative",
        "3 stars": "neutral",
        "4 stars": "positive",
        "5 stars": "positive",
    }
    assert resolve_label_map(stars, mapping)[1] == "negative"


@pytest.mark.parametrize(
    "override, message",
    [
        ({"0": "negative", "1": "positive"}, r"unmapped"),
        ({"0": "negative", "1": "positive", "2": "neutral", "7": "neutral"}, "neither a class"),
    ],
)
def test_bad_explicit_mapping_is_refused(override, message):
    with pytest.raises(ModelError, match=message):
        resolve_label_map({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, override)


def test_scorer_pickles_as_a_spec_and_reloads_the_same_weights(scorer, tiny_model_dir):
    blob = pickle.dumps(scorer)
    assert len(blob) < 5_000  # the spec travels, not the tensors
    clone = pickle.loads(blob)
    assert clone.digest == scorer.digest and clone.name == scorer.name
    np.testing.assert_allclose(clone.predict_proba(TEXTS), scorer.predict_proba(TEXTS), atol=1e-9)


def test_reloading_a_spec_refuses_changed_weights(tmp_path, tiny_model_dir):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    scorer = SentimentScorer.from_dir(copy, ScoringOptions(), name="m", version="3")
    blob = pickle.dumps(scorer)
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes() + b" ")
    with pytest.raises(ModelError, match="digest mismatch"):
        pickle.loads(blob)


def test_threads_option_sets_torch_threads(tiny_model_dir):
    before = torch.get_num_threads()
    try:
        SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_dynamic_int8_quantization_keeps_obvious_readings(tiny_model_dir, scorer):
    quantized = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(quantize="dynamic-int8"))
    probs = quantized.predict_proba(TEXTS[:3])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (probs.argmax(axis=1) == scorer.predict_proba(TEXTS[:3]).argmax(axis=1)).all()
    dynamic_linear = torch.ao.nn.quantized.dynamic.Linear
    assert any(isinstance(m, dynamic_linear) for m in quantized._model.modules())
