"""Records are frozen, strict, and carry their provenance."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.config import load_settings
from app.records import BBox, StageError, Stamp, document_status
from app.stamps import new_run_id


def test_records_are_frozen_and_strict():
    box = BBox(x0=1, top=2, x1=3, bottom=4)
    with pytest.raises(ValidationError):
        box.x0 = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        BBox(x0=1, top=2, x1=3, bottom=4, colour="red")  # type: ignore[call-arg]


def test_bbox_union_holds_both():
    a = BBox(x0=10, top=10, x1=20, bottom=20)
    b = BBox(x0=5, top=15, x1=25, bottom=18)
    assert a.union(b) == BBox(x0=5, top=10, x1=25, bottom=20)


def test_stamp_fields_name_unregistered_models():
    stamp = Stamp(
        model_name="m",
        model_version=None,
        model_digest="ab",
        code_version="0.1.0",
        run_id="r1",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    fields = stamp.fields()
    assert fields["model_version"] == "unregistered"
    assert fields["git_commit"] == "unknown"
    assert fields["created_at"].startswith("2026-01-02T03:04:05")


def test_run_ids_sort_in_the_order_they_were_made():
    # batch and compare summaries are named by run id and read back sorted: two runs started in
    # the same second must still sort in order
    ids = [new_run_id() for _ in range(50)]
    assert sorted(ids) == ids and len(set(ids)) == 50


def test_document_status_follows_errors():
    warn = StageError(stage="ingest", code="needs_ocr", page_no=2, message="page 2 is a scan")
    fatal = StageError(stage="ingest", code="encrypted", message="password-protected", fatal=True)
    assert document_status([]) == "ok"
    assert document_status([warn]) == "partial"
    assert document_status([warn, fatal]) == "failed"


def test_settings_environment_beats_file_beats_default(tmp_path, monkeypatch):
    cfg = tmp_path / "sesame.toml"
    cfg.write_text("[scoring]\nbatch_size = 16\nmax_length = 96\n")
    monkeypatch.setenv("SESAME_CONFIG", str(cfg))
    monkeypatch.setenv("SESAME_SCORING__BATCH_SIZE", "8")
    settings = load_settings()
    assert settings.scoring.batch_size == 8
    assert settings.scoring.max_length == 96
    assert settings.explain.mode == "flagged"


def test_settings_reject_typos(monkeypatch, tmp_path):
    cfg = tmp_path / "sesame.toml"
    cfg.write_text("[scoring]\nbatchsize = 16\n")
    monkeypatch.setenv("SESAME_CONFIG", str(cfg))
    with pytest.raises(ValidationError):
        load_settings()
