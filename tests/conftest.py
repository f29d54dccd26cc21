"""Shared fixtures: an isolated data directory, offline Hugging Face, a tiny model, PDFs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# No code path may reach a model hub; tests prove it by running offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
DATA = SHARED / "data"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own sesame data directory; nothing touches ~/.sesame."""
    data_dir = tmp_path_factory.mktemp("sesame-data")
    monkeypatch.setenv("SESAME_DATA_DIR", str(data_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SESAME_CONFIG", raising=False)
    # The default evaluation slices and drift-reference reports live in ../shared; tests that
    # need slices or report sentences generate their own, so the suite never depends on it.
    monkeypatch.setenv("SESAME_EVALUATION__SLICES", "[]")
    monkeypatch.setenv("SESAME_EVALUATION__REFERENCE_REPORTS", str(data_dir / "no-reports"))
    return data_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real sequence-classification model, trained once per session (a few seconds)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_model_with_explainer(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the tiny model shipping a blessed tiny explainer for its weights (seconds)."""
    from tiny_model import build_tiny_explainer

    return build_tiny_explainer(tiny_model_dir, tmp_path_factory.mktemp("with-explainer"))


@pytest.fixture
def corpus() -> Path:
    """The shared corpus of real reports; tests that need it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present on this machine")
    return CORPUS


@pytest.fixture
def shared_data() -> Path:
    """The shared labelled data; tests that need it skip when it is absent."""
    if not DATA.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return DATA
