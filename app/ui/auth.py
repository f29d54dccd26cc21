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
import threading
import time
from dataclasses import dataclass
from typing import Literal

import streamlit as st

from app.config import Settings
from app.errors import SesameError
from app.ui.markdown import esc
from app.ui.users import User, load_users, users_path, verify

_log = logging.getLogger(__name__)

USER_KEY = "sesame_user"
"""Where the signed-in user (a `User`) is kept in the session state."""
SIGNED_OUT_KEY = "sesame_signed_out"
"""Set on sign-out (after the session state is cleared), so the sign-in screen says so."""
LOGIN_ERROR_KEY = "sesame_login_error"
MAX_LOCKOUT_S = 900.0


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed sign-ins per user name, shared by every session of this server process.

    After `max_failures` failures in a row a name is locked for `lockout_s`; each failure while
    locked (the password is not even checked then) doubles the lock, up to 15 minutes. Names
    are counted whether or not such a user exists, so the lock says nothing about who exists.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, _Failures] = {}

    @staticmethod
    def _key(login: str) -> str:
        return login.strip().casefold()

    def wait_s(self, login: str, now: float | None = None) -> float:
        """Seconds until this name may try again (0: it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._by_name.get(self._key(login))
            return max(0.0, entry.locked_until - now) if entry else 0.0

    def failed(
        self, login: str, max_failures: int, lockout_s: float, now: float | None = None
    ) -> float:
        """Count a failure; the lock it leaves, in seconds (0: not locked yet)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._by_name.setdefault(self._key(login), _Failures())
            entry.count += 1
            over = entry.count - max_failures
            if over < 0:
                return 0.0
            entry.locked_until = now + min(lockout_s * 2.0**over, MAX_LOCKOUT_S)
            return entry.locked_until - now

    def succeeded(self, login: str) -> None:
        with self._lock:
            self._by_name.pop(self._key(login), None)


THROTTLE = LoginThrottle()


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
    """End the session's login (and the OIDC cookie when that is how the user came in).

    The whole session state goes with it: the next person at this browser starts clean, and a
    link opened after signing in again leads where it points, not to the last document open."""
    user = st.session_state.get(USER_KEY)
    st.session_state.clear()
    st.session_state[SIGNED_OUT_KEY] = True
    if user is None and oidc_configured() and st.user.is_logged_in:
        st.logout()


def login_screen(settings: Settings) -> None:
    """The sign-in screen: a password form, or the identity provider's button."""
    st.title("sesame: sign in")
    if st.session_state.get(SIGNED_OUT_KEY):
        st.info("You are signed out. Sign in again to go on.", icon=":material/logout:")
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
        st.text_input("User name", key="login_name", autocomplete="username")
        st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        st.form_submit_button("Sign in", type="primary", on_click=_attempt_login, args=(settings,))
    error = st.session_state.pop(LOGIN_ERROR_KEY, None)
    if error:
        st.error(error)


def _attempt_login(settings: Settings) -> None:
    """The Sign in button's callback (it runs before the page is drawn, so it may empty the
    password field): check the throttle, then the password."""
    login = str(st.session_state.get("login_name") or "").strip()
    password = str(st.session_state.get("login_password") or "")
    st.session_state["login_password"] = ""  # a wrong password never stays in the field
    if not login or not password:
        st.session_state[LOGIN_ERROR_KEY] = "Enter your user name and password."
        return
    ui = settings.ui
    wait = THROTTLE.wait_s(login)
    if wait > 0:
        # locked: the password is not checked, and trying again lengthens the lock
        wait = THROTTLE.failed(login, ui.login_max_failures, ui.login_lockout_s)
        _log.warning("sign-in refused for %r: locked out for %.0f s", login, wait)
        st.session_state[LOGIN_ERROR_KEY] = _locked_message(wait)
        return
    user = verify(users_path(settings), login, password)
    if user is None:
        wait = THROTTLE.failed(login, ui.login_max_failures, ui.login_lockout_s)
        _log.warning("failed sign-in for %r", login)
        st.session_state[LOGIN_ERROR_KEY] = "The user name or password is wrong." + (
            f" {_locked_message(wait)}" if wait else ""
        )
        return
    THROTTLE.succeeded(login)
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.session_state[USER_KEY] = user
    _log.info("%s signed in", user.login)


def _locked_message(wait_s: float) -> str:
    return (
        "Too many failed sign-ins for this user name: it is locked for "
        f"{max(1, round(wait_s))} s. Try again then, or ask an administrator."
    )
