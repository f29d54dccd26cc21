"""Everything that talks to pdfium: the lock that serialises it, opening a document (passwords,
damage), its metadata and page count, and reading one page through the raw text API
(characters -> words -> line segments, fonts, boxes turned upright, images). Its own module
because pdfium is not thread-safe and its bindings are private ctypes: nothing else in the
package touches them.
"""

from __future__ import annotations

import ctypes
import logging
import math
import re
import threading
import unicodedata
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2.raw as pdfium_c

from app.errors import DamagedPdfError, EncryptedPdfError, IngestError
from app.ingest.segments import SEG_GAP, RawPage, Seg, merge_rows
from app.ingest.status import odd_word
from app.ingest.text import VOCAB_WORD

_log = logging.getLogger(__name__)


PDFIUM_LOCK = threading.RLock()
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demi", "extrabold", "ultra")
_FONTFLAG_FORCEBOLD = 1 << 18


def pdf_page_count(source: Path | bytes, password: str | None = None) -> int:
    """Number of pages of a PDF without reading its text (0 when it cannot be opened)."""
    data = source.read_bytes() if isinstance(source, Path) else source
    with PDFIUM_LOCK:
        try:
            handle = open_document(data, password, "document.pdf")
        except IngestError:
            return 0
        try:
            return int(pdfium_c.FPDF_GetPageCount(handle.raw))
        finally:
            handle.close()


class DocHandle:
    """An open pdfium document and the buffer it reads from (pdfium does not copy it)."""

    def __init__(self, raw: object, buffer: object) -> None:
        self.raw = raw
        self._buffer = buffer

    def close(self) -> None:
        if self.raw is not None:
            pdfium_c.FPDF_CloseDocument(self.raw)
            self.raw = None


def open_document(data: bytes, password: str | None, name: str) -> DocHandle:
    buffer = ctypes.create_string_buffer(data, len(data))
    pw = None if password is None else (password + "\x00").encode("utf-8")
    raw = pdfium_c.FPDF_LoadMemDocument64(buffer, len(data), pw)
    if raw:
        return DocHandle(raw, buffer)
    code = pdfium_c.FPDF_GetLastError()
    if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise EncryptedPdfError(
                f"{name}: encrypted with a security scheme pdfium cannot open; no text read. "
                "Ask the client for an unlocked copy."
            )
        if password:
            raise EncryptedPdfError(
                f"{name}: password-protected and the supplied password was not accepted; no "
                "text read. Check the password or ask the client for an unlocked copy."
            )
        raise EncryptedPdfError(
            f"{name}: password-protected; no text read. Supply the password with --password "
            "or ask the client for an unlocked copy."
        )
    reason = {
        pdfium_c.FPDF_ERR_FORMAT: "its structure is broken or the file is truncated",
        pdfium_c.FPDF_ERR_FILE: "it could not be read",
    }.get(code, "pdfium could not open it")
    raise DamagedPdfError(
        f"{name}: damaged PDF ({reason}); no text read. "
        "Ask the client for a fresh copy of the file."
    )


def meta(raw_doc: object, key: str) -> str | None:
    tag = key.encode("ascii") + b"\x00"
    n = pdfium_c.FPDF_GetMetaText(raw_doc, tag, None, 0)
    if n <= 2:
        return None
    buf = ctypes.create_string_buffer(n)
    pdfium_c.FPDF_GetMetaText(raw_doc, tag, buf, n)
    value = buf.raw[: n - 2].decode("utf-16-le", errors="ignore").strip()
    return value or None


class PageReader:
    """Reads pages of one open document through pdfium's raw text API."""

    def __init__(self, raw_doc: object, min_chars: int = 20) -> None:
        self.raw_doc = raw_doc
        self.min_chars = min_chars  # below this, look for an image (a scan needing OCR)
        self._fast = _fast()
        self._matrix = (ctypes.c_float * 6)()
        self._flags = ctypes.c_int()
        self._name_buf = ctypes.create_string_buffer(128)
        self._fonts: dict[int, bool] = {}

    def read(self, page_no: int) -> RawPage:
        page = pdfium_c.FPDF_LoadPage(self.raw_doc, page_no - 1)
        if not page:
            return RawPage(page_no, 0.0, 0.0, 0, error="pdfium could not load the page")
        try:
            width = float(pdfium_c.FPDF_GetPageWidthF(page))
            height = float(pdfium_c.FPDF_GetPageHeightF(page))
            rotation = int(pdfium_c.FPDFPage_GetRotation(page)) % 4 * 90
            raw = RawPage(page_no, width, height, rotation)
            text_page = pdfium_c.FPDFText_LoadPage(page)
            if not text_page:
                raw.error = "pdfium could not read the page's text"
                return raw
            try:
                self._read_text(page, text_page, raw)
            finally:
                pdfium_c.FPDFText_ClosePage(text_page)
            if raw.n_chars < max(self.min_chars, 1):
                raw.has_image = _has_image(page)
            return raw
        except Exception as exc:  # a broken page must not sink the document
            _log.warning("page %d: %s", page_no, exc, exc_info=True)
            return RawPage(page_no, 0.0, 0.0, 0, error=f"{type(exc).__name__}: {exc}")
        finally:
            pdfium_c.FPDF_ClosePage(page)

    def _read_text(self, page: object, text_page: Any, raw: RawPage) -> None:
        n = int(pdfium_c.FPDFText_CountChars(text_page))
        if n <= 0:
            return
        text = _page_text(text_page, n)
        # before hyphens are marked: a word broken over two lines must not enter the
        # vocabulary with its hyphen ("finan-cial")
        raw.vocab = set(VOCAB_WORD.findall(text.lower()))
        if "\ufffe" in text:
            text = _mark_hyphens(text_page, text)
        boxes = np.empty((n, 4), dtype=np.float32)  # left, top, right, bottom in PDF space
        loose = self._fast.loose_box
        tp = ctypes.cast(text_page, ctypes.c_void_p).value or 0
        base = boxes.ctypes.data
        for i in range(n):
            loose(tp, i, base + 16 * i)
        box = _to_display(boxes, page, raw.rotation)
        self._segments(tp, text, box, raw)

    def _segments(self, tp: int, text: str, box: np.ndarray, raw: RawPage) -> None:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        x0, top, x1, bottom = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
        space = (
            (codes <= 32)
            | (codes == 0xA0)
            | ((codes >= 0x2000) & (codes <= 0x200B))
            | (codes == 0x3000)
            | (codes == 0xFEFF)
        )
        degenerate = (x1 - x0 <= 0) & (bottom - top <= 0)
        ink = np.flatnonzero(~space & ~degenerate)
        if ink.size == 0:
            return
        # text printed twice on the same spot (fake bold, overlays): keep the first copy
        key = (
            (codes[ink].astype(np.int64) << 32)
            + (np.round(x0[ink]).astype(np.int64) << 16)
            + np.round(top[ink]).astype(np.int64)
        )
        order = np.argsort(key, kind="stable")
        same = key[order][1:] == key[order][:-1]
        if same.any():
            # ligatures give several characters one box: only copies further apart count
            far = order[1:][same] - order[:-1][same] >= 3
            if far.any():
                ink = np.delete(ink, order[1:][same][far])
        raw.n_chars = int(ink.size)
        bad = (codes[ink] == 0xFFFD) | ((codes[ink] >= 0xE000) & (codes[ink] <= 0xF8FF))
        # pdfium knows which glyphs had no Unicode mapping: ask on a sample of characters
        sample = ink[:: max(1, ink.size // 200)]
        unmapped = sum(map(partial(self._fast.unmapped, tp), sample.tolist()))
        raw.n_bad = max(int(bad.sum()), round(unmapped * ink.size / sample.size))

        # words: break at spaces, jumps to another line, wide gaps or moving backwards
        ix0, itop, ix1, ibot = x0[ink], top[ink], x1[ink], bottom[ink]
        h = np.maximum(ibot - itop, 0.1)
        dx = ix0[1:] - ix1[:-1]
        dy = (itop[1:] + ibot[1:] - itop[:-1] - ibot[:-1]) / 2
        href = np.maximum(h[1:], h[:-1])
        vertical_step = (
            (np.abs(dy) > np.abs(ix0[1:] - ix0[:-1]))
            & (np.abs(dy) > 0.3 * href)
            & (np.abs(dy) < 1.5 * href)
        )
        brk = (ink[1:] != ink[:-1] + 1) | (
            ~vertical_step
            & ((np.abs(dy) > 0.5 * href) | (dx > 0.3 * href) | (ix0[1:] < ix0[:-1] - 0.3 * href))
        )
        starts = np.concatenate(([0], np.flatnonzero(brk) + 1))
        ends = np.concatenate((starts[1:], [ink.size]))
        vs = np.append(vertical_step, False).astype(np.int32)
        # text set vertically (margin labels, a rotated page's running head) is left out
        horizontal = (np.add.reduceat(vs, starts) - vs[ends - 1]) * 2 <= (ends - starts - 1)
        if not horizontal.any():
            return
        wx0 = np.minimum.reduceat(ix0, starts)[horizontal]
        wtop = np.minimum.reduceat(itop, starts)[horizontal]
        wx1 = np.maximum.reduceat(ix1, starts)[horizontal]
        wbot = np.maximum.reduceat(ibot, starts)[horizontal]
        starts, ends = starts[horizontal], ends[horizontal]
        first = ink[starts]
        words = [
            text[a:b] for a, b in zip(first.tolist(), (ink[ends - 1] + 1).tolist(), strict=True)
        ]
        raw.n_words = len(words)
        some_words = words[:: max(1, len(words) // 60)]
        raw.n_odd_words = round(
            sum(map(odd_word, some_words)) * len(words) / max(len(some_words), 1)
        )

        # segments: consecutive words on one baseline with less than about an em between them
        wh = wbot - wtop
        gap = wx0[1:] - wx1[:-1]
        hh = np.maximum(np.maximum(wh[1:], wh[:-1]), 0.1)
        overlap = np.minimum(wbot[1:], wbot[:-1]) - np.maximum(wtop[1:], wtop[:-1])
        join = (
            (gap > -0.5 * hh) & (gap < SEG_GAP * hh) & (overlap > 0.5 * np.minimum(wh[1:], wh[:-1]))
        )
        s_start = np.concatenate(([0], np.flatnonzero(~join) + 1))
        s_end = np.concatenate((s_start[1:], [len(words)]))
        lens = np.fromiter((len(w) for w in words), dtype=np.int32, count=len(words))
        sx0 = np.minimum.reduceat(wx0, s_start).tolist()
        stop = np.minimum.reduceat(wtop, s_start).tolist()
        sx1 = np.maximum.reduceat(wx1, s_start).tolist()
        sbot = np.maximum.reduceat(wbot, s_start).tolist()
        nch = np.add.reduceat(lens, s_start).tolist()
        probe = self._font_probe(tp)
        first_l = first.tolist()
        segs: list[Seg] = []
        for k, (a, b) in enumerate(zip(s_start.tolist(), s_end.tolist(), strict=True)):
            seg_text = " ".join(words[a:b]) if b - a > 1 else words[a]
            if not seg_text.isascii():
                seg_text = unicodedata.normalize("NFKC", seg_text)
            size, bold, font = probe(first_l[a])
            if bold and b - a > 2:
                bold = probe(first_l[b - 1])[1]  # a bold lead-in does not make a bold line
            seg = Seg(seg_text, sx0[k], stop[k], sx1[k], sbot[k], size, bold, nch[k])
            seg.font = font
            segs.append(seg)
        raw.segs = merge_rows(segs)

    def _font_probe(self, tp: int):  # noqa: ANN202 - a closure over pdfium handles
        """Font size (points, text matrix applied) and boldness at a char index."""
        fast, fonts = self._fast, self._fonts
        m = self._matrix
        m_addr, flags_addr = ctypes.addressof(m), ctypes.addressof(self._flags)
        name_buf, name_addr = self._name_buf, ctypes.addressof(self._name_buf)
        fonts.clear()  # font handles are only trusted within one page

        def probe(index: int) -> tuple[float, bool, int]:
            size = fast.font_size(tp, index)
            if fast.matrix(tp, index, m_addr):
                size *= math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
            obj = fast.text_object(tp, index)
            font = fast.font(obj) if obj else None
            bold = fonts.get(font) if font else None
            if bold is None:
                weight = fast.weight(tp, index)
                n = fast.font_info(tp, index, name_addr, 128, flags_addr)
                font_name = name_buf.raw[: max(0, min(n, 128) - 1)].decode("latin-1").lower()
                bold = (
                    weight >= 600
                    or bool(self._flags.value & _FONTFLAG_FORCEBOLD)
                    or any(b in font_name for b in _BOLD_NAMES)
                )
                if font:
                    fonts[font] = bold
            return round(size, 2), bold, font or 0

        return probe


class _Fast:
    """pdfium text functions declared with plain-integer arguments, for the hot paths (one call
    per character, a few per segment): ctypes then skips its pointer-type conversions."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(_pdfium_library())
        vp, i = ctypes.c_void_p, ctypes.c_int
        self.loose_box = self._fn(lib.FPDFText_GetLooseCharBox, [vp, i, vp], i)
        self.font_size = self._fn(lib.FPDFText_GetFontSize, [vp, i], ctypes.c_double)
        self.matrix = self._fn(lib.FPDFText_GetMatrix, [vp, i, vp], i)
        self.text_object = self._fn(lib.FPDFText_GetTextObject, [vp, i], vp)
        self.font = self._fn(lib.FPDFTextObj_GetFont, [vp], vp)
        self.weight = self._fn(lib.FPDFText_GetFontWeight, [vp, i], i)
        self.font_info = self._fn(
            lib.FPDFText_GetFontInfo, [vp, i, vp, ctypes.c_ulong, vp], ctypes.c_ulong
        )
        self.unmapped = self._fn(lib.FPDFText_HasUnicodeMapError, [vp, i], i)

    @staticmethod
    def _fn(fn: Any, argtypes: list[Any], restype: Any) -> Any:
        fn.argtypes = argtypes
        fn.restype = restype
        return fn


def _pdfium_library() -> str:
    """Path of the pdfium shared library pypdfium2 loaded."""
    try:
        from pypdfium2_raw.bindings import _libs

        return str(_libs["pdfium"]._name)
    except (ImportError, KeyError, AttributeError):
        import pypdfium2_raw

        folder = Path(pypdfium2_raw.__file__).parent
        found = sorted(
            p
            for p in folder.iterdir()
            if "pdfium" in p.name and p.suffix in (".so", ".dll", ".dylib")
        )
        if not found:
            raise ImportError(f"pdfium library not found next to {folder}") from None
        return str(found[0])


_FAST: _Fast | None = None


def _fast() -> _Fast:
    global _FAST
    if _FAST is None:
        _FAST = _Fast()
    return _FAST


def _mark_hyphens(text_page: Any, text: str) -> str:
    """pdfium writes U+FFFE for a hyphen ending a line and for a glyph it could not map;
    hyphens become "-", unmapped glyphs stay U+FFFE (`fix_ligatures` resolves them)."""
    chars = list(text)
    for m in re.finditer("\ufffe", text):
        if pdfium_c.FPDFText_IsHyphen(text_page, m.start()):
            chars[m.start()] = "-"
    return "".join(chars)


def _page_text(text_page: Any, n: int) -> str:
    buf = (ctypes.c_ushort * (n + 1))()
    got = pdfium_c.FPDFText_GetText(text_page, 0, n, buf)
    text = bytes(memoryview(buf).cast("B")[: max(0, got - 1) * 2]).decode(
        "utf-16-le", errors="replace"
    )
    if len(text) == n:
        return text
    # surrogate pairs or excluded characters: fall back to one code point per char index
    return "".join(chr(pdfium_c.FPDFText_GetUnicode(text_page, i) or 0xFFFD) for i in range(n))


def _to_display(boxes: np.ndarray, page: object, rotation: int) -> np.ndarray:
    """PDF-space (left, top, right, bottom) boxes -> page-image boxes, origin top-left."""
    rect = pdfium_c.FS_RECTF()
    if pdfium_c.FPDF_GetPageBoundingBox(page, rect):
        bx0, by0, bx1, by1 = rect.left, rect.bottom, rect.right, rect.top
    else:
        bx0, by0 = 0.0, 0.0
        bx1 = float(pdfium_c.FPDF_GetPageWidthF(page))
        by1 = float(pdfium_c.FPDF_GetPageHeightF(page))
    left, top, right, bottom = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    out = np.empty_like(boxes)
    if rotation == 90:
        out[:, 0], out[:, 2] = bottom - by0, top - by0
        out[:, 1], out[:, 3] = left - bx0, right - bx0
    elif rotation == 180:
        out[:, 0], out[:, 2] = bx1 - right, bx1 - left
        out[:, 1], out[:, 3] = bottom - by0, top - by0
    elif rotation == 270:
        out[:, 0], out[:, 2] = by1 - top, by1 - bottom
        out[:, 1], out[:, 3] = bx1 - right, bx1 - left
    else:
        out[:, 0], out[:, 2] = left - bx0, right - bx0
        out[:, 1], out[:, 3] = by1 - top, by1 - bottom
    return out


def _has_image(page: object) -> bool:
    n = pdfium_c.FPDFPage_CountObjects(page)
    for i in range(n):
        obj = pdfium_c.FPDFPage_GetObject(page, i)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind in (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM):
            return True
    return False
