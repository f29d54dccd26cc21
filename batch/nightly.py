"""The nightly entry point: `python -m batch.nightly`, for cron, a systemd timer or Ray Jobs.

It runs `sesame batch run` on the folders named by the environment, so a scheduler line stays
short and the same line works locally and as a Ray Jobs entrypoint. How the batch runs comes
from the settings like every other option (`[batch]` in sesame.toml, `SESAME_BATCH__*`):

| variable | meaning | default |
|---|---|---|
| `SESAME_BATCH_INPUT` | folder of client filings (searched recursively) | required |
| `SESAME_BATCH_OUT` | folder for workpapers, JSON and batch summaries | required |
| `RAY_ADDRESS` | Ray cluster (set by Ray Jobs for its drivers) | a local Ray instance |
| `SESAME_BATCH__<OPTION>` (executor, workers, ...) | `Settings.batch` | settings; 3600 s timeout |
| `SESAME_EXPLAIN__MODE` | `none`, `flagged` or `all` | settings (flagged) |

The older single-underscore names (`SESAME_BATCH_EXECUTOR`, `SESAME_BATCH_WORKERS`,
`SESAME_BATCH_PAGES_PER_PART`, `SESAME_BATCH_TASK_TIMEOUT`, `SESAME_BATCH_EXPLAIN`) still work:
they are read as the settings' names, which win when both are set. Extra command-line
arguments are passed on to `sesame batch run` (they win over everything). The exit status is
`sesame batch run`'s (0 ok, 1 problems, 2 usage, 3 not started, 4 interrupted); the batch
summary and workpaper are titled "Nightly batch <date>".
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from app.cli import app

_log = logging.getLogger(__name__)

LEGACY_NAMES = {
    "SESAME_BATCH_EXECUTOR": "SESAME_BATCH__EXECUTOR",
    "SESAME_BATCH_WORKERS": "SESAME_BATCH__WORKERS",
    "SESAME_BATCH_PAGES_PER_PART": "SESAME_BATCH__PAGES_PER_PART",
    "SESAME_BATCH_TASK_TIMEOUT": "SESAME_BATCH__TASK_TIMEOUT_S",
    "SESAME_BATCH_EXPLAIN": "SESAME_EXPLAIN__MODE",
}
"""Variables of the first nightly entry point -> the settings' own names."""
NIGHT_DEFAULTS = {"SESAME_BATCH__TASK_TIMEOUT_S": "3600"}
"""At night nobody watches: a part stuck for an hour is stopped and retried."""


def nightly_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings variables tonight's run adds to the environment (none it already has)."""
    added: dict[str, str] = {}
    for old, new in LEGACY_NAMES.items():
        if environ.get(old) and not environ.get(new):
            added[new] = environ[old]
    for name, value in NIGHT_DEFAULTS.items():
        if not environ.get(name) and name not in added:
            added[name] = value
    return added


def nightly_args(environ: Mapping[str, str], extra: list[str]) -> list[str]:
    """The `sesame` arguments of tonight's run: its folders, its title, the extra arguments."""
    missing = [v for v in ("SESAME_BATCH_INPUT", "SESAME_BATCH_OUT") if not environ.get(v)]
    if missing:
        raise SystemExit(f"batch.nightly: set {' and '.join(missing)} (see docs/batch.md)")
    return [
        "batch",
        "run",
        environ["SESAME_BATCH_INPUT"],
        "--out",
        environ["SESAME_BATCH_OUT"],
        "--title",
        f"Nightly batch {datetime.now(UTC):%Y-%m-%d}",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    """Run tonight's batch; returns its exit status."""
    args = nightly_args(os.environ, list(sys.argv[1:] if argv is None else argv))
    added = nightly_env(os.environ)
    os.environ.update(added)
    try:
        return _run(args)
    finally:  # in-process callers (tests, a scheduler's Python) keep their environment
        for name in added:
            os.environ.pop(name, None)


def _run(args: list[str]) -> int:
    """`sesame ARGS` in this process; its exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    print(
        f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} sesame {' '.join(args)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        app(args=args, prog_name="sesame", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
