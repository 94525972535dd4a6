"""`run.py loop` on ShapesWorld with a micro budget (minutes-scale smoke of the main job), and the
world's prompt source."""

from __future__ import annotations

import json

from tests.conftest import REPO
from unigen.cli import main
from unigen.evals.targeting import plan_budgets
from unigen.worlds.shapes.grammar import benchmark_prompts
from unigen.worlds.shapes.vocab import CATEGORIES
from unigen.worlds.shapes.world import ShapesPrompts


def test_targeted_prompts_follow_failure_rates_and_avoid_the_benchmark(tmp_path):
    bench = benchmark_prompts(4)
    scores = {c: 1.0 for c in CATEGORIES} | {"position": 0.0, "counting": 0.5}
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"categories": {c: {"score": s} for c, s in scores.items()}}))
    source = ShapesPrompts()
    counts, weights = plan_budgets("targeted", 100, 0.05, [str(summary)], source, None)
    records = source.draw(counts, weights, "targeted", 0, set())
    assert counts["position"] > counts["counting"] > counts["colors"] == 5
    assert sum(counts.values()) == len(records) == 100
    assert not {r.prompt for r in records} & {b.prompt for b in bench}
    assert records[0].id.startswith("loop-")
    broad = source.natural_mix()
    assert broad["color_attr"] > broad["single_object"]  # the world's natural mix


def test_loop_smoke_switch_rate_rises_and_report_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the shipped config's relative paths
    out = tmp_path / "loop"
    overlay = tmp_path / "micro.yaml"  # a spec with init_args is overridden by a stacked YAML
    overlay.write_text("evaluate:\n  benchmark: {class_path: shapes, init_args: {per_category: 2}}\n")
    main(["loop", "--config", "configs/loop/shapes.yaml", "--config", str(overlay), "--out", str(out),
          "--evaluate.samples_per_prompt", "2", "--target.budget", "48", "--generate.samples_per_prompt", "2",
          "--fit.args", '["--trainer.max_steps=40", "--data.init_args.batch_size=16", "--model.init_args.lr=1e-3"]'])
    results = json.loads((out / "results.json").read_text())["runs"][0]
    assert results["evaluations"] == ["base_explicit", "base_unified", "post_unified"]
    assert results["base_unified"]["switch_rate"] <= 0.2  # the explicit-trained base rarely switches itself
    assert results["post_unified"]["switch_rate"] >= results["base_unified"]["switch_rate"] + 0.5
    assert results["self_generated"]["trajectories"] == 96
    run = out / "seed-0"
    for name in ("report.md", "grid.png", "prompts.jsonl", "fit/model/config.json", "scored/scored-rewards.json",
                 "eval/post_unified/summary.json"):
        assert (run / name).exists(), name
    assert list((run / "fit").rglob("events.out.tfevents.*"))
    assert "| **overall** |" in (out / "report.md").read_text()
