"""Choosing the evidence method: a blessed explainer for these weights is used; anything else
falls back to sampling with a reason that reaches every explanation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.config import ExplainOptions, ScoringOptions, Settings
from app.pipeline import make_explainer
from app.records import LABELS, Score, Sentence
from explain.amortized import EXPLAINER_DIR, META_FILE
from explain.render import method_line
from explain.service import AmortizedExplainer, explainer_choice
from explain.shap_explainer import SentenceExplainer
from models.scoring import SentimentScorer, weights_digest


@pytest.fixture
def model_with_explainer(tiny_model_with_explainer: Path) -> Path:
    return tiny_model_with_explainer


def edit_meta(model_dir: Path, tmp_path: Path, **changes: object) -> Path:
    """A copy of the model whose explainer record has these changes."""
    copy = tmp_path / "edited"
    shutil.copytree(model_dir, copy)
    path = copy / EXPLAINER_DIR / META_FILE
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))
    return copy


def records(scorer: SentimentScorer, texts: list[str]) -> tuple[list[Sentence], list[Score]]:
    probs = scorer.predict_proba(texts)
    sentences = [
        Sentence(doc_id="d" * 64, index=i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]
    scores = [
        Score(
            sentence_index=i,
            label=LABELS[int(p.argmax())],
            probabilities={lab: float(v) for lab, v in zip(LABELS, p, strict=True)},
            confidence=float(p.max()),
        )
        for i, p in enumerate(probs)
    ]
    return sentences, scores


TEXTS = [
    "Net loss widened sharply in the quarter.",
    "Revenue growth was strong this year.",
    "Net loss widened sharply in the quarter.",  # a repeat: its base is scored once
    "Sales",
]


def explainer_for(model_dir: Path, tmp_path: Path, method: str = "auto"):
    scorer = SentimentScorer.from_dir(model_dir, ScoringOptions())
    settings = Settings(data_dir=tmp_path, explain=ExplainOptions(method=method))  # type: ignore[arg-type]
    return scorer, make_explainer(settings, scorer)


def test_a_blessed_explainer_gives_exactly_additive_amortized_evidence(
    model_with_explainer: Path, tmp_path: Path
):
    scorer, explainer = explainer_for(model_with_explainer, tmp_path)
    assert isinstance(explainer, AmortizedExplainer)
    sentences, scores = records(scorer, TEXTS)
    out = explainer.explain(sentences, scores)
    assert [e.sentence_index for e in out] == [0, 1, 2, 3]
    for e, score in zip(out, scores, strict=True):
        assert e.method == "amortized" and e.note == ""
        assert e.fidelity["spearman"] == 0.84 and e.fidelity["blessed"] is True
        assert abs(e.base_value + sum(e.values) - e.output_value) < 1e-6
        assert e.additivity_error < 1e-6
        assert e.output_value == pytest.approx(score.probabilities[score.label])
        assert e.settings["algorithm"] == "amortized-explainer/1"
    # the base is the sampled game's: the scorer on the sentence with every feature hidden
    sampled = SentenceExplainer(
        scorer.predict_proba,
        model_digest=scorer.digest,
        options=ExplainOptions(cache=False),
        tokenizer=scorer.tokenizer,
        max_tokens=scorer.max_length,
    ).explain(sentences, scores)
    for a, s in zip(out, sampled, strict=True):
        assert s.method == "sampled"
        assert a.base_value == pytest.approx(s.base_value, abs=1e-9)
        assert a.words == s.words
    # the strongest word for the label is the obvious one, as sampling says
    assert out[0].top_for[0].word.lower() in ("loss", "widened")
    # masked texts scored once each: three distinct sentences
    assert explainer.model_calls == 3
    assert method_line(out[0]) == (
        "amortized explainer (Spearman 0.84, top-1 0.86, top-3 0.78 against a 2,000-evaluation "
        "reference on 200 report sentences)"
    )


def test_amortized_and_sampled_values_never_share_a_cache_entry(
    model_with_explainer: Path, tmp_path: Path
):
    scorer, amortized = explainer_for(model_with_explainer, tmp_path)
    _, sampled = explainer_for(model_with_explainer, tmp_path, "sampled")
    sentences, scores = records(scorer, TEXTS[:2])
    first = amortized.explain(sentences, scores)
    again = sampled.explain(sentences, scores)
    assert [e.cached for e in again] == [False, False]
    assert {e.method for e in again} == {"sampled"}
    cached = amortized.explain(sentences, scores)
    assert [e.cached for e in cached] == [True, True]
    assert [e.values for e in cached] == [e.values for e in first]


def test_explain_method_sampled_forces_sampling(model_with_explainer: Path, tmp_path: Path):
    scorer, explainer = explainer_for(model_with_explainer, tmp_path, "sampled")
    assert isinstance(explainer, SentenceExplainer) and explainer.note == ""
    (e,) = explainer.explain(*records(scorer, TEXTS[:1]))
    assert e.method == "sampled" and e.note == ""
    assert method_line(e) == "sampled Owen values, 3 evaluations per word"


def test_an_explainer_not_blessed_falls_back_to_sampling_with_the_reason(
    model_with_explainer: Path, tmp_path: Path
):
    folder = edit_meta(
        model_with_explainer,
        tmp_path,
        blessed=False,
        gate={"passed": False, "failures": ["spearman 0.52 < 0.70"]},
    )
    scorer, explainer = explainer_for(folder, tmp_path, "auto")
    assert isinstance(explainer, SentenceExplainer)
    assert "not blessed by its fidelity gate (spearman 0.52 < 0.70)" in explainer.note
    (e,) = explainer.explain(*records(scorer, TEXTS[:1]))
    assert e.method == "sampled" and "not blessed" in e.note
    assert method_line(e).startswith("sampled Owen values, 3 evaluations per word; the shipped")


def test_an_explainer_not_blessed_is_served_only_when_asked_for_by_name(
    model_with_explainer: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    folder = edit_meta(
        model_with_explainer,
        tmp_path,
        blessed=False,
        gate={"passed": False, "failures": ["spearman 0.52 < 0.70"]},
    )
    scorer, explainer = explainer_for(folder, tmp_path, "amortized")
    assert isinstance(explainer, AmortizedExplainer)
    assert "not blessed by its fidelity gate (spearman 0.52 < 0.70)" in explainer.note
    assert any(r.levelname == "WARNING" and "not blessed" in r.message for r in caplog.records)
    (e,) = explainer.explain(*records(scorer, TEXTS[:1]))
    assert e.method == "amortized" and e.fidelity["blessed"] is False
    assert "not blessed" in e.note and "not blessed" in method_line(e)


def test_an_explainer_for_other_weights_falls_back_to_sampling(
    model_with_explainer: Path, tmp_path: Path
):
    folder = edit_meta(model_with_explainer, tmp_path, scorer_sha256="0" * 64)
    scorer, explainer = explainer_for(folder, tmp_path)
    assert isinstance(explainer, SentenceExplainer)
    assert "built for other weights (sha256 000000000000…" in explainer.note
    (e,) = explainer.explain(*records(scorer, TEXTS[:1]))
    assert "built for other weights" in e.note


def test_a_model_without_an_explainer_is_sampled_with_a_clear_note(
    tiny_model_dir: Path, tmp_path: Path
):
    # an imported model (a plain Hugging Face directory) ships no explainer/
    scorer, explainer = explainer_for(tiny_model_dir, tmp_path)
    assert isinstance(explainer, SentenceExplainer)
    assert explainer.note == (
        "no amortized explainer is shipped with this model; evidence is sampled instead"
    )
    (e,) = explainer.explain(*records(scorer, TEXTS[:1]))
    assert e.method == "sampled" and e.note == explainer.note


def test_the_choice_reads_only_the_record(model_with_explainer: Path, tmp_path: Path):
    digest = weights_digest(model_with_explainer)
    assert explainer_choice(model_with_explainer, digest, "auto").method == "amortized"
    assert explainer_choice(model_with_explainer, digest, "sampled").reason == ""
    unknown = explainer_choice(None, digest, "auto")
    assert unknown.method == "sampled" and "not known" in unknown.reason
    other = edit_meta(model_with_explainer, tmp_path, format=99)
    assert "format 99" in explainer_choice(other, digest, "auto").reason
    choice = explainer_choice(model_with_explainer, digest, "auto")
    assert choice.line().startswith("SHAP evidence: amortized explainer (Spearman 0.84")


def test_amortized_values_keep_the_word_order_of_the_network(
    model_with_explainer: Path, tmp_path: Path
):
    scorer, explainer = explainer_for(model_with_explainer, tmp_path)
    assert isinstance(explainer, AmortizedExplainer)
    sentences, scores = records(scorer, TEXTS[:2])
    columns = [LABELS.index(s.label) for s in scores]
    raw = explainer.network.word_values([s.text for s in sentences], columns)
    out = explainer.explain(sentences, scores)
    for e, r in zip(out, raw, strict=True):
        # an equal shift: the ranking of the words is the network's
        assert list(np.argsort(e.values, kind="stable")) == list(np.argsort(r, kind="stable"))
