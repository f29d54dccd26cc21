"""Profiles: what a model saw and said on a set of sentences, as numbers only.

`build_profile` turns sentences and the model's probabilities into a `Profile`: predicted-label
counts, the confidence of a sample, input descriptors (`describe_texts`: length in words, share
of words the tokenizer splits, numeric share), languages (`detect_languages`) and a capped
sample of sentence embeddings (`mean_pooled_embedder`, `scorer_embedder`); `reference_profile`
profiles a model's evaluation set, and `save_profile` / `load_profile` keep one as JSON. It is
its own module because it is the lowest one: the drift tests, the reports and the run
orchestration all read profiles, and this module reads none of them. It also holds `Model`,
the frozen base of the package's records.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langdetect import DetectorFactory, LangDetectException, detect
from pydantic import BaseModel, ConfigDict

from app.records import LABELS, Label

if TYPE_CHECKING:
    from models.scoring import SentimentScorer

PROFILE_VERSION = 1
REFERENCE_FILE = "reference_profile.json"
"""The reference profile's name inside a model directory: it travels with the model through
the registry's artifacts, the fetch cache and the bundled default (the weights digest ignores
it)."""

DESCRIPTORS: tuple[str, ...] = ("n_words", "split_share", "numeric_share")
"""Per-sentence input descriptors, in the column order of `Profile.descriptors`."""

Embedder = Callable[[list[str]], np.ndarray]
"""Texts -> (n, d) sentence embeddings."""

_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"[^\W\d_]+")  # alphabetic words: what the split share is measured on
_DIGIT = re.compile(r"\d")


class Model(BaseModel):
    """Frozen, no extra fields: the base of the package's records."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ArraySample(Model):
    """A numeric matrix stored compactly in JSON: float16, base64 (embeddings are large)."""

    shape: tuple[int, int]
    data: str

    @classmethod
    def of(cls, array: np.ndarray) -> ArraySample:
        """Pack a 2-D array."""
        array = np.asarray(array, dtype=np.float16)
        if array.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {array.shape}")
        return cls(
            shape=(int(array.shape[0]), int(array.shape[1])),
            data=base64.b64encode(array.tobytes()).decode("ascii"),
        )

    def array(self) -> np.ndarray:
        """The matrix as float32."""
        raw = np.frombuffer(base64.b64decode(self.data), dtype=np.float16)
        return raw.reshape(self.shape).astype(np.float32)


class Profile(Model):
    """What a model saw and said on a set of sentences: numbers only, no text."""

    version: int = PROFILE_VERSION
    created_at: datetime
    source: str = ""
    """What the sentences were: "reference: eval set of sesame-sentiment v3", "run 2024...-ab"."""
    model_name: str | None = None
    model_version: str | None = None
    model_digest: str | None = None
    """sha256 of the weights that produced the probabilities and embeddings."""
    n_sentences: int
    label_counts: dict[Label, int]
    """Predicted-label counts over all sentences."""
    confidence: list[float]
    """Top-class probability of each sampled sentence."""
    descriptors: dict[str, list[float | None]]
    """Each of `DESCRIPTORS` for each sampled sentence (same row order as `confidence`); None
    where unknown (the split share without a tokenizer)."""
    language_counts: dict[str, int]
    """langdetect codes over a capped sample; "unknown" where detection failed."""
    embedding_mean: list[float] | None = None
    embeddings: ArraySample | None = None
    """Embeddings of the first rows of the sample (row i = sampled sentence i)."""
    sample_seed: int = 0

    @property
    def n_sample(self) -> int:
        """How many sentences the descriptor sample holds."""
        return len(self.confidence)

    def label_shares(self) -> dict[str, float]:
        """Predicted-label shares in LABELS order."""
        counts = {str(k): v for k, v in self.label_counts.items()}
        total = max(sum(counts.values()), 1)
        return {lab: counts.get(lab, 0) / total for lab in LABELS}

    def descriptor(self, name: str) -> np.ndarray:
        """One descriptor over the sample as floats, NaN where unknown."""
        return np.array(
            [np.nan if v is None else v for v in self.descriptors[name]], dtype=np.float64
        )

    def descriptor_matrix(self, rows: int | None = None) -> np.ndarray:
        """(n, len(DESCRIPTORS)+1) matrix: the descriptors and confidence of the sample."""
        cols = [self.descriptor(d) for d in DESCRIPTORS] + [np.asarray(self.confidence)]
        matrix = np.vstack(cols).T.astype(np.float64)
        return matrix if rows is None else matrix[:rows]


def describe_texts(texts: Sequence[str], tokenizer: Any | None = None) -> np.ndarray:
    """(n, 3) descriptors per text: words, share of words split into pieces, numeric share.

    The split share is measured on alphabetic words with the model's own tokenizer (a fast
    Hugging Face tokenizer): jargon, misspellings, tickers and foreign languages split more.
    Without a tokenizer the column is NaN.
    """
    tokens = [_TOKEN.findall(t) for t in texts]
    n_words = np.array([len(t) for t in tokens], dtype=np.float64)
    numeric = np.array(
        [sum(1 for w in t if _DIGIT.search(w)) / len(t) if t else 0.0 for t in tokens]
    )
    split = np.full(len(texts), np.nan)
    if tokenizer is not None and len(texts):
        words = [_WORD.findall(t) for t in texts]
        nonempty = [i for i, w in enumerate(words) if w]
        split[[i for i, w in enumerate(words) if not w]] = 0.0
        for start in range(0, len(nonempty), 512):
            chunk = nonempty[start : start + 512]
            enc = tokenizer(
                [words[i] for i in chunk],
                is_split_into_words=True,
                add_special_tokens=False,
                truncation=False,
            )
            for row, i in enumerate(chunk):
                pieces = Counter(w for w in enc.word_ids(row) if w is not None)
                split[i] = sum(1 for c in pieces.values() if c > 1) / len(words[i])
    return np.column_stack([n_words, split, numeric])


def detect_languages(texts: Sequence[str], seed: int = 0) -> list[str]:
    """langdetect's language code per text (seeded, so repeatable); "unknown" when it cannot."""
    DetectorFactory.seed = seed
    out = []
    for text in texts:
        try:
            out.append(detect(text))
        except LangDetectException:
            out.append("unknown")
    return out


def mean_pooled_embedder(
    tokenizer: Any, model: Any, *, batch_size: int = 64, max_length: int = 128
) -> Embedder:
    """Sentence embeddings as the attention-masked mean of the encoder's last hidden states.

    `model` is a Hugging Face model; its `base_model` (the encoder without the classification
    head) is used, so a sequence-classification model embeds with the encoder it scores with.
    """
    import torch

    encoder = getattr(model, "base_model", model)

    def embed(texts: list[str]) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                hidden = encoder(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                parts.append(pooled.float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    return embed


def scorer_embedder(scorer: SentimentScorer) -> Embedder:
    """Mean-pooled states of the scorer's own encoder, at its truncation length."""
    return mean_pooled_embedder(scorer.tokenizer, scorer.model, max_length=scorer.max_length)


def build_profile(
    texts: Sequence[str],
    probabilities: np.ndarray,
    *,
    tokenizer: Any | None = None,
    embed: Embedder | None = None,
    source: str = "",
    model_name: str | None = None,
    model_version: str | None = None,
    model_digest: str | None = None,
    sample_size: int = 2000,
    embed_size: int = 500,
    language_size: int = 200,
    languages: Callable[[Sequence[str]], list[str]] | None = None,
    seed: int = 0,
) -> Profile:
    """Profile sentences and the model's (n, 3) probabilities (columns in LABELS order).

    Label counts cover every sentence; descriptors and confidence a random sample of at most
    `sample_size`; embeddings and languages the first `embed_size` / `language_size` of that
    sample, which bounds the extra model and langdetect work for large batches. `languages`
    maps texts to language codes (default: seeded langdetect).
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(LABELS) or probs.shape[0] != len(texts):
        raise ValueError(f"probabilities must be ({len(texts)}, {len(LABELS)}), got {probs.shape}")
    predicted = probs.argmax(axis=1) if len(texts) else np.zeros(0, dtype=int)
    counts = Counter(LABELS[i] for i in predicted)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))[:sample_size]
    sample = [texts[i] for i in order]
    desc = describe_texts(sample, tokenizer)
    conf = probs[order].max(axis=1) if len(order) else np.zeros(0)
    detect = languages or (lambda xs: detect_languages(xs, seed=seed))
    langs = Counter(detect(sample[:language_size]))
    emb_mean = emb_sample = None
    if embed is not None and sample:
        vectors = np.asarray(embed(sample[:embed_size]), dtype=np.float32)
        emb_mean = [round(float(v), 5) for v in vectors.mean(axis=0)]
        emb_sample = ArraySample.of(vectors)
    return Profile(
        created_at=datetime.now(UTC),
        source=source,
        model_name=model_name,
        model_version=model_version,
        model_digest=model_digest,
        n_sentences=len(texts),
        label_counts={lab: int(counts.get(lab, 0)) for lab in LABELS},
        confidence=[round(float(c), 5) for c in conf],
        descriptors={
            name: [round(float(v), 5) if math.isfinite(v) else None for v in desc[:, j]]
            for j, name in enumerate(DESCRIPTORS)
        },
        language_counts=dict(langs.most_common()),
        embedding_mean=emb_mean,
        embeddings=emb_sample,
        sample_seed=seed,
    )


def reference_profile(
    eval_texts: Sequence[str], scorer: SentimentScorer, *, source: str = "evaluation set"
) -> Profile:
    """The reference profile of a model version, for its registry entry at blessing time."""
    texts = list(eval_texts)
    probs = scorer.predict_proba(texts)
    return build_profile(
        texts,
        probs,
        tokenizer=scorer.tokenizer,
        embed=scorer_embedder(scorer),
        source=source,
        model_name=scorer.name,
        model_version=scorer.version,
        model_digest=scorer.digest,
    )


def save_profile(profile: Profile, path: Path) -> Path:
    """Write a profile as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile.model_dump_json())
    return path


def load_profile(path: Path) -> Profile:
    """Read a profile written by `save_profile`."""
    return Profile.model_validate_json(Path(path).read_text())
