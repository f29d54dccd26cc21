"""Like for like: a stored result scored again by the current model, from its own sentences.

Used when last year's report was scored by another model and its PDF is no longer at hand
(`app.compare.service` re-analyzes the PDF through the run service when it is). The sentences,
pages and reading errors stay as they were read; the scores are the current model's; evidence
is dropped, since it explained the other model's labels. The result says what happened in its
settings (`rescored_from`), which also gives it a settings digest of its own: the run service
never mistakes it for an analysis of the PDF.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from app.config import Settings
from app.pipeline import result_settings
from app.records import DocumentResult, Score, Sentence
from app.stamps import make_stamp, new_run_id


class Scorer(Protocol):
    """What rescoring needs of a scorer (`models.scoring.SentimentScorer`)."""

    name: str
    version: str | None
    digest: str

    def score(self, sentences: list[Sentence]) -> list[Score]: ...


def rescore_result(
    result: DocumentResult,
    scorer: Scorer,
    settings: Settings,
    *,
    result_id: int | None = None,
    run_id: str | None = None,
) -> DocumentResult:
    """The result with its sentences scored by `scorer` (see the module docstring)."""
    t0 = time.perf_counter()
    scores = scorer.score(list(result.sentences)) if result.sentences else []
    current = result_settings(settings)
    data: dict[str, Any] = {k: v for k, v in result.settings.items() if k != "rescored_from"}
    data["scoring"] = current["scoring"]
    data["explain"] = {**current["explain"], "mode": "none"}
    data["rescored_from"] = {
        "result_id": result_id,
        "model_name": result.stamp.model_name,
        "model_version": result.stamp.model_version,
        "model_digest": result.stamp.model_digest,
        "run_id": result.stamp.run_id,
        "how": "sentences",
    }
    return result.model_copy(
        update={
            "scores": tuple(scores),
            "explanations": (),
            "stamp": make_stamp(scorer.name, scorer.version, scorer.digest, run_id or new_run_id()),
            "settings": data,
            "timings": {**result.timings, "rescoring": round(time.perf_counter() - t0, 4)},
        }
    )
