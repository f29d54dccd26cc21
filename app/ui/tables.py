"""The tables the review screen shows, built from records (pure pandas, no Streamlit).

Figures follow the workpaper's definitions (tone index, labels per section, the ten most
negative sentences without headings, review status from the latest agree/override), so the
screen and the downloaded workpaper never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from app.export import counts_in_tone, label_counts, not_counted, tone_index, tone_scores
from app.records import (
    LABELS,
    DocumentResult,
    Explanation,
    ReviewAction,
    RunDocument,
    RunInfo,
    Score,
    Sentence,
    Stamp,
)
from app.reviewing import open_disputes
from app.workpaper import review_states
from explain.render import TOP_K, evidence_text

NOT_REVIEWED = "not reviewed"
DISPUTED = "disputed"
REVIEW_STATUSES = (NOT_REVIEWED, "agreed", "overridden", "commented", DISPUTED)
"""A sentence's review status as the filter offers it."""
NO_SECTION = "(before the first heading)"

ACTION_TEXT = {
    "agree": "agreed",
    "override": "overrode",
    "comment": "commented",
    "resolve": "resolved the dispute",
    "signoff_preparer": "signed off as preparer",
    "signoff_reviewer": "signed off as reviewer",
    "signoff_preparer_exception": "signed off as preparer (exception)",
    "signoff_reviewer_exception": "signed off as reviewer (exception)",
}


def model_label(model_name: str, model_version: str | None, model_digest: str) -> str:
    """ "sesame-sentiment v3 (sha256 53aa5117…)": how every page names a model."""
    version = f"v{model_version}" if model_version else "unregistered"
    return f"{model_name} {version} (sha256 {model_digest[:8]}…)"


def stamp_label(stamp: Stamp) -> str:
    """The model of a stamp, named as every page names it."""
    return model_label(stamp.model_name, stamp.model_version, stamp.model_digest)


def download_name(file_name: str | None, doc_id: str | None, stamp: Stamp, ext: str) -> str:
    """A download's file name carrying the document and the model version:
    `annual_report_53aa5117_sesame-sentiment-v3.xlsx` (never a path)."""
    stem = re.sub(r"[^\w.-]+", "_", name_stem(file_name or "document")).strip("._") or "document"
    version = (
        f"v{stamp.model_version}"
        if stamp.model_version
        else f"unregistered-{stamp.model_digest[:8]}"
    )
    model = re.sub(r"[^\w.-]+", "_", stamp.model_name)
    doc = f"_{doc_id[:8]}" if doc_id else ""
    return f"{stem[:80]}{doc}_{model}-{version}.{ext}"


def name_stem(name: str) -> str:
    """The name without its folders and last extension, whatever the uploader's platform."""
    base = re.split(r"[\\/]", name)[-1]
    return base.rsplit(".", 1)[0] if "." in base.strip(".") else base


@dataclass(frozen=True)
class SentenceRow:
    """What the sentence table shows of one sentence."""

    index: int
    page: int
    section: str
    kind: str
    text: str
    model_label: str | None
    confidence: float | None
    p_negative: float | None
    label: str | None
    """The label in force: the latest agree/override, else the model's."""
    review: str
    reviewer: str | None


def sentence_rows(
    pairs: Sequence[tuple[Sentence, Score | None]], reviews: Sequence[ReviewAction]
) -> list[SentenceRow]:
    """One row per sentence: the model's reading, the label in force and the review status
    ("disputed" while its reviewers' latest labels differ, whatever the last action was)."""
    states = review_states(reviews)
    disputed = open_disputes(reviews)
    commented = {
        r.sentence_index for r in reviews if r.action == "comment" and r.sentence_index is not None
    }
    rows = []
    for sentence, score in pairs:
        state = states.get(sentence.index)
        status = (
            DISPUTED
            if sentence.index in disputed
            else state.status
            if state and state.status
            else ("commented" if sentence.index in commented else NOT_REVIEWED)
        )
        label = state.label if state and state.label else (score.label if score else None)
        rows.append(
            SentenceRow(
                index=sentence.index,
                page=sentence.page_no,
                section=sentence.section or NO_SECTION,
                kind=sentence.kind,
                text=sentence.text,
                model_label=score.label if score else None,
                confidence=score.confidence if score else None,
                p_negative=score.probabilities.get("negative") if score else None,
                label=label,
                review=status,
                reviewer=state.reviewer if state else None,
            )
        )
    return rows


def filter_rows(
    rows: Sequence[SentenceRow],
    *,
    label: str | None = None,
    section: str | None = None,
    page: int | None = None,
    min_confidence: float = 0.0,
    review: str | None = None,
) -> list[SentenceRow]:
    """The rows that pass every filter given (None: no filter). `label` is the label in force."""
    out = []
    for r in rows:
        if label is not None and r.label != label:
            continue
        if section is not None and r.section != section:
            continue
        if page is not None and r.page != page:
            continue
        if min_confidence > 0 and (r.confidence is None or r.confidence < min_confidence):
            continue
        if review is not None and r.review != review:
            continue
        out.append(r)
    return out


def sentence_frame(rows: Sequence[SentenceRow]) -> pd.DataFrame:
    """The sentence table as the Review page shows it."""
    return pd.DataFrame(
        {
            "#": [r.index for r in rows],
            "page": [r.page for r in rows],
            "section": [r.section for r in rows],
            "sentence": [r.text for r in rows],
            # what the unit is: only sentences and list items count in the tone
            "kind": [r.kind.replace("_", " ") for r in rows],
            "model label": [r.model_label or "not scored" for r in rows],
            "confidence": [r.confidence for r in rows],
            "label in force": [r.label or "" for r in rows],
            "review": [r.review for r in rows],
            "reviewer": [r.reviewer or "" for r in rows],
        }
    )


def label_summary(result: DocumentResult) -> pd.DataFrame:
    """Label counts and shares of the whole document (sentences and list items only)."""
    counts = label_counts(tone_scores(result))
    total = sum(counts.values())
    return pd.DataFrame(
        {
            "label": list(LABELS),
            "sentences": [counts[label] for label in LABELS],
            "share": [counts[label] / total if total else None for label in LABELS],
        }
    )


def not_counted_line(result: DocumentResult) -> str:
    """What the tone leaves out: `Counted in the tone: 30 sentences and list items; shown but
    not counted: 4 headings, 3 table rows, 1 line of page furniture.`"""
    counted = sum(1 for s in result.sentences if counts_in_tone(s))
    left = ", ".join(text for text, _ in not_counted(result))
    return f"Counted in the tone: {counted:,} sentences and list items; shown but not counted: " + (
        f"{left}." if left else "none."
    )


def section_summary(result: DocumentResult) -> pd.DataFrame:
    """Labels per section (heading as printed), in reading order, with shares and tone; the
    sentences and list items of each count, its headings and table rows do not."""
    scores = {s.sentence_index: s for s in result.scores}
    groups: dict[tuple[str, str], list[Sentence]] = {}
    for sentence in result.sentences:
        key = (sentence.section or NO_SECTION, sentence.section_type or "")
        groups.setdefault(key, []).append(sentence)
    records = []
    for (section, section_type), members in groups.items():
        counts = label_counts(
            [scores[s.index] for s in members if s.index in scores and counts_in_tone(s)]
        )
        total = sum(counts.values())
        records.append(
            {
                "section": section,
                "section type": section_type,
                "sentences": sum(1 for s in members if counts_in_tone(s)),
                **{
                    f"{label} share": (counts[label] / total if total else None) for label in LABELS
                },
                "tone index": tone_index(counts),
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            "section",
            "section type",
            "sentences",
            *(f"{label} share" for label in LABELS),
            "tone index",
        ],
    )


def most_negative(result: DocumentResult, k: int = 10) -> pd.DataFrame:
    """The k sentences with the highest P(negative), of those labelled negative; headings,
    table rows and page furniture left out (as in the workpaper). Empty when none is negative."""
    scores = {s.sentence_index: s for s in result.scores}
    pairs = [
        (s, scores[s.index])
        for s in result.sentences
        if s.index in scores and counts_in_tone(s) and scores[s.index].label == "negative"
    ]
    pairs.sort(key=lambda p: (-p[1].probabilities.get("negative", 0.0), p[0].index))
    return pd.DataFrame(
        [
            {
                "#": s.index,
                "page": s.page_no,
                "section": s.section or NO_SECTION,
                "sentence": s.text,
                "P(negative)": sc.probabilities.get("negative"),
                "label": sc.label,
            }
            for s, sc in pairs[:k]
        ],
        columns=["#", "page", "section", "sentence", "P(negative)", "label"],
    )


def evidence_line(expl: Explanation, k: int = TOP_K) -> str:
    """The words that matter, strongest first: "for negative: loss (+0.41), impairment (+0.30);
    against: record (-0.12)" (explain.render's rule: what the highlight colours)."""
    return evidence_text(expl, k=k) or "no word stands out"


def document_tone(result: DocumentResult) -> float | None:
    """The document's tone index."""
    return tone_index(label_counts(tone_scores(result)))


def review_log(reviews: Sequence[ReviewAction], sentences: dict[int, Sentence]) -> pd.DataFrame:
    """Every review action, oldest first, as the Review log sheet lists them."""
    return pd.DataFrame(
        [
            {
                "when (UTC)": r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "who": r.reviewer,
                "action": ACTION_TEXT.get(r.action, r.action),
                "sentence": "" if r.sentence_index is None else str(r.sentence_index),
                "page": ""
                if r.sentence_index is None or r.sentence_index not in sentences
                else str(sentences[r.sentence_index].page_no),
                "previous label": r.previous_label or "",
                "label": r.label or "",
                "comment": r.comment or "",
                "model version": r.model_version or "unregistered",
            }
            for r in sorted(reviews, key=lambda r: r.id)
        ],
        columns=[
            "when (UTC)",
            "who",
            "action",
            "sentence",
            "page",
            "previous label",
            "label",
            "comment",
            "model version",
        ],
    )


def latest_action(
    reviews: Sequence[ReviewAction],
    sentence_index: int | None = None,
    *,
    whole_result: bool = False,
) -> ReviewAction | None:
    """The latest action on one sentence, or (whole_result) on any part of the result: the
    version a reviewer acts on, passed to the store as `expected_previous`."""
    mine = (
        list(reviews)
        if whole_result
        else [r for r in reviews if r.sentence_index == sentence_index]
    )
    return max(mine, key=lambda r: r.id, default=None)


def signoffs(reviews: Sequence[ReviewAction]) -> dict[str, ReviewAction | None]:
    """The latest preparer and reviewer sign-off of a result."""
    out: dict[str, ReviewAction | None] = {"signoff_preparer": None, "signoff_reviewer": None}
    for r in sorted(reviews, key=lambda r: r.id):
        if r.action in out:
            out[r.action] = r
    return out


def runs_frame(runs: Sequence[RunInfo]) -> pd.DataFrame:
    """Runs as a table (Runs page)."""
    rows = []
    for run in runs:
        counts = run.document_counts
        rows.append(
            {
                "run": run.run_id,
                "kind": run.kind,
                "status": run.status,
                "model": stamp_label(run.stamp) if run.stamp else "",
                "started (UTC)": run.started_at.strftime("%Y-%m-%d %H:%M"),
                "finished (UTC)": run.finished_at.strftime("%Y-%m-%d %H:%M")
                if run.finished_at
                else "",
                "documents": sum(counts.values()),
                "ok": counts.get("ok", 0),
                "partial": counts.get("partial", 0),
                "failed": counts.get("failed", 0),
                "other": sum(v for k, v in counts.items() if k not in ("ok", "partial", "failed")),
                "by": str(run.summary.get("user", "")),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "run",
            "kind",
            "status",
            "model",
            "started (UTC)",
            "finished (UTC)",
            "documents",
            "ok",
            "partial",
            "failed",
            "other",
            "by",
        ],
    )


def run_documents_frame(docs: Sequence[RunDocument]) -> pd.DataFrame:
    """A run's inputs and how each ended."""
    return pd.DataFrame(
        [
            {
                "input": d.source,
                "status": d.status,
                "attempts": d.attempts,
                "result": d.result_id,
                "sha256": (d.doc_id or "")[:12],
                "problem": d.error or "",
            }
            for d in docs
        ],
        columns=["input", "status", "attempts", "result", "sha256", "problem"],
    )
