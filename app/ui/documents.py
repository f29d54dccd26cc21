"""The files behind stored results, and page images with a sentence's boxes drawn on them.

Uploaded files are kept in the data directory under the sha256 of their bytes
(`<data_dir>/documents/<sha256>.pdf`, `.html` for HTML filings, `.zip` for ESEF packages): an
uploaded file name is shown, never used as a path. Results of the CLI and the batch point at
their source path instead; that file is used when it still holds the same bytes. Keeping and
finding them lives in `app.kept` (re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PIL import Image, ImageDraw

from app.kept import documents_dir as documents_dir
from app.kept import find_document as find_document
from app.kept import find_pdf as find_pdf
from app.kept import keep_document as keep_document
from app.kept import keep_pdf as keep_pdf
from app.records import BBox, Sentence

_log = logging.getLogger(__name__)

_SIDE_PT = 36.0
_MIN_FOCUS_WIDTH_PT = 420.0
BOX_RGB = (230, 120, 0)
"""Sentence boxes are drawn in orange: distinct from the label colours of the evidence."""


def sentence_pages(sentence: Sentence) -> list[int]:
    """The pages a sentence lies on, in order (two when it runs across a page break)."""
    pages = {sentence.page_no}
    pages.update(b.page_no for b in sentence.boxes if b.page_no is not None)
    if sentence.end_page_no is not None:
        pages.add(sentence.end_page_no)
    return sorted(pages)


def boxes_on(sentence: Sentence, page_no: int) -> list[BBox]:
    """The sentence's boxes that lie on one page."""
    return [b for b in sentence.boxes if (b.page_no or sentence.page_no) == page_no]


def render_page(
    pdf: bytes,
    page_no: int,
    boxes: Sequence[BBox] = (),
    *,
    width_px: int = 900,
    frame: tuple[float, float] | None = None,
    focus_pt: float | None = None,
    password: str | None = None,
) -> Image.Image:
    """A page of the PDF as an RGB image, `boxes` outlined and tinted on it.

    Args:
        boxes: PDF points, origin top-left, in the page as it is shown (rotation applied).
        frame: the (width, height) in points of the boxes' page, from its `Page` record;
            None takes pdfium's page size.
        focus_pt: crop to the part of the page holding the boxes, this many points above and
            below them and a little to their sides (at least a column's width, so the reader
            keeps the sentence's context); None: the whole page.
    """
    import pypdfium2 as pdfium

    # pdfium is not thread-safe, and Streamlit serves every session from its own thread: take
    # the same lock that ingest holds while it reads.
    from app.ingest import PDFIUM_LOCK

    with PDFIUM_LOCK:
        doc = pdfium.PdfDocument(pdf, password=password)
        try:
            page = doc[page_no - 1]
            try:
                points_w, points_h = page.get_size()
                scale = width_px / points_w
                image = page.render(scale=scale).to_pil().convert("RGB")
            finally:
                page.close()
        finally:
            doc.close()
    if not boxes:
        return image
    # The image shows the page upright, as ingest measured the boxes: scale by the sides of
    # the frame that match the image's orientation.
    fw, fh = frame or (points_w, points_h)
    if (image.width > image.height) != (fw > fh) and abs(fw - fh) >= 1:
        fw, fh = fh, fw
    sx, sy = image.width / fw, image.height / fh
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    pad = 2
    for b in boxes:
        rect = (b.x0 * sx - pad, b.top * sy - pad, b.x1 * sx + pad, b.bottom * sy + pad)
        draw.rectangle(rect, fill=(*BOX_RGB, 60), outline=(*BOX_RGB, 255), width=3)
    drawn = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    if focus_pt is None:
        return drawn
    top = max(0, round((min(b.top for b in boxes) - focus_pt) * sy))
    bottom = min(drawn.height, round((max(b.bottom for b in boxes) + focus_pt) * sy))
    x0, x1 = min(b.x0 for b in boxes) - _SIDE_PT, max(b.x1 for b in boxes) + _SIDE_PT
    if x1 - x0 < _MIN_FOCUS_WIDTH_PT:
        middle = (x0 + x1) / 2
        x0, x1 = middle - _MIN_FOCUS_WIDTH_PT / 2, middle + _MIN_FOCUS_WIDTH_PT / 2
    # slide the window back onto the page rather than narrowing it at an edge
    shift = max(0.0, -x0) - max(0.0, x1 - fw)
    x0, x1 = max(0.0, x0 + shift), min(fw, x1 + shift)
    left, right = max(0, round(x0 * sx)), min(drawn.width, round(x1 * sx))
    return drawn.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
