"""OneIG-Bench (OneIG-Bench/OneIG-Benchmark ``scripts/*``), English and Chinese: its loaders and its
official layout.

Loaders (``oneig`` / ``oneig_zh``): ``OneIG-Bench.csv`` / ``OneIG-Bench-ZH.csv`` (category, id,
prompt_en or prompt_cn, ...) or the same rows as a JSON list or JSON Lines; a file path picks the
language from its prompt column; file order (ids restart per category).

Layout: its alignment and text scorers glob ``<image_dir>/<class>/<model>/<id>*`` and score only
when exactly one file matches; reasoning, style and diversity glob every file of
``<image_dir>/<class>/<model>/`` and take the id from the first 3 characters of its name. Each file
is a grid that ``split_mxn_grid`` cuts with ``--image_grid "c,r"`` (width // c, height // r,
row-major) and in which all-black tiles are dropped. Written here:
``images/<class>/unigen/<id>.png``, class = anime | human | object | text | reasoning |
multilingualism, the K samples as a square grid (or one row when K is not a square).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unigen.data.prompts import PromptRecord
from unigen.evals.benchmark import Benchmark, Layout
from unigen.evals.benchmarks.images import grid_png, sample_png, square_or_row
from unigen.evals.benchmarks.reading import csv_rows

ONEIG_COLUMNS = ("category", "id")
ONEIG_PROMPT_COLUMNS = ("prompt_en", "prompt_cn")
ROOT = "images"
MODEL = "unigen"
CLASSES = {"Anime_Stylization": "anime", "Portrait": "human", "General_Object": "object",
           "Text_Rendering": "text", "Knowledge_Reasoning": "reasoning", "Multilingualism": "multilingualism"}


def _oneig_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) from OneIG's CSV, a JSON list of row objects, or JSON Lines."""
    if path.suffix == ".csv":
        for lineno, row in csv_rows(path, ONEIG_COLUMNS):
            yield f"{path}:{lineno}", row
        return
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: bad JSON: {err.msg}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}:1: expected a JSON list of OneIG-Bench rows")
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: item {n}: not a JSON object")
        yield f"{path}: item {n}", row


def _load_oneig(path: Path, name: str) -> Benchmark:
    records: list[PromptRecord] = []
    column = None
    for where, row in _oneig_rows(path):
        present = [c for c in ONEIG_PROMPT_COLUMNS if isinstance(row.get(c), str)]
        column = column or (present[0] if len(present) == 1 else None)
        if column is None or column not in present:
            raise ValueError(f"{where}: needs exactly one of {ONEIG_PROMPT_COLUMNS} (has {sorted(row)})")
        category, pid, text = (str(row.get("category") or ""), str(row.get("id") or ""), row[column])
        if not category or not pid or not text.strip():
            raise ValueError(f"{where}: empty category, id or {column}")
        meta = {k: v for k, v in row.items() if k not in ("category", column)}
        records.append(PromptRecord(f"{category}-{pid}", text, category, {**meta, "language": column[-2:]}))
    if not records:
        raise ValueError(f"{path}: no OneIG-Bench rows")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate (category, id) rows")
    return Benchmark(name, records, averaging="categories", layout=OneIGLayout())


def _oneig_file(path: str | Path, default: str) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    for suffix in (".csv", ".json", ".jsonl"):
        if (path / f"{default}{suffix}").is_file():
            return path / f"{default}{suffix}"
    raise ValueError(f"OneIG-Bench: no {default}.csv/.json/.jsonl in '{path}'")


def load_oneig(path: str | Path) -> Benchmark:
    """OneIG-Bench (English; a file with ``prompt_cn`` loads the Chinese prompts): ids are ``<category>-<id>``."""
    return _load_oneig(_oneig_file(path, "OneIG-Bench"), "oneig")


def load_oneig_zh(path: str | Path) -> Benchmark:
    """OneIG-Bench-ZH: ``OneIG-Bench-ZH.csv`` (``prompt_cn``; adds the Multilingualism category)."""
    return _load_oneig(_oneig_file(path, "OneIG-Bench-ZH"), "oneig_zh")


class OneIGLayout(Layout):
    """One grid PNG per prompt, in its class's folder."""

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        for i in indices:
            if bench.prompts[i].category not in CLASSES:
                raise ValueError(f"OneIG-Bench prompt {i}: category '{bench.prompts[i].category}' has no image "
                                 f"folder (known: {sorted(CLASSES)})")

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        record = bench.prompts[index]
        path = f"{ROOT}/{CLASSES[record.category]}/{MODEL}/{record.metadata['id']}.png"
        if len(pngs) == 1:
            return {path: sample_png(pngs[0], image_size)}
        return {path: grid_png(pngs, *square_or_row(len(pngs)), image_size)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        cols, rows = square_or_row(samples_per_prompt)
        mode = "ZH" if bench.prompts[0].metadata.get("language") == "cn" else "EN"
        return (f"In OneIG-Bench/OneIG-Benchmark, set in `run_overall.sh` (or one `run_<metric>.sh`):\n```bash\n"
                f'MODE={mode}\nIMAGE_DIR="{outdir}/{ROOT}"\nMODEL_NAMES=("{MODEL}")\nIMAGE_GRIDS=("{cols},{rows}")\n'
                f"bash run_overall.sh\n```\n")
