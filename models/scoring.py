"""Inference: score sentences positive / negative / neutral with any local HF classifier.

`SentimentScorer.from_dir()` loads a Hugging Face sequence-classification model directory
(never the network), verifies its weights digest, maps its classes onto sesame's `LABELS` and
scores in length-sorted, dynamically padded batches. `predict_proba()` is the pure numeric core
(SHAP calls it); `score()` builds `Score` records. A scorer pickles as its `ScorerSpec`, so a
Ray actor or task reloads it from the directory instead of shipping tensors.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.config import ScoringOptions
from app.digests import sha256_files
from app.errors import ModelError, ScoringError
from app.records import LABELS, Label, Score, Sentence
from models.calibration import Calibration, apply_calibration, read_calibration

if TYPE_CHECKING:
    import torch

_log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""Single-file weights, in the order they are looked for."""
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

# Names models publish for their classes, lower-cased. FinBERT (ProsusAI) uses
# positive/negative/neutral, finbert-tone Positive/Negative/Neutral; others abbreviate.
_SYNONYMS: dict[str, Label] = {
    "positive": "positive",
    "pos": "positive",
    "bullish": "positive",
    "negative": "negative",
    "neg": "negative",
    "bearish": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "neut": "neutral",
}
_GENERIC = re.compile(r"^label_?\d+$", re.IGNORECASE)
_HINT = (
    'Set scoring.label_map, e.g. SESAME_SCORING__LABEL_MAP=\'{"0": "negative", '
    '"1": "neutral", "2": "positive"}\', or label_map= in ScoringOptions.'
)


@dataclass(frozen=True)
class ScorerSpec:
    """Everything needed to rebuild a scorer in another process: small and picklable."""

    path: Path
    options: ScoringOptions
    name: str
    version: str | None
    digest: str
    """The digest the rebuilt scorer must find, so a worker never scores with other weights."""


def weights_digest(path: Path) -> str:
    """sha256 of the model's weights file (model.safetensors, else pytorch_model.bin).

    Sharded checkpoints hash their shards' bytes in the order their index lists them.
    """
    path = Path(path)
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return _sha256([path / name])
    for name in SHARD_INDEXES:
        index = path / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError) as e:
                raise ModelError(f"{index}: unreadable shard index ({e}).") from e
            return _sha256([path / s for s in shards])
    raise ModelError(
        f"{path}: no weights file ({' or '.join(WEIGHT_FILES)}). Point scoring at a saved "
        "Hugging Face model directory (save_pretrained output)."
    )


def _sha256(files: Sequence[Path]) -> str:
    try:
        return sha256_files(files)
    except OSError as e:
        raise ModelError(f"cannot read the weights ({e}).") from e


def resolve_label_map(
    id2label: Mapping[int, str],
    override: Mapping[str, Label] | None = None,
    *,
    source: str = "model",
) -> dict[int, Label]:
    """Model class index -> sesame label, from an explicit mapping or the config's names.

    Without `override` the model must have exactly three classes whose names say which is
    positive, negative and neutral; generic LABEL_n names and two-class models are refused.
    An override may map several classes onto one label (their probabilities add up), and
    must map every class.
    """
    id2label = {int(k): str(v) for k, v in id2label.items()}
    if override:
        return _apply_override(id2label, override, source)
    names = ", ".join(f"{i}={id2label[i]}" for i in sorted(id2label))
    if any(_GENERIC.match(v) for v in id2label.values()):
        raise ModelError(
            f"{source}: its classes have generic names ({names}), so sesame cannot tell which is "
            f"positive, negative or neutral. {_HINT}"
        )
    if len(id2label) != 3:
        raise ModelError(
            f"{source}: it has {len(id2label)} classes ({names}); sesame scores positive, "
            f"negative and neutral and will not guess how to map these. {_HINT}"
        )
    mapped: dict[int, Label] = {}
    for index, name in id2label.items():
        label = _SYNONYMS.get(name.strip().lower())
        if label is None:
            raise ModelError(
                f"{source}: class name {name!r} is not a known sentiment label ({names}). {_HINT}"
            )
        mapped[index] = label
    if sorted(mapped.values()) != sorted(LABELS):
        raise ModelError(
            f"{source}: class names ({names}) do not cover positive, negative and "
            f"neutral exactly once. {_HINT}"
        )
    return mapped


def _apply_override(
    id2label: dict[int, str], override: Mapping[str, Label], source: str
) -> dict[int, Label]:
    by_name = {name: index for index, name in id2label.items()}
    mapped: dict[int, Label] = {}
    for key, label in override.items():
        if key in by_name:
            index = by_name[key]
        elif key.strip().isdigit() and int(key) in id2label:
            index = int(key)
        else:
            raise ModelError(
                f"{source}: label_map key {key!r} is neither a class index nor a "
                f"class name of this model ({sorted(id2label.items())})."
            )
        if label not in LABELS:
            raise ModelError(
                f"{source}: label_map maps {key!r} to {label!r}; use one of {', '.join(LABELS)}."
            )
        if index in mapped:
            raise ModelError(f"{source}: label_map names class {index} twice.")
        mapped[index] = label
    missing = sorted(set(id2label) - set(mapped))
    if missing:
        raise ModelError(
            f"{source}: label_map leaves classes {missing} unmapped; map every class "
            "so no probability is dropped."
        )
    unused = [lab for lab in LABELS if lab not in mapped.values()]
    if unused:
        _log.warning(
            "%s: label_map maps no class to %s; it will always score 0.", source, ", ".join(unused)
        )
    return dict(sorted(mapped.items()))


class SentimentScorer:
    """A local sequence-classification model that scores sentences in sesame's label order.

    Build it with `from_dir()`; the constructor takes already-loaded objects.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        path: Path,
        options: ScoringOptions,
        name: str,
        version: str | None,
        digest: str,
        label_map: dict[int, Label],
        calibration: Calibration | None = None,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self.path = path
        self.options = options
        self.name = name
        self.version = version
        self.digest = digest
        self.label_map = label_map
        self.calibration = calibration
        """Applied to every probability (stored with the model; None: the raw softmax)."""
        # Column j of the model's softmax adds into column LABELS.index(label_map[j]).
        self._projection = np.zeros((len(label_map), len(LABELS)))
        for index, label in label_map.items():
            self._projection[index, LABELS.index(label)] = 1.0
        self.max_length = _max_length(options.max_length, tokenizer, model.config)

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (SHAP masks one token per sub-word with it)."""
        return self._tokenizer

    @property
    def model(self) -> Any:
        """The loaded transformers model (for embeddings in monitoring)."""
        return self._model

    @classmethod
    def from_dir(
        cls,
        path: Path,
        options: ScoringOptions,
        *,
        name: str | None = None,
        version: str | None = None,
        expected_digest: str | None = None,
    ) -> SentimentScorer:
        """Load a Hugging Face model directory, offline, checking its digest when one is given."""
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        name = name or path.name
        if not path.is_dir():
            raise ModelError(
                f"Model directory {path} does not exist. Import the model into the "
                "registry or set scoring.model_dir to a saved Hugging Face model."
            )
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a Hugging Face model directory (no config.json).")
        try:
            config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{path}: config.json cannot be read ({e}).") from e
        label_map = resolve_label_map(config.id2label, options.label_map, source=f"{name} ({path})")
        calibration = read_calibration(config) if options.calibration == "stored" else None
        digest = weights_digest(path)
        if expected_digest is not None and digest != expected_digest:
            raise ModelError(
                f"{name} ({path}): weights digest mismatch: expected {expected_digest}, found "
                f"{digest}. The weights changed since the model was registered; re-import it or "
                "restore the original files."
            )
        if getattr(config, "problem_type", None) == "multi_label_classification":
            _log.warning(
                "%s: a multi-label model; sesame applies softmax across its classes.", name
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                str(path), local_files_only=True, dtype=torch.float32, output_loading_info=True
            )
        except Exception as e:  # the loaders raise many library-specific types
            raise ModelError(
                f"{name} ({path}): the model cannot be loaded ({type(e).__name__}: {e})."
            ) from e
        missing = list(info.get("missing_keys", ()))
        if missing:
            # A base encoder loads "fine" with a random head; scoring with it would be noise.
            raise ModelError(
                f"{name} ({path}): weights for {', '.join(sorted(missing)[:4])} are missing; this "
                "is a base encoder, not a trained classifier. Fine-tune it first."
            )
        model.eval()
        if options.quantize == "dynamic-int8":
            model = _quantize_dynamic_int8(model)
        if options.threads:
            # Process-wide: a Ray actor owns its process, so this is its share of the cores.
            torch.set_num_threads(options.threads)
        _log.info(
            "loaded %s (%s) from %s, sha256 %s, labels %s",
            name,
            version or "unregistered",
            path,
            digest[:12],
            label_map,
        )
        return cls(
            model,
            tokenizer,
            path=path,
            options=options,
            name=name,
            version=version,
            digest=digest,
            label_map=label_map,
            calibration=calibration,
        )

    @classmethod
    def from_spec(cls, spec: ScorerSpec) -> SentimentScorer:
        """Rebuild a scorer from its spec, insisting on the same weights."""
        return cls.from_dir(
            spec.path,
            spec.options,
            name=spec.name,
            version=spec.version,
            expected_digest=spec.digest,
        )

    def spec(self) -> ScorerSpec:
        """What another process needs to rebuild this scorer."""
        return ScorerSpec(
            path=self.path,
            options=self.options,
            name=self.name,
            version=self.version,
            digest=self.digest,
        )

    def __reduce__(self) -> tuple[Any, tuple[ScorerSpec]]:
        # Pickle (Ray, multiprocessing) as the spec: a few hundred bytes, reloaded on arrival.
        return (SentimentScorer.from_spec, (self.spec(),))

    def __repr__(self) -> str:
        return (
            f"SentimentScorer(name={self.name!r}, version={self.version!r}, "
            f"digest={self.digest[:12]!r}, path={str(self.path)!r})"
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (n, 3), columns in LABELS order (positive, negative, neutral)."""
        texts = [str(t) for t in texts]  # SHAP passes numpy string arrays
        if not texts:
            return np.zeros((0, len(LABELS)))
        try:
            class_probs = _predict_classes(
                self._model,
                self._tokenizer,
                texts,
                batch_size=self.options.batch_size,
                max_length=self.max_length,
            )
        except (RuntimeError, ValueError) as e:
            raise ScoringError(
                f"{self.name}: scoring {len(texts)} sentences failed ({e}). "
                "Lower scoring.batch_size if memory ran out."
            ) from e
        return apply_calibration(class_probs @ self._projection, self.calibration)

    def score(self, sentences: Sequence[Sentence]) -> list[Score]:
        """One Score per sentence, in input order."""
        probs = self.predict_proba([s.text for s in sentences])
        scores = []
        for sentence, row in zip(sentences, probs, strict=True):
            best = int(row.argmax())
            scores.append(
                Score(
                    sentence_index=sentence.index,
                    label=LABELS[best],
                    probabilities={lab: float(p) for lab, p in zip(LABELS, row, strict=True)},
                    confidence=float(row[best]),
                )
            )
        return scores


def _predict_classes(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    *,
    batch_size: int,
    max_length: int,
    sort_by_length: bool = True,
    pad_to: int | None = None,
) -> np.ndarray:
    """Softmax over the model's own classes (n, n_classes), rows in input order.

    Texts are tokenized once, then batched shortest-first so each batch pads only to its own
    longest sentence. `sort_by_length=False` and `pad_to` exist for the benchmark's baselines.
    """
    import torch

    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    keys = list(encoded.keys())
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(lengths, kind="stable") if sort_by_length else np.arange(len(texts))
    out = np.empty((len(texts), model.config.num_labels))
    padding: dict[str, Any] = (
        {"padding": "max_length", "max_length": pad_to} if pad_to else {"padding": "longest"}
    )
    # a model moved to a GPU (the explainer's targets) gets its batches there; CPU as before
    device = next((p.device for p in model.parameters()), None)
    on_gpu = device is not None and device.type != "cpu"
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer.pad(
                {k: [encoded[k][i] for i in rows] for k in keys}, return_tensors="pt", **padding
            )
            if on_gpu:
                batch = batch.to(device)
            logits = model(**batch).logits
            # float64 so each row sums to 1 within 1e-12, whatever the batch.
            out[rows] = torch.softmax(logits.double(), dim=-1).cpu().numpy()
    return out


def _max_length(requested: int, tokenizer: Any, config: Any) -> int:
    """The truncation length: the option, capped at what the model can take."""
    limits = [requested]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 1_000_000:  # huge = "not set" sentinel
        limits.append(model_max)
    elif getattr(config, "max_position_embeddings", None):
        limits.append(int(config.max_position_embeddings))
    return min(limits)


def _quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """int8 weights for every nn.Linear, activations quantized on the fly (CPU only)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.13 marks the quantized tensor API deprecated; it works and torch is pinned.
        warnings.filterwarnings("ignore", category=UserWarning, message=".*quantiz.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # Per-channel scales: on PhraseBank it flipped 8% of MiniLM argmaxes against 11% for
        # per-tensor, at the same speed (benchmarks/bench_scoring.py).
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})
