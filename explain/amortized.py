"""An amortized explainer: a network that predicts a sentence's word attributions in one pass.

Sampled Owen values (`explain.owen`) cost about three model passes per word. Here a copy of the
scorer's encoder, with a per-token head for each class, is trained to predict those values
(FastSHAP's amortization, Jethani et al. 2022; for text, Yang et al. 2023): one forward pass
per sentence, batched like scoring. The training targets are sampled Owen values of the
scorer's own outputs on unlabelled sentences, so an explainer belongs to one model version.

Additivity is exact by construction: the predicted word values are shifted by an equal share so
that base + sum(values) equals the model's output (FastSHAP's additive efficient
normalization), where base is the model on the fully masked sentence, as sampling defines it.

Plain numpy and torch on purpose (no sesame settings or records): the same code trains on a
laptop's CPU or on a GPU machine. `explain.service` turns its values into Explanation records.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explain.features import SentenceFeatures
from explain.owen import OwenGame, evaluation_budget, feature_game, play
from explain.words import split_words

_log = logging.getLogger(__name__)

EXPLAINER_DIR = "explainer"
"""The explainer's folder inside a model directory."""
META_FILE = "explainer.json"
WEIGHTS_FILE = "explainer.safetensors"
FORMAT = 1

Predict = Callable[[list[str]], np.ndarray]


# ---------------------------------------------------------------- sampled targets


@dataclass
class Target:
    """Sampled word values of one sentence's predicted class, with the game's two ends."""

    text: str
    column: int
    values: np.ndarray
    base: float
    output: float


def sampled_values(
    texts: Sequence[str],
    columns: Sequence[int],
    predict: Predict,
    tokenizer: Any,
    *,
    mask_token: str,
    evals_per_word: float,
    max_tokens: int | None = None,
    max_evals: int | None = None,
    chunk_size: int = 512,
) -> list[Target]:
    """Owen word values of each text's `column`, all sentences' masked texts batched."""
    games: list[tuple[OwenGame, SentenceFeatures]] = []
    for text, column in zip(texts, columns, strict=True):
        n_words = len(split_words(text))
        budget = evaluation_budget(n_words, evals_per_word, max_evals or None)
        made = feature_game(text, column, budget, tokenizer, mask_token, max_tokens=max_tokens)
        if made is None:
            raise ValueError("sampled targets need a fast tokenizer (with offsets)")
        games.append(made)
    play([g for g, _ in games], predict, chunk_size=chunk_size)
    out = []
    for text, column, (game, features) in zip(texts, columns, games, strict=True):
        played = game.m > 0
        out.append(
            Target(
                text=text,
                column=int(column),
                values=features.word_values(game.values()),
                base=game.base_value if played else math.nan,
                output=game.output_value if played else math.nan,
            )
        )
    return out


# ---------------------------------------------------------------- fidelity


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho, None where it is undefined (fewer than 3 words or constant values)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def fidelity(values: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict[str, Any]:
    """How well word values agree with a reference, on what an auditor reads.

    spearman: mean rank correlation per sentence (median beside it); top1: the strongest word
    (by |value|) is the reference's; top3: share of the reference's three strongest words among
    ours; sign: share of the reference's three strongest words whose direction we give too.
    """
    rhos = [spearman(np.asarray(v), np.asarray(r)) for v, r in zip(values, reference, strict=True)]
    defined = np.array([r for r in rhos if r is not None])
    top1, top3, sign = [], [], []
    for v, r in zip(values, reference, strict=True):
        v, r = np.asarray(v), np.asarray(r)
        if len(v) < 2:
            continue
        top1.append(float(np.argmax(np.abs(v)) == np.argmax(np.abs(r))))
        k = min(3, len(v))
        ours, theirs = np.argsort(-np.abs(v))[:k], np.argsort(-np.abs(r))[:k]
        top3.append(len(set(ours) & set(theirs)) / k)
        sign.append(float(np.mean(np.sign(v[theirs]) == np.sign(r[theirs]))))

    def mean(xs: Sequence[float] | np.ndarray) -> float | None:
        return round(float(np.mean(xs)), 4) if len(xs) else None

    return {
        "spearman": mean(defined),
        "spearman_median": round(float(np.median(defined)), 4) if len(defined) else None,
        "share_ge_0.9": mean(defined >= 0.9) if len(defined) else None,
        "top1": mean(top1),
        "top3": mean(top3),
        "sign": mean(sign),
        "n_sentences": len(values),
        "undefined": len(rhos) - len(defined),
    }


# ---------------------------------------------------------------- the network


def word_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[Any, list[int]]:
    """Tokenized texts with each token's word (-1: special or outside any word), and word counts."""
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    ids: list[list[int]] = []
    counts: list[int] = []
    for text, offsets, special in zip(
        texts, enc["offset_mapping"], enc["special_tokens_mask"], strict=True
    ):
        starts = [a for a, _ in split_words(text)]
        row = []
        for (a, b), s in zip(offsets, special, strict=True):
            row.append(-1 if s or b <= a else int(np.searchsorted(starts, b - 1, side="right")) - 1)
        ids.append(row)
        counts.append(len(starts))
    enc["word_ids"] = ids
    enc.pop("offset_mapping")
    enc.pop("special_tokens_mask")
    return enc, counts


def _net(encoder: Any, n_classes: int) -> Any:
    import torch

    class ExplainerNet(torch.nn.Module):
        """Encoder + a linear head per token; token values summed into words."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(encoder.config.hidden_size, n_classes)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, input_ids: Any, attention_mask: Any, word_of: Any, n_words: int) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            tokens = self.head(hidden.last_hidden_state.float())  # (B, T, C)
            index = torch.where(word_of < 0, n_words, word_of).clamp(max=n_words)
            out = tokens.new_zeros(tokens.shape[0], n_words + 1, tokens.shape[2])
            out.scatter_add_(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[2]), tokens)
            return out[:, :n_words]  # (B, W, C)

    return ExplainerNet()


def _batch(enc: Any, rows: Sequence[int], tokenizer: Any, device: Any) -> tuple[Any, Any, Any]:
    import torch

    picked = {k: [enc[k][i] for i in rows] for k in ("input_ids", "attention_mask")}
    padded = tokenizer.pad(picked, return_tensors="pt")
    width = padded["input_ids"].shape[1]
    word_of = torch.full((len(rows), width), -1, dtype=torch.long)
    for j, i in enumerate(rows):
        w = enc["word_ids"][i]
        side_left = tokenizer.padding_side == "left"
        start = width - len(w) if side_left else 0
        word_of[j, start : start + len(w)] = torch.tensor(w, dtype=torch.long)
    return (
        padded["input_ids"].to(device),
        padded["attention_mask"].to(device),
        word_of.to(device),
    )


def additive(values: np.ndarray, base: float, output: float) -> np.ndarray:
    """Shift values by an equal share so that base + sum(values) == output (exact additivity)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or not (math.isfinite(base) and math.isfinite(output)):
        return values
    return values + (output - base - float(values.sum())) / len(values)


@dataclass
class TrainConfig:
    """How an explainer is trained (recorded with it)."""

    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-4
    """A MiniLM head at 1e-3 overshoots word values of about 0.01 (loss 21 after one epoch)."""
    max_length: int = 128
    seed: int = 13
    weight_decay: float = 0.01


@dataclass
class Explainer:
    """A trained explainer network for one scorer (by weights digest), with its record."""

    net: Any
    tokenizer: Any
    meta: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    @property
    def max_length(self) -> int:
        return int(self.meta.get("max_length", 128))

    def word_values(
        self, texts: Sequence[str], columns: Sequence[int], *, batch_size: int = 64
    ) -> list[np.ndarray]:
        """Raw predicted word values of each text's `column` (not yet made additive)."""
        import torch

        if not texts:
            return []
        enc, counts = word_ids(self.tokenizer, texts, self.max_length)
        order = np.argsort([len(x) for x in enc["input_ids"]], kind="stable")
        out: list[np.ndarray] = [np.zeros(0)] * len(texts)
        self.net.eval()
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = [int(i) for i in order[start : start + batch_size]]
                ids, mask, word_of = _batch(enc, rows, self.tokenizer, self.device)
                n_words = max(counts[i] for i in rows)
                pred = self.net(ids, mask, word_of, max(n_words, 1)).float().cpu().numpy()
                for j, i in enumerate(rows):
                    out[i] = pred[j, : counts[i], columns[i]].astype(float)
        return out

    def save(self, folder: Path) -> Path:
        """Write weights (fp16), the encoder's config and the record into `folder`."""
        import torch
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().to("cpu", torch.float16).contiguous()
            for k, v in self.net.state_dict().items()
        }
        save_file(state, str(folder / WEIGHTS_FILE))
        self.net.encoder.config.to_json_file(str(folder / "config.json"))
        meta = dict(self.meta, format=FORMAT)
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path, tokenizer: Any, *, device: str = "cpu") -> Explainer:
        """Load an explainer saved by `save` (the tokenizer is the scorer's)."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{folder}: explainer format {meta.get('format')!r}, expected {FORMAT}"
            )
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        net = _net(AutoModel.from_config(config), int(meta.get("n_classes", 3)))
        state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
        net.load_state_dict(state)
        net.to(device)
        net.eval()
        return cls(net=net, tokenizer=tokenizer, meta=meta, device=device)


def read_meta(model_dir: Path) -> dict[str, Any] | None:
    """The record of the explainer shipped in a model directory; None when it has none."""
    path = Path(model_dir) / EXPLAINER_DIR / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def train(
    encoder_dir: Path,
    tokenizer: Any,
    targets: Sequence[Target],
    config: TrainConfig,
    *,
    n_classes: int = 3,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> Explainer:
    """Train an explainer on sampled targets, starting from the encoder of `encoder_dir`.

    The loss, per sentence, is the squared error of the additive (normalised) predicted values
    against the targets, relative to the targets' own size, so short and long, strong and weak
    sentences count alike: the ordering of the words is what is learned.
    """
    import torch
    from transformers import AutoModel

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    usable = [t for t in targets if len(t.values) and math.isfinite(t.base)]
    # float32 whatever the checkpoint's dtype: a shipped fp16 encoder trained in fp16 goes NaN
    encoder = AutoModel.from_pretrained(
        str(encoder_dir), local_files_only=True, dtype=torch.float32
    )
    net = _net(encoder, n_classes).to(device)
    enc, counts = word_ids(tokenizer, [t.text for t in usable], config.max_length)
    head = list(net.head.parameters())
    body = [p for n, p in net.named_parameters() if not n.startswith("head.")]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    steps = config.epochs * math.ceil(len(usable) / config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / max(steps, 1)),
    )
    started = time.perf_counter()
    losses: list[float] = []
    net.train()
    for epoch in range(config.epochs):
        # batches of similar length (little padding), in random order
        order = sorted(range(len(usable)), key=lambda i: (len(enc["input_ids"][i]), rng.random()))
        batches = [
            order[s : s + config.batch_size] for s in range(0, len(order), config.batch_size)
        ]
        rng.shuffle(batches)
        total = 0.0
        for rows in batches:
            ids, mask, word_of = _batch(enc, rows, tokenizer, device)
            n_words = max(counts[i] for i in rows)
            pred = net(ids, mask, word_of, n_words)
            loss = _loss(pred, [usable[i] for i in rows], [counts[i] for i in rows], device)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(rows)
        losses.append(total / max(len(usable), 1))
        if progress:
            progress(f"explainer epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.4f}")
    net.eval()
    meta = {
        "n_classes": n_classes,
        "max_length": config.max_length,
        "training": {
            "sentences": len(usable),
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "head_lr": config.head_lr,
            "seed": config.seed,
            "loss_per_epoch": [round(x, 5) for x in losses],
            "seconds": round(time.perf_counter() - started, 1),
            "device": device,
        },
    }
    return Explainer(net=net, tokenizer=tokenizer, meta=meta, device=device)


def _loss(pred: Any, batch: Sequence[Target], counts: Sequence[int], device: Any) -> Any:
    import torch

    n_words = pred.shape[1]
    target = torch.zeros(len(batch), n_words, device=device)
    present = torch.zeros(len(batch), n_words, device=device)
    column = torch.tensor([t.column for t in batch], device=device)
    for j, (t, c) in enumerate(zip(batch, counts, strict=True)):
        target[j, :c] = torch.tensor(t.values[:c], dtype=torch.float32, device=device)
        present[j, :c] = 1.0
    values = pred.gather(2, column.view(-1, 1, 1).expand(-1, n_words, 1)).squeeze(-1) * present
    n = present.sum(1).clamp(min=1)
    gap = (target.sum(1) - values.sum(1)) / n
    values = (values + gap.unsqueeze(1)) * present
    err = ((values - target) ** 2).sum(1)
    size = (target**2).sum(1) + 1e-4
    return (err / size).mean()
