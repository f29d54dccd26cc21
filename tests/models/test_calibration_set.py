"""The calibration set kept as keys (labels and references into the corpus), texts rebuilt."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pdfs import write_clean_report, write_text_page

from app.config import load_settings
from app.errors import DataValidationError
from models.calibration_set import build, derive_keys, main, read_keys, write_keys
from models.data import Example, write_csv
from models.report_data import read_report

BETA = (
    "Freight costs increased sharply in the second half and reduced our operating margin.",
    "The company completed the sale of its packaging division to a private buyer in May.",
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "filings"
    folder.mkdir()
    write_clean_report(folder / "acme.pdf")
    write_text_page(folder / "beta.pdf", "Management discussion", BETA)
    return folder


def _labelled(corpus: Path, out: Path) -> list[Example]:
    """Three sentences as sesame reads them (two of acme, one of beta), labelled by 'hand'."""
    settings = load_settings()
    acme = read_report(corpus / "acme.pdf", settings)
    beta = read_report(corpus / "beta.pdf", settings)
    chosen = [(acme[0], "negative"), (beta[0], "negative"), (acme[-1], "positive")]
    examples = [Example(text=r.text, label=label, source="hand") for r, label in chosen]
    write_csv(examples, out)
    return examples


def _rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def test_keys_rebuild_the_labelled_texts_exactly(corpus: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    examples = _labelled(corpus, labelled)
    keys, unmatched = derive_keys(labelled, corpus, load_settings())
    assert not unmatched
    assert [(k.filing, k.label) for k in keys] == [
        ("acme.pdf", "negative"),
        ("beta.pdf", "negative"),
        ("acme.pdf", "positive"),
    ]
    assert all(k.page == 1 and len(k.sha256) == 64 for k in keys)
    keys_file = write_keys(keys, tmp_path / "cal.keys.csv")
    written = keys_file.read_text(encoding="utf-8")
    assert not any(e.text in written for e in examples)  # labels and references, no text
    assert read_keys(keys_file) == keys

    out = tmp_path / "built" / "cal.csv"
    assert main(["--corpus", str(corpus), "--keys", str(keys_file), "--out", str(out)]) == 0
    assert _rows(out) == [(e.text, e.label) for e in examples]
    assert out.read_bytes() == labelled.read_bytes()


def test_missing_sentences_are_reported_per_filing_never_dropped_silently(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled = tmp_path / "labelled.csv"
    examples = _labelled(corpus, labelled)
    keys_file = write_keys(derive_keys(labelled, corpus, load_settings())[0], tmp_path / "k.csv")
    capsys.readouterr()

    # a filing changed: its sentence's digest is nowhere in it
    write_text_page(corpus / "beta.pdf", "Management discussion", BETA[1:])
    out = tmp_path / "cal.csv"
    assert main(["--corpus", str(corpus), "--keys", str(keys_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 of 3 sentences" in printed
    assert "1 of 3 calibration sentences not found" in printed
    assert "beta.pdf: 1 (no sentence of beta.pdf has this digest (page 1)" in printed
    assert _rows(out) == [(e.text, e.label) for e in (examples[0], examples[2])]

    # a filing absent: --strict fails and writes nothing
    (corpus / "beta.pdf").unlink()
    strict_out = tmp_path / "strict.csv"
    args = ["--corpus", str(corpus), "--keys", str(keys_file), "--out", str(strict_out)]
    assert main([*args, "--strict"]) == 1
    assert "beta.pdf: 1 (beta.pdf is not in" in capsys.readouterr().err
    assert not strict_out.exists()

    # no corpus at all: a hard error, whatever the mode
    with pytest.raises(DataValidationError, match="0 of the 3 sentences") as err:
        build(keys_file, tmp_path / "nowhere", tmp_path / "none.csv", load_settings())
    assert "acme.pdf: 2" in err.value.message and "beta.pdf: 1" in err.value.message
    assert not (tmp_path / "none.csv").exists()


def test_deriving_keys_names_texts_the_corpus_does_not_have(corpus: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    examples = _labelled(corpus, labelled)
    stray = Example(
        text="A sentence that no filing of this corpus contains.", label="neutral", source="hand"
    )
    write_csv([*examples, stray], labelled)
    keys_out = tmp_path / "keys.csv"
    args = ["--corpus", str(corpus), "--derive-from", str(labelled), "--keys", str(keys_out)]
    assert main(args) == 1
    assert not keys_out.exists()
    keys, unmatched = derive_keys(labelled, corpus, load_settings())
    assert len(keys) == 3 and unmatched == [stray.text]
