"""Labelled data: load (ExampleGen), split, statistics and schema, validation (ExampleValidator).

Formats, recognised by content:
- Financial PhraseBank `sentence@label` lines (ISO-8859-1), CC BY-NC-SA 3.0 (non-commercial);
- CSV with `text,label` columns (UTF-8), licence given by the caller (unstated by default);
- SEntFiN 1.0 CSV (`Title`, `Decisions`), MIT: a headline is kept when all its entities agree;
- FiQA-2018 task 1 JSON (continuous scores in [-1, 1]), research use: mean score over targets,
  above +0.15 positive, below -0.15 negative, else neutral.

Validation stops a run with numbers (spaCy's `debug data` in spirit): unknown labels, empty
texts, duplicates beyond a share, length outliers, train/eval overlap, class balance shifted
against the previous training data. Small amounts of exact duplicates are removed and counted,
never silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.config import Settings
from app.digests import sha256_file
from app.errors import DataValidationError
from app.ingest import read_pdf
from app.records import LABELS, Record
from app.sentences import make_nlp, split_sentences

_log = logging.getLogger(__name__)

DataFormat = Literal["phrasebank", "csv", "sentfin", "fiqa", "lines", "pdf"]
"""The last two hold unlabelled sentences (for distillation): text lines and PDF reports."""
AnomalyCode = Literal[
    "unknown_label",
    "empty_text",
    "duplicate_text",
    "length_outlier",
    "train_eval_overlap",
    "class_balance_shift",
    "too_few_examples",
]

_SENTFIN_LABEL = re.compile(r":\s*['\"](positive|negative|neutral)['\"]")
# FiQA scores are continuous; a dead zone around zero is read as neutral.
FIQA_NEUTRAL_BAND = 0.15


class Example(Record):
    """One labelled text. `label` is kept as read so validation can report unknown labels."""

    text: str
    label: str
    source: str
    """Name of the data source it came from (e.g. phrasebank:Sentences_50Agree)."""


class DataSource(Record):
    """Where a set of examples came from, with its licence (written on every model card)."""

    name: str
    path: str
    format: DataFormat
    licence: str
    commercial_use: bool
    """False when the licence forbids commercial use (PhraseBank's CC BY-NC-SA)."""
    sha256: str
    """sha256 of the file's bytes."""
    n_examples: int


class LabelledData(Record):
    """Examples read from one or more files, with their sources."""

    examples: tuple[Example, ...]
    sources: tuple[DataSource, ...]


class DataSplit(Record):
    """A deterministic stratified train/eval split and its digests."""

    train: tuple[Example, ...]
    eval: tuple[Example, ...]
    seed: int
    eval_share: float
    train_digest: str
    eval_digest: str
    split_digest: str


class DataStatistics(Record):
    """StatisticsGen: counts, label balance and lengths of one set of examples."""

    n: int
    label_counts: dict[str, int]
    label_shares: dict[str, float]
    n_empty: int
    n_duplicates: int
    """Examples whose normalised text occurs earlier in the set."""
    n_conflicting: int
    """Distinct texts that occur with more than one label."""
    chars_min: int
    chars_median: float
    chars_p99: float
    chars_max: int
    words_median: float


class DataSchema(BaseModel):
    """SchemaGen: what valid training data looks like, and how much deviation stops a run."""

    model_config = ConfigDict(extra="forbid")

    labels: tuple[str, ...] = LABELS
    min_chars: int = Field(3, ge=0)
    max_chars: int = Field(1000, gt=0)
    """Longer texts are pasted paragraphs, not sentences; the model reads 64-128 tokens."""
    max_length_outlier_share: float = Field(0.005, ge=0, le=1)
    max_duplicate_share: float = Field(0.01, ge=0, le=1)
    """Up to this share, exact duplicates are removed (and counted); above it the run stops."""
    max_class_shift: float = Field(0.15, ge=0, le=1)
    """Largest allowed change of any label's share against the previous training data."""
    min_examples_per_label: int = Field(2, ge=1)


class Anomaly(Record):
    """One reason the data is not fit to train on, with its numbers."""

    code: AnomalyCode
    message: str
    count: int = 0
    examples: tuple[str, ...] = ()


class ValidationReport(Record):
    """ExampleValidator's verdict: statistics, anomalies, and what cleaning removed."""

    train: DataStatistics
    eval: DataStatistics
    anomalies: tuple[Anomaly, ...]
    allowed: tuple[Anomaly, ...] = ()
    """Anomalies the caller accepted explicitly (recorded in the lineage)."""
    removed: dict[str, int] = {}
    """Counts of examples removed by cleaning, by reason."""

    @property
    def ok(self) -> bool:
        """True when no anomaly blocks training."""
        return not self.anomalies

    def summary(self) -> str:
        """A few lines a person reads: the anomalies with their numbers, or OK."""
        if self.ok:
            return f"data OK: {self.train.n} train / {self.eval.n} eval examples"
        return "\n".join(f"- {a.code}: {a.message}" for a in self.anomalies)


# ---------------------------------------------------------------------------------------------
# Loading (ExampleGen)


def normalise(text: str) -> str:
    """The form texts are compared in: lower case, single spaces."""
    return " ".join(text.lower().split())


def detect_format(path: Path) -> DataFormat:
    """Recognise a labelled-data file by its content."""
    head = path.read_bytes()[:4096].decode("latin-1")
    first = head.splitlines()[0] if head.strip() else ""
    if path.suffix.lower() == ".json" or head.lstrip().startswith("{"):
        return "fiqa"
    if "Decisions" in first and "Title" in first:
        return "sentfin"
    if re.search(r"@(positive|negative|neutral)\s*$", first):
        return "phrasebank"
    if "text" in first.lower() and "label" in first.lower():
        return "csv"
    raise DataValidationError(
        f"{path.name}: not a labelled-data file sesame reads. Expected PhraseBank "
        "`sentence@label` lines, a CSV with `text,label` columns, SEntFiN or FiQA JSON."
    )


def _licence_of(fmt: DataFormat, licence: str | None) -> tuple[str, bool]:
    # A licence given for a run applies to files that carry none; it cannot relicense
    # PhraseBank, SEntFiN or FiQA, whose licences are known.
    if licence and fmt in ("csv", "lines", "pdf"):
        return licence, "nc" not in licence.lower().replace("-", " ").split()
    return {
        "phrasebank": ("CC BY-NC-SA 3.0 (Financial PhraseBank, Malo et al. 2014)", False),
        "sentfin": ("MIT (SEntFiN 1.0, Sinha et al. 2022)", True),
        "fiqa": ("research use, no licence stated (FiQA-2018 task 1)", False),
        "csv": ("unstated (user-supplied CSV)", False),
        "lines": ("unstated (user-supplied text)", False),
        "pdf": ("unstated (user-supplied report)", False),
    }[fmt]


def _read_phrasebank(path: Path, source: str) -> list[Example]:
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        text, _, label = line.rpartition("@")
        rows.append(Example(text=text.strip(), label=label.strip().lower(), source=source))
    return rows


def _read_csv(path: Path, source: str) -> list[Example]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = {k.lower().strip(): k for k in reader.fieldnames or ()}
        if "text" not in fields or "label" not in fields:
            raise DataValidationError(
                f"{path.name}: a CSV needs `text` and `label` columns; found {sorted(fields)}."
            )
        return [
            Example(
                text=(r[fields["text"]] or "").strip(),
                label=(r[fields["label"]] or "").strip().lower(),
                source=source,
            )
            for r in reader
        ]


def _read_sentfin(path: Path, source: str) -> list[Example]:
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            # Decisions is dict-like but not always valid Python (apostrophes in entity
            # names), so only the labels are read, by pattern.
            labels = set(_SENTFIN_LABEL.findall(r["Decisions"]))
            if len(labels) == 1:  # headlines whose entities disagree have no single label
                rows.append(Example(text=r["Title"].strip(), label=labels.pop(), source=source))
    return rows


def _read_fiqa(path: Path, source: str) -> list[Example]:
    rows = []
    for item in json.loads(path.read_text(encoding="utf-8")).values():
        scores = [float(i["sentiment_score"]) for i in item.get("info", [])]
        if not scores:
            continue
        mean = sum(scores) / len(scores)
        label = (
            "positive"
            if mean > FIQA_NEUTRAL_BAND
            else "negative"
            if mean < -FIQA_NEUTRAL_BAND
            else "neutral"
        )
        rows.append(Example(text=item["sentence"].strip(), label=label, source=source))
    return rows


_READERS = {
    "phrasebank": _read_phrasebank,
    "csv": _read_csv,
    "sentfin": _read_sentfin,
    "fiqa": _read_fiqa,
}


def load_examples(paths: Sequence[Path], licence: str | None = None) -> LabelledData:
    """Read labelled examples from files of any supported format, in the order given."""
    examples: list[Example] = []
    sources: list[DataSource] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DataValidationError(f"{path}: no such file. Give a path to a labelled-data file.")
        fmt = detect_format(path)
        name = f"{fmt}:{path.stem}"
        rows = _READERS[fmt](path, name)
        lic, commercial = _licence_of(fmt, licence)
        sources.append(
            DataSource(
                name=name,
                path=str(path),
                format=fmt,
                licence=lic,
                commercial_use=commercial,
                sha256=sha256_file(path),
                n_examples=len(rows),
            )
        )
        examples.extend(rows)
        _log.info("%s: %d examples (%s)", path.name, len(rows), fmt)
    return LabelledData(examples=tuple(examples), sources=tuple(sources))


MIN_UNLABELLED_WORDS = 4
"""Shorter lines of unlabelled text (headings, table rows) are not sentences worth distilling."""


def load_unlabelled(
    paths: Sequence[Path], licence: str | None = None, settings: Settings | None = None
) -> tuple[list[str], list[DataSource]]:
    """Sentences without labels, for a teacher to label: distinct texts, and their sources.

    A `.pdf` is read and split into sentences as `sesame analyze` does (with `settings`' ingest
    and sentence options); a `.txt` holds one sentence per line; any labelled-data file gives
    its texts (its labels are not used).
    """
    texts: dict[str, str] = {}
    sources: list[DataSource] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DataValidationError(f"{path}: no such file. Give a text, PDF or labelled file.")
        suffix = path.suffix.lower()
        fmt: DataFormat = (
            "pdf" if suffix == ".pdf" else "lines" if suffix == ".txt" else detect_format(path)
        )
        if fmt == "pdf":
            rows = _pdf_sentences(path, settings or Settings())
        elif fmt == "lines":
            rows = path.read_text(encoding="utf-8", errors="replace").splitlines()
        else:
            rows = [e.text for e in _READERS[fmt](path, path.stem)]
        kept = [" ".join(r.split()) for r in rows if len(r.split()) >= MIN_UNLABELLED_WORDS]
        for text in kept:
            texts.setdefault(normalise(text), text)
        lic, commercial = _licence_of(fmt, licence)
        sources.append(
            DataSource(
                name=f"{fmt}:{path.stem}",
                path=str(path),
                format=fmt,
                licence=lic,
                commercial_use=commercial,
                sha256=sha256_file(path),
                n_examples=len(kept),
            )
        )
        _log.info("%s: %d unlabelled sentences (%s)", path.name, len(kept), fmt)
    return list(texts.values()), sources


def _pdf_sentences(path: Path, settings: Settings) -> list[str]:

    _doc, pages, errors = read_pdf(path, settings.ingest)
    if not pages:
        reason = errors[0].message if errors else "no pages read"
        raise DataValidationError(f"{path.name}: no sentences to distil from ({reason}).")
    sentences = split_sentences(pages, settings.sentences, make_nlp(settings.sentences))
    return [s.text for s in sentences if s.kind == "sentence"]


# ---------------------------------------------------------------------------------------------
# Digests and splitting


def examples_digest(examples: Sequence[Example]) -> str:
    """sha256 over the (text, label) pairs in order: the identity of a data set."""
    h = hashlib.sha256()
    for e in examples:
        h.update(e.text.encode("utf-8"))
        h.update(b"\x1f")
        h.update(e.label.encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def deduplicate(examples: Sequence[Example]) -> tuple[list[Example], dict[str, int]]:
    """Drop repeated texts (keeping the first) and texts seen with conflicting labels."""
    labels_of: dict[str, set[str]] = {}
    for e in examples:
        labels_of.setdefault(normalise(e.text), set()).add(e.label)
    kept: list[Example] = []
    seen: set[str] = set()
    removed: Counter[str] = Counter()
    for e in examples:
        key = normalise(e.text)
        if len(labels_of[key]) > 1:
            removed["conflicting_label"] += 1
        elif key in seen:
            removed["duplicate"] += 1
        else:
            seen.add(key)
            kept.append(e)
    return kept, dict(removed)


def split_examples(
    examples: Sequence[Example], eval_share: float = 0.2, seed: int = 42
) -> DataSplit:
    """Stratified, seeded train/eval split; the same input and seed always give the same split."""
    from sklearn.model_selection import train_test_split

    idx = list(range(len(examples)))
    labels = [e.label for e in examples]
    train_idx, eval_idx = train_test_split(
        idx, test_size=eval_share, random_state=seed, stratify=labels, shuffle=True
    )
    train = tuple(examples[i] for i in sorted(train_idx))
    evals = tuple(examples[i] for i in sorted(eval_idx))
    return make_split(train, evals, seed=seed, eval_share=eval_share)


def make_split(
    train: Sequence[Example], evals: Sequence[Example], seed: int = 0, eval_share: float = 0.0
) -> DataSplit:
    """A split from given train and eval sets (e.g. a frozen evaluation file), with digests."""
    td, ed = examples_digest(train), examples_digest(evals)
    return DataSplit(
        train=tuple(train),
        eval=tuple(evals),
        seed=seed,
        eval_share=eval_share,
        train_digest=td,
        eval_digest=ed,
        split_digest=hashlib.sha256(f"{td}:{ed}".encode()).hexdigest(),
    )


# ---------------------------------------------------------------------------------------------
# Statistics, schema, validation


def compute_statistics(examples: Sequence[Example]) -> DataStatistics:
    """Counts, label balance and text lengths of a set of examples."""
    n = len(examples)
    counts = Counter(e.label for e in examples)
    keys = [normalise(e.text) for e in examples]
    seen: set[str] = set()
    dups = 0
    for k in keys:
        if k in seen:
            dups += 1
        seen.add(k)
    labels_of: dict[str, set[str]] = {}
    for k, e in zip(keys, examples, strict=True):
        labels_of.setdefault(k, set()).add(e.label)
    chars = sorted(len(e.text) for e in examples) or [0]
    words = [len(e.text.split()) for e in examples] or [0]
    return DataStatistics(
        n=n,
        label_counts={lab: counts.get(lab, 0) for lab in sorted(set(counts) | set(LABELS))},
        label_shares={
            lab: round(counts.get(lab, 0) / n, 4) if n else 0.0
            for lab in sorted(set(counts) | set(LABELS))
        },
        n_empty=sum(1 for e in examples if not e.text.strip()),
        n_duplicates=dups,
        n_conflicting=sum(1 for s in labels_of.values() if len(s) > 1),
        chars_min=chars[0],
        chars_median=float(statistics.median(chars)),
        chars_p99=float(chars[min(len(chars) - 1, int(0.99 * len(chars)))]),
        chars_max=chars[-1],
        words_median=float(statistics.median(words)),
    )


def _sample(texts: Sequence[str], k: int = 3) -> tuple[str, ...]:
    return tuple(t[:80] for t in texts[:k])


def check_examples(examples: Sequence[Example], schema: DataSchema, what: str) -> list[Anomaly]:
    """Anomalies of one set against the schema: labels, empty texts, duplicates, lengths."""
    found: list[Anomaly] = []
    n = len(examples) or 1
    unknown = [e for e in examples if e.label not in schema.labels]
    if unknown:
        seen = sorted({e.label for e in unknown})
        found.append(
            Anomaly(
                code="unknown_label",
                count=len(unknown),
                examples=_sample([e.text for e in unknown]),
                message=f"{len(unknown)} {what} examples carry labels outside "
                f"{list(schema.labels)}: {seen[:5]}. Map them to positive/negative/neutral or "
                "drop them.",
            )
        )
    empty = [e for e in examples if not e.text.strip()]
    if empty:
        found.append(
            Anomaly(
                code="empty_text",
                count=len(empty),
                message=f"{len(empty)} {what} examples have empty text.",
            )
        )
    stats = compute_statistics(examples)
    dup_share = stats.n_duplicates / n
    if dup_share > schema.max_duplicate_share:
        found.append(
            Anomaly(
                code="duplicate_text",
                count=stats.n_duplicates,
                message=f"{stats.n_duplicates} of {len(examples)} {what} texts ({dup_share:.1%}) "
                f"repeat an earlier one; at most {schema.max_duplicate_share:.1%} is "
                f"cleaned automatically ({stats.n_conflicting} with conflicting labels).",
            )
        )
    outliers = [
        e
        for e in examples
        if e.text.strip() and not schema.min_chars <= len(e.text) <= schema.max_chars
    ]
    if len(outliers) / n > schema.max_length_outlier_share:
        found.append(
            Anomaly(
                code="length_outlier",
                count=len(outliers),
                examples=_sample([e.text for e in outliers]),
                message=f"{len(outliers)} {what} texts ({len(outliers) / n:.1%}) are outside "
                f"{schema.min_chars}-{schema.max_chars} characters (allowed share "
                f"{schema.max_length_outlier_share:.1%}).",
            )
        )
    counts = Counter(e.label for e in examples)
    thin = {
        lab: counts.get(lab, 0)
        for lab in schema.labels
        if counts.get(lab, 0) < schema.min_examples_per_label
    }
    if thin:
        found.append(
            Anomaly(
                code="too_few_examples",
                count=sum(thin.values()),
                message=f"{what} set has too few examples of {thin} (at least "
                f"{schema.min_examples_per_label} per label).",
            )
        )
    return found


def class_shift(current: dict[str, float], previous: dict[str, float]) -> float:
    """The largest change of any label's share between two label distributions."""
    return max(abs(current.get(lab, 0.0) - previous.get(lab, 0.0)) for lab in LABELS)


def validate_split(
    split: DataSplit,
    schema: DataSchema | None = None,
    previous_shares: dict[str, float] | None = None,
    allow: Sequence[str] = (),
    removed: dict[str, int] | None = None,
) -> ValidationReport:
    """ExampleValidator: check train and eval sets; anomalies in `allow` are recorded, not fatal."""
    schema = schema or DataSchema()
    anomalies = check_examples(split.train, schema, "train")
    anomalies += check_examples(split.eval, schema, "eval")
    eval_keys = {normalise(e.text) for e in split.eval}
    overlap = [e.text for e in split.train if normalise(e.text) in eval_keys]
    if overlap:
        anomalies.append(
            Anomaly(
                code="train_eval_overlap",
                count=len(overlap),
                examples=_sample(overlap),
                message=f"{len(overlap)} training texts also occur in the evaluation set; the "
                "evaluation would flatter the model. Remove them from the training data.",
            )
        )
    train_stats = compute_statistics(split.train)
    if previous_shares:
        shift = class_shift(train_stats.label_shares, previous_shares)
        if shift > schema.max_class_shift:
            now = {k: train_stats.label_shares.get(k, 0.0) for k in LABELS}
            anomalies.append(
                Anomaly(
                    code="class_balance_shift",
                    count=0,
                    message=f"label shares moved by up to {shift:.2f} (allowed "
                    f"{schema.max_class_shift:.2f}) against the previous training data: "
                    f"now {now}, before {previous_shares}.",
                )
            )
    blocking = tuple(a for a in anomalies if a.code not in allow)
    accepted = tuple(a for a in anomalies if a.code in allow)
    return ValidationReport(
        train=train_stats,
        eval=compute_statistics(split.eval),
        anomalies=blocking,
        allowed=accepted,
        removed=removed or {},
    )


def dedupe_against(
    extra: Sequence[Example], held_out: Sequence[Example]
) -> tuple[list[Example], int]:
    """Drop extra training examples whose text occurs in the held-out set; returns the count."""
    keys = {normalise(e.text) for e in held_out}
    kept = [e for e in extra if normalise(e.text) not in keys]
    return kept, len(extra) - len(kept)


def write_csv(examples: Sequence[Example], path: Path) -> Path:
    """Write examples as a `text,label` CSV (the format `sesame evaluate` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for e in examples:
            w.writerow([e.text, e.label])
    return path
