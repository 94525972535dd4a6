"""Each benchmark's layout, read back with its official scorer's file discovery (official_discovery.py)."""

import json

import pytest
from PIL import Image

from benchmark_assets import ASSETS, load, real_geneval
from official_discovery import (dpg_tiles, geneval_correct_without_detections, geneval_images, geneval_summary,
                                oneig_tiles, t2i_compbench_images, wise_missing)
from layout_samples import COLORS, SIZE, samples, write_all
from unigen.evals import Benchmark, load_benchmark
from unigen.evals.benchmarks.dpg_bench import DPGBenchLayout
from unigen.evals.benchmarks.geneval import GenEvalLayout
from unigen.evals.benchmarks.oneig import OneIGLayout
from unigen.evals.benchmarks.t2i_compbench import T2ICompBenchLayout
from unigen.evals.benchmarks.wise import WISELayout
from unigen.evals.runner import layout_of, write_prompt
from unigen.evals.records import finished_indices, read_records
from unigen.evals.summary import PLACEHOLDER_RGB

def _color(image: Image.Image):
    lo, hi = zip(*image.convert("RGB").getextrema())
    assert lo == hi, "tile is not one flat sample"
    return lo


def test_geneval_layout_is_found_complete_and_failures_count_in_its_summary(tmp_path):
    path = real_geneval()
    raw_lines = path.read_bytes().split(b"\n")
    bench = load("geneval", path)
    layout = layout_of(bench)
    for index in (0, 300, 552):
        write_prompt(tmp_path, bench, layout, index, samples(4, missing={1, 3}), SIZE)
        assert (tmp_path / "images" / f"{index:05d}" / "metadata.jsonl").read_bytes() == raw_lines[index] + b"\n"
    found = geneval_images(tmp_path / "images")
    assert len(found) == 12                                    # 3 prompts x 4 samples, none dropped
    by_name = {(m["prompt"], p.name): p for m, p in found}
    prompt = bench.prompts[300].prompt
    assert [_color(Image.open(by_name[(prompt, f"{k:04d}.png")])) for k in range(4)] == [
        COLORS[0], PLACEHOLDER_RGB, COLORS[2], PLACEHOLDER_RGB]
    # records/, summary files and .tmp/ beside images/ are not prompt folders to the scorer
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["00000.json", "00300.json", "00552.json"]
    # the placeholder holds no object: GenEval's rules score it wrong for every one of its 553 prompts
    assert not any(geneval_correct_without_detections(r.metadata) for r in bench.prompts)
    # official summary with the drawn samples taken as correct: the failures pull each tag to 2/4
    results = [{"tag": m["tag"], "correct": _color(Image.open(p)) != PLACEHOLDER_RGB} for m, p in found]
    summary = geneval_summary(results)
    assert summary["images"] == 12 and set(summary["tags"]) == {"single_object", "colors", "color_attr"}
    assert set(summary["tags"].values()) == {0.5} and summary["overall"] == 0.5
    record = read_records(tmp_path)[300]
    assert [s["failure"] for s in record["samples"]] == [None, "no_image", None, "no_image"]
    assert record["samples"][1] | {} == {"k": 1, "reasoning": "reasoning 1", "score": None, "switched": False,
                                         "reasoning_tokens": 3, "seed": 101, "stop": "limit", "failure": "no_image"}


def test_dpg_layout_is_a_2x2_grid_per_item_in_crop_order(tmp_path):
    bench = load("dpg_bench", ASSETS / "dpg_prompts")
    write_all(tmp_path, bench, 4, missing={2})
    tiles = dpg_tiles(tmp_path / "images", {r.id for r in bench.prompts}, pic_num=4, resolution=SIZE)
    assert sorted(tiles) == ["diffusion01", "toy001", "toy002"]
    for item in tiles.values():
        assert [_color(t) for t in item] == [COLORS[0], COLORS[1], PLACEHOLDER_RGB, COLORS[3]]
    one = tmp_path / "one"
    write_all(one, bench, 1, missing={0})
    assert [_color(t[0]) for t in dpg_tiles(one / "images", {r.id for r in bench.prompts}, 1, SIZE).values()] == \
        [PLACEHOLDER_RGB] * 3
    with pytest.raises(ValueError, match="at most 4 samples per prompt"):
        layout_of(bench).check(bench, [0], 5)


def test_t2i_compbench_layout_numbers_images_like_the_official_generator(tmp_path):
    bench = load("t2i_compbench", ASSETS / "t2i_compbench")
    write_all(tmp_path, bench, 3, missing={1})
    color = t2i_compbench_images(tmp_path / "color")
    teapot, scarf = "a blue teapot and a yellow cup", "a green scarf on a white chair"
    assert [(n, p) for n, p, _ in color] == [(0, teapot), (1, teapot), (2, teapot), (3, scarf), (4, scarf), (5, scarf)]
    assert [_color(Image.open(path)) for _, _, path in color][:3] == [COLORS[0], PLACEHOLDER_RGB, COLORS[2]]
    assert [(n, p) for n, p, _ in t2i_compbench_images(tmp_path / "spatial")] == [
        (k, "a lamp on the left of a sofa") for k in range(3)]
    bench.prompts[0].prompt = "a red_cup"
    with pytest.raises(ValueError, match=r"T2I-CompBench prompt 0 \('a red_cup'\) holds '_'"):
        layout_of(bench).check(bench, [0, 1], 3)


def test_wise_layout_one_image_folder_per_sample(tmp_path):
    bench = load("wise", ASSETS / "wise")
    write_all(tmp_path, bench, 2, missing={1})
    ids = [r.metadata["prompt_id"] for r in bench.prompts]
    assert ids == [1, 2, 641]
    for k, rgb in ((0, COLORS[0]), (1, PLACEHOLDER_RGB)):
        assert wise_missing(tmp_path / f"sample{k}", ids) == []
        assert sorted(p.name for p in (tmp_path / f"sample{k}").iterdir()) == ["1.png", "2.png", "641.png"]
        assert _color(Image.open(tmp_path / f"sample{k}" / "641.png")) == rgb


@pytest.mark.parametrize("k,grid", [(4, (2, 2)), (3, (3, 1)), (1, (1, 1))])
def test_oneig_layout_grids_per_class_folder(tmp_path, k, grid):
    bench = load("oneig", ASSETS)
    write_all(tmp_path, bench, k, missing={1} if k > 1 else set())
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["anime", "object", "text"]
    objects = oneig_tiles(tmp_path / "images", "object", "unigen", ["000", "001"], grid)
    expected = [COLORS[j] if j != 1 or k == 1 else PLACEHOLDER_RGB for j in range(k)]
    assert [_color(t) for t in objects["001"]] == expected          # grey failures are kept, never dropped
    assert len(oneig_tiles(tmp_path / "images", "text", "unigen", ["000"], grid)["000"]) == k
    zh = load("oneig_zh", ASSETS)
    write_all(tmp_path / "zh", zh, k)
    assert len(oneig_tiles(tmp_path / "zh" / "images", "multilingualism", "unigen", ["000"], grid)["000"]) == k
    assert 'MODE=ZH' in layout_of(zh).scoring("/out", zh, k, SIZE)


def test_rewriting_a_prompt_replaces_its_files_and_record(tmp_path):
    bench = load("geneval", ASSETS / "geneval_mini.jsonl")
    layout = layout_of(bench)
    write_prompt(tmp_path, bench, layout, 2, samples(2, missing={0}), SIZE)
    write_prompt(tmp_path, bench, layout, 2, samples(2), SIZE)
    assert finished_indices(tmp_path) == {2}
    record = json.loads((tmp_path / "records" / "00002.json").read_text())
    assert [s["failure"] for s in record["samples"]] == [None, None]
    assert _color(Image.open(tmp_path / "images" / "00002" / "samples" / "0000.png")) == COLORS[0]
    assert list((tmp_path / ".tmp").iterdir()) == []


@pytest.mark.parametrize("name,path,layout", [
    ("geneval", "geneval_mini.jsonl", GenEvalLayout), ("dpg_bench", "dpg_prompts", DPGBenchLayout),
    ("t2i_compbench", "t2i_compbench", T2ICompBenchLayout), ("wise", "wise", WISELayout),
    ("oneig", "", OneIGLayout), ("oneig_zh", "", OneIGLayout)])
def test_each_shipped_benchmark_names_its_layout(name, path, layout):
    bench = load(name, ASSETS / path)
    assert type(bench.layout) is layout and type(layout_of(bench.subset(1))) is layout


def test_a_benchmark_naming_no_layout_is_written_in_genevals_and_a_wrong_one_is_refused():
    bench = load_benchmark("shapes")
    assert bench.layout is None and isinstance(layout_of(bench), GenEvalLayout)
    with pytest.raises(TypeError, match="benchmark 'mine': layout must be a unigen Layout or None"):
        Benchmark("mine", bench.prompts, layout="dpg_bench")
