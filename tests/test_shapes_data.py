"""ShapesWorld pretraining shards: rendered trajectories that the judge, the plan check and the
training-sequence builder all accept; resumable writing; the base recipe's config parses."""

from __future__ import annotations

import json

import numpy as np
import torch

from tests.conftest import REPO
from unigen.data.sequence import build_example
from unigen.data.reader import read_shard
from unigen.data.shards import finished_shards
from unigen.worlds.shapes.dataset import PRETRAIN_WEIGHTS, world_model, write_world_shards
from unigen.worlds.shapes.render import from_png
from unigen.worlds.shapes.rewards import PlanReward, ShapesImageReward, model_decoder


def test_rendered_shards_are_valid_training_data(tmp_path):
    model = world_model()
    paths = write_world_shards(tmp_path, "train", model, samples=12, shard_size=5, seed=0, progress=False)
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
    first = write_world_shards(tmp_path, "train", model, samples=6, shard_size=3, seed=1, progress=False)
    stamp = first[0].stat().st_mtime_ns
    first[1].unlink()
    index = finished_shards(tmp_path, "train")
    index.pop(first[1].name)
    (tmp_path / "train-index.json").write_text(json.dumps({"format_version": 1, "shards": index}))
    again = write_world_shards(tmp_path, "train", model, samples=6, shard_size=3, seed=1, progress=False)
    assert first[0].stat().st_mtime_ns == stamp and again[1].exists()
    assert [t.key for t in read_shard(again[1])] == [f"shapes-s1-pretrain-00000{i}_0" for i in (3, 4, 5)]


def test_pretraining_mix_makes_counting_and_position_rare():
    assert PRETRAIN_WEIGHTS["counting"] < 0.2 * PRETRAIN_WEIGHTS["colors"]
    assert PRETRAIN_WEIGHTS["position"] < 0.2 * PRETRAIN_WEIGHTS["colors"]
    text = (REPO / "configs/shapes/pretrain.yaml").read_text()
    assert "mode: explicit" in text and "model: data/shapes/model" in text
