"""What every page shares: settings, the store and the model (loaded once per process), the
sidebar footer with the model version, and escaping of document text for Markdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.config import Settings, load_settings
from app.errors import ModelError, SesameError
from app.pipeline import Analyzer
from app.store import ResultStore
from app.ui import auth
from app.ui.markdown import esc
from app.ui.tables import model_label
from app.version import git_commit, package_version
from models.registry import resolve_model

_log = logging.getLogger(__name__)

SETTINGS_HASH: dict[str | type[Any], Callable[[Any], Any]] = {
    Settings: lambda s: s.model_dump_json()
}

PAGE_ANALYZE = "app/ui/pages_analyze.py"
PAGE_REVIEW = "app/ui/pages_review.py"
PAGE_COMPARE = "app/ui/pages_compare.py"
PAGE_RUNS = "app/ui/pages_runs.py"
PAGE_MODELS = "app/ui/pages_models.py"
PAGE_MONITORING = "app/ui/pages_monitoring.py"
"""Page scripts, relative to streamlit_app.py (for st.switch_page)."""


def get_settings() -> Settings:
    """Settings as resolved now (environment, sesame.toml, defaults)."""
    return load_settings()


@st.cache_resource(show_spinner=False, max_entries=4)
def store_at(url: str) -> ResultStore:
    """The results store at a URL, schema created (one engine per URL for the whole server)."""

    store = ResultStore(url)
    store.create_schema()
    return store


def get_store(settings: Settings) -> ResultStore:
    """The results store (one engine per URL for the whole server)."""
    return store_at(settings.store_url())


@dataclass(frozen=True)
class ModelIdentity:
    """Which model new analyses use, or why none can be loaded."""

    name: str = ""
    version: str | None = None
    digest: str = ""
    origin: str = ""
    """"registry" or "local directory"."""
    path: str = ""
    error: str | None = None

    @property
    def label(self) -> str:
        """The model as every page names it."""
        return model_label(self.name, self.version, self.digest) if not self.error else ""


@st.cache_resource(show_spinner=False, ttl=60, max_entries=4, hash_funcs=SETTINGS_HASH)
def model_identity(settings: Settings) -> ModelIdentity:
    """The model the settings resolve to now (re-checked every minute: the champion may move)."""

    try:
        model = resolve_model(settings)
    except SesameError as e:
        return ModelIdentity(error=e.message)
    except Exception as e:  # the registry itself failed (a server down, a broken database)
        _log.exception("model resolution failed")
        return ModelIdentity(error=f"The model registry could not be read: {type(e).__name__}: {e}")
    origin = "local directory" if settings.scoring.model_dir is not None else "registry"
    return ModelIdentity(
        name=model.name,
        version=model.version,
        digest=model.digest,
        origin=origin,
        path=str(model.path),
    )


@dataclass
class LoadedAnalyzer:
    """The analyzer and the lock that lets one session at a time use it."""

    analyzer: Analyzer
    lock: threading.Lock


@st.cache_resource(show_spinner=False, max_entries=2, hash_funcs=SETTINGS_HASH)
def _analyzer(settings: Settings, digest: str) -> LoadedAnalyzer:

    _log.info("loading the analyzer (model sha256 %s)", digest[:12])
    return LoadedAnalyzer(Analyzer.from_settings(settings), threading.Lock())


def get_analyzer(settings: Settings) -> LoadedAnalyzer:
    """The analyzer for the model the settings resolve to, loaded once per server process.

    Keyed by the model's digest as well, so a new champion is picked up within a minute.
    Raises SesameError when no model can be loaded.
    """
    identity = model_identity(settings)
    if identity.error:
        raise ModelError(identity.error)
    return _analyzer(settings, identity.digest)


def sidebar_footer(settings: Settings, signature: str) -> None:
    """The sidebar's foot on every page: who is signed in, the model in use, the code version."""

    with st.sidebar:
        st.caption(f"Signed in as **{esc(signature)}**")
        st.button("Log out", key="logout", on_click=auth.logout, type="tertiary")
        identity = model_identity(settings)
        if identity.error:
            st.caption(f"Model for new analyses: **not available**. {esc(identity.error)}")
        else:
            st.caption(
                f"Model for new analyses: **{esc(identity.label)}**, from the {identity.origin}"
            )
        commit = git_commit()
        st.caption(
            f"sesame {esc(package_version())}" + (f" · commit {esc(commit[:8])}" if commit else "")
        )


def flash(key: str) -> None:
    """Show, once, a message a callback left under `key` in the session state."""
    message = st.session_state.pop(key, None)
    if not message:
        return
    kind, text = message
    {"success": st.success, "warning": st.warning, "error": st.error, "info": st.info}.get(
        kind, st.info
    )(esc(text))
