"""`sesame users`: who may log in to the review UI (a TOML file of bcrypt hashes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from app.config import load_settings
from app.errors import SesameError
from app.ui.users import add_user, load_users, remove_user, users_path

users_app = typer.Typer(
    help="Review-UI users: add, list and remove logins (passwords are stored as bcrypt hashes).",
    no_args_is_help=True,
)


def _path() -> Path:

    return users_path(load_settings())


@users_app.command("add")
def add(
    login: Annotated[str, typer.Argument(help="Login name (letters, digits, . _ @ -).")],
    name: Annotated[
        str | None,
        typer.Option(
            help="Display name recorded on reviews, e.g. 'Alice Auditor'.", show_default=False
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input (for scripts)."
        ),
    ] = False,
) -> None:
    """Add a user, or set a new password (and name) for an existing one."""

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    path = _path()
    try:
        entry = add_user(path, login, password, name=name)
    except SesameError as e:
        typer.echo(e.message, err=True)
        raise typer.Exit(2) from e
    typer.echo(f"user {entry.login} ({entry.name}) saved in {path}")


@users_app.command("list")
def list_users() -> None:
    """List the users who may log in."""

    path = _path()
    users = load_users(path)
    if not users:
        typer.echo(f"no users in {path}; add one with `sesame users add NAME`")
        return
    for entry in users.values():
        typer.echo(f"{entry.login}\t{entry.name}")


@users_app.command("remove")
def remove(login: Annotated[str, typer.Argument(help="Login name to remove.")]) -> None:
    """Remove a user (their past review actions stay in the store)."""

    path = _path()
    if not remove_user(path, login):
        typer.echo(f"no user {login} in {path}", err=True)
        raise typer.Exit(1)
    typer.echo(f"user {login} removed from {path}")


def register(app: typer.Typer) -> None:
    """Attach the `users` command group to the root app."""
    app.add_typer(users_app, name="users")
