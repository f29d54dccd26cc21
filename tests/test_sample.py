"""The bundled sample report (the input of `make demo`) is what its script writes."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pypdfium2
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE = SAMPLES / "sample_annual_report.pdf"


def page_texts(path: Path) -> list[str]:
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        return [page.get_textpage().get_text_range() for page in pdf]
    finally:
        pdf.close()


def load_script():
    pytest.importorskip("reportlab")
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLES / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_sample_report_is_small_and_has_what_the_demo_needs():
    assert SAMPLE.stat().st_size < 200 * 1024
    pages = page_texts(SAMPLE)
    assert len(pages) == 6
    text = "\n".join(pages)
    for heading in (
        "Chairman's letter",
        "Risk factors",
        "Going concern",
        "Outlook",
        "Independent auditor's report",
        "Key figures",
    ):
        assert heading in text
    for detail in ("€1.5 million", "3.2%", "Inc.", "e.g.", "U.S.", "\u2022"):
        assert detail in text
    # "manu-" ends a line, "facturing" starts the next; pdfium reports such a line-end hyphen
    # as U+FFFE and joins the lines.
    assert re.search("manu[-\ufffe]\\s*facturing", text)
    # Running header and page number on every page after the cover.
    for number, page in enumerate(pages[1:], start=2):
        assert "Northwind Components N.V. | Annual Report 2024" in page
        assert page.rstrip().endswith(str(number))


def test_committed_sample_matches_its_script(tmp_path):
    script = load_script()
    first = script.build(tmp_path / "a.pdf")
    second = script.build(tmp_path / "b.pdf")
    assert first.read_bytes() == second.read_bytes()  # reproducible byte for byte
    # Text, not bytes, against the committed file: another reportlab may lay bytes out anew.
    assert page_texts(first) == page_texts(SAMPLE)
    assert script.HYPHENATED  # a word is broken across a line with a hyphen
