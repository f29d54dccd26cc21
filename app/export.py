"""The JSON form of a DocumentResult: the stamp at the top and on every sentence record."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from app.ocr_report import ocr_report
from app.records import LABELS, DocumentResult, Explanation, Score
from explain.render import evidence_text


def label_counts(scores: tuple[Score, ...] | list[Score]) -> dict[str, int]:
    """How many sentences got each label, in LABELS order."""
    counts: Counter[str] = Counter(s.label for s in scores)
    return {label: counts.get(label, 0) for label in LABELS}


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
    counts = label_counts(result.scores)
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
