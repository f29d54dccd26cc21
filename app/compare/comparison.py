"""The comparison stage: two `DocumentResult`s of one client (last year, this year) in, one
`Comparison` out.

Sections are aligned (`align`), sentences paired (`match`) and every sentence of both
documents put in exactly one class: unchanged, edited, new or removed (the counts are checked
to add up). Tone per section and its shift come with bootstrap intervals (`tone`); sections
whose tone moved beyond its interval come first. Both results must have been scored by the
same model with the same scoring settings (`like_for_like`); `app.compare.service` rescores
the prior year when they were not.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from app.compare.align import AlignedSection, align_sections
from app.compare.match import match_sentences
from app.compare.text import changed_numbers, word_diff, words
from app.compare.tone import shift_interval, tone_stats
from app.config import CompareOptions, ScoringOptions
from app.errors import CompareError
from app.records import (
    CHANGE_KINDS,
    ComparedDocument,
    ComparedSentence,
    Comparison,
    DocumentResult,
    Label,
    SectionShift,
    SentenceChange,
    Stamp,
)
from app.stamps import make_stamp, new_run_id

_log = logging.getLogger(__name__)

LABEL_SETTINGS = ("max_length", "label_map", "quantize")
"""Scoring settings that change a label besides the weights (whose digest is in the stamp)."""


def like_for_like(prior: DocumentResult, current: DocumentResult) -> str | None:
    """Why two results were not scored alike (another model or scoring setting), or None."""
    a, b = prior.stamp, current.stamp
    if a.model_digest != b.model_digest:
        return f"{prior.source} was scored by {_model(a)}, {current.source} by {_model(b)}"
    for key in LABEL_SETTINGS:
        va, vb = scoring_setting(prior, key), scoring_setting(current, key)
        if va != vb:
            return (
                f"{prior.source} was scored with scoring.{key}={va!r}, {current.source} with {vb!r}"
            )
    return None


def scoring_setting(result: DocumentResult, key: str) -> object:
    """A scoring setting a result was made with (the default where it was not recorded)."""
    scoring = result.settings.get("scoring")
    if isinstance(scoring, dict) and key in scoring:
        return scoring[key]
    return getattr(ScoringOptions(), key)


def _model(stamp: Stamp) -> str:
    version = stamp.model_version or "unregistered"
    return f"{stamp.model_name} {version} (sha256 {stamp.model_digest[:12]}…)"


def compared_document(result: DocumentResult, result_id: int | None = None) -> ComparedDocument:
    """The comparison's record of one input result."""
    doc = result.document
    return ComparedDocument(
        result_id=result_id,
        doc_id=result.doc_id,
        file_name=doc.file_name if doc else None,
        source=result.source,
        client=result.client,
        engagement=result.engagement,
        n_pages=doc.n_pages if doc else 0,
        n_sentences=len(result.sentences),
        status=result.status,
        model_name=result.stamp.model_name,
        model_version=result.stamp.model_version,
        model_digest=result.stamp.model_digest,
        created_at=result.stamp.created_at,
        rescored_from=result.settings.get("rescored_from"),  # type: ignore[arg-type]
    )


def _usable(result: DocumentResult, year: str) -> None:
    if not result.sentences:
        why = "; ".join(e.message for e in result.errors if e.fatal) or "no sentences were read"
        raise CompareError(
            f"{result.source} ({year}): nothing to compare, {why}. Fix the input and analyze "
            "it again, or compare another document."
        )
    if not result.scores:
        raise CompareError(
            f"{result.source} ({year}): its sentences were never scored; analyze it again."
        )


def compare_results(
    prior: DocumentResult,
    current: DocumentResult,
    options: CompareOptions | None = None,
    *,
    prior_result_id: int | None = None,
    current_result_id: int | None = None,
    run_id: str | None = None,
    notes: Sequence[str] = (),
) -> Comparison:
    """Compare last year's result with this year's (same client, same model); see the module.

    Raises CompareError when either has no scored sentences or the two were scored unlike.
    """
    options = options or CompareOptions()
    _usable(prior, "prior year")
    _usable(current, "current year")
    unlike = like_for_like(prior, current)
    if unlike:
        raise CompareError(
            f"Not like for like: {unlike}. Rescore the prior year with the current model first "
            "(`sesame compare` and the Compare page do this)."
        )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    old, new = list(prior.sentences), list(current.sentences)
    alignment = align_sections(old, new, options.heading_similarity)
    timings["align"] = round(time.perf_counter() - t0, 4)

    t0 = time.perf_counter()
    old_words = [words(s.text) for s in old]
    new_words = [words(s.text) for s in new]
    matching = match_sentences(
        old,
        new,
        old_words,
        new_words,
        alignment.prior_keys,
        alignment.current_keys,
        edit_similarity=options.edit_similarity,
    )
    timings["match"] = round(time.perf_counter() - t0, 4)

    t0 = time.perf_counter()
    old_side = _sides(prior, alignment.prior_keys)
    new_side = _sides(current, alignment.current_keys)
    changes: list[SentenceChange] = []
    pair_of = {p.current: p for p in matching.pairs}
    for j in range(len(new)):
        pair = pair_of.get(j)
        if pair is None:
            changes.append(SentenceChange(change="new", current=new_side[j]))
            continue
        a, b = old_side[pair.prior], new_side[j]
        texts_differ = " ".join(a.text.split()) != " ".join(b.text.split())
        changes.append(
            SentenceChange(
                change="unchanged" if pair.exact else "edited",
                prior=a,
                current=b,
                similarity=None if pair.exact else round(pair.similarity, 4),
                diff=word_diff(a.text, b.text) if texts_differ else (),
                numbers=changed_numbers(a.text, b.text) if pair.exact and texts_differ else (),
                flipped=a.label is not None and b.label is not None and a.label != b.label,
                moved=a.section_key != b.section_key,
            )
        )
    changes.extend(SentenceChange(change="removed", prior=old_side[i]) for i in matching.removed)
    counts = _check_partition(changes, len(old), len(new))
    timings["changes"] = round(time.perf_counter() - t0, 4)

    t0 = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    kinds: set[str] = set(options.tone_kinds)
    whole = _shift(
        AlignedSection(
            "whole",
            "Whole document",
            None,
            "whole",
            "both",
            prior_pages=(old[0].page_no, old[-1].page_no),
            current_pages=(new[0].page_no, new[-1].page_no),
        ),
        changes,
        kinds,
        rng,
        options,
        everything=True,
    )
    members: dict[str, list[SentenceChange]] = {a.key: [] for a in alignment.sections}
    for c in changes:
        keys = {side.section_key for side in (c.prior, c.current) if side is not None}
        for key in keys:
            members[key].append(c)
    sections = [_shift(a, members[a.key], kinds, rng, options) for a in alignment.sections]
    order = {s.key: i for i, s in enumerate(sections)}
    sections.sort(
        key=lambda s: (
            not s.moved,
            -(abs(s.shift) if s.shift is not None else -1.0),
            order[s.key],
        )
    )
    timings["tone"] = round(time.perf_counter() - t0, 4)

    run_notes = list(notes)
    for s in sections:
        if s.presence != "both" and s.section_type:
            year, pages = (
                ("this year only", s.current_pages)
                if s.presence == "current_only"
                else ("last year only", s.prior_pages)
            )
            where = f" (pages {pages[0]}-{pages[1]})" if pages else ""
            run_notes.append(f"Section '{s.title}'{where} appears {year}.")
    one_side = Counter(s.presence for s in sections if not s.section_type)
    if one_side["current_only"] or one_side["prior_only"]:
        run_notes.append(
            f"{one_side['current_only']} heading(s) of this year and {one_side['prior_only']} "
            "of last year have no counterpart in the other year (see Section shifts)."
        )
    stamp = current.stamp
    return Comparison(
        prior=compared_document(prior, prior_result_id),
        current=compared_document(current, current_result_id),
        stamp=make_stamp(
            stamp.model_name, stamp.model_version, stamp.model_digest, run_id or new_run_id()
        ),
        settings={"compare": options.model_dump(mode="json")},
        counts=counts,
        whole=whole,
        sections=tuple(sections),
        changes=tuple(changes),
        notes=tuple(run_notes),
        timings={**timings, "candidates": float(matching.candidates)},
    )


def _sides(result: DocumentResult, keys: Sequence[str]) -> list[ComparedSentence]:
    scores = {s.sentence_index: s for s in result.scores}
    explanations = {e.sentence_index: e for e in result.explanations}
    out = []
    for s, key in zip(result.sentences, keys, strict=True):
        score = scores.get(s.index)
        expl = explanations.get(s.index)
        out.append(
            ComparedSentence(
                index=s.index,
                page_no=s.page_no,
                end_page_no=s.end_page_no,
                kind=s.kind,
                section=s.section,
                section_type=s.section_type,
                section_key=key,
                text=s.text,
                label=score.label if score else None,
                confidence=score.confidence if score else None,
                p_negative=score.probabilities.get("negative") if score else None,
                p_positive=score.probabilities.get("positive") if score else None,
                evidence_label=expl.label if expl else None,
                evidence_for=expl.top_for if expl else (),
                evidence_against=expl.top_against if expl else (),
            )
        )
    return out


def _check_partition(
    changes: Sequence[SentenceChange], n_prior: int, n_current: int
) -> dict[str, int]:
    """Every sentence of both documents in exactly one change; the counts add up."""
    counts = Counter(c.change for c in changes)
    seen_old = Counter(c.prior.index for c in changes if c.prior is not None)
    seen_new = Counter(c.current.index for c in changes if c.current is not None)
    twice = [f"prior {i}" for i, n in seen_old.items() if n > 1]
    twice += [f"current {i}" for i, n in seen_new.items() if n > 1]
    if (
        twice
        or len(seen_old) != n_prior
        or len(seen_new) != n_current
        or counts["unchanged"] + counts["edited"] + counts["removed"] != n_prior
        or counts["unchanged"] + counts["edited"] + counts["new"] != n_current
    ):
        raise AssertionError(
            f"comparison lost or repeated sentences: {dict(counts)}, prior {n_prior}, "
            f"current {n_current}, repeated {twice[:5]}"
        )
    return {**{k: counts.get(k, 0) for k in CHANGE_KINDS}, "prior": n_prior, "current": n_current}


def _shift(
    section: AlignedSection,
    changes: Sequence[SentenceChange],
    kinds: set[str],
    rng: np.random.Generator,
    options: CompareOptions,
    *,
    everything: bool = False,
) -> SectionShift:
    key = section.key

    def label(side: ComparedSentence | None) -> Label | None:
        if side is None or side.kind not in kinds or side.label is None:
            return None
        return side.label if everything or side.section_key == key else None

    units: list[tuple[Label | None, Label | None]] = []
    prior_labels: list[Label] = []
    current_labels: list[Label] = []
    per_change: Counter[str] = Counter()
    new_headings: list[str] = []
    removed_headings: list[str] = []
    for c in changes:
        home = c.current if c.current is not None else c.prior
        assert home is not None
        if everything or home.section_key == key:
            per_change[c.change] += 1
            if c.change == "new" and home.kind == "heading":
                new_headings.append(home.text)
            elif c.change == "removed" and home.kind == "heading":
                removed_headings.append(home.text)
        a, b = label(c.prior), label(c.current)
        if a is None and b is None:
            continue
        units.append((a, b))
        if a is not None:
            prior_labels.append(a)
        if b is not None:
            current_labels.append(b)
    prior_stats = tone_stats(prior_labels, rng, options.bootstrap)
    current_stats = tone_stats(current_labels, rng, options.bootstrap)
    shift, low, high = shift_interval(units, rng, options.bootstrap)
    enough = min(prior_stats.n, current_stats.n) >= options.min_sentences
    moved = bool(enough and low is not None and high is not None and (low > 0 or high < 0))
    return SectionShift(
        key=key,
        title=section.title,
        section_type=section.section_type,
        matched_by=section.matched_by,  # type: ignore[arg-type]
        heading_similarity=section.similarity,
        presence=section.presence,
        prior_headings=tuple(section.prior_headings),
        current_headings=tuple(section.current_headings),
        prior_pages=section.prior_pages,
        current_pages=section.current_pages,
        prior=prior_stats,
        current=current_stats,
        shift=shift,
        shift_low=low,
        shift_high=high,
        moved=moved,
        changes={k: per_change.get(k, 0) for k in CHANGE_KINDS},
        new_headings=tuple(new_headings),
        removed_headings=tuple(removed_headings),
    )
