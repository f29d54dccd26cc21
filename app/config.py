"""Typed configuration: one options object per stage, gathered in `Settings`.

Environment beats file beats default. Variables use the `SESAME_` prefix and `__` between
levels (`SESAME_SCORING__BATCH_SIZE=32`); the file is TOML, found at `$SESAME_CONFIG` or
`./sesame.toml`. The resolved configuration is written next to each run's outputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_MODEL_NAME = "sesame-sentiment"


class Options(BaseModel):
    """Base of stage options: a typo fails loudly."""

    model_config = ConfigDict(extra="forbid")


class IngestOptions(Options):
    """How PDFs are read."""

    max_bytes: int = Field(200 * 1024 * 1024, gt=0)
    """Inputs larger than this are refused with a message."""
    max_pages: int = Field(2000, gt=0)
    """Inputs with more pages than this are refused with a message."""
    password: str | None = None
    remove_running: bool = True
    """Drop headers, footers and page numbers that repeat across pages."""
    min_chars_per_page: int = Field(20, ge=0)
    """Pages with fewer readable characters than this (and an image) are flagged needs OCR."""
    max_garbled_share: float = Field(0.3, ge=0, le=1)
    """Pages where more than this share of characters is unreadable are flagged garbled."""
    ocr: Literal["auto", "force", "off"] = "auto"
    """auto: OCR the pages whose text layer is missing (needs OCR) or unreadable; force: OCR
    every page, ignoring the text layer (scans with a poor embedded OCR); off: refuse them."""
    ocr_languages: str | None = None
    """Tesseract languages, e.g. "deu" or "nld+eng"; None: the document's language, detected
    on its text layer or on a first OCR pass (English when unsure)."""
    ocr_dpi: int = Field(300, ge=72, le=600)
    """Resolution pages are rendered at for OCR (benchmarks/bench_ocr.py measured the choice)."""
    ocr_workers: int = Field(2, ge=1, le=16)
    """Pages OCR'd at once (threads, one Tesseract each; rendering stays under the pdfium lock)."""
    ocr_min_confidence: float = Field(0.8, ge=0, le=1)
    """OCR'd pages whose mean word confidence is below this are listed for checking
    (workpaper Cover and Exceptions, JSON, review screen)."""
    tessdata_dir: Path | None = None
    """Tesseract's language data folder; None: $TESSDATA_PREFIX, else Debian's
    /usr/share/tesseract-ocr/*/tessdata."""


class SentenceOptions(Options):
    """How page text is split into sentences."""

    min_chars: int = Field(3, ge=1)
    max_chars: int = Field(1500, gt=0)
    """Longer units are split at clause boundaries so no sentence exceeds the model's reach."""


class ScoringOptions(Options):
    """Which model scores sentences, and how."""

    model: str = DEFAULT_MODEL_NAME
    version: str = "champion"
    """A registry alias (champion) or a version number."""
    model_dir: Path | None = None
    """Score with any local Hugging Face model directory instead of the registry."""
    batch_size: int = Field(64, gt=0)
    max_length: int = Field(128, gt=8)
    threads: int | None = None
    """Torch intra-op threads; None leaves torch's default."""
    label_map: dict[str, Literal["positive", "negative", "neutral"]] | None = None
    """Model class (index "0" or its config name "LABEL_0") -> sesame label, for models whose
    label names are generic or that have other than three classes; None reads config.id2label."""
    quantize: Literal["none", "dynamic-int8"] = "none"
    """dynamic-int8: torch dynamic int8 quantization of nn.Linear layers (CPU speed lever)."""
    calibration: Literal["stored", "none"] = "stored"
    """stored: apply the temperature and class offsets saved with the model (config.json,
    `sesame_calibration`); none: the raw softmax (used to fit a calibration)."""


class ExplainOptions(Options):
    """Which sentences get SHAP evidence, and at what cost."""

    mode: Literal["none", "flagged", "all"] = "flagged"
    max_evals: int | None = None
    """Model evaluations per sentence; None ties the budget to sentence length."""
    top_k: int = Field(5, gt=0)
    cache: bool = True
    evals_per_word: float = Field(3.0, ge=2)
    """With max_evals None: the budget is 2 + evals_per_word x the sentence's word count."""
    mask_token: str = "[MASK]"
    """What replaces a hidden word: the tokenizer's mask token ("" drops the word)."""
    method: Literal["auto", "sampled", "amortized"] = "auto"
    """sampled: Owen values sampled per sentence (the budget above); amortized: the model's own
    explainer network, one pass per sentence, when it ships one blessed for these weights
    (otherwise sampled, with the reason on every explanation); auto: amortized when usable."""


class SliceSpec(Options):
    """A named, frozen evaluation set the gate measures every candidate on, with its own bar."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    path: Path
    """A labelled file (text,label CSV or any format sesame reads); a relative path is read from
    the working directory when it is there, else from the project root."""
    eval_share: float | None = Field(None, gt=0, lt=1)
    """When set, the slice is the stratified evaluation split of the file (this share, seed
    `split_seed`), as `sesame train` makes it; None: the whole file."""
    split_seed: int = 42
    description: str = ""
    min_accuracy: float = Field(0.0, ge=0, le=1)
    min_macro_f1: float = Field(0.0, ge=0, le=1)
    min_negative_recall: float = Field(0.0, ge=0, le=1)
    max_calibration_error: float = Field(1.0, ge=0, le=1)
    tolerance: float = Field(0.02, ge=0, le=1)
    """How far below the champion's macro-F1 on this slice a candidate may fall and be blessed."""
    if_missing: Literal["skip", "block"] = "skip"
    """When the file is absent: skip (the slice is reported as not measured, never as passed)
    or block the blessing."""


REPORTS_DEV = Path("../shared/data/reports_dev/reports_dev.csv")
"""The report-language development set (255 hand-labelled report sentences), next to the repo."""
PHRASEBANK_50 = Path("../shared/data/financial_phrasebank/Sentences_50Agree.txt")


class EvaluationOptions(Options):
    """What the gate measures besides the run's own split, and how sure the figures are."""

    slices: list[SliceSpec] = [
        SliceSpec(
            name="reports",
            path=REPORTS_DEV,
            min_accuracy=0.6,
            min_macro_f1=0.6,
            description="report language: 255 sentences of annual reports, 10-Ks, a 10-Q, "
            "an earnings release and FOMC minutes, labelled by hand "
            "(reports_dev)",
        ),
        SliceSpec(
            name="phrasebank",
            path=PHRASEBANK_50,
            eval_share=0.2,
            split_seed=42,
            min_accuracy=0.7,
            min_macro_f1=0.65,
            description="news: Financial PhraseBank 50Agree, the 80/20 seed-42 "
            "evaluation split (968 sentences)",
        ),
    ]
    bootstrap_samples: int = Field(1000, ge=0)
    """Resamples for the percentile bootstrap intervals on every slice (0: none)."""
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    reference_reports: Path | None = Path("../shared/corpus/filings")
    """PDF reports (a folder or one file) whose sentences, scored by a new version, become its
    drift reference at blessing; None or absent: the evaluation split, with a note."""
    reference_sentences: int = Field(2000, gt=0)
    """How many report sentences (a seeded sample) the reference profiles."""


class TrainOptions(Options):
    """How a model is fine-tuned (`sesame train`). Saved with every run as its parameters."""

    epochs: float = Field(4, gt=0)
    """Fractional epochs are allowed (tests, smoke runs)."""
    learning_rate: float = Field(1e-4, gt=0)
    warmup_share: float = Field(0.1, ge=0, lt=1)
    """Share of steps with a linear warm-up; the rest decays linearly to zero."""
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(16, gt=0)
    max_length: int = Field(64, gt=8)
    class_weight: Literal["none", "sqrt", "balanced"] = "sqrt"
    """Loss weight per class: inverse frequency (balanced), its square root, or none."""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    seed: int = 42
    threads: int | None = None
    """Torch intra-op threads; None leaves torch's default."""
    save_dtype: Literal["float16", "float32"] = "float16"
    """fp16 halves the artifact (~45 MB for MiniLM); scoring upcasts on load."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many optimiser steps (smoke tests)."""
    freeze_embeddings: bool = True
    """Keep the word-embedding table (half of MiniLM's weights) fixed: a third less work per
    step on CPU, and small data cannot move 30k rare-word vectors usefully anyway."""
    precision: Literal["float32", "bfloat16"] = "float32"
    """bfloat16 runs the forward pass under CPU autocast (weights and optimiser stay float32):
    faster on CPUs with AVX512-BF16/AMX."""
    head_lr_multiplier: float = Field(1.0, gt=0)
    """Learning rate of the pooler and classifier relative to `learning_rate`; the pooler of a
    sentence-embedding base (mean-pooled in pre-training) never learned to summarise."""
    layer_lr_decay: float = Field(1.0, gt=0, le=1)
    """Layer-wise decay: encoder layer i of L trains at lr * decay**(L - i), embeddings at
    decay**(L + 1); 1.0 trains every layer at the same rate."""
    average_share: float = Field(0.0, ge=0, lt=1)
    """Average the weights over this last share of steps (SWA-style); 0 keeps the final ones."""
    distill_alpha: float = Field(0.5, ge=0, le=1)
    """With a teacher: weight of the soft-label loss; labelled examples keep 1 - alpha of the
    hard-label loss, unlabelled ones learn from the teacher only."""
    distill_temperature: float = Field(2.0, gt=0)
    """With a teacher: softmax temperature of the soft labels (Hinton et al. 2015)."""


class GateOptions(Options):
    """What a candidate must reach on the run's own split to be blessed (slices have their own
    bars in `EvaluationOptions`)."""

    primary_metric: str = "macro_f1"
    min_accuracy: float = Field(0.75, ge=0, le=1)
    min_macro_f1: float = Field(0.70, ge=0, le=1)
    tolerance: float = Field(0.01, ge=0, le=1)
    """How far below the champion's primary metric a candidate may fall and still be blessed."""


class ExplainerOptions(Options):
    """The amortized explainer of a model version (`sesame explainer train`): its recipe
    defaults and the fidelity floors it must clear to be blessed."""

    min_spearman: float = Field(0.80, ge=-1, le=1)
    """Mean per-sentence Spearman rank correlation with the reference word values."""
    min_top1: float = Field(0.80, ge=0, le=1)
    """Share of sentences whose strongest word (by |value|) is the reference's."""
    min_top3: float = Field(0.75, ge=0, le=1)
    """Mean share of the reference's three strongest words among the explainer's three."""
    reference_set: Path = REPORTS_DEV
    """Held-out report sentences (a text,label file; labels unused) the fidelity is measured on;
    they are kept out of the explainer's training sentences."""
    reference_evals: int = Field(2000, ge=2)
    """Model evaluations per reference sentence: sampled Owen values at a high budget (on 10
    report sentences, 1,000 agreed with 2,000 at Spearman 0.99, top-1 1.0)."""
    evals_per_word: float = Field(3.0, gt=0)
    """Budget of the training targets: 2 + evals_per_word x the sentence's word count (3: about
    1 s a sentence on 2 cores, the cost that keeps a 2,000-sentence run near 45 minutes)."""
    max_sentences: int | None = Field(None, gt=0)
    """Train on at most this many unlabelled sentences (a seeded sample); None: all."""
    seed: int = 13


class StoreOptions(Options):
    """Where results, runs and reviews are kept."""

    url: str | None = None
    """SQLAlchemy URL; None means a SQLite file in the data directory."""


class UIOptions(Options):
    """The review screen: who may log in and what may be uploaded."""

    login: Literal["auto", "users", "oidc"] = "auto"
    """users: the users file; oidc: Streamlit's built-in login (an [auth] section in
    .streamlit/secrets.toml); auto: oidc when that section exists, else the users file."""
    users_file: Path | None = None
    """TOML file of users with bcrypt password hashes; None: users.toml in the data directory."""
    oidc_provider: str | None = None
    """The [auth.NAME] provider st.login uses when several are configured."""
    max_upload_mb: int = Field(50, gt=0)
    """Uploads larger than this are refused with a message (each file)."""
    max_pages: int = Field(500, gt=0)
    """Uploads with more pages than this are refused with a message; larger reports go through
    `sesame analyze` or the batch."""
    login_max_failures: int = Field(5, ge=1)
    """Failed sign-ins for one user name (in this server process) before it is locked out."""
    login_lockout_s: float = Field(60.0, gt=0)
    """The first lock-out; each further failure while locked doubles it, up to 15 minutes. A
    successful sign-in clears the count."""


class BatchOptions(Options):
    """How the nightly batch runs its documents (`sesame batch run`, `python -m batch.nightly`).

    The folders, run id and client of one batch are arguments of the run, not settings.
    """

    executor: Literal["ray", "local"] = "ray"
    """ray: Ray actors (a local instance, or the cluster at `address`); local: this process."""
    address: str | None = None
    """Ray cluster address; None: `RAY_ADDRESS`, else a new local Ray instance."""
    workers: int | None = Field(None, gt=0)
    """Actors to start; None: one per `cpus_per_worker` CPUs of the cluster."""
    cpus_per_worker: float = Field(1.0, gt=0)
    """CPUs (and torch threads) per worker; the local executor uses as many threads."""
    num_cpus: int | None = Field(None, gt=0)
    """CPUs of a new local Ray instance; None: all of this machine's."""
    pages_per_part: int = Field(50, ge=0)
    """Documents longer than this are analyzed in page-range parts; 0 never splits."""
    max_attempts: int = Field(2, ge=1)
    """Tries per part when its worker dies; then the document is recorded as failed."""
    task_timeout_s: float | None = Field(None, gt=0)
    """Stop a worker whose part runs longer than this (then retried, as if it had died)."""
    progress_every_s: float = Field(30.0, gt=0)
    """When the console is not a terminal (cron, Ray Jobs): a progress line this often."""
    monitor: bool = True
    """Test each run's new sentences for drift against the model's reference (a warning)."""
    compare_previous: bool = False
    """Compare each new filing with the client's previous one in the store (`app.compare`)."""


class CompareOptions(Options):
    """How two years of a client's reports are compared (`sesame compare`, the Compare page)."""

    edit_similarity: float = Field(0.5, gt=0, lt=1)
    """Sentences left unmatched after the exact pass pair up as edited at or above this share
    of common words (figures and dates aside; 2 x common / all). At 0.5 the prior sentence
    survives whole in a current one up to three times its length, or half the words of two
    sentences of one length are common. Chosen on a hand-annotated pair and checked on a
    second one (benchmarks/bench_compare.py: 0.5 beat 0.6 on both)."""
    heading_similarity: float = Field(0.85, gt=0, le=1)
    """Headings outside the recognised section types align between the years at or above this
    token-sort similarity."""
    tone_kinds: tuple[
        Literal["sentence", "heading", "list_item", "table_row", "furniture"], ...
    ] = ("sentence", "list_item")
    """Kinds of text counted in tone and in the findings (as `app.records.TONE_KINDS` on one
    report); headings are aligned, never scored; table rows and page furniture are left out."""
    bootstrap: int = Field(2000, ge=100)
    """Bootstrap resamples for the 95% intervals."""
    seed: int = 0
    """Seed of the bootstrap (the same inputs give the same intervals)."""
    min_sentences: int = Field(5, ge=1)
    """A section's tone counts as moved only when both years have this many scored sentences."""
    top: int = Field(25, gt=0)
    """Findings listed per kind on the console and the review screen (outputs keep all)."""


class DriftThresholds(Options):
    """When a test counts as drift. Defaults calibrated by benchmarks/bench_monitoring.py."""

    label_psi: float = Field(0.2, gt=0)
    """PSI of predicted-label shares; > 0.2 is the customary "act" band. Benchmark: random
    halves and new reports stay below 0.09, a strong label-mix shift reaches 0.58 and more."""
    language_psi: float = Field(0.5, gt=0)
    """PSI of language shares. langdetect misreads short texts (tweets reach 0.36), so the bar
    sits where a real share of another language starts (20% Dutch is about 0.9)."""
    wasserstein: float = Field(0.75, gt=0)
    """Wasserstein distance of a descriptor in reference standard deviations. Benchmark: random
    halves stay below 0.21 and new reports below 0.65 (a 10-Q's numbers); tweets and headlines
    move length or split share by 1 to 2.8."""
    confidence_wasserstein: float = Field(0.5, gt=0)
    """The same for the top-class confidence: under 0.16 on random halves and new reports."""
    domain_auc: float = Field(0.95, gt=0.5, le=1)
    """Cross-validated ROC AUC of a classifier telling current from reference sentences.
    Benchmark: random halves 0.57 at most, another company's report 0.71-0.83, tweets and
    headlines 0.98 and more."""
    alpha: float = Field(0.01, gt=0, lt=1)
    """The p-value a test must also beat, so that noise in small runs is not called drift."""
    min_sentences: int = Field(30, ge=2)
    """Runs with fewer sentences are reported as too small to test, not as drift."""
    gating: tuple[str, ...] = (
        "label_shares",
        "language",
        "confidence",
        "n_words",
        "split_share",
        "numeric_share",
        "domain_classifier",
    )
    """Tests whose drift makes the whole report drifted (others are shown for information)."""


class SignoffOptions(Options):
    """Sign-off rules an audit firm sets: what must hold before a document is signed off."""

    min_reviewed_share: float = Field(1.0, ge=0, le=1)
    """Share of flagged sentences (model label positive or negative) that need a decision."""
    no_open_disputes: bool = True
    """No sentence may be disputed (its reviewers' latest labels differ) at sign-off."""
    resign_after_decisions: bool = True
    """A sentence decision recorded after a sign-off supersedes it: sign off again."""
    on_breach: Literal["refuse", "exception"] = "refuse"
    """refuse: a sign-off that breaks a rule is not recorded (the reason is shown);
    exception: it is recorded as an exception, which needs a comment."""


class Settings(BaseSettings):
    """Everything configurable, resolved from environment, file and defaults."""

    model_config = SettingsConfigDict(
        env_prefix="SESAME_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path.home() / ".sesame"
    """Home of the results store, the MLflow database and artifacts, caches."""
    mlflow_tracking_uri: str | None = None
    """None: `MLFLOW_TRACKING_URI` if set, else SQLite under `data_dir`."""
    ingest: IngestOptions = IngestOptions()
    sentences: SentenceOptions = SentenceOptions()
    scoring: ScoringOptions = ScoringOptions()
    explain: ExplainOptions = ExplainOptions()
    train: TrainOptions = TrainOptions()
    gate: GateOptions = GateOptions()
    explainer: ExplainerOptions = ExplainerOptions()
    evaluation: EvaluationOptions = EvaluationOptions()
    store: StoreOptions = StoreOptions()
    ui: UIOptions = UIOptions()
    batch: BatchOptions = BatchOptions()
    drift: DriftThresholds = DriftThresholds()
    compare: CompareOptions = CompareOptions()
    signoff: SignoffOptions = SignoffOptions()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then environment, then the TOML file, then defaults."""
        toml_file = Path(os.environ.get("SESAME_CONFIG", "sesame.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    def tracking_uri(self) -> str:
        """The MLflow tracking URI in force."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    def artifact_root(self) -> str:
        """Where MLflow keeps artifacts when sesame owns the tracking store."""
        return (self.data_dir / "mlartifacts").resolve().as_uri()

    def store_url(self) -> str:
        """The results-store URL in force."""
        return self.store.url or f"sqlite:///{(self.data_dir / 'results.db').resolve()}"

    def ensure_dirs(self) -> None:
        """Create the data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: object) -> Settings:
    """Resolve settings from environment, file and defaults, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
