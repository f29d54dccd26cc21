"""The `sesame` command: analyze reports, train and manage models, run batches, monitor drift.

| module | commands |
|---|---|
| `analyze` | `sesame analyze` (and the options it shares with `batch run`) |
| `compare` | `sesame compare` (this year's report against last year's) |
| `batch` | `sesame batch run`, `sesame batch status` |
| `models` | `sesame train`, `sesame evaluate`, `sesame models ...` |
| `explainer` | `sesame explainer train`, `evaluate`, `show` (the amortized explainer) |
| `monitor` | `sesame monitor ...` |
| `users` | `sesame users ...` (logins of the review screen) |

The top of the layers: commands parse options into `Settings` and call the run service, the
training pipeline, the registry and monitoring; no command decides how a document is analyzed.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from app.cli import analyze, batch, compare, explainer, models, monitor, users
from app.version import git_commit, package_version

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
    typer.echo(f"sesame {package_version()} ({git_commit() or 'no git commit'})")


def _mount() -> None:
    """Attach every command group (one module of this package each)."""
    analyze.register(app)
    compare.register(app)
    models.register(app)
    explainer.register(app)
    batch.register(app)
    monitor.register(app)
    users.register(app)


_mount()


def main() -> None:
    """Console entry point."""
    app()
