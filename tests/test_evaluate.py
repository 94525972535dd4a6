"""run.py evaluate on the janus-micro preset: GenEval layout, scores, summary, resume."""

import json
import shutil

import torch

from benchmark_assets import ASSETS
from unigen.cli import main as run

MINI = ASSETS / "geneval_mini.jsonl"


def _evaluate(outdir, *extra):
    torch.manual_seed(0)  # a preset's random weights come from the global RNG: the same model each call
    benchmark = json.dumps({"class_path": "geneval", "init_args": {"path": str(MINI)}})
    run(["evaluate", "--model", "janus-micro", "--benchmark", benchmark,
         "--outdir", str(outdir), "--samples_per_prompt", "2", "--batch_prompts", "3",
         "--sampling.max_reasoning_tokens", "4", *extra])


def test_evaluate_writes_geneval_layout_summary_and_resumes(tmp_path):
    out = tmp_path / "eval"
    _evaluate(out)
    lines = MINI.read_bytes().split(b"\n")
    for index in range(5):
        folder = out / f"{index:05d}"
        assert (folder / "metadata.jsonl").read_bytes() == lines[index] + b"\n"
        scores = json.loads((folder / "scores.json").read_text())
        assert [s["n"] for s in scores["samples"]] == [0, 1]
        for s in scores["samples"]:
            assert (folder / "samples" / f"{s['n']:04d}.txt").is_file()
            assert (folder / "samples" / f"{s['n']:04d}.png").is_file() == s["has_image"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 10 and set(summary["categories"]) == {
        "single_object", "counting", "position", "colors"}
    # color_match applies to the one colors prompt only: 2 scored samples, each 0 or 1
    assert summary["scored"] == 2 and summary["categories"]["colors"]["score"] in (0.0, 0.5, 1.0)
    assert summary["overall"] == summary["categories"]["colors"]["score"]
    assert 0.0 <= summary["switch_rate"] <= 1.0
    assert (out / "summary.md").read_text().count("\n") == 7 and (out / "grid.png").is_file()

    kept = (out / "00001" / "scores.json").stat().st_mtime_ns
    before = {f.name: f.read_bytes() for f in (out / "00003" / "samples").iterdir()}
    shutil.rmtree(out / "00003")
    (out / "00004.tmp").mkdir()                                            # a crashed half-written folder
    _evaluate(out)
    assert (out / "00001" / "scores.json").stat().st_mtime_ns == kept      # finished folder skipped
    assert (out / "00003" / "metadata.jsonl").read_bytes() == lines[3] + b"\n"
    # per-(prompt, sample) seeds: prompt 3, now drawn alone instead of beside prompt 4, is identical
    assert {f.name: f.read_bytes() for f in (out / "00003" / "samples").iterdir()} == before
    assert json.loads((out / "summary.json").read_text())["samples"] == 10
