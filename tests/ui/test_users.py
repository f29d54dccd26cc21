"""Review-UI users: the bcrypt users file and the `sesame users` commands."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli import users as cli_users
from app.ui.users import (
    User,
    UsersFileError,
    add_user,
    load_users,
    remove_user,
    users_path,
    verify,
)


def test_added_user_signs_in_with_the_password_and_only_the_hash_is_stored(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "alice", "correct horse", name="Alice Auditor", rounds=4)
    text = path.read_text()
    assert "correct horse" not in text
    assert "$2b$04$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    user = verify(path, "alice", "correct horse")
    assert user == User(login="alice", name="Alice Auditor", source="users")
    assert user.signature == "Alice Auditor (alice)"


def test_wrong_password_or_unknown_user_does_not_sign_in(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "alice", "correct horse", rounds=4)
    assert verify(path, "alice", "wrong horse") is None
    assert verify(path, "mallory", "correct horse") is None
    assert verify(tmp_path / "absent.toml", "alice", "correct horse") is None


def test_adding_again_changes_the_password_and_keeps_the_name(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "alice", "first password", name="Alice Auditor", rounds=4)
    add_user(path, "alice", "second password", rounds=4)
    assert verify(path, "alice", "first password") is None
    assert verify(path, "alice", "second password").name == "Alice Auditor"


def test_names_with_quotes_and_unicode_survive_the_toml_file(tmp_path):
    path = tmp_path / "users.toml"
    name = 'Jörg "JJ" O\'Neil \\ [audit]'
    add_user(path, "j.oneil@firm.example", "long enough", name=name, rounds=4)
    assert load_users(path)["j.oneil@firm.example"].name == name
    assert verify(path, "j.oneil@firm.example", "long enough").name == name


@pytest.mark.parametrize("login", ["", "a b", "../etc", "x" * 65, "-dash"])
def test_bad_login_names_are_refused_with_a_message(tmp_path, login):
    with pytest.raises(UsersFileError, match="not a login name"):
        add_user(tmp_path / "users.toml", login, "long enough", rounds=4)


def test_short_password_is_refused(tmp_path):
    with pytest.raises(UsersFileError, match="at least 8 characters"):
        add_user(tmp_path / "users.toml", "alice", "short", rounds=4)


def test_malformed_users_file_says_how_to_fix_it(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text("[users.alice\nname = 'x'\n")
    with pytest.raises(UsersFileError, match="cannot be read"):
        load_users(path)
    path.write_text("[users.alice]\nname = 'Alice'\n")
    with pytest.raises(UsersFileError, match="sesame users add alice"):
        load_users(path)


def test_remove_user(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "alice", "long enough", rounds=4)
    add_user(path, "bob", "long enough", rounds=4)
    assert remove_user(path, "alice") is True
    assert remove_user(path, "alice") is False
    assert list(load_users(path)) == ["bob"]


def test_users_file_defaults_to_the_data_directory(_isolated_data_dir):
    from app.config import load_settings

    assert users_path(load_settings()) == Path(_isolated_data_dir) / "users.toml"


def _cli() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Root."""

    cli_users.register(root)
    return root


def test_cli_adds_lists_and_removes_users(_isolated_data_dir):
    runner = CliRunner()
    app = _cli()
    added = runner.invoke(
        app,
        ["users", "add", "alice", "--name", "Alice Auditor", "--password-stdin"],
        input="correct horse\n",
    )
    assert added.exit_code == 0, added.output
    path = Path(_isolated_data_dir) / "users.toml"
    assert verify(path, "alice", "correct horse").name == "Alice Auditor"
    listed = runner.invoke(app, ["users", "list"])
    assert "alice\tAlice Auditor" in listed.output
    refused = runner.invoke(app, ["users", "add", "bob", "--password-stdin"], input="short\n")
    assert refused.exit_code == 2
    assert "at least 8 characters" in refused.output
    assert runner.invoke(app, ["users", "remove", "alice"]).exit_code == 0
    assert runner.invoke(app, ["users", "remove", "alice"]).exit_code == 1
