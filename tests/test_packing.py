"""Sequence packing: packed rows give the same losses as the same samples padded."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from unigen.data.batch import collate
from unigen.data.packing import plan_rows
from unigen.data.sequence import build_example
from unigen.data.trajectory import Trajectory
from unigen.losses import weighted_token_ce
from unigen.module import backbone_inputs


def examples(spec, n: int = 7, seed: int = 0):
    """Trajectories with widely varying reasoning lengths; every other one without an image."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        reasoning = " ".join(rng.choice(["red", "cube", "left", "of", "a", "small"]) for _ in range(rng.randint(1, 25)))
        ids = np.array([rng.randrange(spec.image.codebook_size) for _ in range(spec.image.num_tokens)], dtype=np.int64)
        traj = Trajectory(f"p{i}", 0, f"prompt {i}", reasoning, ids if i % 2 == 0 else np.zeros(0, np.int64),
                          rewards={"image": {"vqa": rng.random()}})
        out.append(build_example(traj, spec, "unified"))
    return out


def test_plan_rows_fits_and_keeps_every_sample():
    lengths = [50, 10, 40, 30, 70, 5, 60]
    rows = plan_rows(lengths, 100)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 100 for row in rows)
    assert len(rows) == 3  # 265 tokens need at least 3 rows of 100


def test_pack_layout(module):
    exs = examples(module.spec)
    batch = collate(exs, module.spec.pad_id, pack_length=256)
    assert batch.packed and batch.input_ids.shape[0] < len(exs)
    assert int(batch.attention_mask.sum()) == sum(len(e.input_ids) for e in exs)
    for i, e in enumerate(exs):  # every sample's tokens sit contiguously with positions 0..L-1
        where = (batch.sample_index == i) & batch.attention_mask.bool()
        row = int(where.any(1).nonzero()[0])
        assert batch.input_ids[row][where[row]].tolist() == e.input_ids
        assert batch.position_ids[row][where[row]].tolist() == list(range(len(e.input_ids)))
    assert batch.keys == [e.key for e in exs]
    padded = collate(exs, module.spec.pad_id)
    assert batch.padding_fraction < padded.padding_fraction


def test_pack_rejects_too_long_sample(module):
    exs = examples(module.spec, n=2)
    with pytest.raises(ValueError, match="p0.*pack length 10"):
        collate(exs, pad_id=0, pack_length=10)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_equals_padded_loss(module, attn):
    module.net.set_attn_implementation(attn)
    exs = examples(module.spec)
    padded = collate(exs, module.spec.pad_id)
    packed = collate(exs, module.spec.pad_id, pack_length=256)
    weights = torch.linspace(0.2, 2.0, len(exs))
    for batch in (padded, packed):
        batch.set_weights("text", weights)
        batch.set_weights("image", weights.flip(0))
    with torch.no_grad():
        (t_pad, i_pad), (t_pack, i_pack) = module.heads(padded), module.heads(packed)
    assert int(t_pack.tokens) == int(t_pad.tokens) > 0 and int(i_pack.tokens) == int(i_pad.tokens) > 0
    torch.testing.assert_close(t_pack.weighted_loss, t_pad.weighted_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(i_pack.weighted_loss, i_pad.weighted_loss, rtol=1e-5, atol=1e-5)
    # the packed path must really separate samples: without the restart, losses differ
    leaky = replace(packed, position_ids=torch.arange(packed.input_ids.shape[1]).expand_as(packed.input_ids))
    with torch.no_grad():
        t_leak, _ = module.heads(leaky)
    assert abs(float(t_leak.weighted_loss - t_pad.weighted_loss)) > 10 * 1e-5 * float(t_pad.weighted_loss)
    module.net.set_attn_implementation("sdpa")


def test_packed_gradients_equal_padded(module):
    exs = examples(module.spec, n=5, seed=1)
    grads = []
    for batch in (collate(exs, module.spec.pad_id), collate(exs, module.spec.pad_id, pack_length=256)):
        module.zero_grad()
        text, image = module.heads(batch)
        (text.weighted_loss / text.tokens + image.weighted_loss / image.tokens).backward()
        grads.append(torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]))
    module.zero_grad()
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


class FlashNamed:
    """Reports FlashAttention so ``backbone_inputs`` takes its flattened (varlen) layout."""

    attn_implementation = "flash_attention_2"

    def __init__(self, net):
        self.image_head = net.image_head


def test_flash_layout_flattens_rows_and_keeps_samples_apart(module):
    """The varlen layout (all rows in one, positions restarting) run through SDPA gives the padded loss."""
    exs = examples(module.spec)
    packed = collate(exs, module.spec.pad_id, pack_length=256)
    embeds = module.net.embed_mixed(packed.input_ids, packed.image_mask)
    flat, mask, positions = backbone_inputs(embeds, packed, FlashNamed(module.net))
    assert mask is None and flat.shape[0] == 1 and flat.shape[1] == packed.input_ids.numel()
    with torch.no_grad():
        hidden, _ = module.net.backbone(flat, mask, positions)
        hidden = hidden.view(*packed.input_ids.shape, -1)
        text = weighted_token_ce(module.net.text_logits, hidden, packed.text_labels,
                                 packed.text_weight[packed.sample_index])
        reference, _ = module.heads(collate(exs, module.spec.pad_id))
    torch.testing.assert_close(text.weighted_loss, reference.weighted_loss, rtol=1e-5, atol=1e-5)
