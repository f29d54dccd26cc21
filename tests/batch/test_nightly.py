"""The nightly entry point and the Ray Jobs submitter's command line."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).parent))

from batch_support import make_inputs  # noqa: E402

from app.config import load_settings  # noqa: E402
from batch.nightly import main, nightly_args, nightly_env  # noqa: E402


def test_nightly_args_come_from_the_environment_and_extra_arguments_win() -> None:
    env = {
        "SESAME_BATCH_INPUT": "/in",
        "SESAME_BATCH_OUT": "/out",
        "SESAME_BATCH_WORKERS": "8",
        "SESAME_BATCH_EXPLAIN": "none",
    }
    args = nightly_args(env, ["--workers", "2"])
    assert args[:5] == ["batch", "run", "/in", "--out", "/out"]
    assert args[args.index("--title") + 1] == f"Nightly batch {datetime.now(UTC):%Y-%m-%d}"
    assert args.count("--workers") == 1 and args[-2:] == ["--workers", "2"]
    # How the batch runs reaches it through the settings, the older names too
    added = nightly_env(env)
    assert added["SESAME_BATCH__WORKERS"] == "8" and added["SESAME_EXPLAIN__MODE"] == "none"
    assert added["SESAME_BATCH__TASK_TIMEOUT_S"] == "3600"
    # the settings' own names win over the older ones, and a set timeout is kept
    own = {**env, "SESAME_BATCH__WORKERS": "4", "SESAME_BATCH__TASK_TIMEOUT_S": "60"}
    assert "SESAME_BATCH__WORKERS" not in nightly_env(own)
    assert "SESAME_BATCH__TASK_TIMEOUT_S" not in nightly_env(own)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in added.items():
            mp.setenv(name, value)
        settings = load_settings()
    assert (settings.batch.workers, settings.batch.task_timeout_s) == (8, 3600)
    assert settings.explain.mode == "none"


def test_nightly_refuses_to_guess_its_folders() -> None:
    with pytest.raises(SystemExit, match="SESAME_BATCH_INPUT and SESAME_BATCH_OUT"):
        nightly_args({}, [])


def test_a_nightly_run_returns_the_batch_exit_status_and_titles_the_workpaper(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_inputs(tmp_path / "in", bad=False)
    monkeypatch.setenv("SESAME_BATCH_INPUT", str(tmp_path / "in"))
    monkeypatch.setenv("SESAME_BATCH_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("SESAME_BATCH_EXECUTOR", "local")
    monkeypatch.setenv("SESAME_BATCH_EXPLAIN", "none")
    monkeypatch.setenv("SESAME_SCORING__MODEL_DIR", str(tiny_model_dir))
    monkeypatch.setenv("SESAME_STORE__URL", f"sqlite:///{tmp_path / 'r.db'}")
    assert main([]) == 0
    (workpaper,) = (tmp_path / "out").glob("batch-*.xlsx")
    cover = load_workbook(workpaper, read_only=True).worksheets[0]
    text = " ".join(str(c) for row in cover.iter_rows(values_only=True) for c in row if c)
    assert "Nightly batch" in text
    assert main([]) == 0  # the second night finds nothing new
    # the night's settings variables do not outlive the run in this process
    assert "SESAME_BATCH__EXECUTOR" not in os.environ
    assert "SESAME_BATCH__TASK_TIMEOUT_S" not in os.environ


def test_ray_job_submitter_needs_its_address_and_folders(capsys: pytest.CaptureFixture) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
    from ray_job import parse_args

    args = parse_args(
        [
            "--address",
            "http://head:8265",
            "--input",
            "/in",
            "--out",
            "/o",
            "--env",
            "A=1",
            "--",
            "--workers",
            "4",
        ]
    )
    assert (args.address, args.input, args.out, args.env) == (
        "http://head:8265",
        "/in",
        "/o",
        ["A=1"],
    )
    assert args.batch_args == ["--workers", "4"]
    with pytest.raises(SystemExit):
        parse_args(["--input", "/in"])
