"""sha256 digests of bytes, files and groups of files: how sesame identifies what it read.

A document is the sha256 of its bytes, a model version the sha256 of its weights, a data set
the sha256 of its file. One helper for each shape, so every identity is computed the same way.
Floor module: imports nothing of sesame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """sha256 of bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """sha256 of a string's UTF-8 bytes, as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_files(paths: Iterable[Path]) -> str:
    """One sha256 over the bytes of several files in the given order (a sharded checkpoint)."""
    h = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    return sha256_files([path])
