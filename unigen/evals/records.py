"""unigen's own per-prompt records beside the official layout, and the run's settings guard.

``<outdir>/records/<index:05d>.json``  per prompt: id, category, prompt, the layout files written
    and per sample its seed, switch flag, failure (``no_image`` | ``prompt_too_long`` | null),
    reasoning text and length, stop reason and score. Written after the prompt's image files, so
    a record marks a finished prompt (resume skips it); no official scorer looks at ``records/``.
``<outdir>/.tmp/``  temporary files of atomic writes (never inside a folder a scorer lists).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unigen.files import atomic_write_bytes, atomic_write_text

FAILURES = ("no_image", "prompt_too_long")


@dataclass
class SampleOutput:
    """One drawn sample of a prompt (``png`` None = no image: a counted failure)."""

    png: bytes | None
    reasoning: str
    score: float | None = None
    switched: bool = True
    reasoning_tokens: int = 0
    seed: int | None = None
    stop: str = ""
    failure: str | None = None


def tmp_dir(outdir: str | Path) -> Path:
    return Path(outdir) / ".tmp"


def write_files(outdir: str | Path, files: dict[str, bytes]) -> None:
    """Each file atomically, its temporary copy under ``.tmp/``."""
    for rel, data in files.items():
        atomic_write_bytes(Path(outdir) / rel, data, tmp_dir(outdir))


def record_path(outdir: str | Path, index: int) -> Path:
    return Path(outdir) / "records" / f"{index:05d}.json"


def write_record(outdir: str | Path, index: int, prompt: dict[str, str], files: list[str],
                 samples: list[SampleOutput]) -> None:
    rows = [{"k": k, **{key: value for key, value in asdict(s).items() if key != "png"}}
            for k, s in enumerate(samples)]
    record = {"index": index, **prompt, "files": files, "samples": rows}
    atomic_write_text(record_path(outdir, index), json.dumps(record, indent=1, ensure_ascii=False), tmp_dir(outdir))


def finished_indices(outdir: str | Path) -> set[int]:
    """Benchmark indices whose record is written."""
    folder = Path(outdir) / "records"
    if not folder.is_dir():
        return set()
    return {int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()}


def read_records(outdir: str | Path) -> dict[int, dict[str, Any]]:
    return {i: json.loads(record_path(outdir, i).read_text()) for i in sorted(finished_indices(outdir))}
