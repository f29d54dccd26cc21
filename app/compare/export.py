"""The JSON form of a Comparison: the stamp (model, both input digests) at the top and on every
change, the findings first, then every sentence change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.compare.findings import flipped, new_negatives, removed_negatives
from app.compare.text import diff_text
from app.records import Comparison, SentenceChange


def _finding(position: dict[int, int], c: SentenceChange) -> dict[str, Any]:
    side = c.current if c.current is not None else c.prior
    assert side is not None
    return {
        "change_position": position[id(c)],
        "change": c.change,
        "text": side.text,
        "label": side.label,
        "p_negative": side.p_negative,
        "page_current": c.current.page_no if c.current else None,
        "page_prior": c.prior.page_no if c.prior else None,
        "section": side.section,
        "section_key": side.section_key,
        "prior_label": c.prior.label if c.prior else None,
        "current_label": c.current.label if c.current else None,
        "diff_text": diff_text(c.diff) if c.diff else None,
        "evidence": [w.model_dump() for w in side.evidence_for],
    }


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    """A JSON-ready dict: stamp and documents first, findings, sections, then every change."""
    stamp = comparison.stamp_fields()
    position = {id(c): i for i, c in enumerate(comparison.changes)}
    changes = []
    for c in comparison.changes:
        row = c.model_dump(mode="json", exclude_defaults=True)
        row["diff_text"] = diff_text(c.diff) if c.diff else None
        row["stamp"] = stamp
        changes.append(row)
    return {
        "stamp": stamp,
        "prior_sha256": comparison.prior.doc_id,
        "current_sha256": comparison.current.doc_id,
        "prior": comparison.prior.model_dump(mode="json"),
        "current": comparison.current.model_dump(mode="json"),
        "counts": comparison.counts,
        "notes": list(comparison.notes),
        "findings": {
            "new_negatives": [_finding(position, c) for c in new_negatives(comparison)],
            "removed_negatives": [_finding(position, c) for c in removed_negatives(comparison)],
            "flipped": [_finding(position, c) for c in flipped(comparison)],
        },
        "whole": comparison.whole.model_dump(mode="json"),
        "sections": [s.model_dump(mode="json") for s in comparison.sections],
        "settings": comparison.settings,
        "timings": comparison.timings,
        "changes": changes,
    }


def write_comparison_json(comparison: Comparison, path: Path) -> Path:
    """Write the comparison's JSON form to `path` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps(comparison_to_json(comparison), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    tmp.replace(path)
    return path
