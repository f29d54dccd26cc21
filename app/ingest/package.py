"""ESEF report packages: the zip in which EU issuers file their annual report (an inline-XBRL
XHTML report in the package's `reports/` folder, next to `META-INF/` and the extension
taxonomy), opened to read the report inside.

    name, report = report_in_package(data, "acme-2024.zip", options)

The package's single top folder is optional (`acme/reports/acme.xhtml` and
`reports/acme.xhtml` both count). A report is an `.xhtml`, `.html` or `.htm` file directly in
`reports/`; when there are several (an inline XBRL document set), the first by name is read and
a non-fatal error names the others. A ZIP without one (an Office file, a zip of PDFs, a
taxonomy on its own), a damaged ZIP, and a report larger than `max_bytes` once unpacked are
refused with a message. Its own module because it is the one reader that opens containers.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

from app.config import IngestOptions
from app.errors import DamagedPdfError, NoReportError, TooLargeError
from app.records import StageError

REPORT_SUFFIXES = (".xhtml", ".html", ".htm")
_OFFICE = {
    "word/": "a Word document",
    "xl/": "an Excel workbook",
    "ppt/": "a PowerPoint file",
}


class DamagedPackageError(DamagedPdfError):
    """A ZIP that cannot be opened (the `damaged` code, as for PDFs)."""


def _reports(names: list[str]) -> list[str]:
    found = []
    for name in names:
        path = PurePosixPath(name)
        parts = path.parts
        if (
            len(parts) >= 2
            and parts[-2].lower() == "reports"
            and len(parts) <= 3
            and path.suffix.lower() in REPORT_SUFFIXES
            and not path.name.startswith(".")
        ):
            found.append(name)
    return sorted(found)


def report_in_package(
    data: bytes, name: str, options: IngestOptions, errors: list[StageError] | None = None
) -> tuple[str, bytes]:
    """The report's path inside the package and its bytes; refusals raise IngestErrors."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DamagedPackageError(
            f"{name}: a damaged ZIP file ({e}); nothing read. Ask the client for a fresh copy "
            "of the report package."
        ) from e
    reports = _reports(names)
    if not reports:
        office = next(
            (what for top, what in _OFFICE.items() if any(n.startswith(top) for n in names)), None
        )
        what = office or f"a ZIP of {len(names)} file(s)"
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise NoReportError(
            f"{name}: {what} without a report in reports/ ({shown or 'empty'}); not an ESEF "
            "report package, nothing read. Submit the package as filed (a zip with the "
            "XHTML report in its reports/ folder), the report's .xhtml, or its PDF."
        )
    chosen = reports[0]
    if len(reports) > 1 and errors is not None:
        others = ", ".join(reports[1:4]) + (", ..." if len(reports) > 4 else "")
        errors.append(
            NoReportError(
                f"{name}: reports/ holds {len(reports)} documents (an inline XBRL document "
                f"set); {chosen} was read, not {others}. Analyze the others as files of "
                "their own.",
                fatal=False,
            ).to_record()
        )
    info = archive.getinfo(chosen)
    if info.file_size > options.max_bytes:
        raise TooLargeError(
            f"{name}: its report {chosen} is {info.file_size / 1e6:.1f} MB unpacked, over the "
            f"limit of {options.max_bytes / 1e6:.1f} MB; not read. Raise ingest.max_bytes "
            "(SESAME_INGEST__MAX_BYTES) if the report is genuine."
        )
    try:
        with archive.open(info) as f:
            report = f.read(options.max_bytes + 1)
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError) as e:
        raise DamagedPackageError(
            f"{name}: its report {chosen} cannot be unpacked ({e}); nothing read. Ask the "
            "client for a fresh copy of the report package."
        ) from e
    if len(report) > options.max_bytes:  # the size in the directory lied (a zip bomb)
        raise TooLargeError(
            f"{name}: its report {chosen} unpacks to more than "
            f"{options.max_bytes / 1e6:.1f} MB; not read."
        )
    return chosen, report
