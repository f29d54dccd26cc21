"""A two-node Ray cluster on this machine gives the rows of a single process.

`ray.cluster_utils.Cluster` starts a head node and a second node (separate raylets and object
stores, one CPU each); `sesame batch run --address` connects to it from a subprocess, as a
nightly job would, and its two workers land on the two nodes.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import (  # noqa: E402
    assert_same_rows,
    batch_settings,
    cli,
    kill_session,
    make_inputs,
    stable_rows,
)

from batch.run import BatchOptions, run_batch  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

_NODE = {"num_cpus": 1, "object_store_memory": 150 * 1024 * 1024}


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    """A head node and a worker node, one CPU each; yields the cluster's address."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={**_NODE, "include_dashboard": False})
    try:
        cluster.add_node(**_NODE)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def test_a_two_node_cluster_gives_the_rows_of_a_single_process(
    two_nodes: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    make_inputs(tmp_path / "in")
    local_url = f"sqlite:///{tmp_path / 'local.db'}"
    local = run_batch(
        BatchOptions(
            input_dir=tmp_path / "in",
            out=tmp_path / "out-local",
            executor="local",
            pages_per_part=5,
        ),
        batch_settings(tiny_model_dir, local_url, explain="flagged"),
        console=Console(file=io.StringIO()),
    )
    assert local.exit_code == 1  # the two bad PDFs

    url = f"sqlite:///{tmp_path / 'cluster.db'}"
    proc = cli(
        [
            "batch",
            "run",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out-cluster"),
            "--address",
            two_nodes,
            "--workers",
            "2",
            "--model-dir",
            str(tiny_model_dir),
            "--explain",
            "flagged",
            "--store",
            url,
            "--pages-per-part",
            "5",
        ]
    )
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        kill_session(proc)
    assert proc.returncode == 1, err[-3000:]
    assert local.count_line in out
    assert_same_rows(stable_rows(url), stable_rows(local_url))

    (summary_path,) = (tmp_path / "out-cluster").glob("batch-*.json")
    workers = json.loads(summary_path.read_text())["executor"]["workers"]
    assert len({w["node_id"] for w in workers}) == 2, workers
