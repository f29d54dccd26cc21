"""One document end to end: read, split, score, explain, stamp.

`Analyzer` holds what is expensive to build (the scorer, the spaCy pipeline, the explainer) so
that the CLI, each Ray actor and the Streamlit app load the model once and analyze many
documents. `analyze_document` is the one-call form for a single file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Settings, load_settings
from app.errors import OnError, SesameError
from app.ingest import default_name, link_sentences, read_document
from app.records import (
    TONE_KINDS,
    DocumentResult,
    Explanation,
    Page,
    Score,
    Sentence,
    Stage,
    StageError,
    Stamp,
    document_status,
    settings_digest,
)
from app.sentences import make_nlp, split_sentences
from app.stamps import make_stamp, new_run_id
from explain.service import AmortizedExplainer, ExplainerChoice, explainer_choice
from explain.shap_explainer import SentenceExplainer, select_for_explanation
from models.registry import ResolvedModel, resolve_model
from models.scoring import SentimentScorer

if TYPE_CHECKING:
    from spacy.language import Language

_log = logging.getLogger(__name__)

ProgressHook = Callable[[str], None]
"""Called with a stage name as a document moves through the pipeline (for progress bars)."""


def result_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape a result, as plain JSON data. Settings that cannot change the
    output stay out: the password (it opens a file or not; a file that stays locked fails, and
    that failure is analyzed again next time, see app.runs), OCR's and scoring's thread counts."""
    return {
        # OCR's thread count changes the speed, never the words read
        "ingest": settings.ingest.model_dump(mode="json", exclude={"password", "ocr_workers"}),
        "sentences": settings.sentences.model_dump(mode="json"),
        "scoring": settings.scoring.model_dump(mode="json", exclude={"threads"}),
        "explain": settings.explain.model_dump(mode="json"),
    }


Explainer = SentenceExplainer | AmortizedExplainer
"""What explains a document's scores: sampled Owen values or the model's amortized explainer."""


def make_explainer(settings: Settings, scorer: SentimentScorer) -> Explainer:
    """The SHAP explainer of a scorer: the settings' method and budget, the shared disk cache.

    `explain.method` sampled: sampled Owen values. auto: the model's amortized explainer when
    its directory ships a blessed one for these weights (`explainer_choice`), else sampled;
    amortized: the same, but one its gate did not bless is served too, and a fallback is a
    warning. The reason is the explainer's `note`, written on every Explanation it makes.
    """
    sampled = SentenceExplainer(
        scorer.predict_proba,
        model_digest=scorer.digest,
        options=settings.explain,
        tokenizer=scorer.tokenizer,
        max_tokens=scorer.max_length,
        cache_dir=settings.data_dir / "explain-cache" if settings.explain.cache else None,
    )
    requested = settings.explain.method
    choice = explainer_choice(scorer.path, scorer.digest, requested)
    if choice.method == "amortized":
        try:
            amortized = AmortizedExplainer.load(choice, sampled)
        except Exception as e:  # a damaged folder or one this transformers cannot read
            why = f"the shipped explainer cannot be loaded ({type(e).__name__}: {e})"
            if requested == "amortized":
                why = f"an amortized explainer was asked for, but {why}"
            choice = ExplainerChoice("sampled", f"{why}; evidence is sampled instead")
        else:
            # asked for by name while its gate did not bless it: the verdict is the note
            amortized.note = choice.reason
            if choice.reason:
                _log.warning("explain (%s): %s", scorer.name, choice.reason)
            return amortized
    sampled.note = choice.reason
    if choice.reason:
        log = _log.warning if requested == "amortized" else _log.info
        log("explain (%s): %s", scorer.name, choice.reason)
    return sampled


class Analyzer:
    """Loaded models and settings; analyzes one document at a time (never raises in record mode)."""

    def __init__(
        self,
        settings: Settings,
        scorer: SentimentScorer,
        nlp: Language,
        explainer: Explainer | None,
        model: ResolvedModel | None = None,
    ) -> None:
        self.settings = settings
        self.scorer = scorer
        self.nlp = nlp
        self.explainer = explainer
        self.model = model
        self.settings_data = result_settings(settings)
        self.settings_digest = settings_digest(self.settings_data)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Analyzer:
        """Resolve the model (registry champion or a local directory) and build every stage."""

        settings = settings or load_settings()
        settings.ensure_dirs()
        model = resolve_model(settings)
        scorer = SentimentScorer.from_dir(
            model.path,
            settings.scoring,
            name=model.name,
            version=model.version,
            expected_digest=model.digest,
        )
        explainer = make_explainer(settings, scorer) if settings.explain.mode != "none" else None
        return cls(settings, scorer, make_nlp(settings.sentences), explainer, model)

    def stamp(self, run_id: str) -> Stamp:
        """The stamp every output of this run carries."""
        return make_stamp(self.scorer.name, self.scorer.version, self.scorer.digest, run_id)

    def analyze(
        self,
        source: Path | bytes,
        *,
        file_name: str | None = None,
        run_id: str | None = None,
        client: str | None = None,
        engagement: str | None = None,
        page_range: tuple[int, int] | None = None,
        on_error: OnError = "record",
        progress: ProgressHook | None = None,
    ) -> DocumentResult:
        """Read, split, score and explain one report (PDF, HTML/XHTML filing or ESEF package);
        every problem becomes a StageError."""

        run_id = run_id or new_run_id()
        name = file_name or default_name(source)
        errors: list[StageError] = []
        timings: dict[str, float] = {}
        pages: list[Page] = []
        sentences: list[Sentence] = []
        scores: list[Score] = []
        explanations: list[Explanation] = []

        def step(stage: Stage) -> _Step:
            if progress:
                progress(stage)
            return _Step(stage, errors, timings, on_error)

        with step("ingest") as s:
            document, pages, ingest_errors = read_document(
                source,
                self.settings.ingest,
                file_name=name,
                page_range=page_range,
                on_error=on_error,
            )
            errors.extend(ingest_errors)
        fatal = not s.ok or any(e.fatal for e in errors)

        if not fatal:
            with step("sentences") as s:
                sentences = split_sentences(pages, self.settings.sentences, self.nlp)
                # HTML filings: each sentence's place in the markup and its tagged facts
                sentences = link_sentences(sentences, pages)
            fatal = not s.ok
            if s.ok and not sentences and not errors:
                errors.append(
                    StageError(
                        stage="sentences",
                        code="no_sentences",
                        message=f"{name}: the text layer holds no sentences (only tables, numbers "
                        "or images?). Check the PDF; it may need OCR.",
                    )
                )

        if not fatal and sentences:
            with step("scoring") as s:
                scores = self.scorer.score(sentences)
            fatal = not s.ok

        if not fatal and scores and self.explainer is not None:
            with step("explain") as s:
                # SHAP (the costly step) only for units that count in the tone: headings,
                # table rows and page furniture are scored and shown, not explained
                counted = {x.index for x in sentences if x.kind in TONE_KINDS}
                chosen = set(
                    select_for_explanation(
                        [x for x in scores if x.sentence_index in counted],
                        self.settings.explain.mode,
                    )
                )
                explanations = self.explainer.explain(
                    [x for x in sentences if x.index in chosen],
                    [x for x in scores if x.sentence_index in chosen],
                )

        if fatal and not any(e.fatal for e in errors):
            errors.append(
                StageError(
                    stage="ingest",
                    code="aborted",
                    fatal=True,
                    message=f"{name}: analysis stopped; see the errors above.",
                )
            )
        if progress:
            progress("done")
        return DocumentResult(
            source=name,
            document=document,
            status=document_status(errors),
            pages=tuple(pages),
            sentences=tuple(sentences),
            scores=tuple(scores) if not fatal else (),
            explanations=tuple(explanations),
            errors=tuple(errors),
            stamp=self.stamp(run_id),
            settings=self.settings_data,
            timings=timings,
            client=client,
            engagement=engagement,
        )


class _Step:
    """Times a stage and turns its exceptions into StageErrors (or re-raises in raise mode)."""

    def __init__(
        self, stage: Stage, errors: list[StageError], timings: dict[str, float], on_error: OnError
    ) -> None:
        self.stage, self.errors, self.timings, self.on_error = stage, errors, timings, on_error
        self.ok = True

    def __enter__(self) -> _Step:
        self.t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        self.timings[self.stage] = round(time.perf_counter() - self.t0, 4)
        if exc is None:
            return False
        if self.on_error == "raise" or not isinstance(exc, Exception):
            return False
        self.ok = False
        if isinstance(exc, SesameError):
            self.errors.append(exc.to_record())
        else:
            _log.exception("stage %s failed", self.stage)
            fatal = self.stage != "explain"
            self.errors.append(
                StageError(
                    stage=self.stage,
                    code="internal",
                    fatal=fatal,
                    message=f"{self.stage} failed unexpectedly: {type(exc).__name__}: {exc}. "
                    "This is a sesame bug; please report it with the file.",
                )
            )
            if not fatal:
                self.ok = True  # explanations are optional; the scores stand
        return True


def analyze_document(
    source: Path | bytes,
    settings: Settings | None = None,
    *,
    on_error: OnError = "record",
    analyzer: Analyzer | None = None,
    **kwargs: Any,
) -> DocumentResult:
    """Analyze one report end to end (builds an Analyzer unless one is given)."""
    analyzer = analyzer or Analyzer.from_settings(settings)
    return analyzer.analyze(source, on_error=on_error, **kwargs)
