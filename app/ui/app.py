"""The review UI's frame: page setup, sign-in, navigation and the sidebar footer.

Each page is a module of this package that is also a Streamlit page script (`render()` runs
when Streamlit executes the file as `__main__`), so tests import the helpers of a page without
running it, and AppTest switches between pages by file.
"""

from __future__ import annotations

import logging

import streamlit as st

from app.ui import auth
from app.ui.common import (
    PAGE_ANALYZE,
    PAGE_COMPARE,
    PAGE_MODELS,
    PAGE_MONITORING,
    PAGE_REVIEW,
    PAGE_RUNS,
    get_settings,
    sidebar_footer,
)

_log = logging.getLogger(__name__)


def pages() -> dict[str, list[st.Page]]:
    """The navigation: document work first, then the model side."""
    return {
        "Documents": [
            st.Page(
                PAGE_ANALYZE,
                title="Analyze",
                icon=":material/upload_file:",
                url_path="analyze",
                default=True,
            ),
            st.Page(PAGE_REVIEW, title="Review", icon=":material/rule:", url_path="review"),
            st.Page(
                PAGE_COMPARE, title="Compare", icon=":material/compare_arrows:", url_path="compare"
            ),
            st.Page(PAGE_RUNS, title="Runs", icon=":material/history:", url_path="runs"),
        ],
        "Model": [
            st.Page(
                PAGE_MODELS, title="Models", icon=":material/model_training:", url_path="models"
            ),
            st.Page(
                PAGE_MONITORING,
                title="Monitoring",
                icon=":material/monitor_heart:",
                url_path="monitoring",
            ),
        ],
    }


def main() -> None:
    """Run one pass of the app: sign-in gate, sidebar, the chosen page."""
    st.set_page_config(page_title="sesame review", page_icon=":material/fact_check:", layout="wide")
    settings = get_settings()
    user = auth.current_user()
    # The pages are registered before sign-in too, so that a link to a page (/review?result=3)
    # leads there once the user has signed in.
    page = st.navigation(pages(), position="sidebar" if user else "hidden")
    if user is None:
        auth.login_screen(settings)
        return
    sidebar_footer(settings, user.signature)
    page.run()
