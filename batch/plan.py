"""What a batch has to do: find the reports, identify them by content, split big ones into parts.

A batch input is a file under the input folder, keyed by its path relative to that folder (the
run's manifest and resume key) and identified by the sha256 of its bytes (the store's key, so
a renamed or copied file is recognised). A document with more pages than `pages_per_part`
becomes several `Part`s, each a page range that one worker reads, scores and explains; the
driver merges the parts back into one result (`batch.merge`).

A part reads `CONTEXT_PAGES` more pages on each side of its range than it keeps: a sentence
that runs across the page break at a part boundary is then read whole by the part where it
starts (and dropped by the other), and headings and running headers just outside the range are
seen. Results still depend on the plan (a report split into parts can differ from a report read
whole in a few sentences at the part boundaries, see docs/batch.md), so every executor runs the
same plan and gives the same rows.

Reports are PDFs, HTML/XHTML filings and ESEF packages (`app.ingest.INPUT_SUFFIXES`). Only
PDFs are split: an HTML filing is parsed whole whatever pages a part keeps, so its parts would
each pay for the whole parse.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from app.digests import sha256_bytes
from app.ingest import INPUT_SUFFIXES, page_count, reader_kind

_log = logging.getLogger(__name__)

CONTEXT_PAGES = 1
"""Pages read but not kept on each side of a part's range."""
DEFAULT_PAGES_PER_PART = 50
"""Documents longer than this are split into parts of at most this many pages."""


@dataclass(frozen=True, slots=True)
class InputFile:
    """One report found under the input folder, as it was when the run was planned."""

    path: Path
    """Absolute path on the driver's machine."""
    source: str
    """Path relative to the input folder, with forward slashes: the run's key for the input."""
    sha256: str | None
    """sha256 of the bytes; None when the file could not be read."""
    size_bytes: int | None
    n_pages: int
    """Page count (0 when the PDF cannot be opened: it is then analyzed in one part, which
    reports why)."""
    error: str | None = None
    """Why the file could not be read at all (or was refused: see `error_code`)."""
    error_code: str = "unreadable"
    """The StageError code of `error`: unreadable, or refused (over an upload limit)."""
    data: bytes | None = field(default=None, repr=False)
    """The bytes themselves, for inputs that are no file (uploads); None reads `path`."""
    kind: str = "pdf"
    """The reader the bytes go to: pdf, html, zip (an ESEF package) or unknown."""


@dataclass(frozen=True, slots=True)
class Part:
    """One unit of work: a document, or a page range of one."""

    source: str
    index: int
    """0-based position among the document's parts."""
    count: int
    """How many parts the document has."""
    pages: tuple[int, int] | None
    """1-based inclusive pages whose sentences this part keeps; None: the whole document."""
    read: tuple[int, int] | None
    """1-based inclusive pages this part reads (`pages` plus context); None: all."""

    @property
    def n_pages(self) -> int | None:
        """Pages this part keeps, when it is a range."""
        return None if self.pages is None else self.pages[1] - self.pages[0] + 1

    @property
    def label(self) -> str:
        """`q3.pdf` or `q3.pdf pages 41-80` (for messages)."""
        if self.pages is None:
            return self.source
        return f"{self.source} pages {self.pages[0]}-{self.pages[1]}"


def find_inputs(input_dir: Path) -> list[Path]:
    """Every report below `input_dir`: *.pdf, *.htm, *.html, *.xhtml and *.zip files (any
    case), sorted by relative path; hidden files and folders (a name starting with a dot) are
    left out."""
    found = []
    for path in input_dir.rglob("*"):
        rel = path.relative_to(input_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in INPUT_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(input_dir).as_posix())


find_pdfs = find_inputs
"""The former name of `find_inputs` (it finds every kind of report now)."""


def scan_input(path: Path, input_dir: Path, password: str | None = None) -> InputFile:
    """Identify one input of a folder: relative path, sha256, size and page count."""
    return identify(path, path.relative_to(input_dir).as_posix(), password)


def identify(path: Path, source: str, password: str | None = None) -> InputFile:
    """Identify one input file under the name `source`: sha256, size and page count."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return InputFile(
            path=path,
            source=source,
            sha256=None,
            size_bytes=None,
            n_pages=0,
            error=f"{source}: could not be read ({e.strerror or e}); check the "
            "file's permissions and that it is not still being copied.",
        )
    return InputFile(
        path=path,
        source=source,
        sha256=sha256_bytes(data),
        size_bytes=len(data),
        n_pages=page_count(data, source, password),
        kind=reader_kind(data[:4096], source),
    )


def identify_bytes(
    data: bytes, source: str, password: str | None = None, *, refused: str | None = None
) -> InputFile:
    """Identify an input that is no file (an upload); `refused` says why it is not analyzed."""
    return InputFile(
        path=Path(source),
        source=source,
        sha256=sha256_bytes(data),
        size_bytes=len(data),
        n_pages=page_count(data, source, password) if refused is None else 0,
        error=refused,
        error_code="refused" if refused is not None else "unreadable",
        data=data,
        kind=reader_kind(data[:4096], source),
    )


def page_ranges(n_pages: int, pages_per_part: int) -> list[tuple[int, int]] | None:
    """Balanced 1-based inclusive ranges of at most `pages_per_part` pages covering a document;
    None when the document is not split (short, unopenable, or splitting switched off by 0)."""
    if pages_per_part <= 0 or n_pages <= pages_per_part:
        return None
    n_parts = math.ceil(n_pages / pages_per_part)
    base, extra = divmod(n_pages, n_parts)
    ranges, first = [], 1
    for i in range(n_parts):
        size = base + (1 if i < extra else 0)
        ranges.append((first, first + size - 1))
        first += size
    return ranges


def split_parts(item: InputFile, pages_per_part: int, context: int = CONTEXT_PAGES) -> list[Part]:
    """The parts one input is analyzed in (one part unless it is a PDF of more than
    pages_per_part pages)."""
    ranges = page_ranges(item.n_pages, pages_per_part) if item.kind == "pdf" else None
    if ranges is None:
        return [Part(source=item.source, index=0, count=1, pages=None, read=None)]
    return [
        Part(
            source=item.source,
            index=i,
            count=len(ranges),
            pages=(first, last),
            read=(max(1, first - context), min(item.n_pages, last + context)),
        )
        for i, (first, last) in enumerate(ranges)
    ]
