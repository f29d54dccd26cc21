"""The JSON form of a DocumentResult: the stamp at the top and on every sentence record."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from app.ocr_report import ocr_report
from app.records import LABELS, TONE_KINDS, DocumentResult, Explanation, Score, Sentence
from explain.render import evidence_text, method_line


def label_counts(scores: tuple[Score, ...] | list[Score]) -> dict[str, int]:
    """How many sentences got each label, in LABELS order."""
    counts: Counter[str] = Counter(s.label for s in scores)
    return {label: counts.get(label, 0) for label in LABELS}


def counts_in_tone(sentence: Sentence) -> bool:
    """Whether a unit counts in label shares, tone and "most negative": sentences and list
    items do; headings, table rows and page furniture are shown and scored but not counted."""
    return sentence.kind in TONE_KINDS


def tone_scores(result: DocumentResult) -> list[Score]:
    """The scores that count in label shares and tone (`counts_in_tone`)."""
    counted = {s.index for s in result.sentences if counts_in_tone(s)}
    return [s for s in result.scores if s.sentence_index in counted]


_NOT_COUNTED = (
    ("heading", "heading", "headings"),
    ("table_row", "table row", "table rows"),
    ("furniture", "line of page furniture", "lines of page furniture"),
)


def not_counted(result: DocumentResult) -> list[tuple[str, int]]:
    """The units shown but kept out of the tone, per kind, in a fixed order:
    `[("2 headings", 2), ("1 table row", 1)]`; kinds absent from the result are left out."""
    counts: Counter[str] = Counter(s.kind for s in result.sentences if not counts_in_tone(s))
    out = []
    for kind, one, many in _NOT_COUNTED:
        if counts.get(kind):
            out.append((f"{counts[kind]:,} {one if counts[kind] == 1 else many}", counts[kind]))
    return out


def tone_index(counts: dict[str, int]) -> float | None:
    """(positive - negative) / all scored sentences, in [-1, 1]; None with no sentences."""
    total = sum(counts.values())
    if not total:
        return None
    return (counts.get("positive", 0) - counts.get("negative", 0)) / total


def result_to_json(result: DocumentResult) -> dict[str, Any]:
    """A JSON-ready dict: stamp and document first, then one flat record per sentence."""
    stamp = result.stamp.fields()
    doc_sha = result.doc_id
    scores = {s.sentence_index: s for s in result.scores}
    explanations: dict[int, Explanation] = {e.sentence_index: e for e in result.explanations}
    counts = label_counts(tone_scores(result))
    sentences = []
    for sentence in result.sentences:
        score = scores.get(sentence.index)
        expl = explanations.get(sentence.index)
        # a PDF's sentences have no anchor and no facts: left out, their JSON stays as it was
        bare = {k for k in ("anchor", "facts") if not getattr(sentence, k)}
        record: dict[str, Any] = {
            "doc_sha256": doc_sha,
            **sentence.model_dump(mode="json", exclude={"doc_id", *bare}),
            "label": score.label if score else None,
            "probabilities": score.probabilities if score else None,
            "confidence": score.confidence if score else None,
            "explanation": expl.model_dump(mode="json", exclude={"sentence_index"})
            if expl
            else None,
            "evidence": evidence_text(expl) if expl else None,
            "evidence_method": method_line(expl) if expl else None,
            "stamp": stamp,
        }
        sentences.append(record)
    return {
        "stamp": stamp,
        "input_sha256": doc_sha,
        "source": result.source,
        "client": result.client,
        "engagement": result.engagement,
        "status": result.status,
        "document": result.document.model_dump(mode="json") if result.document else None,
        "pages": [
            {
                "page_no": p.page_no,
                "width": p.width,
                "height": p.height,
                "rotation": p.rotation,
                "status": p.status,
                "chars": len(p.text),
                **({"label": p.label} if p.label is not None else {}),
                **({"facts": len(p.facts)} if p.facts else {}),
                "ocr": p.ocr,
                "ocr_confidence": p.ocr_confidence,
                "ocr_language": p.ocr_language,
            }
            for p in result.pages
        ],
        "ocr": ocr_report(result),
        "errors": [e.model_dump(mode="json") for e in result.errors],
        "summary": {
            "sentences": len(result.sentences),
            "scored": len(result.scores),
            "explained": len(result.explanations),
            "labels": counts,
            "tone_index": tone_index(counts),
            "kinds": dict(Counter(s.kind for s in result.sentences)),
            **(
                {"facts_in_sentences": n_facts}
                if (n_facts := sum(len(s.facts) for s in result.sentences))
                else {}
            ),
        },
        "settings": result.settings,
        "timings": result.timings,
        "sentences": sentences,
    }


def write_json(result: DocumentResult, path: Path) -> Path:
    """Write the result's JSON form to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(result_to_json(result), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return path
