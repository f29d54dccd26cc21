"""The report-language calibration set, rebuilt from keys: the project's own labels and where each
sentence stands in the filings corpus, never the filings' sentences themselves (shared text stays
in ../shared, it is referenced, not copied).

`models/sets/filings_calibration.keys.csv` has one row per labelled sentence: `filing` (a file
name in the corpus folder), `page`, `sha256` (of the sentence's text as sesame's ingest and
sentence splitter give it, `models.report_data.read_report`) and `label`. `build_examples()`
reads the keyed filings with that same reader, finds each sentence by its digest and returns the
labelled sentences in the keys' order; `python -m models.calibration_set --corpus DIR --out CSV`
writes them as the `text,label` CSV that `sesame train --calibration-file`,
`python -m models.recalibrate` and `models.soup --calibration-file` read. `derive_keys()` is the
reverse, run once on the hand-labelled CSV (`--derive-from CSV`).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from app.config import Settings, load_settings
from app.digests import sha256_text
from app.errors import DataValidationError
from app.records import LABELS, Record
from models.data import Example, write_csv
from models.evaluate import read_eval_file
from models.report_data import ReportSentence, read_report

_log = logging.getLogger(__name__)

KEYS = Path(__file__).resolve().parent / "sets" / "filings_calibration.keys.csv"
"""The bundled keys of the 281 hand-labelled filings sentences (models/sets/README.md)."""
KEY_COLUMNS = ("filing", "page", "sha256", "label")
SOURCE = "filings_calibration"


class CalibrationKey(Record):
    """One labelled sentence by reference: which filing, which page, the digest of its text."""

    filing: str
    page: int
    sha256: str
    label: str


class MissingSentence(Record):
    """A keyed sentence the corpus did not give back, and why."""

    key: CalibrationKey
    reason: str


def sentence_digest(text: str) -> str:
    """The key of a sentence: sha256 of its text as `read_report` gives it."""
    return sha256_text(text)


def read_keys(path: Path) -> list[CalibrationKey]:
    """Keys from a `filing,page,sha256,label` CSV."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != KEY_COLUMNS:
            raise DataValidationError(
                f"{Path(path).name}: a keys file has the columns {','.join(KEY_COLUMNS)}; "
                f"found {reader.fieldnames}. Derive it with `python -m models.calibration_set "
                "--derive-from CSV`."
            )
        keys = [CalibrationKey.model_validate(row) for row in reader]
    bad = sorted({k.label for k in keys} - set(LABELS))
    if bad:
        raise DataValidationError(f"{Path(path).name}: labels {bad} are not among {LABELS}.")
    return keys


def write_keys(keys: Sequence[CalibrationKey], path: Path) -> Path:
    """Keys as a `filing,page,sha256,label` CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(KEY_COLUMNS)
        for k in keys:
            w.writerow([k.filing, k.page, k.sha256, k.label])
    return path


def _read_filing(corpus: Path, filing: str, settings: Settings) -> list[ReportSentence] | str:
    """A filing's sentences, or why there are none."""
    path = corpus / filing
    if not path.is_file():
        return f"{filing} is not in {corpus}"
    try:
        return read_report(path, settings)
    except DataValidationError as e:
        return e.message


def build_examples(
    keys: Sequence[CalibrationKey], corpus: Path, settings: Settings
) -> tuple[list[Example], list[MissingSentence]]:
    """The keyed sentences with their labels, in the keys' order, and the keys not found."""
    by_digest: dict[str, dict[str, str]] = {}
    unread: dict[str, str] = {}
    for filing in dict.fromkeys(k.filing for k in keys):
        rows = _read_filing(Path(corpus), filing, settings)
        if isinstance(rows, str):
            unread[filing] = rows
        else:
            by_digest[filing] = {sentence_digest(r.text): r.text for r in rows}
    examples, missing = [], []
    for k in keys:
        text = by_digest.get(k.filing, {}).get(k.sha256)
        if text is not None:
            examples.append(Example(text=text, label=k.label, source=SOURCE))
        else:
            reason = unread.get(k.filing) or (
                f"no sentence of {k.filing} has this digest (page {k.page}): the filing or "
                "sesame's reader changed since the keys were derived"
            )
            missing.append(MissingSentence(key=k, reason=reason))
    return examples, missing


def missing_summary(missing: Sequence[MissingSentence], total: int) -> str:
    """How many keyed sentences are missing, per filing, with the reason."""
    per_filing = Counter(m.key.filing for m in missing)
    reasons = {m.key.filing: m.reason for m in missing}
    lines = [f"{len(missing)} of {total} calibration sentences not found:"]
    lines += [f"  {f}: {n} ({reasons[f]})" for f, n in sorted(per_filing.items())]
    return "\n".join(lines)


def build(
    keys_path: Path, corpus: Path, out: Path, settings: Settings, *, strict: bool = False
) -> tuple[list[Example], list[MissingSentence]]:
    """Write the `text,label` calibration CSV from keys; an error when no sentence is found (or,
    `strict`, when any is missing: nothing is written then)."""
    keys = read_keys(keys_path)
    examples, missing = build_examples(keys, corpus, settings)
    if not examples or (strict and missing):
        raise DataValidationError(
            f"{len(examples)} of the {len(keys)} sentences of {Path(keys_path).name} found in "
            f"{corpus}; nothing written.\n{missing_summary(missing, len(keys))}\nPoint --corpus "
            "at the filings folder (../shared/corpus/filings)"
            + (", or build without --strict to fit on the sentences found." if examples else ".")
        )
    if missing:
        _log.warning("%s", missing_summary(missing, len(keys)))
    write_csv(examples, Path(out))
    return examples, missing


def derive_keys(
    labelled: Path, corpus: Path, settings: Settings
) -> tuple[list[CalibrationKey], list[str]]:
    """Keys of a labelled `text,label` file of filings sentences: each text's first occurrence in
    the corpus's PDFs (sorted by name, in reading order), and the texts found nowhere."""
    examples, _digest = read_eval_file(Path(labelled))
    where: dict[str, tuple[str, int]] = {}
    for path in sorted(Path(corpus).glob("*.pdf")):
        rows = _read_filing(Path(corpus), path.name, settings)
        for row in rows if not isinstance(rows, str) else []:
            where.setdefault(sentence_digest(row.text), (row.source, row.page_no))
    keys, unmatched = [], []
    for e in examples:
        digest = sentence_digest(e.text)
        if digest in where:
            filing, page = where[digest]
            keys.append(CalibrationKey(filing=filing, page=page, sha256=digest, label=e.label))
        else:
            unmatched.append(e.text)
    return keys, unmatched


def main(argv: Sequence[str] | None = None) -> int:
    """Build the filings calibration set (text,label CSV) from its keys and the corpus."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="The filings' folder.")
    parser.add_argument("--keys", type=Path, default=KEYS, help=f"Default: {KEYS.name}.")
    parser.add_argument("--out", type=Path, help="The text,label CSV to write.")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="Fail, writing nothing, when any keyed sentence is missing (the recipe's mode).",
    )
    parser.add_argument(
        "--derive-from",
        type=Path,
        help="Instead: derive --keys from this hand-labelled text,label CSV (once).",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    if args.derive_from is not None:
        keys, unmatched = derive_keys(args.derive_from, args.corpus, settings)
        if unmatched:
            print(f"{len(unmatched)} texts of {args.derive_from.name} not in {args.corpus}:")
            print("".join(f"  {t}\n" for t in unmatched), end="")
            return 1
        write_keys(keys, args.keys)
        print(f"{len(keys)} keys from {len(set(k.filing for k in keys))} filings -> {args.keys}")
        return 0
    if args.out is None:
        parser.error("--out is required (or --derive-from)")
    try:
        examples, missing = build(args.keys, args.corpus, args.out, settings, strict=args.strict)
    except DataValidationError as e:
        print(e.message, file=sys.stderr)
        return 1
    print(f"{len(examples)} of {len(examples) + len(missing)} sentences -> {args.out}")
    if missing:
        print(missing_summary(missing, len(examples) + len(missing)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
