"""Reflect-and-redraw data: the strict judge's findings, the builder, `run.py reflect` end to end
(scored shards in, two-turn shards out that train), and `run.py score` per image turn."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from unigen.cli import main
from unigen.data.reader import read_shard
from unigen.data.reflections import UNSPECIFIC, Pairing, build_reflections, reflection
from unigen.data.sequence import build_example
from unigen.data.shards import write_shard
from unigen.data.trajectory import Trajectory, Turn
from unigen.files import png_bytes
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import PlanItem, format_plan
from unigen.worlds.shapes.render import draw, layout
from unigen.worlds.shapes.rewards import ShapesImageReward

TWO = {"tag": "two_object", "include": [{"class": "circle", "count": 1, "color": "red"},
                                        {"class": "square", "count": 1, "color": "blue"}]}
LEFT = {"tag": "position", "include": [{"class": "circle", "count": 1},
                                       {"class": "square", "count": 1, "position": ["left of", 0]}]}

COLORED_LEFT = {"tag": "position", "include": [{"class": "circle", "count": 1, "color": "red"},
                                               {"class": "square", "count": 1, "color": "blue",
                                                "position": ["left of", 0]}]}


def scene(items: list[PlanItem], seed: int = 0) -> np.ndarray:
    return draw(layout(items, 32, random.Random(seed)), 32)


GOOD = [PlanItem("red", "circle", "top left"), PlanItem("blue", "square", "bottom right")]


@pytest.mark.parametrize("items, meta, expected", [
    (GOOD, TWO, []),
    ([GOOD[0]], TWO, ["missing one blue square"]),
    ([GOOD[0], PlanItem("green", "square", "bottom right")], TWO, ["green square should be blue"]),
    (GOOD + [PlanItem("yellow", "tee", "top right")], TWO, ["extra yellow tee"]),
    ([PlanItem("red", "circle", "top left"), PlanItem("blue", "square", "top right")], LEFT, ["square not left of circle"]),
    ([PlanItem("green", "circle", "top left"), PlanItem("blue", "square", "top right")], COLORED_LEFT,
     ["green circle should be red", "square not left of circle"]),  # a recoloured anchor still anchors
])
def test_strict_judge_findings(items, meta, expected):
    judge = ShapesJudge(strict=True)
    image = scene(items)
    assert judge.findings(image, meta) == expected
    assert judge.judge(image, meta) == (expected == [], expected)  # one definition of what is wrong


def sample(prompt_id: str, idx: int, items: list[PlanItem], meta: dict, reward: float | None = None) -> Trajectory:
    rewards = {} if reward is None else {"image": {"shapes_strict": reward}, "text": {"shapes_plan": 0.5}}
    return Trajectory(prompt_id, idx, f"prompt {prompt_id}", format_plan(items), np.arange(16, dtype=np.int64) + idx,
                      metadata=meta, rewards=rewards, png=png_bytes(scene(items, idx)))


def samples() -> list[Trajectory]:
    """p0: two failing, one accepted; p1: only accepted; p2: only failing."""
    return [sample("p0", 0, [GOOD[0]], TWO, 0.0), sample("p0", 1, GOOD, TWO, 1.0),
            sample("p0", 2, GOOD + [PlanItem("white", "cross", "top right")], TWO, 0.0),
            sample("p1", 0, GOOD, TWO, 1.0), sample("p2", 0, [GOOD[1]], TWO, 0.0)]


def test_builder_pairs_failing_with_accepted_samples_of_the_prompt():
    judge = ShapesImageReward()
    built, counts = build_reflections(samples(), Pairing(pairs_per_prompt=2), judge.explain)
    assert counts == {"prompts": 3, "paired_prompts": 1, "no_rated": 0, "no_accepted": 1, "no_failing": 1,
                      "unexplained": 0, "unspecific": 0}
    assert [(t.key, t.generation["first"], t.generation["second"]) for t in built] == [
        ("p0_0", "p0_0", "p0_1"), ("p0_1", "p0_2", "p0_1")]
    first, second = samples()[0], samples()[1]
    t = built[0]
    assert t.reasoning == first.reasoning and np.array_equal(t.image_tokens, first.image_tokens) and t.png == first.png
    assert len(t.turns) == 1 and np.array_equal(t.turns[0].image_tokens, second.image_tokens)
    assert t.turns[0].png == second.png
    assert t.turns[0].text == "missing one blue square. " + second.reasoning
    assert built[1].turns[0].text.startswith("extra white cross. plan:")
    assert t.rewards == {"image": {"shapes_strict@0": 0.0, "shapes_strict@1": 1.0, "shapes_strict": 1.0},
                         "text": {"shapes_plan@0": 0.5, "shapes_plan@1": 0.5, "shapes_plan": 0.5}}
    assert reflection([], "plan: x.") == "plan: x."
    one, _ = build_reflections(samples(), Pairing(pairs_per_prompt=1), judge.explain)
    assert len(one) == 1


def test_builder_counts_what_it_can_pair():
    """Counts use the pairing's own filter: an unrated prompt is ``no_rated`` (not ``no_accepted``),
    a rated multi-turn sample is not a usable accepted one."""
    unrated = sample("p3", 0, GOOD, TWO)
    two_turn = sample("p4", 1, GOOD, TWO, 1.0)
    two_turn.turns = [Turn("again", two_turn.image_tokens)]
    built, counts = build_reflections([unrated, sample("p4", 0, [GOOD[0]], TWO, 0.0), two_turn],
                                      Pairing(), ShapesImageReward().explain)
    assert built == [] and counts == {"prompts": 2, "paired_prompts": 0, "no_rated": 1, "no_accepted": 1,
                                      "no_failing": 0, "unexplained": 0, "unspecific": 0}


def test_unspecific_findings_are_counted():
    def explain(trajs):
        return [[UNSPECIFIC] if t.sample_idx == 0 else ["missing one blue square"] for t in trajs]

    built, counts = build_reflections(samples(), Pairing(pairs_per_prompt=2), explain)
    assert len(built) == 2 and counts["unspecific"] == 1 and built[0].turns[0].text.startswith(UNSPECIFIC + ".")


def test_reflect_command_end_to_end_and_the_result_trains(tmp_path, module, monkeypatch):
    write_shard(tmp_path / "scored", "scored", 0, samples()[:3])
    write_shard(tmp_path / "scored", "scored", 1, samples()[3:])
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "out"),
          "--judge", "shapes_strict", "--pairing.pairs_per_prompt", "2"])
    out = tmp_path / "out"
    built = list(read_shard(out / "reflect-000000.tar"))
    assert len(built) == 2 and list(read_shard(out / "reflect-000001.tar")) == []
    summary = json.loads((out / "reflect-summary.json").read_text())
    assert summary["total"] == {"no_accepted": 1, "no_failing": 1, "no_rated": 0, "paired_prompts": 1, "prompts": 3,
                                "trajectories": 2, "unexplained": 0, "unspecific": 0}
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    monkeypatch.setattr(ShapesImageReward, "explain", lambda self, trajs: pytest.fail("resume re-explained a shard"))
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(out), "--judge", "shapes_strict",
          "--pairing.pairs_per_prompt", "2"])  # resume: nothing rebuilt, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written
    monkeypatch.undo()
    example = build_example(built[0], module.spec, "unified")  # 16 ids per image: janus-micro geometry
    assert sum(example.image_mask) == 32 and [r for _, r in example.parts] == [
        {"image/shapes_strict": 0.0, "text/shapes_plan": 0.5}, {"image/shapes_strict": 1.0, "text/shapes_plan": 0.5}]
    with pytest.raises(TypeError, match="explain"):
        main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "o2"), "--judge", "shapes_plan"])
    assert not (tmp_path / "o2" / "reflect-settings.json").exists()  # so the corrected rerun is not refused
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "o2"), "--judge", "shapes_strict"])


def test_reflect_killed_after_a_shard_keeps_its_counts(tmp_path, monkeypatch):
    """A kill right after a shard is written (before the summary) loses none of its counts."""
    import unigen.pipeline.reflect as stage

    write_shard(tmp_path / "scored", "scored", 0, samples()[:3])
    write_shard(tmp_path / "scored", "scored", 1, samples()[3:])
    argv = ["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "out"), "--judge", "shapes_strict"]
    real = stage.write_shard

    def killed_after_writing(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "write_shard", killed_after_writing)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    monkeypatch.undo()
    main(argv)
    summary = json.loads((tmp_path / "out" / "reflect-summary.json").read_text())
    assert summary["total"] == {"no_accepted": 1, "no_failing": 1, "no_rated": 0, "paired_prompts": 1, "prompts": 3,
                                "trajectories": 1, "unexplained": 0, "unspecific": 0}
    assert sorted(summary["shards"]) == ["reflect-000000.tar", "reflect-000001.tar"]


def test_score_rates_every_image_turn(tmp_path):
    first, second = samples()[0], samples()[1]
    two = Trajectory("p0", 5, first.prompt, first.reasoning, first.image_tokens, metadata=TWO, png=first.png,
                     turns=[Turn("fix it", second.image_tokens, second.png)], rewards={"image": {"old@0": 0.3}})
    single = samples()[1]
    write_shard(tmp_path / "in", "traj", 0, [two, single])
    main(["score", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "scored"),
          "--rewards", '{"strict": "shapes_strict"}'])
    scored = list(read_shard(tmp_path / "scored" / "scored-000000.tar"))
    assert scored[0].rewards == {"image": {"old@0": 0.3, "strict@0": 0.0, "strict@1": 1.0, "strict": 1.0}}
    assert scored[1].rewards == {"image": {"shapes_strict": 1.0, "strict": 1.0}, "text": {"shapes_plan": 0.5}}
    stats = json.loads((tmp_path / "scored" / "scored-rewards.json").read_text())
    assert stats["image/strict@0"]["mean"] == 0.0 and stats["image/strict"]["mean"] == 1.0
