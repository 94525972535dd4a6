"""Loaders, each reading one benchmark's own published prompt files from a user-given path.

Prompt text is kept exactly as published (no stripping: a DPG-Bench file starts with a space, two
OneIG prompts end with one, and the official generation scripts pass them on unchanged). The
benchmark index of a prompt (folder names, ``--prompts``, ``--shard``) is its position in the order
given below, the same whichever published form is read.

- ``geneval``: ``evaluation_metadata.jsonl`` (one ``{"tag", "include", "exclude"?, "prompt"}`` per
  line); file order.
- ``dpg_bench``: the ``prompts/`` folder of ``<item_id>.txt`` files (the prompt is the whole file) or
  ``dpg_bench.csv`` (one row per question), or a folder holding either; ordered by item id.
- ``t2i_compbench``: a ``<category>_val.txt`` file (one prompt per line, LF or CRLF) or a folder of
  them (files by name, lines in order); the ``_val_seen``/``_val_action``... subsets are not matched.
- ``wise``: a WISE JSON file (list of ``{"prompt_id", "Prompt", "Explanation", "Category",
  "Subcategory"}``) or a folder of them without ``merge.json`` (the release's copy of all
  prompts; pass it alone as a file); ordered by ``prompt_id``.
- ``oneig`` / ``oneig_zh``: ``OneIG-Bench.csv`` / ``OneIG-Bench-ZH.csv`` (category, id, prompt_en or
  prompt_cn, ...) or the same rows as a JSON list or JSON Lines; a file path picks the
  language from its prompt column; file order (ids restart per category).
- ``prompts``: a unigen prompt file (``unigen.data.prompts``: one ``{"id", "prompt", "category",
  "metadata"}`` per line, e.g. what ``run.py target`` writes); file order. For validation sets.

A malformed file is an error naming the file and line (or item).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unigen.evals.benchmark import Benchmark
from unigen.data.prompts import PromptRecord, read_prompts

GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
DPG_COLUMNS = ("item_id", "text", "proposition_id", "dependency", "category_broad", "category_detailed",
               "tuple", "question_natural_language")
ONEIG_COLUMNS = ("category", "id")
ONEIG_PROMPT_COLUMNS = ("prompt_en", "prompt_cn")
WISE_MERGED = "merge.json"


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
            raise ValueError(f"{path}:{lineno}: bad GenEval line: {err}") from None
        meta = {k: v for k, v in raw.items() if k != "prompt"}
        prompts.append(PromptRecord(f"geneval-{len(prompts):05d}", raw["prompt"], raw["tag"], meta))
        lines.append(line)
    if not prompts:
        raise ValueError(f"GenEval file '{path}' has no prompts")
    return Benchmark("geneval", prompts, lines, averaging="categories")


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
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
        item, text = row["item_id"], row["text"]
        if not item.strip() or not text.strip():
            raise ValueError(f"{path}:{lineno}: empty item_id or text")
        try:
            question = {"proposition_id": int(row["proposition_id"]),
                        "dependency": [int(d) for d in row["dependency"].split(",")],
                        "category_broad": row["category_broad"], "category_detailed": row["category_detailed"],
                        "tuple": row["tuple"], "question": row["question_natural_language"]}
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: bad proposition_id/dependency: {err}") from None
        record = items.setdefault(item, PromptRecord(item, text, "dpg", {"questions": []}))
        if record.prompt != text:
            raise ValueError(f"{path}:{lineno}: item '{item}' has a different text than its earlier rows")
        record.metadata["questions"].append(question)
    return list(items.values())


def _dpg_from_txt(folder: Path) -> list[PromptRecord]:
    records = []
    for file in folder.glob("*.txt"):
        text = file.read_bytes().decode("utf-8")
        if not text.strip():
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
    return Benchmark("dpg_bench", sorted(records, key=lambda r: r.id), averaging="samples")


def _files(path: Path, pattern: str) -> list[Path]:
    files = [path] if path.is_file() else sorted(path.glob(pattern))
    if not files:
        raise ValueError(f"no '{pattern}' files at '{path}'")
    return files


def load_t2i_compbench(path: str | Path) -> Benchmark:
    """T2I-CompBench: ``color_val.txt`` etc.; the category is the file name without ``_val``.

    Lines are split as the official generation script does (``read().splitlines()`` after universal
    newlines), so ``line`` (0-based, in metadata) numbers its images ``line * K + k``.
    """
    records = []
    for file in _files(Path(path), "*_val.txt"):
        category = file.stem.removesuffix("_val")
        lines = file.read_text(encoding="utf-8").splitlines()
        if not lines:
            raise ValueError(f"{file}:1: empty T2I-CompBench prompt file")
        for line_index, line in enumerate(lines):
            if not line.strip():
                raise ValueError(f"{file}:{line_index + 1}: empty prompt line")
            records.append(PromptRecord(f"{category}-{line_index:04d}", line, category, {"line": line_index}))
    return Benchmark("t2i_compbench", records, averaging="categories")


def _wise_items(file: Path) -> list[PromptRecord]:
    try:
        items = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}:{err.lineno}: bad JSON: {err.msg}") from None
    if not isinstance(items, list):
        raise ValueError(f"{file}:1: expected a JSON list of prompt objects")
    records = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("prompt_id"), int) \
                or not isinstance(item.get("Prompt"), str):
            raise ValueError(f"{file}: item {n}: needs an integer 'prompt_id' and a string 'Prompt'")
        category = str(item.get("Category") or item.get("Subcategory") or file.stem)
        meta = {k: v for k, v in item.items() if k != "Prompt"}
        records.append(PromptRecord(f"wise-{item['prompt_id']}", item["Prompt"], category, meta))
    return records


def load_wise(path: str | Path) -> Benchmark:
    """WISE: category = ``Category`` (else ``Subcategory``, else the file name); ordered by prompt_id."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in _files(path, "*.json") if f.name != WISE_MERGED]
    if not files:
        raise ValueError(f"WISE: '{path}' holds only {WISE_MERGED}; pass that file itself")
    seen: dict[str, Path] = {}
    records = []
    for file in files:
        for record in _wise_items(file):
            if record.id in seen:
                raise ValueError(f"WISE: prompt_id {record.metadata['prompt_id']} is in both '{seen[record.id]}' "
                                 f"and '{file}'; pass the files of one release")
            seen[record.id] = file
            records.append(record)
    return Benchmark("wise", sorted(records, key=lambda r: r.metadata["prompt_id"]), averaging="samples")


def _oneig_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) from OneIG's CSV, a JSON list of row objects, or JSON Lines."""
    if path.suffix == ".csv":
        for lineno, row in _csv_rows(path, ONEIG_COLUMNS):
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
    return Benchmark(name, records, averaging="categories")


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


def load_prompt_file(path: str | Path) -> Benchmark:
    """A unigen prompt file as a benchmark (named after the file), e.g. a validation set."""
    return Benchmark(Path(path).stem, read_prompts(path))
