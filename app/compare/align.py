"""Sections aligned between two years: by section type where the heading is recognised, by
heading text (exact, then fuzzy) for the rest.

A sentence belongs to the section its `section_type` names (`classify_section` in
`app.sentences`: risk_factors, management_discussion, going_concern, auditors_report, ...),
which carries over the subsections of a 10-K Item; a sentence under a heading of no recognised
type belongs to that heading. Types align by name. Headings align when their words (numbering
and Item prefixes left out) are equal, then one to one by token-sort similarity at or above
`CompareOptions.heading_similarity`, most similar first: "Liquidity and Capital Resources"
meets "Capital Resources and Liquidity", "Results of Operations - 2020 compared with 2019"
meets its 2019 counterpart. What stays unmatched is a section present in one year only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from app.compare.text import heading_key
from app.records import Presence, Sentence

BEFORE_FIRST_HEADING = "(before the first heading)"


@dataclass(slots=True)
class _Group:
    """The sentences of one year under one raw section key."""

    key: str
    title: str
    section_type: str | None
    headings: list[str] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)


@dataclass(slots=True)
class AlignedSection:
    """One section of the comparison and the raw groups of each year that make it."""

    key: str
    title: str
    section_type: str | None
    matched_by: str
    presence: Presence
    similarity: float | None = None
    prior_headings: list[str] = field(default_factory=list)
    current_headings: list[str] = field(default_factory=list)
    prior_pages: tuple[int, int] | None = None
    current_pages: tuple[int, int] | None = None


@dataclass(slots=True)
class Alignment:
    """Each sentence's aligned section key, per year, and the sections in reading order."""

    prior_keys: list[str]
    current_keys: list[str]
    sections: list[AlignedSection]


def raw_key(sentence: Sentence) -> str:
    """A sentence's section within its own year: its type, else its heading's words."""
    if sentence.section_type:
        return f"type:{sentence.section_type}"
    return f"heading:{heading_key(sentence.section)}"


def _groups(sentences: Sequence[Sentence]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for s in sentences:
        key = raw_key(s)
        group = groups.get(key)
        if group is None:
            if s.section_type:
                title = s.section_type.replace("_", " ").capitalize()
            else:
                title = s.section or BEFORE_FIRST_HEADING
            group = groups[key] = _Group(key, title, s.section_type)
        if s.section and s.section not in group.headings:
            group.headings.append(s.section)
        group.indexes.append(s.index)
        group.pages.append(s.page_no)
    return groups


def _span(pages: list[int]) -> tuple[int, int] | None:
    return (min(pages), max(pages)) if pages else None


def align_sections(
    prior: Sequence[Sentence], current: Sequence[Sentence], heading_similarity: float
) -> Alignment:
    """Align the sections of two years; every sentence gets the key of its aligned section."""
    old, new = _groups(prior), _groups(current)
    mapping_old: dict[str, str] = {}
    mapping_new: dict[str, str] = {}
    sections: dict[str, AlignedSection] = {}

    def both(k_old: str, k_new: str, how: str, sim: float | None) -> None:
        g_old, g_new = old[k_old], new[k_new]
        mapping_old[k_old] = mapping_new[k_new] = k_new
        sections[k_new] = AlignedSection(
            k_new,
            g_new.title,
            g_new.section_type,
            how,
            "both",
            sim,
            g_old.headings,
            g_new.headings,
            _span(g_old.pages),
            _span(g_new.pages),
        )

    for key in new:
        if key in old:
            both(key, key, "type" if key.startswith("type:") else "heading", None)
    left_old = [k for k in old if k not in mapping_old and k.startswith("heading:") and k[8:]]
    left_new = [k for k in new if k not in mapping_new and k.startswith("heading:") and k[8:]]
    if left_old and left_new:
        cutoff = heading_similarity * 100
        scores = process.cdist(
            [k[8:] for k in left_old],
            [k[8:] for k in left_new],
            scorer=fuzz.token_sort_ratio,
            score_cutoff=cutoff,
            dtype=np.float32,
        )
        rows, cols = (x.tolist() for x in np.nonzero(scores))
        # Most similar first; ties in reading order of the current year, then the prior.
        order = sorted(zip(rows, cols, strict=True), key=lambda rc: (-scores[rc], rc[1], rc[0]))
        taken_old: set[int] = set()
        taken_new: set[int] = set()
        for r, c in order:
            if r in taken_old or c in taken_new:
                continue
            taken_old.add(r)
            taken_new.add(c)
            both(left_old[r], left_new[c], "fuzzy_heading", round(float(scores[r, c]) / 100, 3))
    for key, g in new.items():
        if key not in mapping_new:
            mapping_new[key] = key
            sections[key] = AlignedSection(
                key,
                g.title,
                g.section_type,
                "unmatched",
                "current_only",
                current_headings=g.headings,
                current_pages=_span(g.pages),
            )
    for key, g in old.items():
        if key not in mapping_old:
            mapping_old[key] = key
            sections[key] = AlignedSection(
                key,
                g.title,
                g.section_type,
                "unmatched",
                "prior_only",
                prior_headings=g.headings,
                prior_pages=_span(g.pages),
            )
    return Alignment(
        [mapping_old[raw_key(s)] for s in prior],
        [mapping_new[raw_key(s)] for s in current],
        list(sections.values()),
    )
