"""Loading, splitting and validating labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import DataValidationError
from models.data import (
    DataSchema,
    Example,
    dedupe_against,
    deduplicate,
    detect_format,
    load_examples,
    make_split,
    split_examples,
    validate_split,
)


def _examples(n_per_class: int = 20, prefix: str = "") -> list[Example]:
    return [
        Example(
            text=f"{prefix}{label} sentence number {i} about the company.",
            label=label,
            source="test",
        )
        for label in ("positive", "negative", "neutral")
        for i in range(n_per_class)
    ]


def test_phrasebank_lines_are_read_as_latin1_with_their_licence(tmp_path: Path) -> None:
    path = tmp_path / "Sentences_50Agree.txt"
    path.write_bytes(
        "Net sales rose 5 % to EUR 10 mn , caf\xe9 chain says .@positive\r\n"
        "Operating loss widened .@negative\n".encode("latin-1")
    )
    data = load_examples([path])
    assert [e.label for e in data.examples] == ["positive", "negative"]
    assert "café" in data.examples[0].text
    source = data.sources[0]
    assert source.format == "phrasebank" and "BY-NC-SA" in source.licence
    assert source.commercial_use is False and len(source.sha256) == 64


def test_sentfin_keeps_headlines_whose_entities_agree(tmp_path: Path) -> None:
    path = tmp_path / "SEntFiN.csv"
    path.write_text(
        "S No.,Title,Decisions,Words\n"
        "1,SpiceJet to issue warrants,{'SpiceJet': 'neutral'},4\n"
        "2,\"Dr Reddy's, Cipla gain\",\"{\"Dr Reddy's\": 'positive', 'Cipla': 'positive'}\",4\n"
        "3,Gold up silver down,\"{'Gold': 'positive', 'Silver': 'negative'}\",4\n",
        encoding="utf-8",
    )
    data = load_examples([path])
    assert [(e.text, e.label) for e in data.examples] == [
        ("SpiceJet to issue warrants", "neutral"),
        ("Dr Reddy's, Cipla gain", "positive"),
    ]
    assert data.sources[0].format == "sentfin" and data.sources[0].commercial_use


def test_fiqa_scores_become_three_labels(tmp_path: Path) -> None:
    path = tmp_path / "task1_headline_ABSA_train.json"
    path.write_text(
        json.dumps(
            {
                "1": {"sentence": "A soars", "info": [{"sentiment_score": "0.6", "target": "A"}]},
                "2": {"sentence": "B slumps", "info": [{"sentiment_score": "-0.5", "target": "B"}]},
                "3": {"sentence": "C holds", "info": [{"sentiment_score": "0.05", "target": "C"}]},
            }
        ),
        encoding="utf-8",
    )
    assert [e.label for e in load_examples([path]).examples] == ["positive", "negative", "neutral"]


def test_unreadable_file_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(DataValidationError, match="not a labelled-data file"):
        detect_format(path)
    with pytest.raises(DataValidationError, match="no such file"):
        load_examples([tmp_path / "missing.csv"])


def test_split_is_deterministic_stratified_and_digested() -> None:
    examples = _examples(50)
    a, b = split_examples(examples, 0.2, seed=7), split_examples(examples, 0.2, seed=7)
    assert a.split_digest == b.split_digest and a.eval == b.eval
    assert split_examples(examples, 0.2, seed=8).split_digest != a.split_digest
    assert len(a.eval) == 30
    assert {
        lab: sum(e.label == lab for e in a.eval) for lab in ("positive", "negative", "neutral")
    } == {"positive": 10, "negative": 10, "neutral": 10}
    assert not {e.text for e in a.train} & {e.text for e in a.eval}


def test_clean_data_passes_validation() -> None:
    report = validate_split(split_examples(_examples(), 0.2, seed=1))
    assert report.ok, report.summary()
    assert report.train.n == 48 and report.eval.n == 12


def test_unknown_labels_and_empty_texts_block_with_numbers() -> None:
    train = _examples() + [
        Example(text="Sales rose.", label="bullish", source="t"),
        Example(text="  ", label="neutral", source="t"),
    ]
    report = validate_split(make_split(train, _examples(3, "eval ")))
    codes = {a.code: a for a in report.anomalies}
    assert codes["unknown_label"].count == 1 and "bullish" in codes["unknown_label"].message
    assert codes["empty_text"].count == 1
    assert not report.ok


def test_duplicates_beyond_the_share_block_and_few_are_cleaned() -> None:
    many = _examples() + _examples()[:10]
    report = validate_split(make_split(many, _examples(3, "eval ")))
    dup = [a for a in report.anomalies if a.code == "duplicate_text"]
    assert dup and dup[0].count == 10 and "10 of 70" in dup[0].message

    few = _examples(100) + [
        _examples(100)[0],
        Example(text=_examples(100)[1].text, label="neutral", source="t"),
    ]
    kept, removed = deduplicate(few)
    assert removed == {"duplicate": 1, "conflicting_label": 2}
    assert len(kept) == 300 - 1


def test_length_outliers_block() -> None:
    train = _examples() + [Example(text="word " * 400, label="neutral", source="t")]
    report = validate_split(
        make_split(train, _examples(3, "eval ")), DataSchema(max_length_outlier_share=0.0)
    )
    assert [a.count for a in report.anomalies if a.code == "length_outlier"] == [1]


def test_overlap_between_train_and_eval_blocks() -> None:
    train = _examples()
    evals = [Example(text=train[0].text.upper(), label=train[0].label, source="e")] + _examples(
        3, "eval "
    )
    report = validate_split(make_split(train, evals))
    overlap = [a for a in report.anomalies if a.code == "train_eval_overlap"]
    assert overlap and overlap[0].count == 1


def test_class_balance_shift_against_previous_training_data_blocks() -> None:
    split = split_examples(_examples(), 0.2, seed=1)
    same = {"positive": 0.33, "negative": 0.33, "neutral": 0.34}
    assert validate_split(split, previous_shares=same).ok
    shifted = {"positive": 0.1, "negative": 0.1, "neutral": 0.8}
    report = validate_split(split, previous_shares=shifted)
    assert [a.code for a in report.anomalies] == ["class_balance_shift"]
    assert "0.47" in report.anomalies[0].message


def test_allowed_anomaly_is_recorded_not_blocking() -> None:
    split = split_examples(_examples(), 0.2, seed=1)
    shifted = {"positive": 0.1, "negative": 0.1, "neutral": 0.8}
    report = validate_split(split, previous_shares=shifted, allow=["class_balance_shift"])
    assert report.ok and [a.code for a in report.allowed] == ["class_balance_shift"]


def test_extra_data_is_deduplicated_against_the_eval_set() -> None:
    evals = _examples(3, "eval ")
    extra = [Example(text=evals[0].text, label=evals[0].label, source="x")] + _examples(2, "x ")
    kept, dropped = dedupe_against(extra, evals)
    assert dropped == 1 and len(kept) == 6
