"""The `sesame` command: analyze reports, train and manage models, run batches, monitor drift."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sesame",
    help="Financial-report sentiment for auditors: PDFs in, evidence-backed Excel workpapers out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Financial-report sentiment for auditors: PDFs in, evidence-backed Excel workpapers out."""


@app.command()
def version() -> None:
    """Print sesame's version and git commit."""
    from app.version import git_commit, package_version

    typer.echo(f"sesame {package_version()} ({git_commit() or 'no git commit'})")


def _mount() -> None:
    """Attach every command group. Each group lives beside the code it drives."""
    from app import cli_analyze, cli_batch, cli_models, cli_monitor

    cli_analyze.register(app)
    cli_models.register(app)
    cli_batch.register(app)
    cli_monitor.register(app)


_mount()


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
