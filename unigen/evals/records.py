"""unigen's own per-prompt records beside the official layout, and the run's settings guard.

``<outdir>/records/<index:05d>.json``  per prompt: id, category, prompt, the layout files written
    and per sample its seed, switch flag, failure (``no_image`` | ``prompt_too_long`` | null),
    reasoning text and length, stop reason and score (of the final image); interleaved samples add
    ``turns`` (images drawn, redrew, the first image's score, reflections, the earlier images'
    files under ``records/turns/``). Written after the prompt's image files, so
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
class TurnOutputs:
    """An interleaved sample's turns before its final image (its record's ``turns``)."""

    images: int
    """Images the sample drew (0: none, 1: no redraw)."""
    earlier: list[bytes | None]
    """PNGs of the images before the final one (written to ``records/turns/``)."""
    first_score: float | None
    """The reward of the first image (= the sample's score when it did not redraw)."""
    reflections: list[str]
    """The text of each turn after the first image."""

    def record(self, files: list[str]) -> dict[str, Any]:
        return {"images": self.images, "redrew": self.images > 1, "first_score": self.first_score,
                "reflections": self.reflections, "files": files}


@dataclass
class SampleOutput:
    """One drawn sample of a prompt (``png`` None = no image: a counted failure); ``png`` and
    ``score`` are its final image's."""

    png: bytes | None
    reasoning: str
    score: float | None = None
    switched: bool = True
    reasoning_tokens: int = 0
    seed: int | None = None
    stop: str = ""
    failure: str | None = None
    turns: TurnOutputs | None = None
    """Interleaved mode only: the turns before the final image."""


def turn_image_path(index: int, sample: int, turn: int) -> str:
    """Where an interleaved sample's earlier image is kept (no official scorer lists ``records/``)."""
    return f"records/turns/{index:05d}_{sample}_{turn}.png"


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
    rows = []
    for k, s in enumerate(samples):
        row = {"k": k, **{key: value for key, value in asdict(s).items() if key not in ("png", "turns")}}
        if s.turns is not None:
            row["turns"] = s.turns.record([turn_image_path(index, k, t) for t in range(len(s.turns.earlier))])
        rows.append(row)
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


def prompt_layout(outdir: str | Path, record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A prompt record's metadata (its ``metadata.jsonl`` line: a GenEval line, or a prompt record's
    ``metadata``) and its sample PNGs in sample order, from the layout files the record lists."""
    lines = [f for f in record["files"] if f.endswith("metadata.jsonl")]
    if not lines:
        raise ValueError(f"'{outdir}' prompt {record['index']} lists no metadata.jsonl among its files "
                         f"{record['files']}: reading its prompt's metadata needs GenEval's layout")
    line = json.loads((Path(outdir) / lines[0]).read_text())
    metadata = line if "include" in line else line.get("metadata", line)
    return metadata, sorted(f for f in record["files"] if f.endswith(".png"))
