"""Submit the nightly batch to a Ray cluster as a Ray Job, follow its log, exit with its status.

Run it from cron or a systemd timer on any machine that reaches the cluster's dashboard port
(the Jobs API); the batch driver then runs on the cluster's head node, next to its workers:

    python deploy/ray_job.py --address http://ray-head:8265 \\
        --input /mnt/filings/inbox --out /mnt/filings/workpapers \\
        --env SESAME_STORE__URL=postgresql+psycopg://sesame@db/sesame \\
        --env MLFLOW_TRACKING_URI=http://mlflow:5000

`--input` and `--out` are paths on the head node (workers receive each PDF's bytes through
Ray's object store; they need no shared filesystem). Every node runs the same sesame
environment (image or virtualenv); this repository is shipped as the job's working_dir, so the
code is tonight's. Every node must reach the model registry (MLFLOW_TRACKING_URI) or the
directory given by SESAME_SCORING__MODEL_DIR. With Ray's token authentication on (the default
of recent Ray), run this with `RAY_AUTH_MODE=token` and the cluster's token in
`RAY_AUTH_TOKEN` or `~/.ray/auth_token`.

The exit status is the batch's (0 ok, 1 documents with problems, 2 usage, 3 not started, 4
interrupted), or 3 when the Jobs API cannot be reached or the job never started.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDES = [
    ".git",
    ".venv",
    "out",
    "**/__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "benchmarks/results",
    "*.db",
    "*.sqlite",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--address", required=True, help="the cluster's Jobs API, e.g. http://ray-head:8265"
    )
    parser.add_argument("--input", required=True, help="filings folder on the head node")
    parser.add_argument("--out", required=True, help="output folder on the head node")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the job (store URL, tracking URI, …)",
    )
    parser.add_argument("--poll", type=float, default=15.0, help="seconds between log polls")
    parser.add_argument(
        "--python",
        default="python",
        help="the cluster's Python with sesame's dependencies (default: python "
        "on the head node's PATH)",
    )
    parser.add_argument("batch_args", nargs="*", help="extra `sesame batch run` options, after --")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Submit, follow, and return the batch's exit status."""
    args = parse_args(argv)
    from ray.job_submission import JobStatus, JobSubmissionClient

    env = {
        "SESAME_BATCH_INPUT": args.input,
        "SESAME_BATCH_OUT": args.out,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"--env {item}: expected NAME=VALUE", file=sys.stderr)
            return 2
        env[name] = value
    try:
        client = JobSubmissionClient(args.address)
        job_id = client.submit_job(
            entrypoint=f"{args.python} -m batch.nightly " + " ".join(args.batch_args),
            submission_id=f"sesame-nightly-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
            runtime_env={"working_dir": str(ROOT), "excludes": EXCLUDES, "env_vars": env},
        )
    except Exception as e:  # connection refused, auth, version mismatch: all mean "not started"
        print(f"the Ray Jobs API at {args.address} did not take the job: {e}", file=sys.stderr)
        return 3
    print(f"submitted {job_id} to {args.address}", file=sys.stderr, flush=True)
    printed = 0
    terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    while True:
        time.sleep(args.poll)
        try:
            logs = client.get_job_logs(job_id)
            info = client.get_job_info(job_id)
        except Exception as e:  # the head may restart; keep following
            print(f"(Jobs API: {e}; retrying)", file=sys.stderr, flush=True)
            continue
        if len(logs) > printed:
            sys.stdout.write(logs[printed:])
            sys.stdout.flush()
            printed = len(logs)
        if info.status in terminal:
            break
    code = info.driver_exit_code
    if code is None:  # no driver exit code: it never ran (3), or was stopped (4)
        code = {JobStatus.SUCCEEDED: 0, JobStatus.STOPPED: 4}.get(info.status, 3)
    print(f"job {job_id}: {info.status.value}, exit status {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
