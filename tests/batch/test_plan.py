"""Planning a batch: which files, how identified, how big documents are split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pdfs import write_not_a_pdf, write_pages

from batch.plan import InputFile, find_pdfs, page_ranges, scan_input, split_parts


def test_find_pdfs_searches_subfolders_in_order_and_leaves_out_hidden_and_other_files(
    tmp_path: Path,
) -> None:
    for rel in ("b.pdf", "a/z.PDF", "a/y.pdf", ".hidden/x.pdf", "a/.partial.pdf", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"%PDF-1.4\n")
    (tmp_path / "folder.pdf").mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in find_pdfs(tmp_path)]
    assert found == ["a/y.pdf", "a/z.PDF", "b.pdf"]


def test_scan_input_identifies_a_file_by_its_bytes(tmp_path: Path) -> None:
    pdf = write_pages(tmp_path / "sub" / "r.pdf", 3)
    item = scan_input(pdf, tmp_path)
    assert item.source == "sub/r.pdf"
    assert item.sha256 == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert (item.size_bytes, item.n_pages, item.error) == (pdf.stat().st_size, 3, None)


def test_scan_input_of_a_file_that_is_no_pdf_counts_no_pages(tmp_path: Path) -> None:
    item = scan_input(write_not_a_pdf(tmp_path / "web.pdf"), tmp_path)
    assert item.n_pages == 0 and item.sha256 is not None and item.error is None


@pytest.mark.parametrize(
    ("n_pages", "per_part", "expected"),
    [
        (10, 10, None),
        (10, 0, None),
        (0, 5, None),
        (11, 10, [(1, 6), (7, 11)]),
        (500, 50, [(i, i + 49) for i in range(1, 500, 50)]),
        (7, 3, [(1, 3), (4, 5), (6, 7)]),
    ],
)
def test_page_ranges_are_balanced_and_cover_every_page_once(
    n_pages: int, per_part: int, expected: list[tuple[int, int]] | None
) -> None:
    ranges = page_ranges(n_pages, per_part)
    assert ranges == expected
    if ranges:
        pages = [p for first, last in ranges for p in range(first, last + 1)]
        assert pages == list(range(1, n_pages + 1))
        assert max(last - first + 1 for first, last in ranges) <= per_part


def test_split_parts_read_one_page_of_context_on_each_side_within_the_document() -> None:
    item = InputFile(path=Path("/x.pdf"), source="x.pdf", sha256="0" * 64, size_bytes=1, n_pages=9)
    parts = split_parts(item, 3)
    assert [(p.index, p.count, p.pages, p.read) for p in parts] == [
        (0, 3, (1, 3), (1, 4)),
        (1, 3, (4, 6), (3, 7)),
        (2, 3, (7, 9), (6, 9)),
    ]
    assert parts[1].label == "x.pdf pages 4-6"
    whole = split_parts(item, 9)
    assert [(p.pages, p.read, p.label) for p in whole] == [(None, None, "x.pdf")]
