"""The files behind stored results: uploads kept by sha256, and source paths still holding them.

Uploaded files are kept in the data directory under the sha256 of their bytes
(`<data_dir>/documents/<sha256>.pdf`, `.html` for HTML filings, `.zip` for ESEF packages): an
uploaded file name is shown, never used as a path. Results of the CLI and the batch point at
their source path instead; that file is used when it still holds the same bytes. Below the
interfaces (the review screen keeps uploads, the comparison reads them back to rescore).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from app.config import Settings
from app.ingest.files import content_kind

_log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def documents_dir(settings: Settings) -> Path:
    """Where uploaded PDFs are kept, by sha256."""
    return settings.data_dir / "documents"


_KEPT_SUFFIXES = {"pdf": ".pdf", "html": ".html", "zip": ".zip"}


def keep_document(settings: Settings, data: bytes) -> tuple[str, Path]:
    """Keep an uploaded file under its sha256 (once), named for what it is (`.pdf`, `.html`,
    `.zip`); returns (sha256, path)."""
    digest = hashlib.sha256(data).hexdigest()
    folder = documents_dir(settings)
    path = folder / f"{digest}{_KEPT_SUFFIXES.get(content_kind(data), '.pdf')}"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest, path


keep_pdf = keep_document
"""The former name of `keep_document` (it keeps HTML filings and ESEF packages too)."""


def find_document(
    settings: Settings, doc_id: str | None, sources: Sequence[str | None] = ()
) -> bytes | None:
    """The bytes of a stored result's file: the kept upload, else the first of its source paths
    (as the CLI or batch run listed them) that still holds the same sha256; None when none."""
    if not doc_id or not _SHA256.fullmatch(doc_id):
        return None
    for suffix in _KEPT_SUFFIXES.values():
        kept = documents_dir(settings) / f"{doc_id}{suffix}"
        if kept.is_file():
            return kept.read_bytes()
    for source in dict.fromkeys(s for s in sources if s):
        path = Path(source)
        try:
            if not path.is_file():
                continue
            data = path.read_bytes()
        except OSError as e:
            _log.info("cannot read %s for a page image: %s", path, e)
            continue
        if hashlib.sha256(data).hexdigest() == doc_id:
            return data
        _log.info("%s changed since it was analyzed; not used for page images", path)
    return None


find_pdf = find_document
"""The former name of `find_document`."""
