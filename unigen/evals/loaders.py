"""Loaders, each reading one benchmark's own published prompt format from a user-given path.

- ``geneval``: ``evaluation_metadata.jsonl`` (one ``{"tag", "include", "exclude"?, "prompt"}`` per line).
- ``dpg_bench``: ``dpg_bench.csv`` (item_id, text, keywords, proposition_id, dependency,
  category_broad, category_detailed, tuple, question_natural_language; one row per question) or
  the ``prompts/`` folder of ``<item_id>.txt`` files, or a folder holding either.
- ``t2i_compbench``: a ``<category>_val.txt`` file (one prompt per line) or a folder of them.
- ``wise``: a WISE JSON file (list of ``{"prompt_id", "Prompt", "Explanation", "Category"?,
  "Subcategory"?}``) or a folder of them.
- ``oneig``: ``OneIG-Bench.csv`` (category, id, prompt_en, ... ; ids repeat across categories).

A malformed file is an error naming the file and line (or item).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from unigen.evals.benchmark import Benchmark
from unigen.data.prompts import PromptRecord

GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
DPG_COLUMNS = ("item_id", "text", "proposition_id", "dependency", "category_broad", "category_detailed",
               "tuple", "question_natural_language")
ONEIG_COLUMNS = ("category", "id")


def _geneval_entry(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    for key, kind in (("tag", str), ("prompt", str), ("include", list)):
        if not isinstance(raw.get(key), kind):
            raise ValueError(f"'{key}' missing or not a {kind.__name__}")
    for item in raw["include"] + raw.get("exclude", []):
        if not isinstance(item, dict) or not isinstance(item.get("class"), str) or not isinstance(item.get("count"), int):
            raise ValueError(f"include/exclude item {item!r} needs 'class' (str) and 'count' (int)")
    return raw


def load_geneval(path: str | Path) -> Benchmark:
    """GenEval: the metadata line is kept byte-identical for the official scorer."""
    prompts, lines = [], []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = _geneval_entry(json.loads(line))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}:{lineno}: bad GenEval line: {err}") from err
        meta = {k: v for k, v in raw.items() if k != "prompt"}
        prompts.append(PromptRecord(f"geneval-{len(prompts):05d}", raw["prompt"], raw["tag"], meta))
        lines.append(line)
    if not prompts:
        raise ValueError(f"GenEval file '{path}' has no prompts")
    return Benchmark("geneval", prompts, lines, averaging="categories")


def _csv_rows(path: Path, required: tuple[str, ...]):
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


def _dpg_from_csv(path: Path) -> list[PromptRecord]:
    items: dict[str, PromptRecord] = {}
    for lineno, row in _csv_rows(path, DPG_COLUMNS):
        item, text = row["item_id"].strip(), row["text"].strip()
        if not item or not text:
            raise ValueError(f"{path}:{lineno}: empty item_id or text")
        try:
            question = {"proposition_id": int(row["proposition_id"]),
                        "dependency": [int(d) for d in row["dependency"].split(",")],
                        "category_broad": row["category_broad"], "category_detailed": row["category_detailed"],
                        "tuple": row["tuple"], "question": row["question_natural_language"]}
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: bad proposition_id/dependency: {err}") from err
        record = items.setdefault(item, PromptRecord(item, text, "dpg", {"questions": []}))
        if record.prompt != text:
            raise ValueError(f"{path}:{lineno}: item '{item}' has a different text than its earlier rows")
        record.metadata["questions"].append(question)
    return list(items.values())


def _dpg_from_txt(folder: Path) -> list[PromptRecord]:
    records = []
    for file in sorted(folder.glob("*.txt")):
        text = file.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"{file}:1: empty DPG-Bench prompt file")
        records.append(PromptRecord(file.stem, text, "dpg", {}))
    return records


def load_dpg_bench(path: str | Path) -> Benchmark:
    """DPG-Bench: one category ("dpg"); the score is the mean over prompts (question tuples in metadata)."""
    path = Path(path)
    if path.is_file():
        records = _dpg_from_csv(path)
    elif (path / "dpg_bench.csv").is_file():
        records = _dpg_from_csv(path / "dpg_bench.csv")
    else:
        records = _dpg_from_txt(path / "prompts" if (path / "prompts").is_dir() else path)
    if not records:
        raise ValueError(f"DPG-Bench: no prompts found at '{path}' (expected dpg_bench.csv or a folder of .txt)")
    return Benchmark("dpg_bench", records, averaging="samples")


def _files(path: Path, pattern: str) -> list[Path]:
    files = [path] if path.is_file() else sorted(path.glob(pattern))
    if not files:
        raise ValueError(f"no '{pattern}' files at '{path}'")
    return files


def load_t2i_compbench(path: str | Path) -> Benchmark:
    """T2I-CompBench: ``color_val.txt`` etc.; the category is the file name without ``_val``."""
    records = []
    for file in _files(Path(path), "*_val.txt"):
        category = file.stem.removesuffix("_val")
        lines = [ln.strip() for ln in file.read_text(encoding="utf-8").splitlines()]
        for lineno, line in enumerate(lines, 1):
            if line:
                records.append(PromptRecord(f"{category}-{lineno:04d}", line, category, {"line": lineno}))
        if not any(lines):
            raise ValueError(f"{file}:1: empty T2I-CompBench prompt file")
    return Benchmark("t2i_compbench", records, averaging="categories")


def load_wise(path: str | Path) -> Benchmark:
    """WISE: category = ``Category`` (else ``Subcategory``, else the file name); category-weighted mean."""
    records = []
    for file in _files(Path(path), "*.json"):
        try:
            items = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{file}:{err.lineno}: bad JSON: {err.msg}") from err
        if not isinstance(items, list):
            raise ValueError(f"{file}:1: expected a JSON list of prompt objects")
        for n, item in enumerate(items):
            if not isinstance(item, dict) or "prompt_id" not in item or not isinstance(item.get("Prompt"), str):
                raise ValueError(f"{file}: item {n}: needs 'prompt_id' and a string 'Prompt'")
            category = str(item.get("Category") or item.get("Subcategory") or file.stem)
            meta = {k: v for k, v in item.items() if k != "Prompt"}
            records.append(PromptRecord(f"wise-{item['prompt_id']}", item["Prompt"], category, meta))
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"WISE: duplicate prompt_id across files at '{path}'")
    return Benchmark("wise", records, averaging="samples")


def load_oneig(path: str | Path, prompt_column: str = "prompt_en") -> Benchmark:
    """OneIG-Bench: ids restart per category, so a prompt id is ``<category>-<id>``."""
    path = Path(path) / "OneIG-Bench.csv" if Path(path).is_dir() else Path(path)
    records = []
    for lineno, row in _csv_rows(path, (*ONEIG_COLUMNS, prompt_column)):
        category, pid, text = row["category"].strip(), row["id"].strip(), row[prompt_column].strip()
        if not category or not pid or not text:
            raise ValueError(f"{path}:{lineno}: empty category, id or {prompt_column}")
        meta = {k: v for k, v in row.items() if k not in ("category", "id", prompt_column)}
        records.append(PromptRecord(f"{category}-{pid}", text, category, meta))
    if not records:
        raise ValueError(f"{path}: no OneIG-Bench rows")
    return Benchmark("oneig", records, averaging="categories")
