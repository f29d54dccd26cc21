"""Login for the review UI: users from the users file (bcrypt), or Streamlit's built-in OIDC.

`current_user()` is the signed-in user or None; `login_screen()` draws the sign-in. The user's
`signature` is recorded on every review action.

- users (the default without an identity provider): a login form checked against the users
  file (`sesame users add NAME`); the login lasts for the browser session.
- oidc: `st.login()` against the identity provider in the `[auth]` section of
  `.streamlit/secrets.toml` (the firm's SSO); the user's name and e-mail come from the token.
"""

from __future__ import annotations

import logging
from typing import Literal

import streamlit as st

from app.config import Settings
from app.errors import SesameError
from app.ui.markdown import esc
from app.ui.users import User, load_users, users_path, verify

_log = logging.getLogger(__name__)

USER_KEY = "sesame_user"
"""Where the signed-in user (a `User`) is kept in the session state."""


def oidc_configured() -> bool:
    """Whether `.streamlit/secrets.toml` has an [auth] section for st.login."""
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except Exception:  # an unreadable secrets file means: not configured
        return False


def login_mode(settings: Settings) -> Literal["users", "oidc"]:
    """The login in force: `ui.login`, with auto meaning oidc when configured, else users."""
    if settings.ui.login == "auto":
        return "oidc" if oidc_configured() else "users"
    return settings.ui.login


def current_user() -> User | None:
    """The signed-in user of this session, if any."""
    user = st.session_state.get(USER_KEY)
    if user is not None:
        return user
    if oidc_configured() and st.user.is_logged_in:
        login = str(st.user.get("email") or st.user.get("sub") or "unknown")
        return User(login=login, name=str(st.user.get("name") or login), source="oidc")
    return None


def logout() -> None:
    """End the session's login (and the OIDC cookie when that is how the user came in)."""
    user = st.session_state.pop(USER_KEY, None)
    if user is None and oidc_configured() and st.user.is_logged_in:
        st.logout()


def login_screen(settings: Settings) -> None:
    """The sign-in screen: a password form, or the identity provider's button."""
    st.title("sesame: sign in")
    st.caption(
        "Sentence sentiment with evidence for financial reports. Sign in to analyze "
        "reports and record reviews; your name is written on every review action."
    )
    if login_mode(settings) == "oidc":
        _oidc_login(settings)
    else:
        _password_login(settings)


def _oidc_login(settings: Settings) -> None:
    provider = settings.ui.oidc_provider
    if settings.ui.login == "oidc" and not oidc_configured():
        st.error(
            "Login is set to oidc, but .streamlit/secrets.toml has no [auth] section. Add "
            "the identity provider there (see Streamlit's st.login), or set "
            "SESAME_UI__LOGIN=users."
        )
        return
    if st.button("Sign in with your organisation's account", type="primary"):
        if provider:
            st.login(provider)
        else:
            st.login()


def _password_login(settings: Settings) -> None:
    path = users_path(settings)
    try:
        users = load_users(path)
    except SesameError as e:
        st.error(e.message)
        return
    if not users:
        st.warning(
            f"No users are set up yet. An administrator adds one on the server with "
            f"`sesame users add NAME` (users file: `{esc(path)}`)."
        )
        return
    with st.form("login", clear_on_submit=False):
        login = st.text_input("User name", key="login_name", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        user = verify(path, login, password) if login and password else None
        if user is None:
            _log.warning("failed sign-in for %r", login)
            st.error("The user name or password is wrong.")
            return
        st.session_state[USER_KEY] = user
        _log.info("%s signed in", user.login)
        st.rerun()
