"""Page-range parts back into one DocumentResult per document.

A worker analyzes a part's pages plus context (`Part.read`) and keeps what lies on the part's
own pages (`trim_part`); the driver joins the parts in page order (`merge_parts`): sentences
are re-indexed densely, scores and explanations follow their sentence, errors are merged
without repeats, timings are summed per stage, and the status follows from the merged errors.

What a part cannot know is patched where the merged document makes it known: sentences at the
top of a part, before its first heading, belong to the section the previous part ended in; a
part that failed on its own (say, 40 scanned pages of a report with a text layer elsewhere)
makes the document partial, not failed; and "no sentences" is only said of the whole document.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from app.records import (
    DocumentResult,
    Explanation,
    Page,
    Score,
    Sentence,
    StageError,
    document_status,
)
from batch.plan import Part

_log = logging.getLogger(__name__)

_WHOLE_DOCUMENT_CODES = frozenset({"no_sentences"})
"""Error codes that a part reports about itself but that only hold for the whole document."""


def trim_part(result: DocumentResult, part: Part) -> DocumentResult:
    """Keep what lies on the part's own pages: pages, sentences starting there, their scores
    and explanations, and errors of those pages or of the whole document."""
    if part.pages is None:
        return result
    first, last = part.pages

    def inside(page_no: int | None) -> bool:
        return page_no is None or first <= page_no <= last

    sentences = tuple(s for s in result.sentences if inside(s.page_no))
    kept = {s.index for s in sentences}
    return result.model_copy(
        update={
            "pages": tuple(p for p in result.pages if inside(p.page_no)),
            "sentences": sentences,
            "scores": tuple(s for s in result.scores if s.sentence_index in kept),
            "explanations": tuple(e for e in result.explanations if e.sentence_index in kept),
            "errors": tuple(e for e in result.errors if inside(e.page_no)),
        }
    )


def merge_parts(results: Sequence[DocumentResult], parts: Sequence[Part]) -> DocumentResult:
    """One DocumentResult from a document's trimmed part results (in any order)."""
    if len(results) != len(parts) or not results:
        raise ValueError(f"merge_parts: {len(results)} results for {len(parts)} parts")
    ordered = sorted(zip(parts, results, strict=True), key=lambda pr: pr[0].index)
    if len(ordered) == 1:
        return ordered[0][1]
    indexes = [p.index for p, _ in ordered]
    if indexes != list(range(ordered[0][0].count)):
        raise ValueError(
            f"merge_parts: parts {indexes} of {ordered[0][0].count} for {ordered[0][0].source}"
        )

    all_failed = all(r.status == "failed" for _, r in ordered)
    sentences: list[Sentence] = []
    scores: list[Score] = []
    explanations: list[Explanation] = []
    pages: list[Page] = []
    errors: list[StageError] = []
    seen_errors: set[tuple[object, ...]] = set()
    timings: dict[str, float] = defaultdict(float)
    for part, result in ordered:
        renumber: dict[int, int] = {}
        carry = sentences[-1] if sentences else None
        in_head = True  # still before the part's first sentence with a known section
        for s in sorted(result.sentences, key=lambda x: x.index):
            update: dict[str, object] = {"index": len(sentences)}
            if in_head and s.section is None and carry is not None:
                update.update(section=carry.section, section_type=carry.section_type)
            else:
                in_head = False
            renumber[s.index] = len(sentences)
            sentences.append(s.model_copy(update=update))
        scores.extend(
            x.model_copy(update={"sentence_index": renumber[x.sentence_index]})
            for x in result.scores
            if x.sentence_index in renumber
        )
        explanations.extend(
            x.model_copy(update={"sentence_index": renumber[x.sentence_index]})
            for x in result.explanations
            if x.sentence_index in renumber
        )
        pages.extend(result.pages)
        for error in result.errors:
            if error.fatal and not all_failed:
                error = _part_error(error, part, result)
            key = (error.stage, error.code, error.page_no, error.message, error.fatal)
            if key not in seen_errors:
                seen_errors.add(key)
                errors.append(error)
        for stage, seconds in result.timings.items():
            timings[stage] += seconds

    if sentences or all_failed:
        errors = [e for e in errors if e.code not in _WHOLE_DOCUMENT_CODES]
    first = ordered[0][1]
    document = next((r.document for _, r in ordered if r.document is not None), None)
    return first.model_copy(
        update={
            "document": document,
            "status": document_status(errors),
            "pages": tuple(sorted(pages, key=lambda p: p.page_no)),
            "sentences": tuple(sentences),
            "scores": tuple(scores),
            "explanations": tuple(explanations),
            "errors": tuple(errors),
            "timings": {stage: round(seconds, 4) for stage, seconds in timings.items()},
        }
    )


def _part_error(error: StageError, part: Part, result: DocumentResult) -> StageError:
    """A part's fatal error, said of the part's pages: the rest of the document was read."""
    name = result.document.file_name if result.document else result.source
    message = error.message
    if message.startswith(f"{name}: "):
        message = message[len(name) + 2 :]
    where = f"pages {part.pages[0]}-{part.pages[1]}" if part.pages else "a part"
    return error.model_copy(
        update={
            "fatal": False,
            "message": f"{name} {where}: {message} (The document's other pages were read.)",
        }
    )
