"""Every record that flows through sesame, in one place.

PDF bytes -ingest-> Document + Page -sentences-> Sentence -score-> Score -explain-> Explanation,
gathered with a Stamp and the StageErrors of every stage into one DocumentResult per input.

Records are small, frozen pydantic models. A stage takes records and returns new ones; it never
mutates its input. Coordinates are PDF points with the origin at the page's top-left corner (as
pdfplumber and a page image show them); page numbers are 1-based as a PDF viewer shows them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LABELS: tuple[str, str, str] = ("positive", "negative", "neutral")
"""The three labels every scorer maps its model's classes onto, in this column order."""

Label = Literal["positive", "negative", "neutral"]
DocStatus = Literal["ok", "partial", "failed"]
ExplainMethod = Literal["sampled", "amortized"]
"""How an Explanation was made: sampled Owen values, or an amortized explainer network."""
Stage = Literal[
    "ingest", "sentences", "scoring", "explain", "export", "store", "monitor", "compare"
]
PageStatus = Literal["ok", "empty", "needs_ocr", "unreadable", "ocr_failed", "error"]
BlockKind = Literal["text", "heading", "list_item", "table", "header", "footer", "page_number"]
SentenceKind = Literal["sentence", "heading", "list_item", "table_row", "furniture"]
"""What a unit of text is. Only sentences and list items count in label shares, tone, drift and
"most negative" (`TONE_KINDS`); headings, table rows ("Net sales $ 62,151 $ 57,394") and page
furniture (page numbers, running headers and footers) are kept, shown with their kind and
scored, but kept out of the tone (`app.sentences.kinds` says how they are told apart)."""

TONE_KINDS: frozenset[str] = frozenset({"sentence", "list_item"})
"""The kinds that count in label shares, tone indices and the "most negative" lists."""


LABEL_LIMITS = {"client": 120, "engagement": 80}
"""The longest client name and engagement a document may carry (they head every workpaper and
the review screen)."""
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def check_label(kind: Literal["client", "engagement"], value: str | None) -> str | None:
    """A client name or engagement as it is kept: stripped, no control characters, within its
    limit (ValueError says by how much it is over); None or blank: None."""
    if value is None:
        return None
    clean = " ".join(_CONTROL_CHARS.sub(" ", value).split())
    limit = LABEL_LIMITS[kind]
    if len(clean) > limit:
        raise ValueError(
            f"the {kind} is {len(clean)} characters long; at most {limit} are kept. Shorten it "
            "(a client's full legal name can go in the engagement's own records)."
        )
    return clean or None


class Record(BaseModel):
    """Base of every record: immutable, and a misspelt field fails loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BBox(Record):
    """A rectangle on a page, in PDF points, origin top-left (x grows right, y grows down)."""

    x0: float
    top: float
    x1: float
    bottom: float
    page_no: int | None = None
    """The page the box lies on, when the box says so (every box of a `Sentence` does, since a
    sentence may run onto the next page); None means the page of the record holding it."""

    def union(self, other: BBox) -> BBox:
        """The smallest box holding both."""
        return BBox(
            x0=min(self.x0, other.x0),
            top=min(self.top, other.top),
            x1=max(self.x1, other.x1),
            bottom=max(self.bottom, other.bottom),
            page_no=self.page_no if self.page_no == other.page_no else None,
        )


class Anchor(Record):
    """Where text lies in an HTML filing: the elements holding its first and last characters
    and character offsets in their rendered text (`app.ingest.htmltext`). A path is an XPath
    from the root (`/html/body/div[12]/span[2]`: lower-case local names, 1-based positions
    among siblings of that name); it is stable for the same bytes."""

    path: str
    start: int
    end_path: str
    end: int
    """Offset just past the last character, in the rendered text of `end_path`'s element."""


class Fact(Record):
    """An inline-XBRL fact (ix:nonFraction, ix:nonNumeric) shown in a filing's text."""

    concept: str
    """The tagged concept, prefixed as in the filing: `us-gaap:Revenues`."""
    value: str | None
    """Numbers: the exact decimal with `scale`, `sign` and the `format` transform applied
    (`39000000000`, `-0.5`); text: the tagged text (dates, durations and booleans in their
    XBRL form: `2024-09-28`, `P3Y`, `true`); None for a nil fact."""
    numeric: bool
    text: str
    """As printed, whitespace normalised (text facts cut at 300 characters)."""
    unit: str | None = None
    """`USD`, `shares`, `USD/shares`, `pure` (ISO 4217 and xbrli prefixes left out)."""
    period_start: str | None = None
    """ISO date a duration starts on; None for an instant."""
    period_end: str | None = None
    """ISO date a duration ends on, or the instant."""
    dimensions: dict[str, str] = {}
    """Axis -> member of the fact's context (`srt:ProductOrServiceAxis` -> `us-gaap:...`)."""
    scale: int = 0
    decimals: str | None = None
    format: str | None = None
    context: str | None = None
    fact_id: str | None = None
    start: int = -1
    end: int = -1
    """Character span in the text of the record holding the fact (`Page.text` for
    `Page.facts`, `Sentence.text` for `Sentence.facts`); -1 when it lies outside that text
    (a table cell)."""

    def describe(self) -> str:
        """`us-gaap:Revenues = 391035000000 USD, FY2024 (2023-10-01 to 2024-09-28)`."""
        value = "nil" if self.value is None else self.value
        if not self.numeric and len(value) > 80:
            value = value[:77] + "..."
        line = f"{self.concept} = {value}"
        if self.unit:
            line += f" {self.unit}"
        period = self.period_label()
        if period:
            line += f", {period}"
        if self.dimensions:
            line += " [" + "; ".join(f"{a}={m}" for a, m in self.dimensions.items()) + "]"
        return line

    def period_label(self) -> str:
        """The period in words: `FY2024 (2023-10-01 to 2024-09-28)`, `3 months to
        2025-07-27`, `at 2024-09-28`; "" when the fact has none."""
        if self.period_end is None:
            return ""
        if self.period_start is None:
            return f"at {self.period_end}"
        try:
            days = (
                date.fromisoformat(self.period_end) - date.fromisoformat(self.period_start)
            ).days
        except ValueError:
            return f"{self.period_start} to {self.period_end}"
        span = f"{self.period_start} to {self.period_end}"
        if 350 <= days <= 380:
            # fiscal years are named after the calendar year they end in
            return f"FY{self.period_end[:4]} ({span})"
        months = round(days / 30.44)
        if 1 <= months <= 11 and abs(days - months * 30.44) <= 10:
            return f"{months} months to {self.period_end}"
        return span


class Line(Record):
    """One visual line of body text: its character span in `Page.text` and its box."""

    start: int
    end: int
    bbox: BBox


class Block(Record):
    """A layout block in reading order: a paragraph, heading, list item, table, header, footer.

    Blocks of kind text, heading and list_item have their text in `Page.text` at [start, end).
    Tables, headers, footers and page numbers are kept out of the sentence flow: their text
    lives in `Block.text` only and start == end == -1.
    """

    kind: BlockKind
    start: int = -1
    end: int = -1
    bbox: BBox
    text: str = ""
    anchor: Anchor | None = None
    """HTML readers: where the block lies in the filing (for tables, headers and footers the
    element holding it, offsets 0). None for PDFs."""


class Page(Record):
    """One page's text in reading order, with the layout needed to trace a sentence to it."""

    doc_id: str
    page_no: int = Field(ge=1)
    width: float
    height: float
    rotation: int = 0
    text: str
    lines: tuple[Line, ...] = ()
    blocks: tuple[Block, ...] = ()
    status: PageStatus = "ok"
    label: str | None = None
    """The page number printed on the page, when the reader found it (HTML filings: in the
    running footer or header); None when not known. `page_no` stays the position."""
    facts: tuple[Fact, ...] = ()
    """Inline-XBRL facts shown on the page, in text order (HTML filings)."""
    ocr: bool = False
    """The text was read by OCR from the page image (the text layer was missing, unreadable, or
    ignored with `--ocr force`): words may be misread."""
    ocr_confidence: float | None = None
    """Mean OCR word confidence, 0-1 (None when the page was not OCR'd or OCR found no words)."""
    ocr_language: str | None = None
    """Tesseract language(s) the page was read with, e.g. "eng" or "nld+eng"."""


class Document(Record):
    """One input file. Identified by the sha256 of its bytes, never by its file name."""

    doc_id: str
    file_name: str
    size_bytes: int
    n_pages: int = 0
    encrypted: bool = False
    title: str | None = None
    producer: str | None = None


class StageError(Record):
    """A problem a stage met: what, where and what to do next. Nothing is dropped silently."""

    stage: Stage
    code: str
    """Short machine-readable kind, e.g. encrypted, damaged, not_pdf, needs_ocr, garbled."""
    page_no: int | None = None
    message: str
    fatal: bool = False
    """True when the whole document could not be read (the document is FAILED)."""


class Sentence(Record):
    """One sentence as the auditor sees it in the workpaper, traceable to its page."""

    doc_id: str
    index: int
    """Position in the document, 0-based and dense over the whole document."""
    page_no: int = Field(ge=1)
    start: int
    end: int
    """Character span in the page's `Page.text`."""
    text: str
    kind: SentenceKind = "sentence"
    section: str | None = None
    """The heading the sentence falls under, as printed in the report."""
    section_type: str | None = None
    """A normalised section kind when recognised: risk_factors, going_concern, outlook, ..."""
    boxes: tuple[BBox, ...] = ()
    end_page_no: int | None = None
    """Set when the sentence runs across a page break: the next page, where it ends. `start` and
    `end` then cover its part on `page_no`; the rest is `Page.text[:end_page_end]` there."""
    end_page_end: int | None = None
    anchor: Anchor | None = None
    """HTML filings: where the sentence lies in the filing (the review screen highlights it
    there); None for PDFs, whose `boxes` locate it on the page image."""
    facts: tuple[Fact, ...] = ()
    """The inline-XBRL facts tagged inside the sentence, in text order."""
    ocr: bool = False
    """Read by OCR from a page image (see `Page.ocr`): a word may be misread."""


class Score(Record):
    """The model's reading of one sentence."""

    sentence_index: int
    label: Label
    probabilities: dict[Label, float]
    confidence: float


class WordWeight(Record):
    """One word and its SHAP attribution towards the explained label."""

    word: str
    weight: float


class Explanation(Record):
    """Word-level SHAP attributions of one sentence's predicted-class probability."""

    sentence_index: int
    label: Label
    words: tuple[str, ...]
    values: tuple[float, ...]
    base_value: float
    output_value: float
    """The model's probability of `label` for the whole sentence."""
    additivity_error: float
    """|base_value + sum(values) - output_value|."""
    top_for: tuple[WordWeight, ...] = ()
    """Words pushing towards the label, strongest first."""
    top_against: tuple[WordWeight, ...] = ()
    """Words pushing away from the label, strongest first."""
    settings: dict[str, str | int | float | bool | None] = {}
    model_digest: str = ""
    cached: bool = False
    method: ExplainMethod = "sampled"
    """Sampled Owen values (their budget and evaluations in `settings`) or an amortized explainer
    network; records stored before the field existed were all sampled."""
    fidelity: dict[str, str | int | float | bool | None] = {}
    """For `amortized`: the explainer's fidelity as measured by its gate against a high-budget
    sampled reference (spearman, top1, top3, sign, n_sentences, reference, set, blessed)."""
    note: str = ""
    """Why this method, when it is not the one asked for (e.g. sampled because the model ships
    no blessed explainer); empty otherwise."""


class Stamp(Record):
    """Which model and code produced an output, and when. Written on every output."""

    model_name: str
    model_version: str | None
    """Registry version, or None when the model was loaded from an unregistered directory."""
    model_digest: str
    """sha256 of the model's weights file."""
    code_version: str
    git_commit: str | None = None
    run_id: str
    created_at: datetime

    def fields(self) -> dict[str, str]:
        """The stamp as flat, printable name/value pairs (for sheet headers and rows)."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version or "unregistered",
            "model_sha256": self.model_digest,
            "code_version": self.code_version,
            "git_commit": self.git_commit or "unknown",
            "run_id": self.run_id,
            "created_at": self.created_at.isoformat(timespec="seconds"),
        }


class DocumentResult(Record):
    """Everything sesame learned from one input. Every input yields exactly one."""

    source: str
    """The path or upload name the file came from (for display only; never used as a path)."""
    document: Document | None
    """None only when not even the bytes could be read."""
    status: DocStatus
    pages: tuple[Page, ...] = ()
    sentences: tuple[Sentence, ...] = ()
    scores: tuple[Score, ...] = ()
    explanations: tuple[Explanation, ...] = ()
    errors: tuple[StageError, ...] = ()
    stamp: Stamp
    settings: dict[str, object] = {}
    timings: dict[str, float] = {}
    """Seconds spent per stage."""
    client: str | None = None
    engagement: str | None = None

    @property
    def doc_id(self) -> str | None:
        """The document's sha256, when its bytes could be read."""
        return self.document.doc_id if self.document else None


def document_status(errors: tuple[StageError, ...] | list[StageError]) -> DocStatus:
    """FAILED when a fatal error occurred, PARTIAL when anything else went wrong, else OK."""
    if any(e.fatal for e in errors):
        return "failed"
    if errors:
        return "partial"
    return "ok"


def count_line(counts: Mapping[str, int], *, skipped: bool = False) -> str:
    """`3 documents: 2 ok, 0 partial, 1 failed` (`, 4 skipped` added with `skipped`).

    The one line every run ends with, on the console, in summaries and on workpapers.
    """
    keys = ("ok", "partial", "failed", "skipped") if skipped else ("ok", "partial", "failed")
    n = sum(counts.get(k, 0) for k in keys)
    noun = "document" if n == 1 else "documents"
    return f"{n} {noun}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in keys)


def settings_digest(settings: dict[str, object]) -> str:
    """sha256 of the canonical JSON of result settings: equal digests mean equal outputs."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


ReviewKind = Literal[
    "agree",
    "override",
    "comment",
    "resolve",
    "signoff_preparer",
    "signoff_reviewer",
    "signoff_preparer_exception",
    "signoff_reviewer_exception",
]
"""resolve: a reviewer closes a dispute on a sentence (with a comment; the label stays);
signoff_*_exception: a sign-off recorded although it broke a sign-off rule (with a comment)."""
RunKind = Literal["analyze", "batch"]
RunStatus = Literal["running", "ok", "partial", "failed", "interrupted"]
RunDocStatus = Literal["pending", "running", "ok", "partial", "failed", "skipped"]


class ResultSummary(Record):
    """One stored analysis result, without its sentences: a row of the UI's document list."""

    result_id: int
    doc_id: str | None
    source: str
    file_name: str | None
    status: DocStatus
    model_name: str
    model_version: str | None
    model_digest: str
    settings_digest: str
    run_id: str | None
    """The run that saved the result."""
    created_at: datetime
    """When the result was produced (the stamp's time)."""
    n_pages: int
    n_sentences: int
    n_scored: int
    n_explained: int
    n_errors: int
    label_counts: dict[Label, int]
    client: str | None = None
    engagement: str | None = None


class ReviewAction(Record):
    """One reviewer action as stored. Append-only: an action is never changed or removed."""

    id: int
    result_id: int
    doc_id: str
    sentence_index: int | None
    """None: the action concerns the whole document (a comment or a sign-off)."""
    action: ReviewKind
    reviewer: str
    created_at: datetime
    label: Label | None = None
    """The label in force after the action (agree: the label agreed with; override: the new one)."""
    previous_label: Label | None = None
    """The label in force before the action: the model's, or an earlier override."""
    comment: str | None = None
    model_version: str | None = None
    model_digest: str = ""


class ReviewOverview(Record):
    """Where the review of one stored result stands: a line of the document picker."""

    result_id: int
    sentences_reviewed: int = 0
    """Sentences with at least one decision (agree or override)."""
    actions: int = 0
    signed_off: tuple[str, ...] = ()
    """Who signed off, by role (preparer, reviewer), in the order they did."""
    last_action_at: datetime | None = None


class ManifestEntry(Record):
    """One input of a run, as it was when the run started."""

    path: str
    sha256: str | None = None
    size_bytes: int | None = None


class RunInfo(Record):
    """One analyze or batch run: what went in, with which model and settings, how it ended."""

    run_id: str
    kind: RunKind
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    manifest: tuple[ManifestEntry, ...] = ()
    stamp: Stamp | None = None
    settings: dict[str, object] = {}
    summary: dict[str, object] = {}
    document_counts: dict[str, int] = {}
    """Documents of the run per status (pending, running, ok, partial, failed, skipped)."""


class RunDocument(Record):
    """One input's progress within a run: enough to resume and to explain every failure."""

    run_id: str
    source: str
    """The input's path as listed in the manifest (display and resume key)."""
    doc_id: str | None = None
    status: RunDocStatus
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timings: dict[str, float] = {}
    error: str | None = None
    result_id: int | None = None


class MonitorReport(Record):
    """A stored monitoring report (drift, data quality): free-form JSON with a kind."""

    id: int
    kind: str
    created_at: datetime
    model_digest: str | None = None
    run_id: str | None = None
    report: dict[str, object] = {}


# --- year against year (app/compare) ------------------------------------------------------------

ChangeKind = Literal["unchanged", "edited", "new", "removed"]
"""What became of a sentence between two years: every sentence of both ends in exactly one."""
CHANGE_KINDS: tuple[ChangeKind, ...] = ("unchanged", "edited", "new", "removed")
Presence = Literal["both", "prior_only", "current_only"]


class ComparedDocument(Record):
    """One side of a comparison: which stored result, of which document, scored by which model."""

    result_id: int | None = None
    """The stored result compared (None when the result was not stored)."""
    doc_id: str | None
    file_name: str | None
    source: str
    client: str | None = None
    engagement: str | None = None
    n_pages: int = 0
    n_sentences: int = 0
    status: DocStatus = "ok"
    model_name: str
    model_version: str | None
    model_digest: str
    created_at: datetime
    """When the result was produced (its stamp's time)."""
    rescored_from: dict[str, object] | None = None
    """Set when the result named was scored by another model: what it had been scored by
    (result_id, model_name, model_version, model_digest) and how the compared result came to be
    (`how`: stored, another stored result by the current model; pdf, analyzed again; sentences,
    its stored sentences rescored)."""


class ToneStats(Record):
    """A year's label counts over one section and its tone index with a bootstrap 95% interval."""

    n: int
    positive: int = 0
    negative: int = 0
    neutral: int = 0
    tone: float | None = None
    """(positive - negative) / n; None with no scored sentences."""
    low: float | None = None
    high: float | None = None


class SectionShift(Record):
    """One section aligned between the years: its tone in each, the shift and what changed."""

    key: str
    """Stable id within the comparison: `type:risk_factors`, or `heading:<normalised heading>`."""
    title: str
    section_type: str | None = None
    matched_by: Literal["type", "heading", "fuzzy_heading", "unmatched", "whole"]
    heading_similarity: float | None = None
    """For headings matched by a fuzzy match: their similarity (0-1)."""
    presence: Presence
    prior_headings: tuple[str, ...] = ()
    current_headings: tuple[str, ...] = ()
    prior_pages: tuple[int, int] | None = None
    current_pages: tuple[int, int] | None = None
    prior: ToneStats
    current: ToneStats
    shift: float | None = None
    """current tone - prior tone."""
    shift_low: float | None = None
    shift_high: float | None = None
    moved: bool = False
    """The shift's 95% interval excludes 0 (and both years have enough scored sentences)."""
    changes: dict[str, int] = {}
    """Sentences of the section per change kind (a pair counts once, in its current section)."""
    new_headings: tuple[str, ...] = ()
    removed_headings: tuple[str, ...] = ()


class ComparedSentence(Record):
    """One year's side of a sentence change, as the auditor reads it."""

    index: int
    page_no: int
    end_page_no: int | None = None
    kind: SentenceKind = "sentence"
    section: str | None = None
    section_type: str | None = None
    section_key: str
    """The aligned section (`SectionShift.key`) the sentence lies in."""
    text: str
    label: Label | None = None
    confidence: float | None = None
    p_negative: float | None = None
    p_positive: float | None = None
    evidence_label: Label | None = None
    evidence_for: tuple[WordWeight, ...] = ()
    """Its SHAP evidence, when the result has some: words for the label, strongest first."""
    evidence_against: tuple[WordWeight, ...] = ()


class WordDiff(Record):
    """One run of words of a word-level difference: kept, inserted (current) or deleted (prior)."""

    op: Literal["equal", "insert", "delete"]
    text: str


class NumberChange(Record):
    """A figure that differs in a sentence otherwise unchanged: prior -> current."""

    prior: str
    current: str


class SentenceChange(Record):
    """A sentence's fate between the years: a pair (unchanged, edited), or new, or removed."""

    change: ChangeKind
    prior: ComparedSentence | None = None
    current: ComparedSentence | None = None
    similarity: float | None = None
    """Of an edited pair: the normalised Indel similarity (0-1) of its normalised texts."""
    diff: tuple[WordDiff, ...] = ()
    """Word-level difference prior -> current (edited pairs, and unchanged ones whose figures
    or wording outside the normal form changed)."""
    numbers: tuple[NumberChange, ...] = ()
    """The figures that changed in an unchanged pair."""
    flipped: bool = False
    """A pair whose label differs between the years."""
    moved: bool = False
    """A pair whose sentences lie in different aligned sections."""


class Comparison(Record):
    """This year against last year: aligned sections, every sentence classed, tone shifts."""

    prior: ComparedDocument
    current: ComparedDocument
    stamp: Stamp
    """The comparison's own stamp: the model both documents were scored with, this run."""
    settings: dict[str, object] = {}
    counts: dict[str, int] = {}
    """Sentences per change kind; `prior` and `current` hold each document's sentence count
    (prior = unchanged + edited + removed, current = unchanged + edited + new)."""
    whole: SectionShift
    """The whole documents' tone, as one section."""
    sections: tuple[SectionShift, ...] = ()
    """Aligned sections, those whose tone moved beyond its interval first."""
    changes: tuple[SentenceChange, ...] = ()
    """Every sentence of both documents in exactly one change: current order, then removed."""
    notes: tuple[str, ...] = ()
    """What the reader must know: rescoring, sections present in one year only, problems."""
    timings: dict[str, float] = {}

    def stamp_fields(self) -> dict[str, str]:
        """The stamp with both input digests: what every comparison row carries."""
        return {
            **self.stamp.fields(),
            "prior_sha256": self.prior.doc_id or "",
            "current_sha256": self.current.doc_id or "",
        }


class ComparisonSummary(Record):
    """One stored comparison without its sentences: a row of the UI's list."""

    comparison_id: int
    prior_result_id: int | None
    current_result_id: int | None
    prior_doc_id: str | None
    current_doc_id: str | None
    prior_file_name: str | None = None
    current_file_name: str | None = None
    client: str | None = None
    prior_engagement: str | None = None
    current_engagement: str | None = None
    model_digest: str
    model_version: str | None = None
    created_at: datetime
    counts: dict[str, int] = {}
    moved_sections: int = 0
