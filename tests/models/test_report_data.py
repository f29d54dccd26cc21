"""Report sentences for training: the guideline's weak labels, and evaluation sets kept out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pdfs import REPORT_SECTIONS, write_clean_report
from tiny_model import build_tiny_base, unique_template_rows

from app.config import load_settings
from models.data import Example, write_csv
from models.evaluate import GateOptions
from models.report_data import ReportSentence, drop_held_out, is_narrative, read_report
from models.train import PipelineOptions, TrainOptions, train_pipeline
from models.weak_labels import build_sets, guideline_label

GUIDELINE_CASES = [
    # risk factors stating an adverse possibility are negative
    (
        "Our results of operations could be materially and adversely affected by a prolonged "
        "downturn in consumer spending.",
        "risk_factors",
        "negative",
    ),
    (
        "A breach of our systems may harm our reputation and expose us to litigation.",
        None,
        "negative",
    ),
    # safe-harbour boilerplate and procedure are neutral
    (
        "These forward-looking statements involve risks and uncertainties that could cause "
        "results to differ.",
        None,
        "neutral",
    ),
    (
        "The following table presents revenue by geographic region (in millions):",
        "notes",
        "neutral",
    ),
    # costs and debt: up is negative, down positive; results: up positive, down negative
    ("Interest expense increased $12 million compared with the prior year.", None, "negative"),
    ("Operating expenses decreased 4% in 2022 compared with 2021.", None, "positive"),
    ("Net sales grew 12% to $3.1 billion in the fourth quarter.", None, "positive"),
    ("Gross margin decreased 200 basis points due to higher freight costs.", None, "negative"),
    # definitions and accounting policy are neutral
    (
        "Revenue is recognized when control of the goods transfers to the customer.",
        "notes",
        "neutral",
    ),
    ("Net debt is defined as borrowings less cash and cash equivalents.", None, "neutral"),
]


@pytest.mark.parametrize(("text", "section", "label"), GUIDELINE_CASES)
def test_guideline_rules_label_what_the_guideline_says(
    text: str, section: str | None, label: str
) -> None:
    found = guideline_label(text, section)
    assert found is not None and found.label == label, found


@pytest.mark.parametrize(
    "text",
    [
        "Revenue increased 5%, partially offset by higher costs of sales.",  # mixed: no headline
        "The settlement did not have a material adverse effect on our financial condition.",
        "The company was founded in Ohio in 1902 by three brothers.",
    ],
)
def test_no_rule_guesses_on_mixed_denied_or_plain_sentences(text: str) -> None:
    assert guideline_label(text) is None


def test_held_out_sentences_are_dropped_by_their_normalised_text() -> None:
    rows = [
        ReportSentence(text=t, source="r.pdf", page_no=1)
        for t in (
            "Our business could be harmed by cyberattacks.",
            "Net  sales   grew 12% in the quarter.",
            "The board met four times during the year.",
        )
    ]
    held = ["OUR BUSINESS could be harmed by   cyberattacks.", "net sales grew 12% in the quarter."]
    kept, dropped = drop_held_out(rows, held)
    assert dropped == 2 and [r.text for r in kept] == ["The board met four times during the year."]
    labelled, unlabelled, stats = build_sets(rows, held, unlabelled=10)
    texts = [e.text for e in labelled] + unlabelled
    assert texts == ["The board met four times during the year."]
    assert stats["held_out_dropped"] == 2


def test_report_sentences_are_read_with_sesames_ingest_and_sections(tmp_path: Path) -> None:
    pdf = write_clean_report(tmp_path / "report.pdf")
    rows = read_report(pdf, load_settings())
    assert rows and all(is_narrative(r.text) for r in rows)
    risk_text = next(p for heading, ps in REPORT_SECTIONS if "Risk" in heading for p in ps)
    first = " ".join(risk_text.split()[:6])
    assert any(r.section_type == "risk_factors" and first in r.text for r in rows)
    assert read_report(pdf, load_settings()) == rows  # cached per digest, same records
    assert not is_narrative("Revenue 1,234.5 1,100.2 812.0 790.4 422.5 309.8")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"))


def test_dev_set_sentences_never_enter_training_distillation_or_calibration(
    tiny_base: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = [
        ("Our franchise could be materially harmed by tariffs.", "negative"),
        ("Backlog is defined as contracted orders not yet delivered.", "neutral"),
        ("Demand for our jets surged and bookings soared.", "positive"),
    ]
    dev_csv = write_csv(
        [Example(text=t, label=lab, source="dev") for t, lab in dev], tmp_path / "reports_dev.csv"
    )
    monkeypatch.setenv(
        "SESAME_EVALUATION__SLICES", json.dumps([{"name": "reports", "path": str(dev_csv)}])
    )
    report_lines = [
        f"Our {w} could be affected by {x} in {y}."
        for w in ("margins", "orders")
        for x in ("weather", "tariffs", "strikes")
        for y in ("Asia", "Europe")
    ]
    reference = tmp_path / "reports.txt"
    reference.write_text("\n".join(report_lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("SESAME_EVALUATION__REFERENCE_REPORTS", str(reference))
    rows = unique_template_rows(100)
    data = write_csv(
        [Example(text=t, label=lab, source="t") for t, lab in rows], tmp_path / "data.csv"
    )
    # the dev sentences hide in the labelled extra data and in the unlabelled pool, in
    # another case and spacing
    extra = write_csv(
        [Example(text="  " + t.upper(), label=lab, source="x") for t, lab in dev]
        + [
            Example(
                text="Our liquidity could be harmed by sanctions.", label="negative", source="x"
            )
        ],
        tmp_path / "extra.csv",
    )
    pool = tmp_path / "pool.txt"
    pool.write_text(
        "\n".join([*(t.lower() for t, _ in dev), *report_lines]) + "\n", encoding="utf-8"
    )
    opts = PipelineOptions(
        data=[data],
        extra=[extra],
        base=tiny_base,
        name="tiny-dedupe",
        train=TrainOptions(max_steps=3, threads=1, save_dtype="float32"),
        gate=GateOptions(min_accuracy=0, min_macro_f1=0),
        teacher=tiny_model_dir,
        unlabelled=[pool],
        out_dir=tmp_path / "run",
    )
    report = train_pipeline(opts, load_settings())
    assert report.validation.removed["extra_in_slices"] == len(dev)
    taught = json.loads((tmp_path / "run" / "distillation.json").read_text())
    assert taught["removed"]["unlabelled_in_eval"] == len(dev)
    assert taught["n_unlabelled"] == len(report_lines)
    calibration = (tmp_path / "run" / "calibration.csv").read_text(encoding="utf-8").lower()
    assert not any(t.lower() in calibration for t, _ in dev)
    assert report.card["evaluation"]["slices"]["reports"]["metrics"]["n"] == len(dev)
    # the drift reference is report language scored by this version, not the eval split
    profile = json.loads((tmp_path / "run" / "model" / "reference_profile.json").read_text())
    assert profile["source"].startswith(
        f"report sentences: {len(report_lines)} of {len(report_lines)}"
    )
    assert profile["n_sentences"] == len(report_lines)
