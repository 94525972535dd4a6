"""Multi-image (interleaved) trajectories: writer -> reader -> collation (padded and packed) -> the
loss, with per-part weights checked against a weighted cross-entropy computed by hand."""

from __future__ import annotations

import json
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from callbacks.reward_weighting import apply_weights
from unigen.data.batch import collate
from unigen.data.reader import read_shard
from unigen.data.sequence import BadSample, build_example, turn_rewards
from unigen.data.shards import from_sample, to_sample, write_shard
from unigen.data.trajectory import Trajectory, Turn
from unigen.losses import IGNORE
from unigen.rewards.weighting import ModalityWeighting


def image(spec, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, spec.image.codebook_size, spec.image.num_tokens).astype(np.int64)


def trajectories(spec) -> list[Trajectory]:
    """A redraw (two images), a single-image sample (format 1) and a redraw that ends with a closing text."""
    return [
        Trajectory("p0", 0, "a red cube", "a red cube", image(spec, 0), png=b"png0",
                   turns=[Turn("the cube is blue , draw it red", image(spec, 1), png=b"png1")],
                   rewards={"image": {"strict@0": 0.25, "strict": 0.75}}),
        Trajectory("p1", 0, "two circles", "two circles", image(spec, 2), rewards={"image": {"strict": 0.5}}),
        Trajectory("p0", 1, "a red cube", "cube", image(spec, 3),
                   turns=[Turn("one more cube", image(spec, 4)), Turn("done")],
                   rewards={"image": {"strict@0": 0.1, "strict@1": 0.4, "strict": 0.4}}),
    ]


def test_shards_round_trip_and_versions(tmp_path, module):
    trajs = trajectories(module.spec)
    path = write_shard(tmp_path, "t", 0, trajs)
    back = list(read_shard(path))
    for a, b in zip(trajs, back, strict=True):
        assert (b.key, b.reasoning, b.rewards, b.png) == (a.key, a.reasoning, a.rewards, a.png)
        assert np.array_equal(b.image_tokens, a.image_tokens)
        assert [(t.text, t.image_tokens.tolist(), t.png) for t in b.turns] == \
               [(t.text, t.image_tokens.tolist(), t.png) for t in a.turns]
    assert [t.num_images for t in back] == [2, 1, 2]
    assert [t.has_image for t in back[2].all_turns()] == [True, True, False]
    final = back[0].image_turns()[-1]
    assert np.array_equal(final.image_tokens, trajs[0].turns[0].image_tokens) and final.png == b"png1"
    with tarfile.open(path) as tar:
        versions = {m.name.split(".")[0]: json.loads(tar.extractfile(m).read())["format_version"]
                    for m in tar.getmembers() if m.name.endswith(".json")}
    assert versions == {"p0_0": 2, "p1_0": 1, "p0_1": 2}  # version 2 only where there are later turns


@pytest.mark.parametrize("change, reason", [
    (lambda s: s.pop("turn1.npy"), "missing_member"),
    (lambda s: s.update(json=s["json"].replace(b'"turns": 1', b'"turns": 0')), "bad_turns"),
    (lambda s: s.update({"image_tokens.npy": to_sample(Trajectory("p", 0, "x"))["image_tokens.npy"]}), "bad_turns"),
])
def test_bad_version_2_samples(module, change, reason):
    sample = to_sample(trajectories(module.spec)[0])
    change(sample)
    with pytest.raises(BadSample) as err:
        from_sample(sample)
    assert err.value.reason == reason


def test_turn_rewards_key_scheme():
    rewards = {"image": {"strict@0": 0.2, "strict": 0.9, "vqa@1": 0.3}, "text": {"match": 1.0}}
    assert turn_rewards(rewards, 0, last=False) == {"image/strict": 0.2}
    assert turn_rewards(rewards, 1, last=True) == {"image/strict": 0.9, "image/vqa": 0.3, "text/match": 1.0}


def test_sequence_of_a_redraw(module):
    spec = module.spec
    traj = trajectories(spec)[0]
    e = build_example(traj, spec, "unified")
    prompt, r0, r1 = spec.encode_prompt(traj.prompt), spec.encode_text(traj.reasoning), spec.encode_text(traj.turns[0].text)
    n = spec.image.num_tokens
    img0, img1 = traj.image_tokens.tolist(), traj.turns[0].image_tokens.tolist()
    assert e.input_ids == prompt + r0 + [spec.boi_id] + img0 + [spec.eoi_id] + r1 + [spec.boi_id] + img1 + [spec.eoi_id, spec.eos_id]
    target = [IGNORE] * len(prompt) + r0 + [spec.boi_id] + [IGNORE] * n + [spec.eoi_id] + r1 + [spec.boi_id] + \
        [IGNORE] * n + [spec.eoi_id, spec.eos_id]
    assert e.text_labels == target[1:] + [IGNORE]  # both BOIs, both EOIs, the reflection and the EOS on the text head
    assert [i for i, m in zip(e.input_ids, e.image_mask) if m] == img0 + img1
    eoi0 = len(prompt) + len(r0) + 1 + n
    assert e.parts == [(0, {"image/strict": 0.25}), (eoi0, {"image/strict": 0.75})]
    for mode in ("explicit", "direct"):
        with pytest.raises(BadSample, match="turns_mode"):
            build_example(traj, spec, mode)
    dropped = build_example(traj, spec, "unified", drop_condition=True)
    assert all(t == IGNORE for t in dropped.text_labels) and dropped.image_labels == e.image_labels
    kept = [i for i, m in zip(dropped.input_ids[:eoi0 + len(r1) + 2], dropped.image_mask) if not m]
    assert set(kept) == {spec.bos_id, spec.boi_id, spec.pad_id}  # later turns' text is unconditional too


@torch.no_grad()
def hand_loss(module, trajs, weights):
    """Per trajectory, run it alone (no padding), compute token CE and weight each label by the
    reward of the turn of the token it predicts: turn k's tokens run from its text to its EOI."""
    spec, text_sum, image_sum = module.spec, 0.0, 0.0
    for traj, per_turn in zip(trajs, weights):
        e = build_example(traj, spec, "unified")
        ids, mask = torch.tensor([e.input_ids]), torch.tensor([e.image_mask])
        hidden, _ = module.net.backbone(module.net.embed_mixed(ids, mask), torch.ones_like(ids),
                                        torch.arange(ids.shape[1])[None])
        hidden = hidden[0]
        # turn boundaries by hand: turn 0 = prompt .. first EOI, turn k = reflection k .. its EOI (the EOS: last turn)
        ends = [len(spec.encode_prompt(traj.prompt)) + len(spec.encode_text(traj.reasoning)) + 2 + spec.image.num_tokens]
        for turn in traj.turns:
            ends.append(ends[-1] + len(spec.encode_text(turn.text)) + (spec.image.num_tokens + 2 if turn.has_image else 0))
        turn_of_token = np.searchsorted(np.array(ends), np.arange(len(e.input_ids)), side="right").clip(max=len(ends) - 1)
        for t in range(len(e.input_ids) - 1):
            w = per_turn[turn_of_token[t + 1]]  # the label at t is token t + 1
            for labels, logits in ((e.text_labels, module.net.text_logits), (e.image_labels, module.net.image_logits)):
                if labels[t] != IGNORE:
                    ce = w * float(F.cross_entropy(logits(hidden[t:t + 1]).float(), torch.tensor([labels[t]])))
                    if labels is e.text_labels:
                        text_sum += ce
                    else:
                        image_sum += ce
    return text_sum, image_sum


@pytest.mark.parametrize("pack", [None, 512])
def test_per_turn_weighted_loss_by_hand(tmp_path, module, pack):
    spec = module.spec
    path = write_shard(tmp_path, "t", 0, trajectories(spec))
    trajs = list(read_shard(path, "skip", Counter()))
    batch = collate([build_example(t, spec, "unified") for t in trajs], spec.pad_id, pack_length=pack)
    assert batch.packed == (pack is not None) and batch.turns == [0, 1, 0, 0, 1, 2]
    assert batch.keys == ["p0_0", "p0_0", "p1_0", "p0_1", "p0_1", "p0_1"]
    linear = ModalityWeighting(scheme="linear", rewards={"image/strict": 1.0})
    apply_weights(batch, linear, linear)
    # first turn by the first image's reward, reflection + redraw by the final image's, closing text too
    expected = [[0.25, 0.75], [0.5], [0.1, 0.4, 0.4]]
    assert batch.image_weight.tolist() == pytest.approx([w for ws in expected for w in ws])
    with torch.no_grad():
        text, image = module.heads(batch)
    text_hand, image_hand = hand_loss(module, trajs, expected)
    assert float(text.weighted_loss) == pytest.approx(text_hand, rel=1e-4)
    assert float(image.weighted_loss) == pytest.approx(image_hand, rel=1e-4)
    unweighted = ModalityWeighting()
    apply_weights(batch, unweighted, unweighted)
    with torch.no_grad():
        text_one, _ = module.heads(batch)
    assert float(text_one.weighted_loss) != pytest.approx(text_hand, rel=1e-3)  # the weights do matter


def test_single_image_batches_have_one_part_per_sample(module):
    spec = module.spec
    exs = [build_example(trajectories(spec)[1], spec, "unified")] * 3
    for pack in (None, 512):
        batch = collate(exs, spec.pad_id, pack_length=pack)
        assert batch.turns == [0, 0, 0] and batch.num_samples == 3
        assert all(len(e.parts) == 1 for e in exs)
    padded = collate(exs, spec.pad_id)
    assert torch.equal(padded.sample_index, torch.arange(3)[:, None].expand_as(padded.input_ids))


def test_an_empty_closing_turn_is_the_final_eos(module):
    spec = module.spec
    traj = trajectories(spec)[1]
    closing = Trajectory(traj.prompt_id, 0, traj.prompt, traj.reasoning, traj.image_tokens,
                         turns=[Turn("")], rewards={"image": {"strict@0": 0.2, "strict": 0.9}})
    e, plain = build_example(closing, spec, "unified"), build_example(traj, spec, "unified")
    assert e.input_ids == plain.input_ids and e.text_labels == plain.text_labels
    eos = len(e.input_ids) - 1
    assert e.parts == [(0, {"image/strict": 0.2}), (eos - 1, {"image/strict": 0.9})]  # the EOS label: turn 1


def test_a_reflection_cut_at_the_text_limit_supervises_no_eos(module):
    spec = module.spec
    traj = trajectories(spec)[1]
    for stop, last in (("limit", spec.encode_text("draw it")[-1]), ("eos", spec.eos_id)):
        closing = Trajectory(traj.prompt_id, 0, traj.prompt, traj.reasoning, traj.image_tokens,
                             turns=[Turn("draw it")], generation={"stop": stop})
        e = build_example(closing, spec, "unified")
        assert e.input_ids[-1] == spec.eos_id and [t for t in e.text_labels if t != IGNORE][-1] == last
    single = build_example(Trajectory("p", 0, "x", "cut", generation={"stop": "limit"}), spec, "unified")
    assert [t for t in single.text_labels if t != IGNORE][-1] == spec.eos_id  # format 1 as it was


def test_an_empty_turn_before_a_later_one_is_a_bad_sample(module):
    spec = module.spec
    traj = trajectories(spec)[1]
    for turns in ([Turn(""), Turn("again", image(spec, 5))], [Turn("no image"), Turn("")]):
        bad = Trajectory(traj.prompt_id, 0, traj.prompt, traj.reasoning, traj.image_tokens, turns=turns)
        with pytest.raises(BadSample) as err:
            build_example(bad, spec, "unified")
        assert err.value.reason == "bad_turns" and "turn 1 has no image" in str(err.value)


def test_online_reward_refuses_multi_image_batches(module):
    from callbacks.online_reward import batch_trajectories

    spec = module.spec
    batch = collate([build_example(t, spec, "unified") for t in trajectories(spec)], spec.pad_id)
    with pytest.raises(ValueError, match="multi-image"):
        batch_trajectories(batch, module.net)


def v1_expected(spec, traj: Trajectory, drop: bool) -> tuple[list[int], list[int], list[int]]:
    """Format 1's sequence of a single-image trajectory, written out independently of build_example:
    ``prompt reasoning BOI image EOI EOS``; labels = next token (text: reasoning, BOI, EOI, EOS;
    image: the image ids); a dropped condition pads every text id but BOS / BOI before the image
    and supervises no text."""
    prompt, reasoning, img = spec.encode_prompt(traj.prompt), spec.encode_text(traj.reasoning), traj.image_tokens.tolist()
    ids = prompt + reasoning + [spec.boi_id] + img + [spec.eoi_id, spec.eos_id]
    head = len(prompt) + len(reasoning) + 1
    text = [IGNORE] * (len(prompt) - 1) + reasoning + [spec.boi_id] + [IGNORE] * len(img) + [spec.eoi_id, spec.eos_id, IGNORE]
    image = [IGNORE] * (head - 1) + img + [IGNORE] * 3
    if drop:
        ids = [i if i in (spec.bos_id, spec.boi_id) else spec.pad_id for i in ids[:head]] + ids[head:]
        text = [IGNORE] * len(ids)
    return ids, text, image


@pytest.mark.parametrize("pack", [None, 512])
def test_v1_batches_weights_and_losses_are_format_1s(module, pack):
    """Single-image (format 1) samples, one with a dropped condition, padded and packed: ids, labels,
    sample index, weights and the weighted loss equal format 1's, computed here sample by sample."""
    spec = module.spec
    trajs = [Trajectory(f"p{i}", 0, prompt, reasoning, image(spec, 10 + i), rewards={"image": {"strict": r}})
             for i, (prompt, reasoning, r) in enumerate([("a red cube", "a red cube", 0.2), ("two circles", "two", 0.9),
                                                         ("x", "a blue square left of a circle", 0.5)])]
    drops = [False, True, False]
    exs = [build_example(t, spec, "unified", drop_condition=d) for t, d in zip(trajs, drops)]
    for e, t, d in zip(exs, trajs, drops):
        assert (e.input_ids, e.text_labels, e.image_labels) == v1_expected(spec, t, d)
        assert e.parts == [(0, {"image/strict": t.rewards["image"]["strict"]})]
    batch = collate(exs, spec.pad_id, pack_length=pack)
    assert batch.turns == [0, 0, 0] and batch.keys == ["p0_0", "p1_0", "p2_0"]
    for i, e in enumerate(exs):  # each sample's tokens, contiguous, all mapped to sample i
        where = (batch.sample_index == i) & batch.attention_mask.bool()
        row = int(where.any(1).nonzero()[0])
        assert batch.input_ids[row][where[row]].tolist() == e.input_ids
        assert batch.text_labels[row][where[row]].tolist() == e.text_labels
        assert batch.image_labels[row][where[row]].tolist() == e.image_labels
    if pack is None:
        assert torch.equal(batch.sample_index, torch.arange(3)[:, None].expand_as(batch.input_ids))
    linear = ModalityWeighting(scheme="linear", rewards={"image/strict": 1.0})
    apply_weights(batch, linear, linear)
    weights = [0.2, 0.9, 0.5]
    assert batch.text_weight.tolist() == pytest.approx(weights) and batch.image_weight.tolist() == pytest.approx(weights)
    with torch.no_grad():
        text, img = module.heads(batch)
        text_hand = image_hand = 0.0
        for e, w in zip(exs, weights):  # every label of a sample weighted by the sample's weight
            ids, mask = torch.tensor([e.input_ids]), torch.tensor([e.image_mask])
            hidden = module.net.backbone(module.net.embed_mixed(ids, mask), torch.ones_like(ids),
                                         torch.arange(ids.shape[1])[None])[0][0]
            for labels, logits in ((e.text_labels, module.net.text_logits), (e.image_labels, module.net.image_logits)):
                at = [t for t, label in enumerate(labels) if label != IGNORE]
                ce = w * float(F.cross_entropy(logits(hidden[at]).float(), torch.tensor([labels[t] for t in at]),
                                               reduction="sum")) if at else 0.0
                if labels is e.text_labels:
                    text_hand += ce
                else:
                    image_hand += ce
    assert float(text.weighted_loss) == pytest.approx(text_hand, rel=1e-4)
    assert float(img.weighted_loss) == pytest.approx(image_hand, rel=1e-4)
