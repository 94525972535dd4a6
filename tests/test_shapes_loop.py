"""`run.py loop` on ShapesWorld with a micro budget (minutes-scale smoke of the main job with two
rounds and a shared folder), and the world's prompt source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO
from unigen.cli import main
from unigen.evals.targeting import plan_budgets
from unigen.pipeline.results import LoopResults, SeedResults, results_path
from unigen.worlds.shapes.grammar import benchmark_prompts
from unigen.worlds.shapes.vocab import CATEGORIES
from unigen.worlds.shapes.world import ShapesPrompts


def test_targeted_prompts_follow_failure_rates_and_avoid_the_benchmark(tmp_path):
    bench = benchmark_prompts()
    assert [sum(r.category == c for r in bench) for c in CATEGORIES] == [6] * 6
    scores = {c: 1.0 for c in CATEGORIES} | {"position": 0.0, "counting": 0.5}
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"categories": {c: {"score": s} for c, s in scores.items()}}))
    source = ShapesPrompts()
    counts, weights = plan_budgets("targeted", 100, 0.05, [str(summary)], source, None)
    records = source.draw(counts, weights, "targeted", 0, set())
    assert counts["position"] > counts["counting"] > counts["colors"] == 5
    assert "single_object" not in counts  # benchmark-only: no training prompts
    assert sum(counts.values()) == len(records) == 100
    assert not {r.prompt for r in records} & {b.prompt for b in bench}
    assert records[0].id.startswith("loop-")
    broad = source.natural_mix()
    assert broad["color_attr"] > broad["two_object"]  # the world's natural mix
    aligned, _ = plan_budgets("benchmark_aligned", 100, 0.0, [], source, [r.category for r in bench])
    assert set(aligned) == set(CATEGORIES) - {"single_object"} and sum(aligned.values()) == 100


def test_loop_two_rounds_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the shipped config's relative paths
    out, share = tmp_path / "loop", tmp_path / "share"
    overlay = tmp_path / "micro.yaml"  # a spec with init_args is overridden by a stacked YAML
    overlay.write_text("evaluate:\n  benchmark: {class_path: shapes, init_args: {per_category: 1}}\n")
    args = ["loop", "--config", "configs/loop/shapes.yaml", "--config", str(overlay), "--out", str(out),
            "--share", str(share), "--rounds", "2", "--post_modes", "[unified, direct]",
            "--evaluate.samples_per_prompt", "2", "--target.budget", "20", "--generate.samples_per_prompt", "2",
            "--fit.config", '["configs/shapes/post_train.yaml", "configs/shapes/weight_none.yaml"]',
            "--fit.args", '["--trainer.max_steps=20", "--data.init_args.batch_size=8", "--model.init_args.lr=3e-3"]',
            "--guidance.scales", "[1.0, 2.0]", "--guidance.prompts", "6", "--guidance.samples_per_prompt", "1"]
    main(args)
    results = LoopResults.read(out).runs[0]
    evaluations = {e.key: e for e in results.evaluations}
    assert list(evaluations) == ["base_explicit", "base_unified", "post_unified", "post_direct",
                                 "post2_unified", "post2_direct"]
    assert evaluations["base_unified"].summary["switch_rate"] <= 0.2  # the explicit-trained base rarely switches itself
    assert evaluations["post_unified"].summary["switch_rate"] >= 0.5
    assert [(r.mode, r.trajectories) for r in results.rounds] == [("explicit", 40), ("unified", 40)]
    scales = results.guidance  # each model's scale (by round), chosen on validation prompts, is the one it samples at
    assert len(scales) == 3 and set(scales) <= {1.0, 2.0}
    assert scales[2] <= scales[1] <= scales[0]  # a fitted model's search stops at its start's scale
    searched = json.loads((out / "seed-0" / "round-2" / "guidance" / "post2" / "guidance.json").read_text())["scores"]
    assert max(map(float, searched)) <= scales[1]  # larger scales are never evaluated
    assert [r.cfg for r in results.rounds] == scales[:2]
    for e in results.evaluations:
        settings = json.loads((Path(e.folder) / "evaluate-settings.json").read_text())
        assert settings["sampling"]["cfg"] == scales[e.round], e.key
    run = out / "seed-0"
    for name in ("report.md", "grid.png", "prompts.jsonl", "fit/model/config.json", "round-2/fit/model/config.json",
                 "round-2/scored/scored-rewards.json", "eval/post_direct/summary.json"):
        assert (run / name).exists(), name
    assert sorted(p.name.split("-")[0] for p in share.iterdir()) == ["eval", "eval", "generated", "guidance", "scored",
                                                                     "validation"]
    validation = {r["prompt"] for r in map(json.loads, next(share.glob("validation-*/prompts.jsonl")).open())}
    assert len(validation) == 6 and not validation & {b.prompt for b in benchmark_prompts()}
    report = (out / "report.md").read_text()
    assert "| **overall** |" in report and "shapes_geneval" in report and "Reasoning ablation" in report
    assert report.splitlines()[2].startswith("| shapes_strict | base, explicit |")  # the headline metric by name
    assert "nan" not in report  # the GenEval-rule column re-scores every evaluation image
    assert "| 2 | unified | 40 |" in report  # the rounds table
    assert "guidance scale, chosen on validation prompts (per seed): base" in report
    model = run / "round-2" / "fit" / "model" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    main(args)  # a finished loop resumes from every stage's output
    assert model.stat().st_mtime_ns == stamp


def test_loop_interleaved_smoke(tmp_path, monkeypatch):
    """configs/loop/shapes_irg.yaml stacked on the main job, micro budget: the reflect stage feeds the
    fit, the post-trained model is evaluated in interleaved mode (final image scored, earlier ones kept)."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "loop"
    overlay = tmp_path / "micro.yaml"
    overlay.write_text("evaluate:\n  benchmark: {class_path: shapes, init_args: {per_category: 1}}\n")
    main(["loop", "--config", "configs/loop/shapes.yaml", "--config", "configs/loop/shapes_irg.yaml",
          "--config", str(overlay), "--out", str(out), "--base_modes", "[unified]",
          "--evaluate.samples_per_prompt", "2", "--target.budget", "16", "--generate.samples_per_prompt", "4",
          "--fit.config", '["configs/shapes/post_train.yaml", "configs/shapes/weight_both.yaml"]',
          "--fit.args", '["--trainer.max_steps=20", "--data.init_args.batch_size=8", "--model.init_args.lr=3e-3"]',
          "--guidance.scales", "[1.0, 2.0]", "--guidance.prompts", "6", "--guidance.samples_per_prompt", "1"])
    run = out / "seed-0"
    results = SeedResults.from_json(json.loads(results_path(run).read_text()))
    assert [e.key for e in results.evaluations] == ["base_unified", "post_interleaved", "post_unified"]
    reflect = json.loads((run / "reflect" / "reflect-summary.json").read_text())["total"]
    assert reflect["prompts"] == 16 and reflect["trajectories"] == 64  # every scored sample, once
    fit_settings = json.loads((run / "fit" / "fit-settings.json").read_text())
    assert fit_settings["train_shards"] == [str(run / "reflect" / "reflect-*.tar")]
    assert fit_settings["model"] == "unigen/worlds/shapes/assets/base_interleaved"  # the base that sees and redraws
    summary = results.evaluations[1].summary
    assert summary["scored_image"] == "final"
    assert all({"first_score", "redraw_share"} <= set(e) for e in summary["categories"].values())
    assert "first_overall" not in results.evaluations[2].summary
    records = [json.loads(p.read_text()) for p in (run / "eval" / "post_interleaved" / "records").glob("*.json")]
    turns = [s["turns"] for r in records for s in r["samples"]]
    assert len(turns) == 12 and summary["redraw_share"] == sum(t["redrew"] for t in turns) / 12
    for t in turns:  # every earlier image is kept beside the record
        assert len(t["files"]) == max(t["images"] - 1, 0) and t["redrew"] == (t["images"] > 1)
        assert all((run / "eval" / "post_interleaved" / f).is_file() for f in t["files"])
    report = (run / "report.md").read_text()
    assert "Interleaved generation, post-trained, interleaved (scores are the final image's; paired bootstrap" in report
    assert "| shapes_strict | first image | final image | final - first | redraw share |" in report
    lines = report.splitlines()  # then where the redraws gain and lose
    start = next(i for i, line in enumerate(lines) if line.startswith("| | redraws / samples | improved / worsened |"))
    account = next(line for line in lines[start:] if line.startswith("| **overall** | "))
    scored = sum(t["first_score"] is not None for t in turns)
    assert account.startswith(f"| **overall** | {sum(t['redrew'] for t in turns)} / {scored} | ")


def test_loop_refuses_reflect_with_a_fit_outside_unified_mode(tmp_path, monkeypatch):
    """A reflect loop whose fit reads data in another mode would skip every reflect trajectory:
    refused before any stage runs."""
    monkeypatch.chdir(REPO)
    with pytest.raises(ValueError, match="data.init_args.mode 'explicit'"):
        main(["loop", "--config", "configs/loop/shapes.yaml", "--config", "configs/loop/shapes_irg.yaml",
              "--out", str(tmp_path / "loop"), "--fit.args", '["--data.init_args.mode=explicit"]'])
    assert not (tmp_path / "loop").exists()


def test_a_base_rewritten_in_place_gets_new_shared_outputs(tmp_path):
    """The share folder is keyed by the base folder's files as well as the stage settings: the same
    path with retrained weights must not reuse the old base's evaluations and samples."""
    import os
    from types import SimpleNamespace

    from unigen.pipeline.loop import _shared, model_files
    base = tmp_path / "base"
    base.mkdir()
    weights = base / "model.safetensors"
    weights.write_bytes(b"old weights")
    s = SimpleNamespace(share=str(tmp_path / "share"), model=str(base))
    before = _shared(s, "eval", {"benchmark": "shapes"})
    assert _shared(s, "eval", {"benchmark": "shapes"}) == before  # stable
    assert _shared(s, "eval", {"benchmark": "other"}) != before  # settings still count
    stat = weights.stat()
    weights.write_bytes(b"new weights")  # same size, retrained in place
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert _shared(s, "eval", {"benchmark": "shapes"}) != before
    assert model_files("shapes-janus") is None  # a preset name: keyed by settings alone


def test_runs_with_their_own_out_share_round_one_samples(tmp_path):
    """Each run writes its targeted prompts into its own ``seed-<s>/prompts.jsonl``: round 1's shared
    samples are keyed by the prompts' content, so a second run (another ``--out``, same prompts)
    reuses them and a run with other prompts does not."""
    from types import SimpleNamespace

    from unigen.pipeline.generate import GenerateSettings
    from unigen.pipeline.loop import _by_content, _shared

    s = SimpleNamespace(share=str(tmp_path / "share"), model="shapes-janus")
    paths = [tmp_path / run / "seed-0" / "prompts.jsonl" for run in ("single", "irg", "other")]
    for path, text in zip(paths, ['{"id": "a"}\n', '{"id": "a"}\n', '{"id": "b"}\n']):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    single, irg, other = (_shared(s, "generated", *_by_content(GenerateSettings(prompts=[str(p)], model="m")))
                          for p in paths)
    assert single == irg and other != single
    assert _shared(s, "generated", *_by_content(GenerateSettings(prompts=[str(paths[0])], model="m", seed=2))) != single
