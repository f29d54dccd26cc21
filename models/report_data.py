"""Report sentences for domain adaptation: read filings as `sesame analyze` does, keep held-out
sets out.

Distillation and weak labelling need the language auditors read (risk factors, MD&A, notes),
not news headlines. `read_report_sentences()` reads PDFs with sesame's own ingest and sentence
splitter, keeps narrative sentences with their section type, and caches them per file digest.
`drop_held_out()` removes every sentence whose normalised text is in an evaluation set
(reports_dev, the PhraseBank split), so no evaluation sentence is ever trained or distilled on.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from app.config import Settings
from app.digests import sha256_file
from app.errors import DataValidationError, SesameError
from app.ingest import read_pdf
from app.records import Record
from app.sentences import make_nlp, split_sentences
from models.data import Example, normalise
from models.evaluate import load_scorer
from models.monitoring import write_reference
from models.slices import resolve_path

_log = logging.getLogger(__name__)

MIN_WORDS = 6
MAX_WORDS = 80
MIN_ALPHA_SHARE = 0.6
"""Share of alphabetic words below which a "sentence" is a table row or figures glued on."""
_WORD = re.compile(r"\S+")
_ALPHA = re.compile(r"^[A-Za-z][A-Za-z'’\-]*[.,;:)]?$")
CACHE_VERSION = 1
"""Bump when the filter changes, so cached sentence lists are rebuilt."""


class ReportSentence(Record):
    """One narrative sentence of a report, with where it stands."""

    text: str
    source: str
    """The report's file name."""
    page_no: int
    section_type: str | None = None
    """The splitter's normalised section (risk_factors, notes, management_discussion, ...)."""


def is_narrative(text: str) -> bool:
    """A sentence worth learning from: MIN_WORDS-MAX_WORDS words, mostly words not figures."""
    words = _WORD.findall(text)
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    alpha = sum(1 for w in words if _ALPHA.match(w))
    return alpha / len(words) >= MIN_ALPHA_SHARE


def _cache_path(settings: Settings, digest: str) -> Path:
    return settings.data_dir / "cache" / f"report-sentences-v{CACHE_VERSION}-{digest[:16]}.jsonl"


def read_report(path: Path, settings: Settings) -> list[ReportSentence]:
    """The narrative sentences of one PDF, in reading order (cached per file digest)."""

    path = Path(path)
    cached = _cache_path(settings, sha256_file(path))
    if cached.is_file():
        return [
            ReportSentence.model_validate_json(line)
            for line in cached.read_text(encoding="utf-8").splitlines()
            if line
        ]
    _doc, pages, errors = read_pdf(path, settings.ingest)
    if not pages:
        reason = errors[0].message if errors else "no pages read"
        raise DataValidationError(f"{path.name}: no report sentences read ({reason}).")
    sentences = split_sentences(pages, settings.sentences, make_nlp(settings.sentences))
    rows = [
        ReportSentence(
            text=" ".join(s.text.split()),
            source=path.name,
            page_no=s.page_no,
            section_type=s.section_type,
        )
        for s in sentences
        if s.kind == "sentence" and is_narrative(s.text)
    ]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
    _log.info("%s: %d narrative sentences of %d", path.name, len(rows), len(sentences))
    return rows


def read_report_sentences(paths: Sequence[Path], settings: Settings) -> list[ReportSentence]:
    """Distinct narrative sentences of several PDFs (the first occurrence of each text kept)."""
    seen: set[str] = set()
    out: list[ReportSentence] = []
    for path in paths:
        for row in read_report(path, settings):
            key = normalise(row.text)
            if key not in seen:
                seen.add(key)
                out.append(row)
    return out


def drop_held_out(
    rows: Iterable[ReportSentence], held_out: Iterable[str]
) -> tuple[list[ReportSentence], int]:
    """Rows whose normalised text is in none of the held-out texts, and how many were dropped."""
    keys = {normalise(t) for t in held_out}
    kept, dropped = [], 0
    for row in rows:
        if normalise(row.text) in keys:
            dropped += 1
        else:
            kept.append(row)
    return kept, dropped


def write_jsonl(rows: Iterable[Record], path: Path) -> Path:
    """Records as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[ReportSentence]:
    """ReportSentence records from JSON lines."""
    return [
        ReportSentence.model_validate(json.loads(line))
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def reference_sentences(settings: Settings) -> tuple[list[str], str] | None:
    """Report sentences a new version's drift reference is profiled on, and where they came
    from: a seeded sample of `settings.evaluation.reference_reports` (a folder of PDFs, one PDF,
    a text file of sentences or a JSON-lines file of ReportSentence); None when absent."""
    options = settings.evaluation
    if options.reference_reports is None:
        return None
    where = resolve_path(options.reference_reports)
    if where.is_dir():
        files = sorted(p for p in where.iterdir() if p.suffix.lower() == ".pdf")
    elif where.is_file():
        files = [where]
    else:
        return None
    texts: list[str] = []
    for path in files:
        if path.suffix.lower() == ".pdf":
            try:
                texts += [r.text for r in read_report(path, settings)]
            except DataValidationError as e:
                _log.warning("reference: %s", e)
        elif path.suffix.lower() == ".jsonl":
            texts += [r.text for r in read_jsonl(path)]
        else:
            texts += [
                " ".join(x.split())
                for x in path.read_text(encoding="utf-8").splitlines()
                if is_narrative(x)
            ]
    texts = list(dict.fromkeys(texts))
    if not texts:
        return None
    random.Random(options.seed).shuffle(texts)
    sample = texts[: options.reference_sentences]
    return sample, (
        f"report sentences: {len(sample)} of {len(texts)} from {len(files)} "
        f"report(s) in {options.reference_reports}"
    )


def write_monitoring_reference(
    model_dir: Path, examples: Sequence[Example], settings: Settings
) -> Path | None:
    """The drift monitor's reference profile, saved to travel with the model: report sentences
    (`settings.evaluation.reference_reports`) scored by this version, so a drift alarm means
    the inputs changed and not that reports are not news; the eval set when none are here."""
    try:
        scorer = load_scorer(model_dir, settings.scoring.model_copy(update={"model_dir": None}))
        found = reference_sentences(settings)
        if found is None:
            where = settings.evaluation.reference_reports
            _log.warning(
                "no report sentences at %s for the drift reference; profiling the "
                "evaluation set instead (news, if it is PhraseBank: reports will look "
                "drifted by genre)",
                where,
            )
            return write_reference(
                model_dir,
                [e.text for e in examples],
                scorer,
                source=f"evaluation set at training (no report sentences at {where})",
            )
        texts, source = found
        return write_reference(model_dir, texts, scorer, source=source)
    except (SesameError, ImportError, OSError, ValueError, RuntimeError) as e:
        # Monitoring can profile the version later (`sesame monitor reference`); training stands.
        _log.warning("no monitoring reference profile written: %s", e)
        return None
