"""The PDFs behind results (kept by sha256) and page images with a sentence's boxes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from pdfs import write_clean_report, write_pages, write_rotated_page

from app.config import load_settings
from app.records import BBox, Sentence
from app.ui.documents import (
    BOX_RGB,
    boxes_on,
    documents_dir,
    find_pdf,
    keep_pdf,
    render_page,
    sentence_pages,
)


def test_uploads_are_kept_under_their_sha256_never_their_name(tmp_path):
    settings = load_settings()
    data = write_clean_report(tmp_path / "uploads" / "..evil name?.pdf").read_bytes()
    digest, path = keep_pdf(settings, data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert path == documents_dir(settings) / f"{digest}.pdf"
    assert [p.name for p in documents_dir(settings).iterdir()] == [f"{digest}.pdf"]
    assert keep_pdf(settings, data) == (digest, path)  # kept once
    assert find_pdf(settings, digest) == data


def test_batch_results_read_their_source_only_while_it_holds_the_same_bytes(tmp_path):
    settings = load_settings()
    source = write_clean_report(tmp_path / "report.pdf")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    data = source.read_bytes()
    assert find_pdf(settings, digest, ["report.pdf", None, str(source)]) == data
    source.write_bytes(b"%PDF-1.4 something else")
    assert find_pdf(settings, digest, [str(source)]) is None
    assert find_pdf(settings, digest) is None
    assert find_pdf(settings, "../../etc/passwd", [str(source)]) is None


def _colour_share(image, rgb, tolerance=40) -> float:
    pixels = np.asarray(image, dtype=int)
    near = (np.abs(pixels - np.array(rgb)) <= tolerance).all(axis=-1)
    return float(near.mean())


def test_page_image_outlines_the_boxes_and_focus_crops_around_them(tmp_path):
    pdf = write_clean_report(tmp_path / "report.pdf").read_bytes()
    plain = render_page(pdf, 1, width_px=600)
    assert plain.width == 600
    assert _colour_share(plain, BOX_RGB) == 0
    box = BBox(x0=72, top=100, x1=300, bottom=112, page_no=1)
    drawn = render_page(pdf, 1, [box], width_px=600)
    assert drawn.size == plain.size
    scale = 600 / 595.27
    edge = drawn.getpixel((round(72 * scale) - 1, round(106 * scale)))
    assert all(abs(a - b) <= 40 for a, b in zip(edge, BOX_RGB, strict=True)), edge
    assert _colour_share(drawn, BOX_RGB) > 0.001
    focused = render_page(pdf, 1, [box], width_px=600, focus_pt=50)
    assert abs(focused.height - round((12 + 100) * scale)) <= 3
    assert abs(focused.width - round(420 * scale)) <= 3  # at least a column's width
    wide = render_page(pdf, 1, [box.model_copy(update={"x1": 520})], width_px=600, focus_pt=50)
    assert abs(wide.width - round((520 - 72 + 2 * 36) * scale)) <= 3


def test_sentence_running_onto_the_next_page_has_boxes_on_both(tmp_path):
    pdf = write_pages(tmp_path / "pages.pdf", 2).read_bytes()
    sentence = Sentence(
        doc_id="x" * 64,
        index=0,
        page_no=1,
        start=0,
        end=5,
        text="Across a page break.",
        boxes=(
            BBox(x0=72, top=700, x1=400, bottom=712, page_no=1),
            BBox(x0=72, top=72, x1=200, bottom=84, page_no=2),
        ),
        end_page_no=2,
        end_page_end=10,
    )
    assert sentence_pages(sentence) == [1, 2]
    assert [b.top for b in boxes_on(sentence, 2)] == [72]
    second = render_page(pdf, 2, boxes_on(sentence, 2), width_px=400, focus_pt=20)
    assert _colour_share(second, BOX_RGB) > 0.001


def _ink_inside(image, box: BBox, frame: tuple[float, float]) -> float:
    sx, sy = image.width / frame[0], image.height / frame[1]
    crop = image.crop(
        (round(box.x0 * sx), round(box.top * sy), round(box.x1 * sx), round(box.bottom * sy))
    )
    return float((np.asarray(crop.convert("L")) < 128).mean())


@pytest.mark.parametrize("writer", [write_clean_report, write_rotated_page])
def test_ingest_line_boxes_land_on_the_printed_text(tmp_path, writer):
    from app.config import IngestOptions
    from app.ingest import read_pdf

    path = writer(tmp_path / "doc.pdf")
    _, pages, _ = read_pdf(path, IngestOptions())
    page = pages[0]
    frame = (page.width, page.height)
    image = render_page(path.read_bytes(), 1, width_px=800, frame=frame)
    assert page.lines
    for line in page.lines:
        assert _ink_inside(image, line.bbox, frame) > 0.03, line
    blank = BBox(x0=72, top=page.height - 60, x1=300, bottom=page.height - 48)
    assert _ink_inside(image, blank, frame) == 0
