"""`run.py loop` end to end with a micro budget (minutes-scale smoke of the main job, two rounds)."""

from __future__ import annotations

import json

from unigen.cli import main
from unigen.worlds.shapes.grammar import benchmark_prompts
from unigen.worlds.shapes.loop import DEFAULT_BASE, build_prompts, category_weights
from unigen.worlds.shapes.vocab import CATEGORIES


def test_targeted_prompts_follow_failure_rates_and_avoid_the_benchmark():
    bench = benchmark_prompts()
    assert [sum(r.category == c for r in bench) for c in CATEGORIES] == [6] * 6
    scores = {c: 1.0 for c in CATEGORIES}
    scores.update(position=0.0, counting=0.5)
    records, counts = build_prompts("targeted", scores, bench, budget=100, floor=0.05, seed=0)
    assert counts["position"] > counts["counting"] > counts["colors"] == 5
    assert "single_object" not in counts  # benchmark-only: no training prompts
    assert sum(counts.values()) == len(records) == 100
    assert not {r.prompt for r in records} & {b.prompt for b in bench}
    broad = category_weights("broad", scores, bench)
    assert broad["color_attr"] > broad["two_object"]  # the world's natural mix


def test_loop_two_rounds_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["loop", "--config", str(DEFAULT_BASE.parents[4] / "configs" / "loop" / "shapes.yaml"), "--out", "loop",
            "--rounds", "2", "--eval_per_category", "1", "--eval_samples", "2", "--budget", "20",
            "--samples_per_prompt", "2", "--weighting", "none", "--fit_settings.steps", "20", "--fit_settings.batch_size", "8",
            "--fit_settings.lr", "3e-3"]
    main(args)
    run = tmp_path / "loop" / "seed-0"
    results = json.loads((run / "results.json").read_text())
    assert results["base_unified"]["switch_rate"] <= 0.2  # the explicit-trained base rarely switches itself
    assert [r["self_generated"]["mode"] for r in results["rounds"]] == ["explicit", "unified"]
    assert [r["self_generated"]["trajectories"] for r in results["rounds"]] == [40, 40]
    assert results["rounds"][1]["post_unified"]["switch_rate"] >= 0.5
    assert len(results["base_explicit"]["strict"]) == 6 and len(results["base_explicit"]["strict"][0]) == 2
    for name in ("report.md", "grid.png", "prompts.jsonl", "round-1/model/config.json", "round-2/model/config.json",
                 "round-2/data/complete.json"):
        assert (run / name).exists(), name
    assert list((run / "round-2" / "tensorboard" / "fit").glob("events.out.tfevents.*"))
    report = (tmp_path / "loop" / "report.md").read_text()
    assert "| **overall** |" in report and "| 2 |" in report  # the per-round table
    assert len(list((tmp_path / "loop" / "cache").glob("base-*.json"))) == 2
    before = (run / "round-2" / "model" / "model.safetensors").stat().st_mtime
    (run / "results.json").unlink()
    main(args)  # resumes: every stage's output is reused
    assert (run / "round-2" / "model" / "model.safetensors").stat().st_mtime == before
