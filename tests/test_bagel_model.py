"""unigen's BAGEL at tiny size: shapes, the block mask, both losses by hand, learning, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from unigen.models.bagel import BagelConfig, FlowSchedule, SampleLayout, build, noised, pack, sample_block, token_losses
from unigen.models.bagel.embeddings import patchify, sample_timesteps, shift_timesteps, unpatchify
from unigen.models.bagel.sampling import guide

LLM = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, max_position_embeddings=256)
BOS, EOS, SOI, EOI, SIDE = 1, 2, 3, 4, 8


def tiny(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build(BagelConfig.from_dict({"llm_config": LLM, "latent_channels": 4, "max_latent_size": SIDE, **overrides}))


def sample(text=(5, 6, 7), grid=(2, 3), tail=(9, 10)) -> SampleLayout:
    seq = [BOS, *text, EOS]
    layout = SampleLayout().text(seq, seq[1:] + [-100]).latent_block(*grid, SOI, EOI, SIDE)
    return layout.text(list(tail)) if tail else layout


def inputs(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = batch.num_latent_tokens
    return torch.randn(n, 16, generator=g), torch.randn(n, 16, generator=g)


def test_packed_rows_give_hidden_logits_and_velocity_shapes():
    model = tiny()
    batch = pack([[sample(), sample((11,), (2, 2), ())], [sample((5,), (1, 2), ())]])
    assert batch.input_ids.shape == (2, 24) and batch.num_latent_tokens == 12 and batch.grids == [(2, 3), (2, 2), (1, 2)]
    assert batch.block_index.tolist() == [0] * 6 + [1] * 4 + [2] * 2
    # the block shares one rotary position (the next text position) and the tail continues from it
    assert batch.position_ids[0, :15].tolist() == [0, 1, 2, 3, 4] + [5] * 8 + [5, 6]
    x, _ = inputs(batch)
    hidden = model(batch, x, torch.full((12,), 0.5))
    assert hidden.shape == (2, 24, 32) and torch.isfinite(hidden).all()
    assert model.text_logits(hidden).shape == (2, 24, 64)
    assert model.velocity(hidden, batch).shape == (12, 16)
    assert model.velocity(hidden, batch).abs().max() == 0  # llm2vae starts at zero


def perturbed(model, batch, x, index, latent=None):
    """Hidden states after changing token ``index`` of row 0 (or latent token ``latent``)."""
    t = torch.full((x.shape[0],), 0.5)
    base = model(batch, x, t)
    if latent is not None:
        x = x.clone()
        x[latent] += 3.0
    else:
        batch.input_ids[0, index] = (batch.input_ids[0, index] + 7) % 64
    return base[0], model(batch, x, t)[0]


def test_a_noised_block_is_bidirectional_inside_and_invisible_outside():
    model = tiny()
    with torch.no_grad():
        model.llm2vae.weight.normal_()
    batch = pack([[sample()]])  # text 0-4, <soi> 5, latents 6-11, <eoi> 12, tail text 13-14
    x, _ = inputs(batch)
    before, after = perturbed(model, batch, x, None, latent=5)  # the last latent token (position 11)
    changed = (before - after).abs().amax(-1) > 1e-6
    assert changed[5:11].all()  # earlier tokens of the block see a later latent token
    assert not changed[:5].any() and not changed[13:].any()  # neither earlier nor later text sees it


def test_text_is_causal_and_later_text_is_invisible_to_earlier_tokens():
    model = tiny()
    batch = pack([[sample()]])
    x, _ = inputs(batch)
    before, after = perturbed(model, batch, x, 3)
    changed = (before - after).abs().amax(-1) > 1e-6
    assert not changed[:3].any() and changed[3:].all()  # the block and the tail read the prompt
    before, after = perturbed(model, batch, x, 14)
    changed = (before - after).abs().amax(-1) > 1e-6
    assert changed.tolist() == [False] * 14 + [True]


def test_packed_samples_do_not_see_each_other():
    model = tiny()
    batch = pack([[sample(), sample((11,), (2, 2), ())]])
    x, _ = inputs(batch)
    before, after = perturbed(model, batch, x, 1)
    changed = (before - after).abs().amax(-1) > 1e-6
    assert changed[1:15].all() and not changed[15:].any()


def test_losses_equal_a_hand_computation():
    """With zero heads: CE = log(vocab) per labelled token, MSE = mean((noise - x0)^2) per token of
    the noised block only; x_t interpolates linearly."""
    model = tiny()
    with torch.no_grad():
        model.lm_head.weight.zero_()
    batch = pack([[sample(), sample((11,), (2, 2), ())]])
    x0, noise = inputs(batch)
    losses = token_losses(model, batch, x0, noise, torch.tensor([0.7, 0.0]))  # block 2 is clean
    assert losses.ce.shape == (4 + 2,) and torch.allclose(losses.ce, torch.full((6,), math.log(64)))
    assert torch.allclose(losses.mse, ((noise - x0)[:6] ** 2).mean(-1))
    ce, mse = losses.means()
    assert torch.isclose(ce, torch.tensor(math.log(64))) and torch.isclose(mse, ((noise - x0)[:6] ** 2).mean())
    t = torch.tensor([0.0, 0.25, 1.0])
    assert torch.allclose(noised(x0[:3], noise[:3], t), torch.stack([x0[0], 0.75 * x0[1] + 0.25 * noise[1], noise[2]]))


def test_timesteps_are_shifted_logit_normal():
    g = torch.Generator().manual_seed(3)
    expected = torch.sigmoid(torch.randn(5, generator=torch.Generator().manual_seed(3)))
    assert torch.allclose(sample_timesteps(5, 3.0, g), 3 * expected / (1 + 2 * expected))
    assert torch.allclose(shift_timesteps(torch.tensor([0.0, 0.5, 1.0]), 3.0), torch.tensor([0.0, 0.75, 1.0]))


def test_both_losses_fall_on_a_fixed_toy_batch():
    model = tiny()
    batch = pack([[sample()], [sample((8, 9), (2, 2), ())]])
    x0, noise = inputs(batch, seed=1)
    t = torch.tensor([0.4, 0.8])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(25):
        ce, mse = token_losses(model, batch, x0, noise, t).means()
        history.append((ce.item(), mse.item()))
        optimizer.zero_grad()
        (ce + mse).backward()
        optimizer.step()
    (ce0, mse0), (ce1, mse1) = history[0], history[-1]
    assert ce1 < 0.5 * ce0 and mse1 < 0.7 * mse0, history


def test_patchify_inverts_and_orders_tokens_row_major():
    latent = torch.arange(4 * 4 * 6, dtype=torch.float32).reshape(4, 4, 6)
    tokens = patchify(latent, 2)
    assert tokens.shape == (6, 16) and torch.equal(unpatchify(tokens, 2, 3, 2), latent)
    assert torch.equal(tokens[1, :4], latent[:, 0, 2])  # token (0, 1), patch pixel (0, 0), all channels
    with pytest.raises(ValueError, match="not divisible"):
        patchify(latent[:, :3], 2)


def test_guidance_and_the_schedule():
    v_cond, v_uncond = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    raw = v_uncond + 4 * (v_cond - v_uncond)  # [[4, 0], [0, 5]]
    glob = guide(v_cond, v_uncond, FlowSchedule(cfg_renorm_type="global"))
    assert torch.allclose(glob, raw * math.sqrt(5) / math.sqrt(41))
    chan = guide(v_cond, v_uncond, FlowSchedule(cfg_renorm_type="channel"))
    assert torch.allclose(chan, torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    times, steps = FlowSchedule(num_timesteps=5, timestep_shift=1.0).times()
    assert torch.allclose(times, torch.tensor([1.0, 0.75, 0.5, 0.25])) and torch.allclose(steps, torch.full((4,), 0.25))
    schedule = FlowSchedule(num_timesteps=5, timestep_shift=1.0, cfg_interval=(0.4, 1.0))
    assert [schedule.guided(t) for t in times.tolist()] == [True, True, True, False]


def test_sampling_moves_noise_along_the_predicted_velocity():
    """A head predicting a constant velocity c carries noise to noise - c over the unit interval."""
    model = tiny()
    with torch.no_grad():
        model.llm2vae.bias.fill_(0.5)
    cond = pack([[SampleLayout().text([BOS, 5, EOS]).latent_block(2, 2, SOI, EOI, SIDE)]])
    noise = torch.randn(4, 16)
    out = sample_block(model, cond, None, noise, FlowSchedule(num_timesteps=6, cfg_text_scale=1.0))
    assert torch.allclose(out, noise - 0.5, atol=1e-6)
    with pytest.raises(ValueError, match="uncond"):
        sample_block(model, cond, None, noise, FlowSchedule())


def test_bad_configs_and_layouts_are_refused_by_name():
    with pytest.raises(ValueError, match="llm_config"):
        BagelConfig.from_dict({"latent_channels": 4})
    with pytest.raises(ValueError, match="latent_chanels"):
        BagelConfig.from_dict({"llm_config": LLM, "latent_chanels": 4})
    with pytest.raises(ValueError, match="max_latent_size 8"):
        SampleLayout().latent_block(9, 2, SOI, EOI, SIDE)
    with pytest.raises(ValueError, match="2 labels for 3 ids"):
        SampleLayout().text([1, 2, 3], [2, 3])
