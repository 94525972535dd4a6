"""run.py evaluate on the janus-micro preset: official layouts, failures, slices, shards, resume."""

import json
import shutil

import pytest
import torch
from PIL import Image

from benchmark_assets import ASSETS
from official_discovery import geneval_correct_without_detections, geneval_images, geneval_summary, oneig_tiles
from unigen.evals.summary import PLACEHOLDER_RGB
from unigen.cli import main as run

MINI = ASSETS / "geneval_mini.jsonl"


def _evaluate(outdir, *extra, path=MINI, benchmark="geneval"):
    torch.manual_seed(0)  # a preset's random weights come from the global RNG: the same model each call
    spec = json.dumps({"class_path": benchmark, "init_args": {"path": str(path)}})
    run(["evaluate", "--model", "janus-micro", "--benchmark", spec, "--outdir", str(outdir), "--samples_per_prompt", "2", "--batch_prompts", "3",
         "--sampling.max_reasoning_tokens", "48", *extra])


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _is_placeholder(path) -> bool:
    return Image.open(path).convert("RGB").getextrema() == tuple((c, c) for c in PLACEHOLDER_RGB)


def test_unified_run_counts_unswitched_samples_as_failures_in_genevals_summary(tmp_path):
    out = tmp_path / "eval"
    _evaluate(out)
    summary = json.loads((out / "summary.json").read_text())
    records = {i: json.loads((out / "records" / f"{i:05d}.json").read_text()) for i in range(5)}
    failed = [(i, s["k"]) for i, r in records.items() for s in r["samples"] if s["failure"]]
    assert 0 < len(failed) < 10                                  # this seed: some samples never switch
    assert all(not records[i]["samples"][k]["switched"] for i, k in failed)
    assert summary["samples"] == 10 and summary["failed"] == len(failed) == summary["failures"]["no_image"]
    assert summary["prompts"] == {"finished": 5, "benchmark": 5}
    # GenEval's own discovery finds all 10 images; each failure is a grey placeholder it scores wrong
    found = geneval_images(out / "images")
    assert len(found) == 10
    assert sorted((int(p.parent.parent.name), int(p.stem)) for _, p in found if _is_placeholder(p)) == sorted(failed)
    assert not any(geneval_correct_without_detections(m) for m, _ in found)
    # even if the detector accepted every drawn image, GenEval's summary is capped by the failures
    best = geneval_summary([{"tag": m["tag"], "correct": not _is_placeholder(p)} for m, p in found])
    per_tag = {}
    for i, r in records.items():
        per_tag.setdefault(r["category"], []).extend(s["failure"] is None for s in r["samples"])
    assert best["images"] == 10 and best["tags"] == {t: sum(v) / len(v) for t, v in per_tag.items()}
    assert "evaluation/evaluate_images.py" in (out / "summary.md").read_text()
    lines = MINI.read_bytes().split(b"\n")
    assert all((out / "images" / f"{i:05d}" / "metadata.jsonl").read_bytes() == lines[i] + b"\n" for i in range(5))

    # resume: a finished prompt is skipped, a lost one is redrawn identically, the rest untouched
    before = _tree(out)
    kept = (out / "records" / "00001.json").stat().st_mtime_ns
    (out / "records" / "00003.json").unlink()
    shutil.rmtree(out / "images" / "00003")
    _evaluate(out)
    assert (out / "records" / "00001.json").stat().st_mtime_ns == kept
    assert _tree(out) == before
    with pytest.raises(ValueError, match=r"holds a run with different \['samples_per_prompt'\]"):
        _evaluate(out, "--samples_per_prompt", "3")


def test_two_shards_write_the_same_folder_as_one_process(tmp_path):
    _evaluate(tmp_path / "one")
    _evaluate(tmp_path / "two", "--shard", "0/2")
    assert sorted(p.name for p in (tmp_path / "two" / "records").iterdir()) == [
        "00000.json", "00002.json", "00004.json"]
    _evaluate(tmp_path / "two", "--shard", "1/2", "--batch_prompts", "1")
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")


def test_prompt_slice_keeps_benchmark_indices(tmp_path):
    out = tmp_path / "slice"
    _evaluate(out, "--prompts", "3:5")
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00003", "00004"]
    _evaluate(out, "--prompts", "1:4")
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00001", "00002", "00003", "00004"]
    lines = MINI.read_text().splitlines()
    assert all(json.loads((out / "images" / f"{i:05d}" / "metadata.jsonl").read_text()) == json.loads(lines[i])
               for i in range(1, 5))
    with pytest.raises(ValueError, match=r"--prompts '2:9': needs 0 <= start <= stop <= 5"):
        _evaluate(out, "--prompts", "2:9")


def test_max_prompts_spreads_over_categories_by_benchmark_index(tmp_path):
    out = tmp_path / "spread"
    _evaluate(out, "--max_prompts", "3")           # one per category in turn: single_object, counting, position
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000", "00002", "00003"]
    _evaluate(out, "--max_prompts", "4")           # a larger run adds the next prompt, renumbers nothing
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000", "00002", "00003", "00004"]
    assert json.loads((out / "records" / "00004.json").read_text())["category"] == "colors"


def test_overlong_prompts_are_counted_failures_or_refused_up_front(tmp_path):
    lines = MINI.read_text().splitlines()
    long = json.loads(lines[1])
    long["prompt"] = "a photo of a cow " + "standing in a very wide green field " * 40
    path = tmp_path / "meta.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(long), lines[2]]) + "\n")
    with pytest.raises(ValueError, match=r"1 of 3 prompts do not fit the model's context of 256 tokens .*index 1"):
        _evaluate(tmp_path / "raise", "--overlong", "raise", path=path)
    assert not (tmp_path / "raise" / "records").exists()            # nothing drawn or written
    _evaluate(tmp_path / "skip", path=path)
    summary = json.loads((tmp_path / "skip" / "summary.json").read_text())
    assert summary["failures"]["prompt_too_long"] == 2 and summary["prompts"]["finished"] == 3
    assert all(_is_placeholder(tmp_path / "skip" / "images" / "00001" / "samples" / f"{k:04d}.png") for k in (0, 1))


def test_oneig_run_writes_the_grid_layout(tmp_path):
    out = tmp_path / "oneig"
    _evaluate(out, "--samples_per_prompt", "4", "--mode", "direct", path=ASSETS, benchmark="oneig")
    tiles = oneig_tiles(out / "images", "object", "unigen", ["000", "001"], (2, 2))
    assert [len(t) for t in tiles.values()] == [4, 4]
    assert json.loads((out / "summary.json").read_text())["failed"] == 0          # direct mode always draws
    assert 'IMAGE_GRIDS=("2,2")' in (out / "summary.md").read_text()
