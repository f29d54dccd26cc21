"""The nightly batch submitted as a Ray Job (deploy/ray_job.py) to a real Ray head node."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import REPO, make_inputs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ray start --head` with the Jobs API on free ports; yields the API's address."""
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    dashboard, gcs = _free_port(), _free_port()
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--port",
            str(gcs),
            "--include-dashboard",
            "true",
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dashboard),
            "--dashboard-agent-listen-port",
            str(_free_port()),
            "--ray-client-server-port",
            str(_free_port()),
        ],
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (401 with token authentication): it is up
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not start:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield address
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(3)
        head.wait(timeout=30)
        # `ray start` leaves its address for later ray.init() calls on this machine; killed
        # instead of `ray stop`ped (which would stop every Ray here), it must be removed by hand.
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{gcs}"):
            current.unlink()


def test_the_nightly_batch_runs_as_a_ray_job_and_its_exit_status_comes_back(
    ray_head: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    make_inputs(tmp_path / "in")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "deploy" / "ray_job.py"),
            "--address",
            ray_head,
            "--input",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--poll",
            "2",
            "--python",
            sys.executable,
            "--env",
            f"SESAME_SCORING__MODEL_DIR={tiny_model_dir}",
            "--env",
            f"SESAME_STORE__URL={url}",
            "--env",
            f"SESAME_DATA_DIR={tmp_path / 'data'}",
            "--env",
            "SESAME_BATCH_EXPLAIN=none",
            "--",
            "--pages-per-part",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env={**os.environ, "RAY_AUTH_MODE": "token"},
    )
    assert done.returncode == 1, done.stderr[-3000:]  # the two bad PDFs
    assert "6 documents: 4 ok, 0 partial, 2 failed, 0 skipped" in done.stdout
    (summary,) = (tmp_path / "out").glob("batch-*.json")
    data = json.loads(summary.read_text())
    assert data["counts"] == {"ok": 4, "partial": 0, "failed": 2, "skipped": 0}
    assert len(data["executor"]["workers"]) == 2
