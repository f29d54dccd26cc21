"""Models page: registry versions, the champion, metrics, each version's model card and lineage."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from app.config import Settings
from app.ui.common import SETTINGS_HASH, esc, get_settings, model_identity
from models.registry import VersionInfo, describe, lineage, list_versions, read_card, render_card

_log = logging.getLogger(__name__)

VERSION_KEY = "models_version"


@st.cache_data(show_spinner="Reading the model registry…", ttl=30, hash_funcs=SETTINGS_HASH)
def registry_versions(settings: Settings) -> list[dict[str, Any]]:
    """Every registered version of the scoring model, newest first (as plain data)."""

    return [v.model_dump() for v in list_versions(settings, settings.scoring.model)]


@st.cache_data(show_spinner=False, ttl=600, hash_funcs=SETTINGS_HASH)
def version_card(settings: Settings, run_id: str | None, model_dir: str | None) -> dict | None:
    """A version's card.json: from its run's artifacts (small), or from a local directory."""

    if model_dir:
        return read_card(Path(model_dir))
    if not run_id:
        return None
    import mlflow.artifacts

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path="card.json",
                dst_path=tmp,
                tracking_uri=settings.tracking_uri(),
            )
        except Exception as e:  # no card logged with this run
            _log.info("no card.json with run %s: %s", run_id, e)
            return None
        return json.loads(Path(local).read_text(encoding="utf-8"))


def _metrics_line(card: dict | None, tags: dict[str, str]) -> str:
    metrics = ((card or {}).get("evaluation") or {}).get("metrics") or {}
    parts = []
    for key, name in (
        ("accuracy", "accuracy"),
        ("macro_f1", "macro-F1"),
        ("calibration_error", "calibration error"),
        ("n", "evaluated on"),
    ):
        value = metrics.get(key, tags.get(key))
        if value not in (None, ""):
            parts.append(f"{name} {value}")
    return " · ".join(parts) or "no evaluation metrics recorded"


def _show_card(card: dict | None, tags: dict[str, str], info: Any = None) -> None:

    st.markdown(f"**Metrics:** {esc(_metrics_line(card, tags))}")
    if tags.get("blessed") or (card or {}).get("blessing"):
        blessed = str(tags.get("blessed", (card or {}).get("blessing", {}).get("blessed")))
        st.markdown(
            "**Blessed by the evaluation gate:** "
            + {"True": "yes", "False": "no"}.get(blessed, esc(blessed))
        )
    if card is None:
        st.info("No model card (card.json) comes with this model.")
        return
    if card.get("commercial_use") is False:
        st.warning("Non-commercial: trained on data whose licence forbids commercial use.")
    card_tab, lineage_tab = st.tabs(["Model card", "Lineage"])
    with card_tab:
        # the card's own headings sit under this page's: two levels down
        st.markdown(re.sub(r"^(#{1,4}) ", r"##\1 ", render_card(card), flags=re.MULTILINE))
    with lineage_tab:
        st.json(lineage(info, card) if info is not None else card, expanded=2)


def render() -> None:
    """The Models page."""
    settings = get_settings()
    st.title("Models")
    identity = model_identity(settings)
    if identity.error:
        st.error(f"No model for new analyses: {esc(identity.error)}")
    else:
        st.markdown(f"New analyses use **{esc(identity.label)}**, from the {identity.origin}.")
        st.caption(f"Weights sha256 {identity.digest}")
    if settings.scoring.model_dir is not None and not identity.error:
        st.info(
            "Scoring is pinned to a local model directory (scoring.model_dir), not to the "
            "registry's champion."
        )
        _show_card(version_card(settings, None, identity.path), {})

    st.subheader(f"Registry: {esc(settings.scoring.model)}")
    try:
        versions = registry_versions(settings)
    except Exception as e:  # a registry server down or a broken database: say so, go on
        _log.exception("registry listing failed")
        st.error(
            f"The model registry at {esc(settings.tracking_uri())} could not be read: "
            f"{esc(type(e).__name__)}: {esc(e)}"
        )
        return
    if not versions:
        st.info(
            "No registered versions yet. `sesame train` trains and registers one; "
            "`sesame models import DIR` registers a local Hugging Face model."
        )
        return

    infos = [VersionInfo.model_validate(v) for v in versions]
    champion = next((v for v in infos if "champion" in v.aliases), None)
    if champion is not None:
        st.markdown(
            f"Champion: **version {esc(champion.version)}** (sha256 "
            f"{esc(champion.tags.get('sha256', '')[:12])}…), the version new analyses "
            "use unless pinned."
        )
    else:
        st.warning("No version holds the champion alias: new analyses cannot resolve a model.")
    st.dataframe(describe(infos), hide_index=True, width="stretch")
    by_version = {v.version: v for v in infos}
    default = champion.version if champion else infos[0].version
    if VERSION_KEY not in st.session_state or st.session_state[VERSION_KEY] not in by_version:
        st.session_state[VERSION_KEY] = default
    chosen = st.selectbox(
        "Version",
        list(by_version),
        key=VERSION_KEY,
        format_func=lambda v: (
            f"version {v}" + (" (champion)" if "champion" in by_version[v].aliases else "")
        ),
    )
    info = by_version[chosen]
    st.caption(
        f"Registered {esc(info.created)} · run {esc(info.run_id or 'none')} · origin "
        f"{esc(info.tags.get('origin', 'unknown'))}"
    )
    _show_card(version_card(settings, info.run_id, None), info.tags, info)


if __name__ == "__main__":
    render()
