"""What an auditor reads first in a comparison: new negative disclosures, negative ones that
disappeared, and pairs whose label flipped.

- New negatives: sentences new this year that the model calls negative, and edited sentences
  that became negative (were positive or neutral last year), most confident first. An edited
  sentence that was negative already is an edit of a known disclosure: it is on the Edited
  list, not here.
- Removed negatives: last year's negative sentences with no counterpart this year (a risk that
  disappeared, or was moved beyond recognition), most confident first.
- Flipped: pairs (edited, or unchanged with new figures) whose label changed; those that turned
  negative first, then by how far P(negative) moved.

Headings are never findings (`CompareOptions.tone_kinds` says which kinds count).
"""

from __future__ import annotations

from app.records import ComparedSentence, Comparison, SentenceChange

DEFAULT_KINDS = ("sentence", "list_item")


def _kinds(comparison: Comparison) -> set[str]:
    options = comparison.settings.get("compare") or {}
    kinds = options.get("tone_kinds") if isinstance(options, dict) else None
    return set(kinds or DEFAULT_KINDS)


def _counts(side: ComparedSentence | None, kinds: set[str]) -> bool:
    return side is not None and side.kind in kinds


def new_negatives(comparison: Comparison) -> list[SentenceChange]:
    """New sentences that are negative and edits that turned negative, most confident first."""
    kinds = _kinds(comparison)
    found = [
        c
        for c in comparison.changes
        if _counts(c.current, kinds)
        and c.current is not None
        and c.current.label == "negative"
        and (
            c.change == "new"
            or (c.change == "edited" and c.prior is not None and c.prior.label != "negative")
        )
    ]
    return sorted(found, key=lambda c: (-(c.current.p_negative or 0.0), c.current.index))  # type: ignore[union-attr]


def removed_negatives(comparison: Comparison) -> list[SentenceChange]:
    """Last year's negative sentences with no counterpart this year, most confident first."""
    kinds = _kinds(comparison)
    found = [
        c
        for c in comparison.changes
        if c.change == "removed"
        and _counts(c.prior, kinds)
        and c.prior is not None
        and c.prior.label == "negative"
    ]
    return sorted(found, key=lambda c: (-(c.prior.p_negative or 0.0), c.prior.index))  # type: ignore[union-attr]


def flipped(comparison: Comparison) -> list[SentenceChange]:
    """Pairs whose label changed: those that turned negative first, then by the P(negative) move."""
    kinds = _kinds(comparison)
    found = [c for c in comparison.changes if c.flipped and _counts(c.current, kinds)]

    def key(c: SentenceChange) -> tuple[bool, float, int]:
        assert c.prior is not None and c.current is not None
        move = abs((c.current.p_negative or 0.0) - (c.prior.p_negative or 0.0))
        return (c.current.label != "negative", -move, c.current.index)

    return sorted(found, key=key)


def edited(comparison: Comparison) -> list[SentenceChange]:
    """Edited pairs: flipped labels first, then the least similar (the biggest edits)."""
    found = [c for c in comparison.changes if c.change == "edited"]
    return sorted(
        found,
        key=lambda c: (not c.flipped, c.similarity or 0.0, c.current.index if c.current else 0),
    )


def numbers_changed(comparison: Comparison) -> list[SentenceChange]:
    """Unchanged pairs whose figures changed (the numbers shown), in this year's order."""
    return [c for c in comparison.changes if c.change == "unchanged" and c.numbers]
