"""What the loaders share: a benchmark's files at a path, and CSV rows with required columns."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path


def csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a CSV with a header holding ``required`` columns."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}:1: header lacks columns {missing} (has {reader.fieldnames})")
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{path}:{reader.line_num}: wrong number of fields")
            yield reader.line_num, row


def matching_files(path: Path, pattern: str) -> list[Path]:
    """``path`` itself when it is a file, else its ``pattern`` files by name (at least one)."""
    found = [path] if path.is_file() else sorted(path.glob(pattern))
    if not found:
        raise ValueError(f"no '{pattern}' files at '{path}'")
    return found
