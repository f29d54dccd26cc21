"""The `sesame` command: analyze reports, train and manage models, run batches, monitor drift."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

app = typer.Typer(
    name="sesame",
    help="Financial-report sentiment for auditors: PDFs in, evidence-backed Excel workpapers out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Offline by design (models load from local directories only) and quiet by default: library
# progress bars and INFO chatter would drown sesame's own progress and messages.
_QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_ENABLE_TELEMETRY": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
}


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what happens inside.")
    ] = False,
) -> None:
    """Financial-report sentiment for auditors: PDFs in, evidence-backed Excel workpapers out."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mlflow", "alembic", "transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


@app.command()
def version() -> None:
    """Print sesame's version and git commit."""
    from app.version import git_commit, package_version

    typer.echo(f"sesame {package_version()} ({git_commit() or 'no git commit'})")


def _mount() -> None:
    """Attach every command group. Each group lives beside the code it drives."""
    from app import cli_analyze, cli_batch, cli_models, cli_monitor
    from app.ui import cli_users

    cli_analyze.register(app)
    cli_models.register(app)
    cli_batch.register(app)
    cli_monitor.register(app)
    cli_users.register(app)


_mount()


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
