"""The nightly batch with `--compare-previous`: each new filing against its client's previous
one, the client being the batch's --client or, without it, the inbox folder the filing is in."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import openpyxl
from pdfs import write_sections_report
from rich.console import Console

from app.store import ResultStore
from batch.run import BatchOptions, run_batch

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import batch_settings  # noqa: E402

YEAR_2022 = [
    ("Risk factors", ["Our results depend on a small number of large customers."]),
    ("Outlook", ["We expect revenue to grow by about 5% next year as the new plant opens."]),
]
YEAR_2023 = [
    (
        "Risk factors",
        [
            "Our results depend on a small number of large customers.",
            "Revenue decline and an impairment loss followed the default of our largest customer.",
        ],
    ),
    ("Outlook", ["We expect revenue to grow by about 2% next year as the new plant opens."]),
]


def run(inputs: Path, out: Path, settings, **options) -> str:
    buffer = io.StringIO()
    run_batch(
        BatchOptions(input_dir=inputs, out=out, executor="local", pages_per_part=0, **options),
        settings,
        console=Console(file=buffer, width=200),
    )
    return buffer.getvalue()


def test_each_new_filing_is_compared_with_the_clients_previous_one(tmp_path, tiny_model_dir):
    inbox, out = tmp_path / "in", tmp_path / "out"
    (inbox / "acme").mkdir(parents=True)
    (inbox / "bolt").mkdir()
    write_sections_report(inbox / "acme" / "acme_2022.pdf", "Acme 2022", YEAR_2022)
    write_sections_report(inbox / "bolt" / "bolt_2023.pdf", "Bolt 2023", YEAR_2023)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    settings = batch_settings(tiny_model_dir, url)
    # the first night: nothing earlier in the store
    printed = run(inbox, out, settings, compare_previous=True)
    assert "compared 0 of 2 new filing(s)" in printed
    assert "acme/acme_2022.pdf: not compared (no earlier document of this client" in printed
    # the next night: Acme's 2023 report arrives; Bolt's is already done (skipped)
    write_sections_report(inbox / "acme" / "acme_2023.pdf", "Acme 2023", YEAR_2023)
    printed = run(inbox, out, settings, compare_previous=True)
    assert "compared 1 of 1 new filing(s)" in printed
    assert "acme/acme_2023.pdf against acme/acme_2022.pdf" in printed
    summaries = sorted(out.glob("compare-*.json"))
    rows = json.loads(summaries[-1].read_text())["comparisons"]
    assert [(r["source"], r["previous"]) for r in rows] == [
        ("acme/acme_2023.pdf", "acme/acme_2022.pdf")
    ]
    book = Path(rows[0]["outputs"]["workpaper"])
    assert book.parent == out / "compare" and book.name == "compare-acme_2022-vs-acme_2023.xlsx"
    assert "Section shifts" in openpyxl.load_workbook(book).sheetnames
    with ResultStore(url) as store:
        (stored,) = store.list_comparisons()
        assert stored.comparison_id == rows[0]["comparison_id"]
        assert stored.counts["new"] == rows[0]["counts"]["new"] >= 1


def test_without_the_option_nothing_is_compared(tmp_path, tiny_model_dir):
    inbox = tmp_path / "in"
    write_sections_report(
        inbox / "acme_2022.pdf" if inbox.mkdir() is None else inbox, "A", YEAR_2022
    )
    url = f"sqlite:///{tmp_path / 'results.db'}"
    printed = run(inbox, tmp_path / "out", batch_settings(tiny_model_dir, url))
    assert "compared" not in printed and not list((tmp_path / "out").glob("compare-*.json"))
