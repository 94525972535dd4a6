"""Reflect-and-redraw data: the strict judge's findings, the builder, `run.py reflect` end to end
(scored shards in, two-turn shards out that train), and `run.py score` per image turn."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest

from tests.test_geneval_reward import owl_dir  # noqa: F401  (fixture: a tiny random OWLv2 folder)
from unigen.cli import main
from unigen.data.reader import read_shard
from unigen.data.reflections import UNSPECIFIC, Pairing, build_reflections
from unigen.data.sequence import build_example
from unigen.data.shards import write_shard
from unigen.data.trajectory import Trajectory, Turn
from unigen.files import png_bytes
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import PlanItem, format_plan
from unigen.worlds.shapes.render import draw, layout
from unigen.worlds.shapes.rewards import ShapesImageReward
from unigen.worlds.shapes.vocab import COLORS

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


def test_judge_describes_what_it_sees():
    judge = ShapesJudge(strict=True)
    image = scene(GOOD)
    assert judge.describe(image) == "photo: red circle top left; blue square bottom right."  # reading order
    image[14:18, 28:31] = COLORS["green"]  # a speck of 12 px: no shape, a fragment
    assert judge.describe(image) == "photo: red circle top left; blue square bottom right; green blob bottom right."
    assert judge.describe(np.zeros((32, 32, 3), np.uint8)) == "photo: nothing."
    assert ShapesImageReward().describe([sample("p0", 0, GOOD, TWO), Trajectory("p", 0, "x", "")]) == [
        "photo: red circle top left; blue square bottom right.", None]


COUNTS = dict.fromkeys(("pairs", "described", "unexplained", "unspecific", "too_long"), 0)


def test_builder_returns_every_sample_once_failing_ones_paired_with_accepted_ones():
    judge = ShapesImageReward()
    given = samples()
    built, counts = build_reflections(given, Pairing(pairs_per_prompt=2), judge.explain)
    assert counts == {"prompts": 3, "paired_prompts": 1, **COUNTS, "pairs": 2, "no_rated": 0, "no_accepted": 1,
                      "no_failing": 1}
    assert [(t.key, len(t.turns), t.generation.get("second")) for t in built] == [
        ("p0_0", 1, "p0_1"), ("p0_1", 0, None), ("p0_2", 1, "p0_1"), ("p1_0", 0, None), ("p2_0", 0, None)]
    first, second = samples()[0], samples()[1]
    t = built[0]
    assert t.reasoning == first.reasoning and np.array_equal(t.image_tokens, first.image_tokens) and t.png == first.png
    assert np.array_equal(t.turns[0].image_tokens, second.image_tokens) and t.turns[0].png == second.png
    assert t.turns[0].text == "missing one blue square. " + second.reasoning  # no describe: the findings
    assert built[2].turns[0].text.startswith("extra white cross. plan:")
    assert t.rewards == {"image": {"shapes_strict@0": 0.0, "shapes_strict@1": 1.0, "shapes_strict": 1.0},
                         "text": {"shapes_plan@0": 0.5, "shapes_plan@1": 0.5, "shapes_plan": 0.5}}
    assert all(built[i] is given[i] for i in (1, 3, 4))  # the rest as they were
    one, counted = build_reflections(samples(), Pairing(pairs_per_prompt=1), judge.explain)
    assert [len(t.turns) for t in one] == [1, 0, 0, 0, 0] and counted["pairs"] == 1


def test_builder_with_a_describing_judge_looks_before_it_stops_or_redraws():
    judge = ShapesImageReward()
    built, counts = build_reflections(samples(), Pairing(pairs_per_prompt=2), judge.explain, judge.describe)
    assert counts["pairs"] == 2 and counts["described"] == 2
    looked = "photo: red circle top left; blue square bottom right."
    assert built[0].turns[0].text == "photo: red circle top left. " + samples()[1].reasoning
    assert built[2].turns[0].text.startswith("photo: red circle top left; white cross top right; blue square bottom right. plan:")
    for accepted in (built[1], built[3]):  # a closing look: its description, then the end
        assert [(turn.text, turn.has_image) for turn in accepted.turns] == [(looked, False)]
        assert accepted.rewards["image"] == {"shapes_strict@0": 1.0, "shapes_strict@1": 1.0, "shapes_strict": 1.0}
    assert built[4].turns == []  # failing, nothing to redraw: as it was
    short, counts = build_reflections(samples(), Pairing(pairs_per_prompt=2), judge.explain, judge.describe,
                                      fits=lambda text: len(text) <= len(looked))
    assert counts["pairs"] == 0 and counts["described"] == 2 and counts["too_long"] == 2
    assert [len(t.turns) for t in short] == [0, 1, 0, 1, 0]


def test_the_partner_is_the_accepted_sample_most_like_the_failing_one():
    near = [PlanItem("red", "circle", "top left"), PlanItem("blue", "square", "top right")]
    far = [PlanItem("red", "circle", "bottom right"), PlanItem("blue", "square", "top left")]
    failing = sample("p", 0, [near[0], PlanItem("blue", "square", "top right"), PlanItem("white", "tee", "bottom left")], TWO, 0.0)
    group = [failing, sample("p", 1, far, TWO, 1.0), sample("p", 2, near, TWO, 1.0), sample("p", 3, far, TWO, 1.0)]
    built, _ = build_reflections(group, Pairing(), ShapesImageReward().explain)
    assert built[0].generation["second"] == "p_2"


def test_builder_counts_what_it_can_pair():
    """Counts use the pairing's own filter: an unrated prompt is ``no_rated`` (not ``no_accepted``),
    a rated multi-turn sample is not a usable accepted one; every sample comes out unchanged."""
    unrated = sample("p3", 0, GOOD, TWO)
    two_turn = sample("p4", 1, GOOD, TWO, 1.0)
    two_turn.turns = [Turn("again", two_turn.image_tokens)]
    given = [unrated, sample("p4", 0, [GOOD[0]], TWO, 0.0), two_turn]
    built, counts = build_reflections(given, Pairing(), ShapesImageReward().explain)
    assert all(b is g for b, g in zip(built, given, strict=True)) and counts == {"prompts": 2, "paired_prompts": 0, **COUNTS, "no_rated": 1,
                                         "no_accepted": 1, "no_failing": 0}


def test_unspecific_and_unexplained_findings_are_counted():
    def explain(trajs):
        return [[UNSPECIFIC] if t.sample_idx == 0 else None for t in trajs]

    built, counts = build_reflections(samples(), Pairing(pairs_per_prompt=2), explain)
    assert (counts["pairs"], counts["unspecific"], counts["unexplained"]) == (1, 1, 1)
    assert built[0].turns[0].text.startswith(UNSPECIFIC + ".") and built[2].turns == []


TOTAL = {"prompts": 3, "paired_prompts": 1, **COUNTS, "pairs": 2, "described": 2, "no_rated": 0, "no_accepted": 1,
         "no_failing": 1}


def test_reflect_command_end_to_end_and_the_result_trains(tmp_path, module, monkeypatch):
    write_shard(tmp_path / "scored", "scored", 0, samples()[:3])
    write_shard(tmp_path / "scored", "scored", 1, samples()[3:])
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "out"),
          "--judge", "shapes_strict", "--pairing.pairs_per_prompt", "2"])
    out = tmp_path / "out"
    built = list(read_shard(out / "reflect-000000.tar"))
    assert [len(t.turns) for t in built] == [1, 1, 1] and [t.key for t in read_shard(out / "reflect-000001.tar")] == ["p1_0", "p2_0"]
    summary = json.loads((out / "reflect-summary.json").read_text())
    assert summary["total"] == {**TOTAL, "trajectories": 5}
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    monkeypatch.setattr(ShapesImageReward, "explain", lambda self, trajs: pytest.fail("resume re-explained a shard"))
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(out), "--judge", "shapes_strict",
          "--pairing.pairs_per_prompt", "2"])  # resume: nothing rebuilt, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written
    monkeypatch.undo()
    example = build_example(built[0], module.spec, "unified")  # 16 ids per image: janus-micro geometry
    assert sum(example.image_mask) == 32 and [r for _, r in example.parts] == [
        {"image/shapes_strict": 0.0, "text/shapes_plan": 0.5}, {"image/shapes_strict": 1.0, "text/shapes_plan": 0.5}]
    looked = build_example(built[1], module.spec, "unified")  # accepted: image, its description, EOS
    assert sum(looked.image_mask) == 16 and [r for _, r in looked.parts] == [
        {"image/shapes_strict": 1.0, "text/shapes_plan": 0.5}] * 2
    assert looked.text_labels[-2] == module.spec.eos_id
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "o1"), "--judge", "shapes_strict",
          "--tokenizer", "janus-micro", "--max_text_tokens", "1"])  # no reflection fits one token: 1 pair, 2 looks
    assert json.loads((tmp_path / "o1" / "reflect-summary.json").read_text())["total"] == {
        **TOTAL, "paired_prompts": 0, "pairs": 0, "described": 0, "too_long": 3, "trajectories": 5}
    with pytest.raises(ValueError, match="tokenizer and max_text_tokens go together"):
        main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "o3"), "--judge", "shapes_strict",
              "--max_text_tokens", "40"])
    with pytest.raises(TypeError, match="explain"):
        main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "o2"), "--judge", "shapes_plan"])
    assert not (tmp_path / "o2" / "reflect-settings.json").exists()  # so the corrected rerun is not refused
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "o2"), "--judge", "shapes_strict"])


def test_reflect_with_the_geneval_detector_as_judge(tmp_path, owl_dir):  # noqa: F811
    """Real images' judge: a failing sample's reflection is the detector's findings (GenEvalScore.explain,
    here a detector that finds nothing), then the accepted sample's reasoning; its image is the redraw."""
    def scored(idx: int, reward: float) -> Trajectory:
        traj = sample("p0", idx, GOOD, LEFT)
        return replace(traj, reasoning=f"reasoning {idx}", rewards={"image": {"geneval": reward}})

    write_shard(tmp_path / "scored", "scored", 0, [scored(0, 0.5), scored(1, 1.0)])
    judge = {"class_path": "geneval", "init_args": {"detector": owl_dir, "threshold": 1.01}}
    main(["reflect", "--input", str(tmp_path / "scored"), "--output", str(tmp_path / "out"),
          "--judge", json.dumps(judge), "--pairing.reward", "image/geneval"])
    first, accepted = read_shard(tmp_path / "out" / "reflect-000000.tar")
    assert first.turns[0].text == "expected 1 circle; expected 1 square; expected square left of circle. reasoning 1"
    assert first.turns[0].png == accepted.png and first.generation["findings"] == [
        "expected 1 circle", "expected 1 square", "expected square left of circle"]
    assert accepted.turns == []  # the detector does not describe: an accepted sample stays as it was


def test_reflect_killed_after_a_shard_keeps_its_counts(tmp_path, monkeypatch):
    """A kill right after a shard is written (before the summary) loses none of its counts."""
    import unigen.data.shardmap as stage

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
    assert summary["total"] == {**TOTAL, "pairs": 1, "trajectories": 5}  # pairs_per_prompt 1
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
