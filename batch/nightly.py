"""The nightly entry point: `python -m batch.nightly`, for cron, a systemd timer or Ray Jobs.

It runs `sesame batch run` with its folders and options taken from the environment, so a
scheduler line stays short and the same line works locally and as a Ray Jobs entrypoint:

| variable | meaning | default |
|---|---|---|
| `SESAME_BATCH_INPUT` | folder of client filings (searched recursively) | required |
| `SESAME_BATCH_OUT` | folder for workpapers, JSON and batch summaries | required |
| `RAY_ADDRESS` | Ray cluster (set by Ray Jobs for its drivers) | a local Ray instance |
| `SESAME_BATCH_EXECUTOR` | `ray` or `local` | `ray` |
| `SESAME_BATCH_WORKERS` | Ray actors | one per CPU |
| `SESAME_BATCH_PAGES_PER_PART` | split documents longer than this | 50 |
| `SESAME_BATCH_TASK_TIMEOUT` | seconds before a stuck part's worker is stopped | 3600 |
| `SESAME_BATCH_EXPLAIN` | `none`, `flagged` or `all` | settings (flagged) |

Extra command-line arguments are passed on to `sesame batch run` (they win). The exit status
is `sesame batch run`'s (0 ok, 1 problems, 2 usage, 3 not started, 4 interrupted); the
batch summary and workpaper are titled "Nightly batch <date>".
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

_log = logging.getLogger(__name__)

_OPTIONS = {
    "SESAME_BATCH_EXECUTOR": "--executor",
    "SESAME_BATCH_WORKERS": "--workers",
    "SESAME_BATCH_PAGES_PER_PART": "--pages-per-part",
    "SESAME_BATCH_TASK_TIMEOUT": "--task-timeout",
    "SESAME_BATCH_EXPLAIN": "--explain",
}


def nightly_args(environ: dict[str, str], extra: list[str]) -> list[str]:
    """The `sesame` arguments of tonight's run, from the environment and extra arguments."""
    missing = [v for v in ("SESAME_BATCH_INPUT", "SESAME_BATCH_OUT") if not environ.get(v)]
    if missing:
        raise SystemExit(f"batch.nightly: set {' and '.join(missing)} (see docs/batch.md)")
    args = [
        "batch",
        "run",
        environ["SESAME_BATCH_INPUT"],
        "--out",
        environ["SESAME_BATCH_OUT"],
        "--title",
        f"Nightly batch {datetime.now(UTC):%Y-%m-%d}",
    ]
    defaults = {"SESAME_BATCH_TASK_TIMEOUT": "3600"}
    for variable, option in _OPTIONS.items():
        value = environ.get(variable) or defaults.get(variable)
        if value and option not in extra:
            args += [option, value]
    return args + extra


def main(argv: list[str] | None = None) -> int:
    """Run tonight's batch; returns its exit status."""
    from app.cli import app

    args = nightly_args(dict(os.environ), list(sys.argv[1:] if argv is None else argv))
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
