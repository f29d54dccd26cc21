"""Read a report into a `Document` and its `Page`s: body text in reading order, with its layout.

    document, pages, errors = read_document(Path("q3.pdf"), settings.ingest)

`read_document` sends a PDF to `read_pdf` (below) and HTML/XHTML filings and ESEF packages to
`read_html` (`html`: inline XBRL as regulators receive it; tagged facts on each page, linked to
sentences by `link_sentences`).

How a page is read (each page is opened once, with pypdfium2 only; about 60-190 pages per
CPU-second on the corpus, see benchmarks/bench_ingest.py):

1. pdfium's text page gives every character with its loose box (font ascent to descent, so
   every glyph of a line has the same height); pdfium has already inserted the spaces a PDF
   leaves out, which fixes run-together words ("ConsolidatedStatementsofCashFlows"). Boxes are
   turned into page-image coordinates (points, origin top-left, after /Rotate).
2. characters -> words (numpy; text set vertically is left out; a glyph printed twice on one
   spot is kept once) -> line *segments*: words on one baseline joined while the gap between
   them stays under about one em, so the columns of a page and the cells of a table stay apart.
3. segments -> blocks (lines stacked at a regular pitch, same size and weight) -> tables
   gathered into one block each -> reading order by recursive XY-cut, where bands that share
   a gutter are read column by column.
4. kinds: `table` (figures, their row labels, column heads and section rows inside the table,
   and a chart's labels next to its figures), `heading` (larger, or bold and short),
   `list_item` (bullets, "1.", "(a)"), `text`; over the whole document, `header`, `footer`
   and `page_number`: lines at the page edges, set apart from the body, that repeat (digits
   aside) or stand where repeating ones stand.

`Page.text` holds only body blocks (text, heading, list_item), joined with blank lines; the
lines of a block are joined with spaces and hyphenated line breaks are closed up ("finan-" +
"cial" -> "financial"; "value-" + "added" stays hyphenated when the report writes it so
elsewhere). `Page.lines` are the lines of those blocks with their spans in `Page.text`. Tables,
headers, footers and page numbers are blocks with their text in `Block.text` only (a table's
rows on lines, its cells separated by tabs) and start == end == -1.

Pages whose text layer is missing or unreadable are read by OCR (`ocr`, `ingest.ocr` auto; force
OCRs every page, off none): rendered under the pdfium lock, read by Tesseract in worker threads,
their words turned into the same line segments, so steps 3-4 work on them unchanged.

Page status: `ok` (`Page.ocr` says whether by OCR, with its mean word confidence); `empty` (no
text and no image: a blank page, no error); `needs_ocr` (an image without a text layer, OCR off
or unavailable); `unreadable` (a text layer of glyph codes without letters: fonts without a
Unicode map); `ocr_failed` (OCR found no readable text either: blank, noise, a picture);
`error` (pdfium or the layout failed on that page). A bad page among
good ones is a non-fatal StageError (the document is partial); when no page is readable, one
fatal error says why for the whole document. Bad files (not a PDF, encrypted, damaged, no
pages, over `max_bytes` or `max_pages`) are fatal too. Nothing passes as an empty success: in
`on_error="record"` mode problems come back as StageErrors, in "raise" mode the first is raised.

With `page_range` (the batch splits big reports), running headers are found on the pages of
the range plus, when the range is shorter than `pdf._RUNNING_SAMPLE` pages, on the pages next
to it, so a range read removes the same headers as a whole-document read; `max_pages` then
applies to the range. pdfium is not thread-safe: reading is serialised by a lock (the layout
work after it is not). Pages with more than `layout._MAX_SEGMENTS` pieces are read line by line.

| module | what it holds |
|---|---|
| `files` | size limit, what the bytes are (`content_kind`), end-of-file check, error classes |
| `segments` | the raw layout: `Seg`, `RawPage`, grouping and joining segments into rows |
| `text` | text repair: hyphenated line breaks, joining lines, ligatures, the vocabulary |
| `status` | page status, garbled share, odd words, the document verdict |
| `pdfium` | `PDFIUM_LOCK`, opening documents, `pdf_page_count`, `PageReader` (steps 1-2) |
| `ocr` | OCR of scans and unreadable pages: rendering, Tesseract, words -> segments, language |
| `running` | running headers, footers and page numbers over the document |
| `layout` | blocks, tables, XY-cut reading order, kinds, building the `Page` (steps 3-4) |
| `pdf` | `read_pdf`: the document-level orchestration, page ranges, the running sample |
| `htmltext` | HTML/XHTML parsing (lxml), styles, the walk into runs, tables, page breaks, anchors |
| `ixbrl` | inline XBRL: contexts, units, fact values (format, scale, sign) |
| `html` | `read_html`: pages, running footers, printed page numbers, facts; `link_sentences` |
| `package` | ESEF report packages: the report in `reports/` |
| `dispatch` | `read_document`: the reader the bytes need; page counts of any report |

Import order (a module imports only those above it): files, segments, text, status, pdfium,
ocr, running, layout, pdf, htmltext, ixbrl, html, package, dispatch.
"""

from app.ingest.dispatch import (
    INPUT_SUFFIXES,
    default_name,
    page_count,
    read_document,
    reader_kind,
    report_bytes,
)
from app.ingest.html import link_sentences, read_html
from app.ingest.pdf import read_pdf
from app.ingest.pdfium import PDFIUM_LOCK, pdf_page_count

__all__ = [
    "INPUT_SUFFIXES",
    "PDFIUM_LOCK",
    "default_name",
    "link_sentences",
    "page_count",
    "pdf_page_count",
    "read_document",
    "read_html",
    "read_pdf",
    "reader_kind",
    "report_bytes",
]
