"""ShapesWorld pretraining shards: rendered trajectories that the judge, the plan check and the
training-sequence builder all accept; resumable writing; the base recipe's config parses."""

from __future__ import annotations

import json
import random
from functools import partial

import numpy as np
import torch

from tests.conftest import REPO
from unigen.data.sequence import build_example
from unigen.data.reader import read_shard
from unigen.data.shards import finished_shards
from unigen.worlds.shapes.dataset import (PRETRAIN_WEIGHTS, SEEN_SAMPLING, plan_to_keep, render_trajectories,
                                          seen_two_take_trajectories, two_take_trajectories, world_model,
                                          write_world_shards)
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.plan import format_plan, last_plan, make_plan, plan_score
from unigen.worlds.shapes.render import from_png
from unigen.worlds.shapes.rewards import PlanReward, ShapesImageReward, model_decoder
from unigen.worlds.shapes.vocab import CELLS


def test_rendered_shards_are_valid_training_data(tmp_path):
    model = world_model()
    paths = write_world_shards(tmp_path, "train", samples=12, shard_size=5, seed=0,
                               build=partial(render_trajectories, model=model), progress=False)
    assert [p.name for p in paths] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    trajs = [t for p in paths for t in read_shard(p)]
    assert len(trajs) == 12 and len({t.key for t in trajs}) == 12
    assert all(t.mode == "explicit" and t.metadata["tag"] == t.category for t in trajs)
    assert ShapesImageReward()(trajs) == [1.0] * 12
    assert PlanReward()(trajs) == [1.0] * 12
    # the stored ids are the VQ encoding of the stored PNG, and decode to a judge-accepted image
    ids = torch.from_numpy(np.stack([t.image_tokens for t in trajs]))
    pixels = torch.from_numpy(np.stack([from_png(t.png) for t in trajs])).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(model.encode_images(pixels), ids)
    decoded = ShapesImageReward(decode=model_decoder(model))
    for t in trajs:
        t.png = None
    assert np.mean(decoded(trajs)) >= 0.9
    example = build_example(trajs[0], model.spec, "explicit")
    assert len(example.input_ids) < model.spec.max_seq_len
    assert model.spec.boi_id in example.input_ids and model.spec.boi_id not in example.text_labels


def test_writing_resumes_without_rewriting(tmp_path):
    model = world_model()
    rendered = partial(render_trajectories, model=model)
    first = write_world_shards(tmp_path, "train", samples=6, shard_size=3, seed=1, build=rendered, progress=False)
    stamp = first[0].stat().st_mtime_ns
    first[1].unlink()
    index = finished_shards(tmp_path, "train")
    index.pop(first[1].name)
    (tmp_path / "train-index.json").write_text(json.dumps({"format_version": 1, "shards": index}))
    again = write_world_shards(tmp_path, "train", samples=6, shard_size=3, seed=1, build=rendered, progress=False)
    assert first[0].stat().st_mtime_ns == stamp and again[1].exists()
    assert [t.key for t in read_shard(again[1])] == [f"shapes-s1-pretrain-00000{i}_0" for i in (3, 4, 5)]


def test_pretraining_mix_makes_counting_and_position_rare():
    assert PRETRAIN_WEIGHTS["counting"] < 0.2 * PRETRAIN_WEIGHTS["colors"]
    assert PRETRAIN_WEIGHTS["position"] < 0.2 * PRETRAIN_WEIGHTS["colors"]
    text = (REPO / "configs/shapes/pretrain.yaml").read_text()
    assert "mode: explicit" in text and "model: data/shapes/model" in text


def test_slip_changes_exactly_one_thing():
    import random

    from unigen.worlds.shapes.dataset import slip
    from unigen.worlds.shapes.plan import make_plan
    rng = random.Random(0)
    meta = {"include": [{"class": "circle", "count": 2}, {"class": "square", "count": 1, "color": "red"}]}
    kinds = set()
    for _ in range(200):
        plan = make_plan(meta, rng)
        slipped = slip(plan, rng)
        assert slipped != plan
        if len(slipped) != len(plan):  # one dropped or one added, the rest kept in order
            assert abs(len(slipped) - len(plan)) == 1
            kinds.add("count")
            continue
        changed = [(a, b) for a, b in zip(plan, slipped) if a != b]
        assert len(changed) == 1
        (a, b), = changed
        assert sum([a.color != b.color, a.shape != b.shape, a.cell != b.cell]) == 1
        assert b.cell == a.cell or b.cell not in {p.cell for p in plan}  # moved to a free cell
        kinds.add("color" if a.color != b.color else "shape" if a.shape != b.shape else "cell")
    assert kinds == {"count", "color", "shape", "cell"}


def test_a_pasted_fragment_is_one_block_of_the_donor():
    import random

    from unigen.worlds.shapes.dataset import paste_fragment
    rng = random.Random(0)
    ids, donor = np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.int64)
    donor.reshape(8, 8)[5:8, 1:4] = 7  # the only non-background ids
    for _ in range(50):
        out = paste_fragment(ids, donor, rng).reshape(8, 8)
        rows, cols = np.nonzero(out != 0)
        changed = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert len(rows) > 0 and changed <= 16 and set(out[rows, cols].tolist()) == {7}
    assert np.array_equal(ids, np.zeros(64))  # the input is not modified


def test_two_take_shards_see_and_draw_again(tmp_path):
    model = world_model()
    paths = write_world_shards(tmp_path, "two_take", samples=40, shard_size=20, seed=0,
                               build=partial(two_take_trajectories, model=model), progress=False)
    trajs = [t for p in paths for t in read_shard(p)]
    assert len(trajs) == 40 and all(t.mode == "unified" and len(t.turns) == 2 for t in trajs)
    slips = [t.generation["slip"] for t in trajs]
    assert 10 <= sum(s != "none" for s in slips) <= 30 and {"plan", "fragment"} <= set(slips)  # slip_rate 0.5
    judge = ShapesImageReward()
    decode = model_decoder(model)
    for t in trajs:
        second, closing = t.turns
        assert second.has_image and not closing.has_image
        seen, plan = second.text.split(" plan: ")
        # what each image shows is the judge's description of its VQ reconstruction
        assert seen == judge.judge.describe(decode([t.image_tokens])[0])
        assert closing.text == judge.judge.describe(decode([second.image_tokens])[0])
        assert PlanReward()([t]) == [1.0] and t.reasoning.startswith("plan: ")
        assert "plan: " + plan == t.reasoning  # the first plan meets the prompt: the second take keeps it
    # a slip breaks the prompt unless it touched what the prompt leaves open (a colour, a cell)
    firsts = [judge.judge.judge(decode([t.image_tokens])[0], t.metadata)[0] for t in trajs]
    clean = [ok for ok, s in zip(firsts, slips) if s == "none"]
    slipped = [ok for ok, s in zip(firsts, slips) if s != "none"]
    assert np.mean(clean) >= 0.8 and np.mean(slipped) <= np.mean(clean) - 0.3
    seconds = [judge.judge.judge(decode([t.turns[0].image_tokens])[0], t.metadata)[0] for t in trajs]
    assert np.mean(seconds) >= 0.8
    example = build_example(trajs[0], model.spec, "unified")
    assert len(example.input_ids) <= model.spec.max_seq_len
    assert example.text_labels.count(model.spec.boi_id) == 2  # the switch of each take is learned
    assert [t for t in example.text_labels if t != -100][-1] == model.spec.eos_id


def test_a_second_take_keeps_a_plan_that_meets_the_prompt_exactly():
    meta = {"include": [{"class": "circle", "count": 2}, {"class": "square", "count": 1, "color": "red"}]}
    plan = make_plan(meta, random.Random(0))
    assert plan_to_keep(format_plan(plan), meta) == plan
    free = next(c for c in CELLS if c not in {i.cell for i in plan})
    extra = format_plan(plan)[:-1] + f"; blue cross {free}."
    assert plan_to_keep(extra, meta) is None  # an extra object: the strict judge would reject its drawing
    assert plan_to_keep(format_plan(plan[1:]), meta) is None and plan_to_keep("a circle", meta) is None


def test_seen_two_takes_describe_the_samplers_own_drawings(tmp_path):
    from unigen.generation.rollouts import generate_trajectories

    model = world_model()
    torch.manual_seed(0)
    sampler = world_model()  # a random backbone: its drawings and plans are wrong, as a weak model's are
    paths = write_world_shards(tmp_path, "seen", samples=6, shard_size=6, seed=3, progress=False,
                               build=partial(seen_two_take_trajectories, model=model, sampler=sampler))
    trajs = [t for p in paths for t in read_shard(p)]
    records = sample_prompts(6, 3, split="pretrain", id_prefix="shapes-s3")
    own = generate_trajectories(sampler, records, 1, SEEN_SAMPLING, 3 * 100_003, model_id="x", decode_png=False)
    assert [t.prompt_id for t in trajs] == [r.id for r in records]
    judge, decode = ShapesImageReward(), model_decoder(model)
    for t, drawn in zip(trajs, own):
        # the first take is the sampler's own, as drawn; what it shows is the judge's description of it
        assert t.reasoning == drawn.reasoning and np.array_equal(t.image_tokens, drawn.image_tokens)
        seen, plan = t.turns[0].text.split(" plan: ")
        assert seen == judge.judge.describe(decode([t.image_tokens])[0])
        kept = plan_to_keep(t.reasoning, t.metadata)
        assert kept is None or "plan: " + plan == format_plan(kept)
        assert plan_score(last_plan(t.turns[0].text), t.metadata) == 1.0  # the second plan meets the prompt
        assert t.generation["slip"] == "sampled" and t.turns[1].text == judge.judge.describe(
            decode([t.turns[0].image_tokens])[0])
    assert np.mean(judge(trajs)) <= 0.5  # a random model's first takes fail: the descriptions say what went wrong
