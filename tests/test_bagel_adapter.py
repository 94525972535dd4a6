"""BAGEL through the seam: sequences, the block mask, both loss heads, the KV-cached sampler and
the folders, at tiny size (``bagel-micro``: 16 px pixel latents, 4x4 = 16 latent tokens of 48)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unigen.data.batch import block_attention, collate
from unigen.data.sequence import BadSample, build_example
from unigen.data.shards import from_sample, to_sample
from unigen.data.trajectory import Trajectory, Turn
from unigen.generation.config import SamplingConfig
from unigen.generation.sampler import sample
from unigen.losses import IGNORE
from unigen.models.bagel import SampleLayout, pack, split_mask, token_losses
from unigen.models.bagel.adapter import BagelUnified
from unigen.models.bagel.embeddings import sample_timesteps
from unigen.models.bagel.flow_head import FlowHead
from unigen.models.loading import folder_model_type, load_model, load_spec
from unigen.module import UnifiedLM, backbone_inputs

PROMPTS = ["a red circle", "two blue squares left of a star", "a green triangle"]


def latents(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (16, 48)).astype(np.float32) for _ in range(n)]


def trajectories(n: int = 3) -> list[Trajectory]:
    return [Trajectory(f"p{i}", 0, PROMPTS[i % 3], reasoning="plan " * i, image_tokens=image)
            for i, image in enumerate(latents(n))]


@pytest.fixture(scope="module")
def module() -> UnifiedLM:
    torch.manual_seed(0)
    lm = UnifiedLM(model="bagel-micro")
    lm.configure_model()
    return lm


def test_spec_and_flow_block_layout():
    spec = load_spec("bagel-micro")
    image, head = spec.image, spec.image_head
    assert (image.kind, image.shape, image.dtype, image.grid, image.size) == ("latents", (16, 48), "float32", (4, 4), 16)
    assert isinstance(head, FlowHead) and head.attention == "bidirectional" and head.empty_unconditional
    traj = trajectories()[1]
    example = build_example(traj, spec, "unified")
    n_text = len(spec.encode_prompt(traj.prompt)) + len(spec.encode_text(traj.reasoning))
    assert len(example.input_ids) == n_text + 18  # no EOS after the noised block
    assert example.input_ids[n_text] == spec.boi_id and example.input_ids[-1] == spec.eoi_id
    assert example.text_labels[n_text - 1] == spec.boi_id  # the switch, predicted by the last reasoning token
    assert example.positions[n_text:] == [n_text] * 18 and example.positions[:n_text] == list(range(n_text))
    assert example.blocks == [0] * n_text + [1] * 18
    latent_slots = [i for i, m in enumerate(example.image_mask) if m]
    assert latent_slots == list(range(n_text + 1, n_text + 17))
    assert [i for i, label in enumerate(example.image_labels) if label != IGNORE] == latent_slots  # not shifted
    np.testing.assert_array_equal(example.image_values, traj.image_tokens)
    explicit = build_example(traj, spec, "explicit")
    assert explicit.text_labels[n_text - 1] == spec.eos_id  # official think mode: the program appends the image


def test_condition_dropout_leaves_the_image_block_alone_and_bad_payloads_are_named():
    spec = load_spec("bagel-micro")
    traj = trajectories()[2]
    dropped = build_example(traj, spec, "unified", drop_condition=True)
    assert dropped.input_ids[0] == spec.boi_id and len(dropped.input_ids) == 18  # the text-free context
    assert dropped.positions == [0] * 18 and all(label == IGNORE for label in dropped.text_labels)
    cases = [(np.zeros((16, 12), np.float32), "image_shape"), (np.arange(16), "image_shape"),
             (np.full((16, 48), np.nan, np.float32), "image_values")]
    for payload, reason in cases:
        with pytest.raises(BadSample) as err:
            build_example(Trajectory("p", 0, "x", image_tokens=payload), spec, "unified")
        assert err.value.reason == reason
    redraw = Trajectory("p", 0, "x", image_tokens=latents(1)[0], turns=[Turn("again", latents(1, 1)[0])])
    with pytest.raises(BadSample) as err:
        build_example(redraw, spec, "unified")
    assert err.value.reason == "turns_after_block"


def test_format_3_round_trips_latents_and_still_reads_ids():
    traj = trajectories()[1]
    sample_ = to_sample(traj)
    assert json.loads(sample_["json"])["format_version"] == 3
    back = from_sample(sample_)
    assert back.image_tokens.dtype == np.float32 and np.array_equal(back.image_tokens, traj.image_tokens)
    ids = Trajectory("p", 0, "x", image_tokens=np.arange(16))
    assert json.loads(to_sample(ids)["json"])["format_version"] == 1  # token payloads write what they always did
    bad = dict(sample_, json=sample_["json"].replace(b'"format_version": 3', b'"format_version": 1'))
    with pytest.raises(BadSample, match="1-D int array") as err:
        from_sample(bad)
    assert err.value.reason == "bad_tokens"


@pytest.mark.parametrize("pack_length", [None, 256])
def test_block_mask_equals_the_reference_layout_per_sample(pack_length):
    """Padded or packed, each sample's mask is ``bagel.layout.split_mask`` of its splits (causal
    text, then a noised block), and samples / padding never see each other."""
    spec = load_spec("bagel-micro")
    examples = [build_example(t, spec, "unified", drop_condition=i == 2) for i, t in enumerate(trajectories())]
    batch = collate(examples, spec.pad_id, pack_length)
    mask = block_attention(batch)[:, 0]
    if pack_length is None:  # one sample per row, then padding
        segments = [[(row, len(e.input_ids))] for row, e in enumerate(examples)]
    else:  # one row, longest sample first (first-fit decreasing)
        assert batch.input_ids.shape[0] == 1
        segments = [[(0, n) for n in sorted((len(e.input_ids) for e in examples), reverse=True)]]
    for row_segments in segments:
        start = 0
        for row, n in row_segments:
            text = n - 18
            want = split_mask([(text, "causal"), (18, "noise")] if text else [(18, "noise")])
            assert torch.equal(mask[row, start:start + n, start:start + n], want)
            assert not mask[row, start:start + n, :start].any() and not mask[row, start:start + n, start + n:].any()
            start += n
        assert start == int(batch.attention_mask[row].sum())


@pytest.mark.parametrize("flow_timesteps", [None, (0.7, 1.0)])
def test_training_heads_equal_the_reference_model_path(flow_timesteps):
    """UnifiedLM.heads (the seam: FlowHead inputs and loss, block mask, experts) gives the losses of
    ``bagel.heads.token_losses`` (the path checked against the official code) for the same times and
    noise; ``flow_timesteps`` maps the times linearly into its range."""
    torch.manual_seed(0)
    module = UnifiedLM(model="bagel-micro", flow_timesteps=flow_timesteps)
    module.configure_model()
    spec = module.spec
    trajs = trajectories()
    batch = collate([build_example(t, spec, "unified") for t in trajs], spec.pad_id)
    with torch.no_grad():
        text, image = module.heads(batch, noise_seed=5)
    generator = torch.Generator().manual_seed(5)
    low, high = flow_timesteps or (0.0, 1.0)
    block_t = low + (high - low) * sample_timesteps(len(trajs), spec.image_head.timestep_shift, generator)
    assert bool((block_t >= low).all()) and (flow_timesteps is None or float(block_t.min()) > 0.7)
    x0 = batch.image_values
    noise = torch.randn(x0.shape, generator=generator)
    layouts = []
    for t in trajs:
        prompt, reasoning = spec.encode_prompt(t.prompt), spec.encode_text(t.reasoning)
        labels = [IGNORE] * (len(prompt) - 1) + reasoning + [spec.boi_id]  # the reasoning and the switch
        layouts.append([SampleLayout().text(prompt + reasoning, labels).latent_block(4, 4, spec.boi_id, spec.eoi_id, 16)])
    with torch.no_grad():
        reference = token_losses(module.net.hf, pack(layouts, spec.pad_id), x0, noise, block_t)
    assert int(text.tokens) == reference.ce.numel() and int(image.tokens) == reference.mse.numel() == 48
    assert float(text.weighted_loss) == pytest.approx(float(reference.ce.sum()), rel=1e-5)
    assert float(image.weighted_loss) == pytest.approx(float(reference.mse.sum()), rel=1e-5)


def test_flow_timesteps_refuses_other_heads_and_bad_ranges():
    with pytest.raises(ValueError, match=r"flow_timesteps \[0.7, 1.0\].*'janus-tiny'.*not a flow-matching head"):
        UnifiedLM(model="janus-tiny", flow_timesteps=(0.7, 1.0)).configure_model()
    with pytest.raises(ValueError, match=r"timestep_range \[0.9, 0.5\]: needs 0 <= low < high <= 1"):
        UnifiedLM(model="bagel-micro", flow_timesteps=(0.9, 0.5)).configure_model()


def test_reward_weights_scale_each_sample_mse_and_normalise_globally(module):
    spec = module.spec
    batch = collate([build_example(t, spec, "unified") for t in trajectories()], spec.pad_id)
    with torch.no_grad():
        _, plain = module.heads(batch, noise_seed=3)
        batch.set_weights("image", torch.tensor([0.0, 1.0, 3.0]))
        _, weighted = module.heads(batch, noise_seed=3)
    token_mse = plain.weighted_loss  # weights 1
    assert float(weighted.tokens) == float(plain.tokens) == 48
    # the same noise and times: weighted sum = 0 * mse_0 + 1 * mse_1 + 3 * mse_2 per sample block
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        embeds, state = spec.image_head.inputs(module.net, batch.input_ids, batch.image_mask, batch.image_values,
                                               generator)
        embeds, mask, positions = backbone_inputs(embeds, batch, module.net)
        hidden, _ = module.net.backbone(embeds, mask, positions, experts=batch.image_mask)
        v = module.net.velocity(hidden[batch.image_mask])
        mse = ((v - state.velocity) ** 2).mean(-1).view(3, 16).sum(1)
    assert float(token_mse) == pytest.approx(float(mse.sum()), rel=1e-5)
    assert float(weighted.weighted_loss) == pytest.approx(float(mse[1] + 3 * mse[2]), rel=1e-5)


def test_cached_text_phase_and_block_velocity_equal_full_recomputation(module):
    """Greedy reasoning from the KV cache equals re-running the whole prefix; the velocity a block
    reads from the cache equals the training layout's (one causal pass over prompt + reasoning,
    then the noised block under the block mask) for the same latents and time."""
    net = module.net.eval()
    spec = net.spec
    config = SamplingConfig(mode="explicit", max_reasoning_tokens=5, greedy=True, cfg=1.0, flow={"num_timesteps": 3})
    results = sample(net, PROMPTS[:2], config, seeds=[0, 1])
    for prompt, result in zip(PROMPTS[:2], results):
        ids, written = spec.encode_prompt(prompt), []
        with torch.no_grad():
            while len(written) < 5:
                hidden, _ = net.backbone(net.embed_text(torch.tensor([ids + written])))
                token = int(net.text_logits(hidden[:, -1]).argmax(-1))
                if token in (spec.eos_id, spec.boi_id):
                    break
                written.append(token)
        assert result.reasoning_ids == written
    # the block phase: a cached context against the training layout
    traj = Trajectory("p", 0, PROMPTS[1], reasoning=results[1].reasoning, image_tokens=latents(1)[0])
    example = build_example(traj, spec, "explicit")
    batch = collate([example], spec.pad_id)
    x = torch.from_numpy(latents(1, 7)[0])
    t = 0.6
    with torch.no_grad():
        embeds = net.embed_text(batch.input_ids.masked_fill(batch.image_mask, spec.pad_id))
        embeds[batch.image_mask] = net.embed_latents(x, torch.full((16,), t), 1)
        hidden, _ = net.backbone(embeds, block_attention(batch), batch.position_ids, experts=batch.image_mask)
        training = net.velocity(hidden[batch.image_mask])
        context_ids = torch.tensor([example.input_ids[:-18]])
        cache = net.make_cache(context_ids.shape[1])
        key_mask = torch.ones_like(context_ids, dtype=torch.bool)
        net.backbone(net.embed_text(context_ids), key_mask, None, cache, use_cache=True)
        context = net.block_context(cache, key_mask, torch.tensor([context_ids.shape[1]]), torch.tensor([0]))
        cached = net.flow_velocity(x[None], t, context)[0]
    torch.testing.assert_close(cached, training, rtol=1e-4, atol=1e-5)


def test_sampler_modes_seeds_and_refusals(module):
    net = module.net.eval()
    config = SamplingConfig(mode="unified", max_reasoning_tokens=4, cfg=4.0, flow={"num_timesteps": 4})
    together = sample(net, PROMPTS, config, seeds=[0, 1, 2])
    alone = sample(net, PROMPTS[2:], config, seeds=[2])
    assert together[2].reasoning_ids == alone[0].reasoning_ids and together[2].stop == alone[0].stop
    for mode in ("explicit", "direct"):
        rows = sample(net, PROMPTS, SamplingConfig(mode=mode, max_reasoning_tokens=4, cfg=4.0,
                                                   flow={"num_timesteps": 4}), seeds=[0, 1, 2])
        assert all(r.image_tokens.shape == (16, 48) and r.image_tokens.dtype == np.float32 for r in rows)
        assert all(not r.switched for r in rows) and (mode != "direct" or all(r.reasoning_ids == [] for r in rows))
        single = sample(net, PROMPTS[1:2], SamplingConfig(mode=mode, max_reasoning_tokens=4, cfg=4.0,
                                                          flow={"num_timesteps": 4}), seeds=[1])
        np.testing.assert_allclose(single[0].image_tokens, rows[1].image_tokens, atol=1e-5)
    with pytest.raises(ValueError, match="interleaved"):
        sample(net, PROMPTS[:1], SamplingConfig(mode="interleaved"), seeds=[0])
    with pytest.raises(ValueError, match="draws image blocks"):
        sample(net, PROMPTS[:1], SamplingConfig(mode="direct"), seeds=[0], decoder="static")
    with pytest.raises(ValueError, match="num_steps"):
        sample(net, PROMPTS[:1], SamplingConfig(mode="direct", flow={"num_steps": 3}), seeds=[0])


def test_guidance_reads_the_block_alone():
    """With guidance the unconditional velocity is the block's own, whatever the prompt (text-free)."""
    torch.manual_seed(0)
    net = load_model("bagel-micro").eval()
    torch.nn.init.normal_(net.hf.llm2vae.weight, std=0.2)  # a fresh head predicts velocity 0
    x = torch.from_numpy(np.stack(latents(2, 3)))
    with torch.no_grad():
        alone = net.flow_velocity(x, 0.7, None)
        first = net.flow_velocity(x[:1], 0.7, None)
    torch.testing.assert_close(alone[:1], first)
    config = SamplingConfig(mode="direct", cfg=1.0, flow={"num_timesteps": 4})
    guided = SamplingConfig(mode="direct", cfg=4.0, flow={"num_timesteps": 4})
    a = sample(net, PROMPTS[:1], config, seeds=[0])[0].image_tokens
    b = sample(net, PROMPTS[:1], guided, seeds=[0])[0].image_tokens
    assert np.abs(a - b).max() > 1e-4  # guidance changes the image (the context matters)


def test_official_folder_round_trip_and_loader(module, tmp_path):
    folder = tmp_path / "bagel"
    module.net.save_pretrained(str(folder), guidance_scale=4.0)
    assert {p.name for p in folder.iterdir()} >= set(BagelUnified.saved_files)
    assert folder_model_type(folder) == "bagel"
    loaded = load_model(str(folder))
    assert isinstance(loaded, BagelUnified) and loaded.spec.image == module.spec.image
    ours, theirs = module.net.hf.state_dict(), loaded.hf.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(loaded.decode_images(loaded.encode_images(pixels)), pixels)
    (folder / "ema.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json and is in no official layout"):
        load_model(str(folder))


def test_7b_config_parses_and_builds_on_meta():
    from unigen.models.sharded import build_on_meta

    spec = load_spec("configs/models/bagel_7b.yaml")
    assert spec.image.shape == (4096, 64) and spec.max_seq_len == 32768
    model, pretrained = build_on_meta("configs/models/bagel_7b.yaml")
    params = sum(p.numel() for p in model.parameters())
    assert not pretrained and 14.0e9 < params < 14.5e9 and all(p.is_meta for p in model.parameters())


def test_a_flux_model_without_a_release_folder_names_the_missing_vae():
    from unigen.models.sharded import build_on_meta

    model, _ = build_on_meta("configs/models/bagel_7b.yaml")
    with pytest.raises(FileNotFoundError, match="no ae.safetensors"):
        model.decode_images(torch.zeros(1, 4096, 64))
