"""The real benchmark releases: prompt counts, byte-identical text, and a full folder found complete.

Needs clones of the official repositories under ``$UNIGEN_BENCHMARK_RELEASES`` (skipped otherwise):
``geneval`` (djghosh13/geneval), ``ELLA`` (TencentQQGYLab/ELLA), ``T2I-CompBench``
(Karine-Huang/T2I-CompBench), ``WISE`` (PKU-YuanGroup/WISE), ``OneIG-Benchmark``
(OneIG-Bench/OneIG-Benchmark). The expected text is re-read from the raw files here, independently
of the loaders; every prompt is then written with flat test images (one sample missing) and read
back with the official scorer's discovery.
"""

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from benchmark_assets import load
from official_discovery import dpg_tiles, geneval_images, oneig_tiles, t2i_compbench_images, wise_missing
from layout_samples import SIZE, write_all
from unigen.evals.benchmarks.oneig import CLASSES

ROOT = Path(os.environ.get("UNIGEN_BENCHMARK_RELEASES", "/nonexistent"))
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason="set UNIGEN_BENCHMARK_RELEASES to the official clones")


def test_geneval_release(tmp_path):
    path = ROOT / "geneval" / "prompts" / "evaluation_metadata.jsonl"
    bench = load("geneval", path)
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(bench.prompts) == len(raw) == 553
    assert [r.prompt for r in bench.prompts] == [x["prompt"] for x in raw]
    write_all(tmp_path, bench, 4, missing={3})
    assert Counter(m["prompt"] for m, _ in geneval_images(tmp_path / "images")) == Counter(
        {x["prompt"]: 4 * sum(y["prompt"] == x["prompt"] for y in raw) for x in raw})


def test_dpg_bench_release(tmp_path):
    folder = ROOT / "ELLA" / "dpg_bench" / "prompts"
    bench = load("dpg_bench", folder)
    raw = {p.stem: p.read_bytes() for p in folder.glob("*.txt")}
    assert len(bench.prompts) == len(raw) == 1065
    assert all(r.prompt.encode("utf-8") == raw[r.id] for r in bench.prompts)
    write_all(tmp_path, bench, 4, missing={1})
    assert sorted(dpg_tiles(tmp_path / "images", set(raw), 4, SIZE)) == sorted(raw)


def test_t2i_compbench_release(tmp_path):
    folder = ROOT / "T2I-CompBench" / "examples" / "dataset"
    bench = load("t2i_compbench", folder)
    assert len(bench.prompts) == 2400
    for file in sorted(folder.glob("*_val.txt")):
        category = file.name.removesuffix("_val.txt")
        with open(file) as f:                                   # the official generator's reading
            lines = f.read().splitlines()
        assert [r.prompt for r in bench.prompts if r.category == category] == lines
    write_all(tmp_path, bench, 2, missing={0})
    for category in bench.categories:
        found = t2i_compbench_images(tmp_path / category)
        expected = [r.prompt for r in bench.prompts if r.category == category for _ in range(2)]
        assert [n for n, _, _ in found] == list(range(len(expected))) and [p for _, p, _ in found] == expected


def test_wise_release(tmp_path):
    folder = ROOT / "WISE" / "data_verified"
    bench = load("wise", folder)
    merged = json.loads((folder / "merge.json").read_text())
    assert len(bench.prompts) == len(merged) == 1000
    assert [(r.metadata["prompt_id"], r.prompt) for r in bench.prompts] == sorted(
        (x["prompt_id"], x["Prompt"]) for x in merged)
    write_all(tmp_path, bench, 1)
    assert wise_missing(tmp_path / "sample0", list(range(1, 1001))) == []


@pytest.mark.parametrize("name,file,column,count", [("oneig", "OneIG-Bench.csv", "prompt_en", 1120),
                                                    ("oneig_zh", "OneIG-Bench-ZH.csv", "prompt_cn", 1320)])
def test_oneig_release(tmp_path, name, file, column, count):
    bench = load(name, ROOT / "OneIG-Benchmark")
    with open(ROOT / "OneIG-Benchmark" / file, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(bench.prompts) == len(rows) == count
    assert [r.prompt for r in bench.prompts] == [row[column] for row in rows]
    write_all(tmp_path, bench, 4, missing={2})
    for category, class_item in CLASSES.items():
        ids = [row["id"] for row in rows if row["category"] == category]
        if ids:
            tiles = oneig_tiles(tmp_path / "images", class_item, "unigen", ids, (2, 2))
            assert all(len(t) == 4 for t in tiles.values())
