"""Per-sentence SHAP evidence: which words pushed the model towards the sentence's label.

Each sentence's predicted-class probability is attributed to its whitespace words with Owen
values (shap's Partition explainer) over a clause-aware word tree. A hidden word is replaced by
one mask token per sub-token, as shap's Text masker does (with the scorer's tokenizer; without
one, a single mask token per word, which agrees less with shap). What makes it affordable for
whole reports (shap's defaults spend about 500 model calls per sentence, five at a time):

- words, not sub-tokens, are the features (fewer features, and what an auditor reads);
- the evaluation budget grows with the sentence's length (`evals_per_word`), and every word is
  reached even at two evaluations per word (see `explain.owen`);
- all sentences' masked texts go to the model together, thousands per call, sorted by length
  so padding is small (`explain.owen.play`);
- a disk cache keyed by (model digest, text, label, settings) explains repeated boilerplate
  once across documents and runs; repeats inside one call are explained once as well.

Attributions are additive: base_value + sum(values) equals output_value up to float rounding,
checked against `ADDITIVITY_TOLERANCE` for every explanation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.config import ExplainOptions
from app.errors import ExplainError
from app.records import LABELS, ExplainMethod, Explanation, Score, Sentence, WordWeight
from explain.cache import ExplanationCache, cache_key
from explain.features import SentenceFeatures, sentence_features
from explain.owen import PAIRS_PER_ROUND, OwenGame, feature_game, play
from explain.owen import evaluation_budget as _budget
from explain.words import bare_word, split_words

_log = logging.getLogger(__name__)

ALGORITHM = "partition-owen-shaptree/4"
"""Bump when a change alters the numbers, so cached explanations of older code are not reused."""
ADDITIVITY_TOLERANCE = 1e-4
"""|base + sum(values) - output| allowed, in probability units (the recursion is exact; this
leaves room for float rounding over long sentences)."""
MIN_EVIDENCE = 1e-4
"""Attributions smaller than this (probability units) are not listed as evidence."""

Mode = str


def select_for_explanation(scores: Sequence[Score], mode: Mode) -> list[int]:
    """Sentence indices to explain: none, flagged (positive and negative) or all."""
    if mode == "none":
        return []
    if mode == "all":
        return [s.sentence_index for s in scores]
    if mode == "flagged":
        return [s.sentence_index for s in scores if s.label != "neutral"]
    raise ValueError(f"unknown explain mode {mode!r}; use none, flagged or all")


def evaluation_budget(n_words: int, options: ExplainOptions) -> int:
    """Model evaluations allowed for a sentence of `n_words` words."""
    return _budget(n_words, options.evals_per_word, options.max_evals)


def scored_jobs(
    sentences: Sequence[Sentence],
    scores: Sequence[Score],
    model_digest: str,
    settings: Mapping[str, str | int | float | bool | None],
    method: str,
) -> tuple[list[tuple[Sentence, Score]], list[str]]:
    """Each sentence with its score (matched by index) and its cache key, for any method."""
    by_index = {s.sentence_index: s for s in scores}
    missing = [s.index for s in sentences if s.index not in by_index]
    if missing:
        raise ExplainError(
            f"explain: no score for sentence(s) {missing[:5]}; score sentences before "
            "explaining them."
        )
    jobs = [(s, by_index[s.index]) for s in sentences]
    keys = [cache_key(model_digest, s.text, sc.label, settings, method=method) for s, sc in jobs]
    return jobs, keys


class SentenceExplainer:
    """Explains sentences' scores with word-level SHAP (Owen) values, batched and cached."""

    method: ExplainMethod = "sampled"

    def __init__(
        self,
        predict_proba: Callable[[list[str]], np.ndarray],
        *,
        model_digest: str,
        options: ExplainOptions,
        cache_dir: Path | None = None,
        tokenizer: Any | None = None,
        mask_token: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """`tokenizer` (the scorer's) lets a hidden word show one mask token per sub-token, as
        shap's Text masker does; `max_tokens` is the scorer's truncation length (tokens past it
        never reach the model, so they are not features)."""
        self.predict_proba = predict_proba
        self.model_digest = model_digest
        self.options = options
        self.tokenizer = tokenizer if callable(tokenizer) else None
        if self.tokenizer is None:
            _log.info("explain: no tokenizer given; a hidden word shows a single mask token")
        if mask_token is None:
            own = getattr(self.tokenizer, "mask_token", None)
            explicit = "mask_token" in options.model_fields_set
            mask_token = (
                own if isinstance(own, str) and own and not explicit else options.mask_token
            )
        self.mask_token = mask_token
        self.features = "words"
        if self.tokenizer is not None and sentence_features("a", self.tokenizer, "") is not None:
            self.features = "shap-text-tree"
        # tokens past the scorer's truncation never reach the model: their values are 0, so
        # they are not features (with deletion masking the cut moves, so all tokens are)
        self.max_tokens = max_tokens if self.mask_token else None
        self.cache = (
            ExplanationCache(Path(cache_dir) / "explanations.sqlite")
            if cache_dir is not None and options.cache
            else None
        )
        self.model_calls = 0
        """Texts sent to the model by this explainer so far (for logs and benchmarks)."""
        self.note = ""
        """Why sampling, when another method was asked for (written on every Explanation)."""

    def settings(self) -> dict[str, str | int | float | bool | None]:
        """What determines the numbers; part of the cache key and of every Explanation."""
        return {
            "algorithm": ALGORITHM,
            "features": self.features,
            "max_tokens": self.max_tokens,
            "mask_token": self.mask_token,
            "mask_per": "sub-token" if self.tokenizer is not None else "word",
            "max_evals": self.options.max_evals,
            "evals_per_word": None if self.options.max_evals else self.options.evals_per_word,
            "pairs_per_round": PAIRS_PER_ROUND,
        }

    def explain(
        self,
        sentences: Sequence[Sentence],
        scores: Sequence[Score],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Explanation]:
        """One Explanation per sentence, of its score's label, in the order given.

        `scores` are matched to `sentences` by sentence index. `progress(done, total)` is told
        about sentences as their explanations finish.
        """
        settings = self.settings()
        jobs, keys = scored_jobs(sentences, scores, self.model_digest, settings, self.method)
        cached = self.cache.get_many(keys) if self.cache is not None else {}

        # one game per distinct (text, label) not in the cache
        games: dict[str, tuple[OwenGame, list[str], SentenceFeatures | None]] = {}
        for (sentence, score), key in zip(jobs, keys, strict=True):
            if key in cached or key in games:
                continue
            games[key] = self._game(sentence.text, LABELS.index(score.label))
        _log.info(
            "explain: %d sentences, %d cached, %d to explain",
            len(jobs),
            len(jobs) - sum(k not in cached for k in keys),
            len(games),
        )

        total = len(games)

        def on_round(_rounds: int, still_open: int) -> None:
            if progress:
                progress(total - still_open, total)

        self.model_calls += play(
            [g for g, _w, _f in games.values()], self._predict, on_round=on_round
        )

        fresh: dict[str, dict[str, Any]] = {}
        for key, (game, words, features) in games.items():
            fresh[key] = self._payload(game, words, features)
            self._check_additivity(fresh[key])
        if self.cache is not None and fresh:
            self.cache.put_many({k: (self.model_digest, p) for k, p in fresh.items()})

        out: list[Explanation] = []
        for (sentence, score), key in zip(jobs, keys, strict=True):
            payload = cached.get(key) or fresh[key]
            out.append(self._record(sentence, score, payload, cached=key in cached))
        return out

    def _game(self, text: str, column: int) -> tuple[OwenGame, list[str], SentenceFeatures | None]:
        """The Owen game of one sentence: over shap's token tree when the tokenizer allows."""
        words = [text[a:b] for a, b in split_words(text)]
        budget = evaluation_budget(len(words), self.options)
        if self.features == "shap-text-tree":
            made = feature_game(
                text,
                column,
                budget,
                self.tokenizer,
                self.mask_token,
                max_tokens=self.max_tokens,
                pairs_per_round=PAIRS_PER_ROUND,
            )
            if made is not None:
                return made[0], words, made[1]
        pieces = None
        if self.tokenizer is not None and words:
            pieces = [
                max(1, len(x)) for x in self.tokenizer(words, add_special_tokens=False)["input_ids"]
            ]
        return (
            OwenGame.of_words(
                words,
                column,
                budget,
                mask_token=self.mask_token,
                pieces=pieces,
                pairs_per_round=PAIRS_PER_ROUND,
            ),
            words,
            None,
        )

    def _predict(self, texts: list[str]) -> np.ndarray:
        try:
            probs = np.asarray(self.predict_proba(texts), dtype=float)
        except Exception as e:  # the scorer's failure, translated at this boundary
            raise ExplainError(
                f"explain: the model failed on masked sentences ({type(e).__name__}: {e}). "
                "The scores stand; rerun with --explain none to skip evidence."
            ) from e
        if probs.shape != (len(texts), len(LABELS)) or not np.all(np.isfinite(probs)):
            raise ExplainError(
                f"explain: predict_proba returned shape {probs.shape} (or non-finite values) "
                f"for {len(texts)} texts; expected ({len(texts)}, {len(LABELS)}) probabilities "
                f"in the order {', '.join(LABELS)}."
            )
        return probs

    @staticmethod
    def _payload(
        game: OwenGame, words: list[str], features: SentenceFeatures | None
    ) -> dict[str, Any]:
        values = game.values() if features is None else features.word_values(game.values())
        played = game.m > 0
        return {
            "words": list(words),
            "values": [float(v) for v in values],
            # a sentence with nothing to hide (no word the model sees) is its own base
            "base_value": game.base_value if played else None,
            "output_value": game.output_value if played else None,
            "budget": game.budget,
            "evals": game.evals,
        }

    @staticmethod
    def _check_additivity(payload: dict[str, Any]) -> None:
        error = abs(payload["base_value"] + sum(payload["values"]) - payload["output_value"])
        if error > ADDITIVITY_TOLERANCE:
            # the recursion is exact, so this is a bug, not a property of the model
            raise ExplainError(
                f"explain: attributions do not add up (error {error:.2e} > "
                f"{ADDITIVITY_TOLERANCE:g}) for {' '.join(payload['words'])[:80]!r}."
            )

    def _record(
        self, sentence: Sentence, score: Score, payload: dict[str, Any], *, cached: bool
    ) -> Explanation:
        settings = dict(self.settings())
        settings.update(
            budget=payload.get("budget", 0),
            evals=payload.get("evals", 0),
            additivity_tolerance=ADDITIVITY_TOLERANCE,
            top_k=self.options.top_k,
        )
        return build_explanation(
            sentence,
            score,
            payload,
            settings=settings,
            top_k=self.options.top_k,
            model_digest=self.model_digest,
            cached=cached,
            method=self.method,
            note=self.note,
        )


def build_explanation(
    sentence: Sentence,
    score: Score,
    payload: dict[str, Any],
    *,
    settings: dict[str, str | int | float | bool | None],
    top_k: int,
    model_digest: str,
    cached: bool,
    method: ExplainMethod,
    fidelity: dict[str, str | int | float | bool | None] | None = None,
    note: str = "",
) -> Explanation:
    """The Explanation record of one sentence from a payload (words, values, base, output),
    whichever method made the values: the same evidence words and additivity figure for all."""
    words, values = payload["words"], payload["values"]
    if payload["base_value"] is None or payload["output_value"] is None:
        # nothing the model sees can be hidden: the whole output is the base
        prob = float(score.probabilities.get(score.label, 0.0))
        base, output = prob, prob
    else:
        base, output = float(payload["base_value"]), float(payload["output_value"])
    top_for, top_against = top_evidence(words, values, top_k)
    return Explanation(
        sentence_index=sentence.index,
        label=score.label,
        words=tuple(words),
        values=tuple(values),
        base_value=base,
        output_value=output,
        additivity_error=abs(base + float(sum(values)) - output),
        top_for=top_for,
        top_against=top_against,
        settings=settings,
        model_digest=model_digest,
        cached=cached,
        method=method,
        fidelity=dict(fidelity or {}),
        note=note,
    )


def top_evidence(
    words: Sequence[str], values: Sequence[float], top_k: int
) -> tuple[tuple[WordWeight, ...], tuple[WordWeight, ...]]:
    """The strongest words for (positive weight) and against (negative) the label."""
    ranked = sorted(
        (
            (bare_word(w), float(v))
            for w, v in zip(words, values, strict=True)
            if bare_word(w) and abs(v) >= MIN_EVIDENCE
        ),
        key=lambda wv: -abs(wv[1]),
    )
    pro = tuple(WordWeight(word=w, weight=v) for w, v in ranked if v > 0)[:top_k]
    con = tuple(WordWeight(word=w, weight=v) for w, v in ranked if v < 0)[:top_k]
    return pro, con
