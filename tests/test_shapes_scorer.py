"""Renderer / exact judge agreement, plan text and check, and the reward callables."""

from __future__ import annotations

import copy
import random
from collections import Counter

import numpy as np
import pytest

from unigen.data.trajectory import Trajectory
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.plan import PlanError, PlanItem, format_plan, make_plan, parse_plan, plan_score
from unigen.files import png_bytes
from unigen.worlds.shapes.render import draw, from_png, layout, render
from unigen.worlds.shapes.rewards import PlanReward, ShapesImageReward
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.vocab import CATEGORIES, CELLS, COLORS, SHAPES

FLIP = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def scenes(n: int, seed: int):
    rng = random.Random(seed)
    for record in sample_prompts(n, seed):
        plan = make_plan(record.metadata, rng)
        yield record, plan, render(plan, 32, rng)


@pytest.mark.parametrize("strict", [False, True])
def test_judge_accepts_clean_renders(strict):
    judge = ShapesJudge(strict=strict)
    results = [(r.category, judge.judge(image, r.metadata)[0]) for r, _, image in scenes(300, seed=0)]
    assert set(c for c, _ in results) == set(CATEGORIES) - {"single_object"}  # benchmark-only
    accuracy = np.mean([ok for _, ok in results])
    assert accuracy >= 0.99, accuracy


def corrupted_scenes(n: int, seed: int):
    """(metadata, kind, image) of scenes that break their prompt: one extra object in a free cell,
    a requested colour changed, or a positioned pair drawn the other way round."""
    rng = random.Random(seed)
    for record, plan, _ in scenes(n, seed):
        meta, free = record.metadata, [c for c in CELLS if c not in {it.cell for it in plan}]
        if free:
            extra = PlanItem(rng.choice(list(COLORS)), rng.choice(SHAPES), rng.choice(free))
            yield meta, "extra object", draw(layout(plan + [extra], 32, rng), 32)
        coloured = [i for i, it in enumerate(plan) if any("color" in req for req in meta["include"])]
        if coloured:
            i = rng.choice(coloured)
            other = rng.choice([c for c in COLORS if c != plan[i].color])
            bad = plan[:i] + [PlanItem(other, plan[i].shape, plan[i].cell)] + plan[i + 1:]
            yield meta, "wrong colour", draw(layout(bad, 32, rng), 32)
        if meta["tag"] == "position":
            swapped = [PlanItem(plan[0].color, plan[0].shape, plan[1].cell), PlanItem(plan[1].color, plan[1].shape, plan[0].cell)]
            yield meta, "wrong relation", draw(layout(swapped, 32, rng), 32)


def test_strict_judge_rejects_corrupted_scenes_geneval_rules_accept_clutter():
    strict, geneval = ShapesJudge(strict=True), ShapesJudge()
    rejected, kinds, clutter_accepted = Counter(), Counter(), 0
    for meta, kind, image in corrupted_scenes(400, seed=6):
        kinds[kind] += 1
        rejected[kind] += not strict.judge(image, meta)[0]
        clutter_accepted += kind == "extra object" and geneval.judge(image, meta)[0]
    assert min(kinds.values()) >= 50, kinds
    assert all(rejected[k] / kinds[k] >= 0.99 for k in kinds), (rejected, kinds)
    assert clutter_accepted > kinds["extra object"] / 2  # GenEval's rules never penalise an extra object


def _corrupt(meta: dict) -> dict:
    """A prompt the scene does not satisfy: one more object, another colour, or the other side."""
    bad = copy.deepcopy(meta)
    last = bad["include"][-1]
    if "position" in last:
        last["position"][0] = FLIP[last["position"][0]]
    elif "color" in last:
        last["color"] = "white" if last["color"] != "white" else "red"
        # the other include must not already be that colour and shape
    else:
        last["count"] += 1
        bad.pop("exclude", None)
    return bad


def test_judge_rejects_wrong_prompts():
    judge = ShapesJudge()
    rejected = Counter()
    for record, plan, image in scenes(300, seed=1):
        bad = _corrupt(record.metadata)
        truth = [(it.color, it.shape) for it in plan]
        last = bad["include"][-1]
        if "color" in last and (last["color"], last["class"]) in truth:
            continue  # the corrupted request happens to be in the scene
        rejected[judge.judge(image, bad)[0]] += 1
    assert rejected[True] == 0 and rejected[False] > 250


def test_detections_match_the_layout():
    rng = random.Random(3)
    plan = [PlanItem("red", "circle", "top left"), PlanItem("red", "cross", "top right"),
            PlanItem("blue", "triangle", "bottom left"), PlanItem("white", "square", "bottom right")]
    placed = layout(plan, 32, rng)
    found = ShapesJudge().detect(draw(placed, 32))
    assert sorted((d.color, d.shape, d.box) for d in found) == sorted(
        (p.item.color, p.item.shape, p.box) for p in placed)
    assert all(d.iou == 1.0 for d in found)


def test_png_round_trip_is_lossless():
    _, _, image = next(scenes(1, seed=2))
    assert np.array_equal(from_png(png_bytes(image)), image)


def test_plan_text_round_trip_and_score():
    for record, plan, _ in scenes(100, seed=4):
        text = format_plan(plan)
        assert parse_plan(text) == plan
        assert plan_score(text, record.metadata) == 1.0
    assert format_plan([PlanItem("red", "circle", "top left"), PlanItem("blue", "square", "top right")]) == \
        "plan: red circle top left; blue square top right."


def test_plan_partial_credit():
    meta = {"tag": "position", "include": [{"class": "square", "count": 1},
                                           {"class": "circle", "count": 1, "position": ["left of", 0]}]}
    good = "plan: green square top right; red circle top left."
    assert plan_score(good, meta) == 1.0
    # circle on the wrong side: include[1] fails, include[0] and distinct cells pass
    assert plan_score("plan: green square top left; red circle top right.", meta) == pytest.approx(2 / 3)
    counting = {"tag": "counting", "include": [{"class": "cross", "count": 2}],
                "exclude": [{"class": "cross", "count": 3}]}
    # three crosses: include passes, exclude fails, cells distinct
    assert plan_score("plan: red cross top left; red cross top right; blue cross bottom left.", counting) == \
        pytest.approx(2 / 3)
    # two crosses in one cell: undrawable
    assert plan_score("plan: red cross top left; red cross top left.", counting) == pytest.approx(2 / 3)
    for broken in ("red circle top left.", "plan: red circle middle.", "plan: red circle top left", ""):
        assert plan_score(broken, meta) == 0.0
        with pytest.raises(PlanError):
            parse_plan(broken)


def test_the_plan_reward_checks_the_last_plan_of_a_reflection():
    """A redraw's text (the reflection) says what the model saw, then its plan: the plan is scored."""
    meta = {"tag": "two_object", "include": [{"class": "square", "count": 1}, {"class": "circle", "count": 1}]}
    plan = "plan: green square top right; red circle top left."
    texts = [plan, "photo: red circle top left; blue blob bottom left. " + plan,
             "photo: red circle top left. plan: red circle top left.", "photo: red circle top left."]
    trajectories = [Trajectory("p", i, "a photo of a square and a circle", text, metadata=meta) for i, text in enumerate(texts)]
    assert PlanReward()(trajectories) == [1.0, 1.0, pytest.approx(2 / 3), 0.0]
    assert not hasattr(PlanReward(), "describe")  # a text reward sees no image


def test_rewards_follow_the_contract():
    items = list(scenes(6, seed=5))
    trajs = [Trajectory(r.id, 0, r.prompt, format_plan(plan), category=r.category, metadata=r.metadata,
                        png=png_bytes(image)) for r, plan, image in items]
    wrong = Trajectory("w", 0, "p", "plan: red circle top left.", metadata=_corrupt(items[0][0].metadata),
                       png=png_bytes(items[0][2]))
    no_image = Trajectory("n", 0, "p", "nonsense", metadata=items[0][0].metadata)
    no_meta = Trajectory("m", 0, "p", "plan: red circle top left.", png=png_bytes(items[0][2]))
    image_reward, text_reward = ShapesImageReward(), PlanReward()
    assert (image_reward.modality, text_reward.modality) == ("image", "text")
    assert image_reward(trajs) == [1.0] * 6
    # no image drawn is a failed drawing (0), no metadata cannot be judged (None)
    assert image_reward([wrong, no_image, no_meta]) == [0.0, 0.0, None]
    assert text_reward(trajs) == [1.0] * 6
    assert text_reward([no_image, no_meta]) == [0.0, None]
    decoded = ShapesImageReward(decode=lambda ids: [items[0][2] for _ in ids])
    tokens = Trajectory("t", 0, "p", metadata=items[0][0].metadata, image_tokens=np.zeros(64, dtype=np.int64))
    assert decoded([tokens]) == [1.0]
