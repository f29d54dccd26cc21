"""Run ids and stamps: which model and which code produced an output, in which run, when.

Every output (workpaper sheet, JSON row, store row, review screen page) carries a `Stamp`;
it is built here and nowhere else. Floor module: imports only the records and the version.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from app.records import Stamp
from app.version import git_commit, package_version

_last_id_time = datetime.min.replace(tzinfo=UTC)
_id_lock = threading.Lock()


def new_run_id() -> str:
    """A sortable, unique run id: UTC time to the microsecond plus a random suffix. Ids made in
    this process sort in the order they were made (batch and compare summaries are named by run
    id and read back sorted, and two runs can start in the same second)."""
    global _last_id_time
    with _id_lock:
        now = max(datetime.now(UTC), _last_id_time + timedelta(microseconds=1))
        _last_id_time = now
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def make_stamp(
    model_name: str,
    model_version: str | None,
    model_digest: str,
    run_id: str,
    created_at: datetime | None = None,
) -> Stamp:
    """The stamp of an output made now (or at `created_at`) by this code with this model."""
    return Stamp(
        model_name=model_name,
        model_version=model_version,
        model_digest=model_digest,
        code_version=package_version(),
        git_commit=git_commit(),
        run_id=run_id,
        created_at=created_at or datetime.now(UTC),
    )
