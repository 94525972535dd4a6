"""The one pipeline: the command table, the world plug-in boundary, and `run.py loop` end to end on
the real GenEval file with tiny random models and a reward written outside the repository."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from benchmark_assets import real_geneval
from tests.conftest import REPO
from tests.test_geneval_reward import owl_dir  # noqa: F401  (fixture: a tiny random OWLv2 folder)
from tests.test_vqa_reward import llava_dir  # noqa: F401  (fixture: a tiny random VLM judge folder)
from unigen.cli import COMMANDS, LIGHTNING_COMMANDS, main
from unigen.evals.summary import summary_path
from unigen.models.loading import load_model
from unigen.pipeline.results import LoopResults

def test_help_lists_every_command_one_line_each(capsys):
    main(["--help"])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    for name in [*LIGHTNING_COMMANDS, *COMMANDS.short_names]:
        (line,) = [l for l in lines if l.split()[:1] == [name]]
        assert len(line.split()) > 2, line  # a description follows the name
    assert "args" not in captured.err


OUTSIDE_REWARD = '''
class PromptWords:
    """A reward living outside the repository: 1 / (words in the reasoning + 1)."""

    modality = "text"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, trajectories):
        return [self.scale / (len(t.reasoning.split()) + 1) for t in trajectories]
'''


@pytest.fixture
def outside_reward(tmp_path, monkeypatch):
    """A module written to a folder on the path, as a user's own package would be."""
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "outside_rewards.py").write_text(OUTSIDE_REWARD)
    monkeypatch.syspath_prepend(str(tmp_path / "plug"))
    return "outside_rewards.PromptWords"


def test_tiny_geneval_loop_end_to_end_and_an_outside_reward_in_loop_and_fit(
        tmp_path, monkeypatch, owl_dir, llava_dir, outside_reward):  # noqa: F811
    monkeypatch.chdir(REPO)  # the shipped configs' relative paths
    torch.manual_seed(0)
    base = tmp_path / "base"
    load_model("janus-micro").save_pretrained(str(base))
    paths = tmp_path / "paths.yaml"
    reward = {"class_path": "geneval", "init_args": {"detector": owl_dir, "strict": False}}
    paths.write_text(json.dumps({
        "model": str(base), "out": str(tmp_path / "loop"),
        "evaluate": {"benchmark": {"class_path": "geneval", "init_args": {"path": str(real_geneval())}},
                     "reward": reward},
        "score": {"rewards": {"vqa": {"class_path": "vqa_score", "init_args": {"judge": llava_dir}},
                              "geneval": reward,
                              "words": {"class_path": outside_reward, "init_args": {"scale": 2.0}}}},
    }))
    main(["loop", "--config", "configs/loop/tiny_geneval.yaml", "--config", str(paths)])

    results = LoopResults.read(tmp_path / "loop").runs[0]
    assert [e.key for e in results.evaluations] == ["base_explicit", "post_unified"]
    assert [e.summary["samples"] for e in results.evaluations] == [6, 6]
    assert sum(results.budget.values()) == 6
    stats = results.rounds[0].rewards
    assert results.rounds[0].trajectories == 12
    assert set(stats) == {"image/vqa", "image/geneval", "text/words"}
    assert 0 < stats["text/words"]["max"] <= 2.0 and 0 <= stats["image/vqa"]["mean"] <= 1
    run = tmp_path / "loop" / "seed-0"
    assert (run / "fit" / "model" / "config.json").is_file() and (run / "report.md").is_file()
    assert "The fit was weighted by `vqa`, not by the evaluation judge `geneval`" in (run / "report.md").read_text()
    geneval = {json.loads(line)["prompt"] for line in real_geneval().read_text().splitlines()}
    prompts = [json.loads(line)["prompt"] for line in (run / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 6 and not set(prompts) & geneval

    # the same outside reward, online in `run.py fit`, by YAML only
    overlay = tmp_path / "online.yaml"
    overlay.write_text(textwrap.dedent(f"""
        trainer:
          callbacks+:
            - class_path: callbacks.online_reward.OnlineReward
              init_args: {{name: words_online, reward: {{class_path: {outside_reward}, init_args: {{scale: 3.0}}}}}}
            - class_path: callbacks.reward_weighting.RewardWeighting
              init_args: {{text: {{scheme: rwr, rewards: {{text/words_online: 1.0}}}}}}
        """))
    main(["fit", "--config", "configs/tiny_post_train.yaml", "--config", str(overlay),
          "--model.init_args.model", str(base), "--trainer.max_steps", "2",
          "--data.init_args.train_shards", json.dumps([str(run / "scored" / "scored-*.tar")]),
          "--trainer.default_root_dir", str(tmp_path / "fit"), "--trainer.logger",
          "lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={tmp_path / 'fit'}"])
    (metrics,) = (tmp_path / "fit").rglob("metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert "reward/words_online" in header and "reward_weight/text/ess" in header


def test_stage_refuses_changed_settings(tmp_path):
    from unigen.pipeline.target import TargetSettings, target

    out = tmp_path / "p.jsonl"
    settings = TargetSettings(out=str(out), strategy="broad", budget=12, prompts="shapes")
    assert target(settings) == out
    first = out.read_text()
    assert target(settings) == out and out.read_text() == first  # reused
    with pytest.raises(ValueError, match=r"holds a run with different \['budget'\]"):
        target(TargetSettings(out=str(out), strategy="broad", budget=13, prompts="shapes"))


@pytest.mark.parametrize("fit_from,accumulate", [("previous", False), ("base", False), ("previous", True)])
def test_loop_rounds_generate_with_the_newest_model_and_fit_from_the_chosen_start(tmp_path, monkeypatch, fit_from,
                                                                                   accumulate):
    """The loop's wiring alone (every stage replaced by a recorder): round r generates with round r-1's
    model at that model's chosen guidance scale, and fits from it (``previous``) or from the base
    (``base``), on its own round's shards or (``accumulate``, here with ``reflect`` on) on those of
    rounds 1..r; every model is evaluated at its own scale, searched up to its start model's."""
    from unigen.pipeline import loop as loop_module
    from unigen.pipeline.guidance import GuidanceSearch
    from unigen.pipeline.reflect import ReflectSettings
    from unigen.pipeline.score import rewards_path
    scales = {"base": 2.0, "post": 1.5, "post2": 1.0, "post3": 3.0}
    calls: dict[str, list] = {"generate": [], "fit": [], "evaluate": [], "shards": [], "ceilings": [], "reflect": []}

    def fake_target(t):
        Path(t.out).parent.mkdir(parents=True, exist_ok=True)
        Path(t.out).write_text("")
        Path(f"{t.out}.plan.json").write_text(json.dumps({"budgets": {"colors": 1}}))
        return Path(t.out)

    def fake_evaluate(e):
        calls["evaluate"].append((e.model, e.sampling.cfg))
        Path(e.outdir).mkdir(parents=True, exist_ok=True)
        summary_path(e.outdir).write_text("{}")
        return Path(e.outdir)

    def fake_score(sc):
        Path(sc.output).mkdir(parents=True, exist_ok=True)
        rewards_path(sc.output, sc.prefix).write_text(json.dumps({"image/r": {"count": 4, "missing": 0}}))
        return Path(sc.output)

    def fake_fit(f):
        calls["fit"].append(f.model)
        calls["shards"].append([f"{Path(x).parent.parent.name}/{Path(x).parent.name}" for x in f.train_shards])
        return Path(f.out) / "model"

    monkeypatch.setattr(loop_module, "target", fake_target)
    monkeypatch.setattr(loop_module, "evaluate", fake_evaluate)
    monkeypatch.setattr(loop_module, "select_guidance", lambda search, chosen, validation, out, ceiling:
                        calls["ceilings"].append(ceiling) or scales[out.name])
    monkeypatch.setattr(loop_module, "generate",
                        lambda g: calls["generate"].append((g.model, g.sampling.cfg)) or Path(g.out_dir))
    monkeypatch.setattr(loop_module, "score", fake_score)
    monkeypatch.setattr(loop_module, "reflect",
                        lambda rf: calls["reflect"].append((rf.tokenizer, rf.max_text_tokens)) or Path(rf.output))
    monkeypatch.setattr(loop_module, "fit", fake_fit)
    monkeypatch.setattr(loop_module, "write_report", lambda *args: None)
    settings = loop_module.LoopSettings(
        model="base", evaluate=loop_module.EvaluateSettings(benchmark="shapes"),
        score=loop_module.ScoreSettings(rewards={"r": "shapes_strict"}), fit=loop_module.FitSettings(),
        reflect=ReflectSettings(judge="shapes_strict") if accumulate else None, guidance=GuidanceSearch(),
        out=str(tmp_path), rounds=3, fit_from=fit_from, accumulate=accumulate, base_modes=["explicit"])
    results = loop_module.run_seed(settings, 0)
    fitted = [str(tmp_path / "seed-0" / "fit" / "model"), str(tmp_path / "seed-0" / "round-2" / "fit" / "model")]
    assert calls["generate"] == [("base", 2.0), (fitted[0], 1.5), (fitted[1], 1.0)]
    assert calls["fit"] == (["base", *fitted] if fit_from == "previous" else ["base"] * 3)
    assert calls["evaluate"] == [("base", 2.0), (fitted[0], 1.5), (fitted[1], 1.0),
                                 (str(tmp_path / "seed-0" / "round-3" / "fit" / "model"), 3.0)]
    assert results.guidance == list(scales.values()) and [r.cfg for r in results.rounds] == [2.0, 1.5, 1.0]
    # each fitted model's search is capped at its start model's scale
    assert calls["ceilings"] == ([None, 2.0, 1.5, 1.0] if fit_from == "previous" else [None, 2.0, 2.0, 2.0])
    own = [[f"{r}/reflect" if accumulate else f"{r}/scored"] for r in ("seed-0", "round-2", "round-3")]  # reflect's replace scored
    assert calls["shards"] == ([own[0], own[0] + own[1], own[0] + own[1] + own[2]] if accumulate else own)
    # reflections are counted in the generating model's tokens, against the evaluation's text budget
    assert calls["reflect"] == ([("base", 64), (fitted[0], 64), (fitted[1], 64)] if accumulate else [])
    assert [r.mode for r in results.rounds][1:] == ["unified", "unified"]  # rounds > 1: post_modes[0]


def test_interleaved_loop_with_the_detector_as_explaining_judge(tmp_path, monkeypatch, owl_dir):  # noqa: F811
    """configs/loop/janus_pro_7b_irg.yaml stacked on the tiny GenEval loop (a random tiny Janus, the
    tiny OWLv2 on CPU) runs every stage: `reflect` with the detector as its judge feeds the fit, and the
    post-trained model is evaluated in interleaved mode (the pairs themselves: tests/test_reflect.py)."""
    monkeypatch.chdir(REPO)
    torch.manual_seed(0)
    base = tmp_path / "base"
    load_model("janus-micro").save_pretrained(str(base))
    reward = {"class_path": "geneval", "init_args": {"detector": owl_dir, "strict": False}}
    paths = tmp_path / "paths.yaml"
    paths.write_text(json.dumps({
        "model": str(base), "out": str(tmp_path / "loop"),
        "evaluate": {"benchmark": {"class_path": "geneval", "init_args": {"path": str(real_geneval())}},
                     "reward": reward},
        "score": {"rewards": {"geneval": reward}}, "reflect": {"judge": reward},
    }))
    main(["loop", "--config", "configs/loop/tiny_geneval.yaml", "--config", "configs/loop/janus_pro_7b_irg.yaml",
          "--config", str(paths)])
    run = tmp_path / "loop" / "seed-0"
    settings = json.loads((run / "reflect" / "reflect-settings.json").read_text())
    assert settings["judge"] == reward and settings["pairing"]["reward"] == "image/geneval"
    assert json.loads((run / "reflect" / "reflect-summary.json").read_text())["total"]["trajectories"] == 12
    fit = json.loads((run / "fit" / "fit-settings.json").read_text())
    assert fit["train_shards"] == [str(run / "reflect" / "reflect-*.tar")]
    results = LoopResults.read(tmp_path / "loop").runs[0]
    assert [e.key for e in results.evaluations] == ["base_explicit", "post_interleaved", "post_unified"]
    assert results.evaluations[1].summary["scored_image"] == "final"
