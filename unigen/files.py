"""File helpers every stage uses: atomic writes (temp file + rename), content digests and PNG encoding."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image


def atomic_write_bytes(path: str | Path, data: bytes, tmp_dir: str | Path | None = None) -> Path:
    """Write ``data`` to ``path`` through ``<path>.<pid>.tmp`` + rename: readers never see a partial
    file, and processes writing the same file at once (the ranks of a stage) never share a temporary one.

    With ``tmp_dir`` (same file system) the temporary file is a per-process unique name there, so
    folders that other programs list never hold one and concurrent writers do not collide.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tmp_dir is None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    else:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(tmp_dir) / f"{os.getpid()}-{uuid.uuid4().hex}"
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def atomic_write_text(path: str | Path, text: str, tmp_dir: str | Path | None = None) -> Path:
    return atomic_write_bytes(path, text.encode(), tmp_dir)


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes: a file by content, wherever it lies."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """PNG bytes of a PIL image or a uint8 (H, W, 3) array."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
