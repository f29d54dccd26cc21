"""Evidence from the model's amortized explainer, and the rule for when it may be used.

A model directory may ship an explainer (`explain.amortized`) in `<model dir>/explainer/`:
`explainer.safetensors`, `config.json` and `explainer.json`, written by the training step. Its
record (`explainer.json`) holds at least `format`, `n_classes`, `max_length`, `scorer_sha256`
(the weights digest of the scorer it was trained to explain), `blessed` (set by its fidelity
gate), `fidelity` (spearman, top1, top3, sign, n_sentences, reference, set) and `gate` (floors,
passed, failures). It is used only when its format is this code's, it is blessed and it was
built for exactly the scorer's weights (`explainer_choice`); otherwise evidence is sampled, and
the reason travels on every Explanation (`Explanation.note`) and in the run's summary.

`AmortizedExplainer` has the sampled explainer's `explain()` interface and record builder: one
explainer pass over all of a document's sentences, the base value the scorer's output on the
fully masked sentence exactly as the sampled game renders it (`SentenceFeatures.render` with
every feature hidden), the output the scorer's probability of the label, and the values shifted
to add up exactly (`amortized.additive`) over the words the model sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.digests import sha256_files
from app.errors import ExplainError
from app.records import LABELS, ExplainMethod, Explanation, Score, Sentence
from explain.amortized import (
    EXPLAINER_DIR,
    FORMAT,
    META_FILE,
    WEIGHTS_FILE,
    Explainer,
    additive,
    read_meta,
)
from explain.features import sentence_features
from explain.render import FidelityValue, fidelity_figures, method_phrase
from explain.shap_explainer import (
    ADDITIVITY_TOLERANCE,
    SentenceExplainer,
    build_explanation,
    scored_jobs,
)

_log = logging.getLogger(__name__)

ALGORITHM = "amortized-explainer/1"
"""Bump when a change alters the numbers, so cached explanations of older code are not reused."""
Requested = str
"""auto, sampled or amortized (ExplainOptions.method)."""


@dataclass(frozen=True)
class ExplainerChoice:
    """Which method explains a model's scores, and why when it is not the one asked for."""

    method: ExplainMethod
    reason: str = ""
    """Empty when the method is what was asked for (or auto found a usable explainer)."""
    folder: Path | None = None
    """The explainer's folder, for `amortized`."""
    meta: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One line for the console and the run summary."""
        how = (
            method_phrase("amortized", fidelity_of(self.meta))
            if self.method == "amortized"
            else "sampled Owen values"
        )
        return f"SHAP evidence: {how}" + (f" ({self.reason})" if self.reason else "")


def explainer_choice(
    model_dir: Path | None, scorer_digest: str, requested: Requested
) -> ExplainerChoice:
    """The method for a scorer whose model lives in `model_dir` (reads only the record).

    sampled: always sampled. auto: amortized when the model ships a blessed explainer of these
    weights, else sampled with the reason. amortized: as auto, but an explainer its gate did
    not bless is served too, with the verdict as the reason (the user chose speed knowingly).
    """
    if requested == "sampled":
        return ExplainerChoice("sampled")
    asked = "an amortized explainer was asked for, but " if requested == "amortized" else ""

    def fallback(why: str) -> ExplainerChoice:
        return ExplainerChoice("sampled", f"{asked}{why}; evidence is sampled instead")

    if model_dir is None:
        return fallback("the model's directory is not known")
    folder = Path(model_dir) / EXPLAINER_DIR
    meta = read_meta(Path(model_dir))
    if meta is None:
        if (folder / META_FILE).is_file():
            return fallback(f"the explainer record {folder / META_FILE} cannot be read")
        return fallback("no amortized explainer is shipped with this model")
    if meta.get("format") != FORMAT:
        return fallback(
            f"the shipped explainer has format {meta.get('format')!r}; this sesame reads {FORMAT}"
        )
    built_for = str(meta.get("scorer_sha256") or "")
    if built_for != scorer_digest:
        return fallback(
            "the shipped explainer was built for other weights (sha256 "
            f"{built_for[:12] or 'not recorded'}…, the model's are {scorer_digest[:12]}…)"
        )
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / "config.json").is_file():
        return fallback(f"the explainer's weights or config are missing from {folder}")
    if meta.get("blessed") is not True:
        verdict = f"the shipped explainer was not blessed by its fidelity gate ({_gate(meta)})"
        if requested == "amortized":
            # asked for by name: served, its fidelity and the gate's verdict on every record
            return ExplainerChoice(
                "amortized", f"{verdict}; used because it was asked for", folder, meta
            )
        return fallback(verdict)
    return ExplainerChoice("amortized", folder=folder, meta=meta)


def _gate(meta: dict[str, Any]) -> str:
    """The gate's verdict in words: its failures, else the measured figures."""
    gate = meta.get("gate")
    failures = gate.get("failures") if isinstance(gate, dict) else None
    if isinstance(failures, list | tuple) and failures:
        return "; ".join(str(f) for f in failures)
    figures = fidelity_figures(fidelity_of(meta))
    return figures or "no fidelity measured"


def fidelity_of(meta: dict[str, Any]) -> dict[str, FidelityValue]:
    """The explainer's fidelity figures as an Explanation carries them (scalars only)."""
    raw = meta.get("fidelity")
    out: dict[str, FidelityValue] = {}
    if isinstance(raw, dict):
        for k, v in raw.items():
            if v is None or isinstance(v, str | int | float | bool):
                out[str(k)] = v
            elif k == "set" and isinstance(v, dict) and v.get("name"):
                # the training step records the set itself; records carry its name in words
                out["set"] = f"held-out report sentences ({v['name']})"
    out["blessed"] = meta.get("blessed") is True
    return out


class AmortizedExplainer:
    """Explains sentences' scores with the model's explainer network: one pass per sentence.

    Built on the sampled explainer of the same scorer (`sampled`): its mask token, truncation,
    model boundary, disk cache and record builder are reused, so the two differ only in how the
    word values are found; it also serves sampling on demand (the review screen).
    """

    method: ExplainMethod = "amortized"

    def __init__(
        self,
        network: Explainer,
        sampled: SentenceExplainer,
        *,
        meta: dict[str, Any],
        explainer_digest: str,
        batch_size: int = 64,
    ) -> None:
        if sampled.tokenizer is None or sampled.features != "shap-text-tree":
            raise ExplainError(
                "explain: the amortized explainer needs the scorer's fast tokenizer (with "
                "offsets); explain with --explain-method sampled."
            )
        self.network = network
        self.sampled = sampled
        self.meta = meta
        self.explainer_digest = explainer_digest
        self.batch_size = batch_size
        self.model_digest = sampled.model_digest
        self.options = sampled.options
        self.fidelity = fidelity_of(meta)
        self.note = ""
        self._base: dict[str, np.ndarray] = {}
        """Scorer outputs on fully masked sentences, by masked text (boilerplate repeats)."""
        self.model_calls = 0

    @classmethod
    def load(cls, choice: ExplainerChoice, sampled: SentenceExplainer) -> AmortizedExplainer:
        """The explainer of a usable choice (`explainer_choice`), on the scorer's tokenizer."""
        if choice.method != "amortized" or choice.folder is None:
            raise ValueError("load an amortized explainer only from an amortized choice")
        network = Explainer.load(choice.folder, sampled.tokenizer)
        digest = sha256_files([choice.folder / WEIGHTS_FILE])
        return cls(network, sampled, meta=choice.meta, explainer_digest=digest)

    def settings(self) -> dict[str, str | int | float | bool | None]:
        """What determines the numbers; part of the cache key and of every Explanation."""
        return {
            "algorithm": ALGORITHM,
            "explainer_sha256": self.explainer_digest,
            "explainer_max_length": self.network.max_length,
            "features": self.sampled.features,
            "max_tokens": self.sampled.max_tokens,
            "mask_token": self.sampled.mask_token,
        }

    def explain(
        self,
        sentences: Sequence[Sentence],
        scores: Sequence[Score],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Explanation]:
        """One Explanation per sentence, of its score's label, in the order given."""
        settings = self.settings()
        jobs, keys = scored_jobs(sentences, scores, self.model_digest, settings, self.method)
        cache = self.sampled.cache
        cached = cache.get_many(keys) if cache is not None else {}
        todo: dict[str, tuple[Sentence, Score]] = {}
        for job, key in zip(jobs, keys, strict=True):
            if key not in cached:
                todo.setdefault(key, job)
        _log.info(
            "explain (amortized): %d sentences, %d cached, %d to explain",
            len(jobs),
            len(jobs) - sum(k not in cached for k in keys),
            len(todo),
        )
        fresh = self._payloads(list(todo.values()))
        fresh_by_key = dict(zip(todo, fresh, strict=True))
        for payload in fresh:
            self._check_additivity(payload)
        if cache is not None and fresh_by_key:
            cache.put_many({k: (self.model_digest, p) for k, p in fresh_by_key.items()})
        if progress:
            progress(len(todo), len(todo))
        settings = dict(
            settings, additivity_tolerance=ADDITIVITY_TOLERANCE, top_k=self.options.top_k
        )
        return [
            build_explanation(
                sentence,
                score,
                cached.get(key) or fresh_by_key[key],
                settings=settings,
                top_k=self.options.top_k,
                model_digest=self.model_digest,
                cached=key in cached,
                method=self.method,
                fidelity=self.fidelity,
                note=self.note,
            )
            for (sentence, score), key in zip(jobs, keys, strict=True)
        ]

    def _payloads(self, jobs: Sequence[tuple[Sentence, Score]]) -> list[dict[str, Any]]:
        """Words, additive values, base and output of each sentence: one explainer pass over
        all of them, one scorer pass over the masked texts not seen before."""
        if not jobs:
            return []
        texts = [s.text for s, _ in jobs]
        columns = [LABELS.index(sc.label) for _, sc in jobs]
        features = []
        for text in texts:
            made = sentence_features(
                text,
                self.sampled.tokenizer,
                self.sampled.mask_token,
                max_tokens=self.sampled.max_tokens,
            )
            if made is None:  # checked at construction; a tokenizer cannot lose its offsets
                raise ExplainError("explain: the scorer's tokenizer gave no offsets")
            features.append(made)
        masked = [f.render(np.zeros(f.n, dtype=bool)) if f.n else None for f in features]
        self._score_masked([m for m in masked if m is not None])
        raw = self.network.word_values(texts, columns, batch_size=self.batch_size)
        payloads = []
        for (_, score), f, m, values, column in zip(
            jobs, features, masked, raw, columns, strict=True
        ):
            words = list(f.words)
            out = np.zeros(len(words))
            base: float | None = None
            output: float | None = None
            if m is not None:
                base = float(self._base[m][column])
                output = float(score.probabilities.get(score.label, 0.0))
                # only words the model sees share the gap; the others stay 0, as in sampling
                seen = sorted(set(int(w) for w in f.word_of))
                got = np.zeros(len(seen)) if len(values) < len(words) else values[seen]
                out[seen] = additive(got, base, output)
            payloads.append(
                {
                    "words": words,
                    "values": [float(v) for v in out],
                    "base_value": base,
                    "output_value": output,
                    "budget": 0,
                    "evals": 1 if m is not None else 0,
                }
            )
        return payloads

    def _score_masked(self, texts: Sequence[str]) -> None:
        new = sorted({t for t in texts if t not in self._base}, key=len)
        for start in range(0, len(new), 512):
            part = new[start : start + 512]
            probs = self.sampled._predict(part)
            self._base.update(zip(part, probs, strict=True))
        self.model_calls += len(new)

    @staticmethod
    def _check_additivity(payload: dict[str, Any]) -> None:
        if payload["base_value"] is None:
            return
        SentenceExplainer._check_additivity(payload)
