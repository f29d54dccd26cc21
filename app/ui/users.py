"""Review-UI users kept in a TOML file with bcrypt password hashes (no Streamlit here).

The file is written by `sesame users add` and read by the login form:

    # sesame review UI users (bcrypt hashes); edit with `sesame users add/remove`.
    [users."alice"]
    name = "Alice Auditor"
    password_hash = "$2b$12$..."

Only hashes are stored. The file is written atomically with owner-only permissions. A login
name is what a user types; `User.signature` ("Alice Auditor (alice)") is what every review
action records.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import bcrypt

from app.config import Settings
from app.errors import SesameError

_log = logging.getLogger(__name__)

LOGIN_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD_CHARS = 8
DEFAULT_ROUNDS = 12


class UsersFileError(SesameError):
    """The users file is missing, unreadable or malformed; the message says which and how."""

    stage = "store"
    code = "users_file"


@dataclass(frozen=True)
class User:
    """A logged-in person: their login, display name and how they logged in."""

    login: str
    name: str
    source: Literal["users", "oidc"] = "users"

    @property
    def signature(self) -> str:
        """What review actions record as the reviewer: "Alice Auditor (alice)"."""
        return self.login if self.name in ("", self.login) else f"{self.name} ({self.login})"


@dataclass(frozen=True)
class UserEntry:
    """One user as stored: display name and bcrypt hash."""

    login: str
    name: str
    password_hash: str


def users_path(settings: Settings) -> Path:
    """The users file in force: `ui.users_file`, else users.toml in the data directory."""
    return settings.ui.users_file or settings.data_dir / "users.toml"


def load_users(path: Path) -> dict[str, UserEntry]:
    """The users of a users file; an absent file has none."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsersFileError(
            f"{path}: the users file cannot be read ({e}). Fix it, or move it away and add "
            "users again with `sesame users add NAME`."
        ) from e
    users: dict[str, UserEntry] = {}
    for login, entry in (data.get("users") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("password_hash"), str):
            raise UsersFileError(
                f"{path}: user {login!r} has no password_hash. Set one with "
                f"`sesame users add {login}`."
            )
        users[login] = UserEntry(
            login=login, name=str(entry.get("name") or login), password_hash=entry["password_hash"]
        )
    return users


@functools.cache
def _dummy_hash() -> bytes:
    # Checked against when the login name is unknown, so that a wrong name takes as long as a
    # wrong password and does not reveal which names exist.
    return bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=DEFAULT_ROUNDS))


def _toml_string(value: str) -> str:
    # JSON's string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _write_users(path: Path, users: dict[str, UserEntry]) -> None:
    lines = ["# sesame review UI users (bcrypt hashes); edit with `sesame users add/remove`.", ""]
    for login in sorted(users):
        entry = users[login]
        lines += [
            f"[users.{_toml_string(login)}]",
            f"name = {_toml_string(entry.name)}",
            f"password_hash = {_toml_string(entry.password_hash)}",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UsersFileError(f"{path}: the users file could not be written ({e}).") from e


def add_user(
    path: Path, login: str, password: str, *, name: str | None = None, rounds: int = DEFAULT_ROUNDS
) -> UserEntry:
    """Add a user, or set the password and name of an existing one; returns the entry."""
    if not LOGIN_PATTERN.fullmatch(login):
        raise UsersFileError(
            f"{login!r} is not a login name: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit."
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsersFileError(f"The password must have at least {MIN_PASSWORD_CHARS} characters.")
    users = load_users(path)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    display = (name or (users[login].name if login in users else login)).strip() or login
    users[login] = UserEntry(login=login, name=display, password_hash=hashed)
    _write_users(path, users)
    _log.info("user %s written to %s", login, path)
    return users[login]


def remove_user(path: Path, login: str) -> bool:
    """Remove a user; returns whether they existed."""
    users = load_users(path)
    if users.pop(login, None) is None:
        return False
    _write_users(path, users)
    return True


def verify(path: Path, login: str, password: str) -> User | None:
    """The user when the login and password match the users file, else None."""
    entry = load_users(path).get(login.strip())
    hashed = entry.password_hash.encode() if entry else _dummy_hash()
    try:
        ok = bcrypt.checkpw(password.encode(), hashed)
    except ValueError:  # a malformed hash in the file: no login, and say so in the log
        _log.error("users file %s: the password hash of %r is malformed", path, login)
        ok = False
    if not ok or entry is None:
        return None
    return User(login=entry.login, name=entry.name, source="users")
