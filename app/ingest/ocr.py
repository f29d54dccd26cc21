"""OCR of pages whose text layer is missing or unreadable: scans, faxes, fonts without a Unicode
map. Its own module because it is a second reader of pages: it feeds the same `RawPage` of
line segments as pdfium's text layer does, so blocks, reading order, tables and running headers
(layout, running) work unchanged on OCR'd pages and sentences keep their page, span and boxes.

How a page is read (`apply_ocr`, called by `read_pdf` after the text pass):

1. Which pages: `ingest.ocr` auto takes the pages whose status would be `needs_ocr` (an image
   without a text layer) or `unreadable` (glyph codes); force takes every page; off none.
2. The page is rendered in grey with pypdfium2 at `ingest.ocr_dpi` (300 by default, the
   resolution benchmarks/bench_ocr.py measured: word error rate against the text layer) while
   holding `PDFIUM_LOCK`; a page without ink is blank and skips Tesseract.
3. Tesseract (through tesserocr: in process, one engine per worker thread, the GIL released
   while it recognises) reads words with boxes and confidences, lines with their baseline and
   row height. `ingest.ocr_workers` pages are recognised at once, and only as many rendered
   images are alive as there are workers, so memory stays bounded whatever the page count.
4. Words -> line segments in page points (origin top-left, after /Rotate, like the text
   layer's boxes). Each line's box runs from its baseline up by the row's ascent and down by
   its descent, the same for every word of the line, as pdfium's loose character boxes do; the
   row height stands for the font size. So the layout's tests of line pitch and size hold.

Language: `ingest.ocr_languages` when set; else the document's language, detected (langdetect)
on the pages whose text layer is readable, or on a first OCR pass in English over the first
pages (re-read in the detected language when it is not English). A language whose Tesseract
data is missing falls back to English with a warning naming the Debian package to install.

Failures: Tesseract or its language data missing is an `OcrUnavailableError` naming the
package to install; the pages then keep their needs-OCR / unreadable status and messages. A
page OCR cannot read either (blank, noise, a picture) gets status `ocr_failed` and its own
message (app/ingest/status.py); it is never dropped.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium

from app.config import IngestOptions
from app.errors import OcrUnavailableError, OnError
from app.ingest.pdfium import PDFIUM_LOCK
from app.ingest.segments import SEG_GAP, RawPage, Seg, merge_rows
from app.ingest.status import odd_word, page_status
from app.ingest.text import VOCAB_WORD
from app.records import StageError

_log = logging.getLogger(__name__)

TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)
"""Where Tesseract's language data lives when $TESSDATA_PREFIX does not say (Debian first)."""
_LANGUAGES = {
    "en": ("eng", "English"),
    "nl": ("nld", "Dutch"),
    "de": ("deu", "German"),
    "fr": ("fra", "French"),
    "es": ("spa", "Spanish"),
    "it": ("ita", "Italian"),
    "pt": ("por", "Portuguese"),
    "da": ("dan", "Danish"),
    "sv": ("swe", "Swedish"),
    "no": ("nor", "Norwegian"),
    "fi": ("fin", "Finnish"),
    "pl": ("pol", "Polish"),
}
"""langdetect's codes -> Tesseract's language (the Debian package is tesseract-ocr-<code>)."""
_DEFAULT_LANGUAGE = "eng"
_MIN_DETECT_CHARS = 200
"""Less text than this is too little for langdetect to be trusted."""
_MAX_PIXELS = 40_000_000
"""Large pages (posters, A0 drawings) are rendered at a lower resolution than ocr_dpi."""
_INK_LEVEL = 128
_MIN_INK_PIXELS = 150
"""A rendered page with fewer dark pixels than this is blank (specks of dust, no text)."""
_RULE_CHARS = frozenset("|¦‖_")
"""Tesseract reads table rules and box edges as bars, underlines as underscores; no report
writes them as words."""
_LOOSE_HEIGHT = 1.1
"""pdfium's loose character boxes run from the font's ascent to its descent: about 1.1 em."""
_SPECK_CONFIDENCE = 50.0
"""A one-character word that is no letter or digit, read with less confidence than this, is a
speck of dust."""


def pages_to_ocr(raw_pages: dict[int, RawPage], options: IngestOptions) -> list[int]:
    """The pages OCR reads under `options.ocr`: auto the scans and unreadable ones, force all."""
    if options.ocr == "off":
        return []
    picked: list[int] = []
    for page_no, raw in sorted(raw_pages.items()):
        if raw.error is not None:
            continue  # pdfium could not load it: it cannot render it either
        if options.ocr == "force" or page_status(raw, options, "")[0] in (
            "needs_ocr",
            "unreadable",
        ):
            picked.append(page_no)
    return picked


def apply_ocr(
    data: bytes,
    raw_pages: dict[int, RawPage],
    options: IngestOptions,
    name: str,
    on_error: OnError = "record",
) -> list[StageError]:
    """OCR the pages `options.ocr` asks for, replacing their raw layout; returns the warnings.

    When OCR cannot run (Tesseract or a language missing) the pages are left as they were, so
    they keep today's needs-OCR / unreadable status, and the reason is returned as an error
    (raised in "raise" mode).
    """
    targets = pages_to_ocr(raw_pages, options)
    if not targets:
        return []
    try:
        engine = Tesseract(options, name)
        read, warnings = engine.read_pages(data, options, targets, _text_sample(raw_pages, targets))
    except OcrUnavailableError as exc:
        if on_error == "raise":
            raise
        _log.warning("%s", exc.message)
        return [exc.to_record()]
    for page_no, ocr_page in read.items():
        old = raw_pages[page_no]
        ocr_page.rotation = old.rotation
        # something was there to read: an image, or a text layer OCR was asked to replace
        ocr_page.has_image = old.has_image or old.n_chars > 0
        raw_pages[page_no] = ocr_page
    return warnings


def page_fields(raw: RawPage) -> dict[str, Any]:
    """The `Page` fields that say a page was OCR'd (empty for text-layer pages)."""
    if not raw.ocr:
        return {}
    return {
        "ocr": True,
        "ocr_confidence": raw.ocr_confidence,
        "ocr_language": raw.ocr_language,
    }


def _text_sample(raw_pages: dict[int, RawPage], targets: list[int]) -> str:
    """Text of the pages whose text layer is read as it is, for the document's language."""
    skip = set(targets)
    parts: list[str] = []
    size = 0
    for page_no, raw in sorted(raw_pages.items()):
        if page_no in skip or raw.error is not None or not raw.segs:
            continue
        text = " ".join(s.text for s in raw.segs)
        parts.append(text)
        size += len(text)
        if size > 20_000:
            break
    return " ".join(parts)


def detect_language(text: str) -> str | None:
    """langdetect's code of the text's language, or None when there is too little or it is
    unsure."""
    if len(text) < _MIN_DETECT_CHARS:
        return None
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    DetectorFactory.seed = 0  # repeatable: the same document always gets the same language
    try:
        best = detect_langs(text[:20_000])[0]
    except LangDetectException:
        return None
    return best.lang if best.prob >= 0.8 else None


def tessdata_dir(options: IngestOptions) -> Path | None:
    """Tesseract's language data folder in force, or None when none is found."""
    if options.tessdata_dir is not None:
        return options.tessdata_dir if options.tessdata_dir.is_dir() else None
    candidates = []
    if os.environ.get("TESSDATA_PREFIX"):
        prefix = Path(os.environ["TESSDATA_PREFIX"])
        candidates += [prefix, prefix / "tessdata"]
    candidates += [Path(p) for p in TESSDATA_DIRS]
    return next((p for p in candidates if any(p.glob("*.traineddata"))), None)


def _install_hint(codes: Iterable[str]) -> str:
    packages = " ".join(f"tesseract-ocr-{c.replace('_', '-').lower()}" for c in codes)
    return f"`apt-get install tesseract-ocr {packages}` (`make sysdeps` installs eng nld deu fra)"


@dataclass(slots=True)
class _Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    conf: float
    bullet: bool = False
    """Shaped like a bullet, at the start of its line."""
    speck: bool = False
    """Would be dropped as a speck unless it turns out to be a bullet."""


@dataclass(slots=True)
class _Read:
    """One page as Tesseract read it, in page points."""

    words: list[list[_Word]] = field(default_factory=list)
    """Words of each text line, left to right."""
    sizes: list[float] = field(default_factory=list)
    """Each line's row height (ascent + descent): its font size."""
    paragraphs: list[int] = field(default_factory=list)
    """Each line's paragraph, as Tesseract's layout analysis found them."""
    blank: bool = False
    error: str | None = None


class Tesseract:
    """Tesseract through tesserocr: its language data, the document's language, the pages."""

    def __init__(self, options: IngestOptions, name: str) -> None:
        try:
            import tesserocr
        except ImportError as exc:
            raise OcrUnavailableError(
                f"{name}: OCR is not available: the Python package tesserocr (sesame's binding "
                "to Tesseract) is not installed; pages that need OCR were not read. Install "
                'sesame\'s dependencies (`pip install -e .`), or set ingest.ocr = "off".'
            ) from exc
        self._tesserocr = tesserocr
        path = tessdata_dir(options)
        if path is None:
            where = (
                f"ingest.tessdata_dir {options.tessdata_dir} is not a folder"
                if options.tessdata_dir is not None
                else "looked in $TESSDATA_PREFIX and " + ", ".join(TESSDATA_DIRS)
            )
            raise OcrUnavailableError(
                f"{name}: OCR is not available: Tesseract's language data was not found "
                f"({where}); pages that need OCR were not read. Install Tesseract with "
                f"{_install_hint([_DEFAULT_LANGUAGE])}, or point ingest.tessdata_dir "
                "(SESAME_INGEST__TESSDATA_DIR) at a tessdata folder."
            )
        self.path = path
        self.available = {p.stem for p in path.glob("*.traineddata")}
        self.name = name
        self._local = threading.local()
        self._apis: list[Any] = []
        self._apis_lock = threading.Lock()
        self._workers = 1

    def check(self, languages: str) -> None:
        """Raise OcrUnavailableError naming the packages when a language's data is missing."""
        missing = [c for c in languages.split("+") if c not in self.available]
        if missing:
            raise OcrUnavailableError(
                f"{self.name}: OCR is not available in {'+'.join(missing)}: Tesseract's data "
                f"for it is not installed in {self.path}; pages that need OCR were not read. "
                f"Install it with {_install_hint(missing)}, or change ingest.ocr_languages."
            )

    def language_for(self, detected: str | None) -> tuple[str, StageError | None]:
        """Tesseract's language for a detected one, falling back to English with a warning."""
        if detected is None:
            return _DEFAULT_LANGUAGE, None
        code, label = _LANGUAGES.get(detected, (None, detected))
        if code is not None and code in self.available:
            return code, None
        install = f"install it with {_install_hint([code])}" if code else "set ingest.ocr_languages"
        warning = StageError(
            stage="ingest",
            code="ocr_language",
            message=f"{self.name}: the document reads as {label}, but Tesseract has no "
            f"{code or detected} data here; its scanned pages were read by OCR as English, so "
            f"words may be misread. To read them in {label}, {install} and analyze it again.",
        )
        return _DEFAULT_LANGUAGE, warning

    def read_pages(
        self, data: bytes, options: IngestOptions, page_nos: list[int], text_sample: str
    ) -> tuple[dict[int, RawPage], list[StageError]]:
        """OCR the pages in the document's language; returns their raw layout and warnings."""
        warnings: list[StageError] = []
        self.check(_DEFAULT_LANGUAGE if options.ocr_languages is None else options.ocr_languages)
        language = options.ocr_languages
        if language is None and (detected := detect_language(text_sample)) is not None:
            language, warning = self.language_for(detected)
            warnings += [warning] if warning else []
        workers = self._workers = min(options.ocr_workers, len(page_nos))
        read: dict[int, _Read] = {}
        try:
            with (
                _Renderer(data, options.password) as renderer,
                ThreadPoolExecutor(workers, thread_name_prefix="ocr") as pool,
            ):
                todo = list(page_nos)
                if language is None:
                    # no readable text layer to tell the language: read the first pages in
                    # English, detect on what came out, re-read them when it is not English
                    probe, todo = todo[:workers], todo[workers:]
                    read = self._run(pool, renderer, probe, _DEFAULT_LANGUAGE, options)
                    text = " ".join(w.text for r in read.values() for ln in r.words for w in ln)
                    language, warning = self.language_for(detect_language(text))
                    warnings += [warning] if warning else []
                    if language != _DEFAULT_LANGUAGE:
                        read = self._run(pool, renderer, probe, language, options)
                read.update(self._run(pool, renderer, todo, language, options))
        finally:
            self._close()
        pages = {
            page_no: _raw_page(page_no, read[page_no], renderer.sizes[page_no], language)
            for page_no in page_nos
        }
        return pages, warnings

    def _run(
        self,
        pool: ThreadPoolExecutor,
        renderer: _Renderer,
        page_nos: list[int],
        language: str,
        options: IngestOptions,
    ) -> dict[int, _Read]:
        """Render page after page (under the pdfium lock) while workers recognise; at most one
        rendered image per worker is alive."""
        out: dict[int, _Read] = {}
        running: dict[Future[_Read], int] = {}
        pending = iter(page_nos)

        def submit() -> None:
            page_no = next(pending, None)
            if page_no is None:
                return
            try:
                image, scale = renderer.render(page_no, options.ocr_dpi)
            except Exception as exc:  # one page pdfium cannot render must not sink the rest
                _log.warning("%s page %d: render failed: %s", self.name, page_no, exc)
                out[page_no] = _Read(error=f"the page could not be rendered ({exc})")
                submit()
                return
            running[pool.submit(self._recognise, image, scale, language, options.ocr_dpi)] = page_no

        for _ in range(self._workers):
            submit()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                page_no = running.pop(future)
                try:
                    out[page_no] = future.result()
                except Exception as exc:  # Tesseract failed on this page only
                    _log.warning("%s page %d: OCR failed: %s", self.name, page_no, exc)
                    out[page_no] = _Read(error=f"Tesseract failed: {type(exc).__name__}: {exc}")
                submit()
        return out

    def _api(self, language: str) -> Any:
        """This thread's Tesseract for a language (engines are not thread-safe; each loads its
        model once and reads many pages)."""
        apis: dict[str, Any] = self._local.__dict__.setdefault("apis", {})
        api = apis.get(language)
        if api is None:
            tess = self._tesserocr
            api = tess.PyTessBaseAPI(path=str(self.path) + os.sep, lang=language, psm=tess.PSM.AUTO)
            apis[language] = api
            with self._apis_lock:
                self._apis.append(api)
        return api

    def _close(self) -> None:
        with self._apis_lock:
            for api in self._apis:
                api.End()
            self._apis.clear()

    def _recognise(self, image: np.ndarray, scale: float, language: str, dpi: int) -> _Read:
        if int((image < _INK_LEVEL).sum()) < _MIN_INK_PIXELS:
            return _Read(blank=True)
        tess = self._tesserocr
        api = self._api(language)
        height, width = image.shape
        api.SetImageBytes(image.tobytes(), width, height, 1, width)
        api.SetSourceResolution(round(dpi * min(1.0, scale * 72 / dpi)))
        api.Recognize()
        it = api.GetIterator()
        return _words(it, tess.RIL, 1.0 / scale) if it is not None else _Read()


class _Renderer:
    """The document opened a second time for rendering; every pdfium call holds the lock."""

    def __init__(self, data: bytes, password: str | None) -> None:
        with PDFIUM_LOCK:
            self._pdf = pdfium.PdfDocument(data, password=password)
        self.sizes: dict[int, tuple[float, float]] = {}

    def __enter__(self) -> _Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        with PDFIUM_LOCK:
            self._pdf.close()

    def render(self, page_no: int, dpi: int) -> tuple[np.ndarray, float]:
        """The page in grey at `dpi` (less for huge pages), with its pixels per point."""
        with PDFIUM_LOCK:
            page = self._pdf[page_no - 1]
            try:
                width, height = page.get_size()
                self.sizes[page_no] = (width, height)
                scale = min(dpi / 72, math.sqrt(_MAX_PIXELS / max(width * height, 1.0)))
                bitmap = page.render(scale=scale, grayscale=True)
                try:
                    image = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
                finally:
                    bitmap.close()
            finally:
                page.close()
        if image.ndim == 3:
            image = image[:, :, 0]
        return np.ascontiguousarray(image), scale


def _words(it: Any, ril: Any, k: float) -> _Read:
    """Words and lines from Tesseract's result iterator, in points (k points per pixel)."""
    out = _Read()
    word, line, para = ril.WORD, ril.TEXTLINE, ril.PARA
    paragraph = -1
    current: list[_Word] | None = None
    line_box: tuple[float, float, float, float] | None = None  # slope, intercept, ascent, descent
    if it.Empty(word):
        return out
    while True:
        if current is None or it.IsAtBeginningOf(line):
            if current is None or it.IsAtBeginningOf(para):
                paragraph += 1
            current = []
            out.words.append(current)
            out.paragraphs.append(paragraph)
            bbox = it.BoundingBox(line)
            base = it.Baseline(line)
            row = it.RowAttributes()
            line_box, size = _line_geometry(bbox, base, row)
            out.sizes.append(size * k)
        text = (it.GetUTF8Text(word) or "").strip()
        box = it.BoundingBox(word)
        conf = float(it.Confidence(word))
        # a bullet (read as "e", "°" or "«") when words follow it on the line (`_raw_page`)
        bullet = bool(box) and not current and len(text) == 1 and _is_bullet(box, line_box, size)
        # a speck read as "~" or "°" is no word; bars and underscores are table rules
        speck = len(text) == 1 and not text.isalnum() and conf < _SPECK_CONFIDENCE
        if text and box and (bullet or not speck) and not set(text) <= _RULE_CHARS:
            x0, y0, x1, y1 = box
            top, bottom = float(y0), float(y1)
            if line_box is not None:
                slope, intercept, ascent, descent = line_box
                base_y = slope * (x0 + x1) / 2 + intercept
                top, bottom = min(top, base_y - ascent), max(bottom, base_y + descent)
            current.append(
                _Word(text, x0 * k, x1 * k, top * k, bottom * k, conf, bullet, bullet and speck)
            )
        if not it.Next(word):
            break
    # drop lines that held only rules
    keep = [i for i, ws in enumerate(out.words) if ws]
    out.words = [out.words[i] for i in keep]
    out.sizes = [out.sizes[i] for i in keep]
    out.paragraphs = [out.paragraphs[i] for i in keep]
    return out


def _is_bullet(
    box: tuple[int, int, int, int],
    line_box: tuple[float, float, float, float] | None,
    size: float,
) -> bool:
    """A small blob at the start of a line, standing clear above the baseline: a bullet (a
    letter is taller, a full stop sits on the baseline)."""
    if line_box is None or size <= 0:
        return False
    x0, y0, x1, y1 = box
    slope, intercept, _, _ = line_box
    base_y = slope * (x0 + x1) / 2 + intercept
    return y1 - y0 <= 0.45 * size and x1 - x0 <= 0.6 * size and base_y - (y0 + y1) / 2 >= 0.2 * size


def _smooth_sizes(sizes: list[float], paragraphs: list[int]) -> list[float]:
    """Row heights vary from line to line with the letters on them (a line without descenders
    is shorter); the layout wants one size per paragraph, as a font gives it. Lines far from
    their paragraph's median (a heading Tesseract put in it) keep their own."""
    by_para: dict[int, list[float]] = {}
    for size, para in zip(sizes, paragraphs, strict=True):
        by_para.setdefault(para, []).append(size)
    medians = {para: float(np.median(v)) for para, v in by_para.items()}
    out = []
    for size, para in zip(sizes, paragraphs, strict=True):
        m = medians[para]
        out.append(m if abs(size - m) <= 0.2 * m else size)
    return out


def _line_geometry(
    bbox: tuple[int, int, int, int] | None,
    base: tuple[tuple[int, int], tuple[int, int]] | None,
    row: dict[str, float] | None,
) -> tuple[tuple[float, float, float, float] | None, float]:
    """A line's baseline (slope, intercept), ascent and descent in pixels, and its font size.

    Tesseract's row height runs from the descenders' foot to the ascenders' top: a font size.
    Where it is implausible against the line's ink box (a line of one dash), the ink box serves.
    """
    ink = float(bbox[3] - bbox[1]) if bbox else 0.0
    if not base or not row or bbox is None:
        return None, max(ink, 1.0)
    height, descent = float(row["row_height"]), -float(row["descenders"])
    if not (0.5 * ink <= height <= 2.5 * max(ink, 1.0)) or descent < 0 or descent > height:
        return None, max(ink, 1.0)
    (x1, y1), (x2, y2) = base
    slope = (y2 - y1) / (x2 - x1) if x2 != x1 else 0.0
    return (slope, y1 - slope * x1, height - descent, descent), height


def _raw_page(page_no: int, read: _Read, size: tuple[float, float], language: str) -> RawPage:
    """Tesseract's words -> the raw layout the text layer gives: line segments of words less
    than about an em apart, rows merged."""
    width, height = size
    raw = RawPage(page_no, width, height, 0, ocr=True, ocr_language=language)
    raw.ocr_blank = read.blank
    raw.error = read.error
    segs: list[Seg] = []
    confs: list[float] = []
    words: list[str] = []
    sizes = _smooth_sizes(read.sizes, read.paragraphs)
    for line_words, font_size in zip(read.words, sizes, strict=True):
        line_words.sort(key=lambda w: w.x0)
        first = line_words[0]
        if first.bullet and len(line_words) > 1 and line_words[1].x0 - first.x1 < 4 * font_size:
            first.text = "•"  # what the layout knows a bullet by
        elif first.speck:
            line_words = line_words[1:]
            if not line_words:
                continue
        group: list[_Word] = []
        for w in line_words:
            # a column or cell gap, not a word space: as the text layer's test (under SEG_GAP
            # line heights), with the line as tall as pdfium's loose boxes (about 1.1 em)
            if group and w.x0 - group[-1].x1 >= SEG_GAP * _LOOSE_HEIGHT * font_size:
                segs.append(_seg(group, font_size))
                group = []
            group.append(w)
            confs.append(w.conf)
            words.append(w.text)
        if group:
            segs.append(_seg(group, font_size))
    raw.segs = merge_rows(segs)
    raw.n_words = len(words)
    raw.n_chars = sum(len(w) for w in words)
    raw.n_odd_words = sum(map(odd_word, words))
    raw.vocab = set(VOCAB_WORD.findall(" ".join(words).lower()))
    raw.ocr_confidence = round(sum(confs) / len(confs) / 100, 3) if confs else None
    return raw


def _seg(words: list[_Word], size: float) -> Seg:
    return Seg(
        text=" ".join(w.text for w in words),
        x0=min(w.x0 for w in words),
        top=min(w.top for w in words),
        x1=max(w.x1 for w in words),
        bottom=max(w.bottom for w in words),
        size=round(size, 2),
        bold=False,  # Tesseract's LSTM engine does not tell the weight
        n_chars=sum(len(w.text) for w in words),
    )
