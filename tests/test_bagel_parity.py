"""Parity of unigen's BAGEL with the official implementation (ByteDance-Seed/Bagel), fp32, CPU.

Runs only when ``UNIGEN_BAGEL_REFERENCE`` names a checkout of the official repository (its code is
imported from there, never copied here). The harness shims what the reference needs on a CPU
machine, in this process only: ``flash_attn_varlen_func`` as per-sequence SDPA (bottom-right
causal like flash-attn), the removed ``"default"`` RoPE initialiser of transformers 4.x, the
``EFFICIENT_ATTENTION`` kernel pin (no CPU kernel), and the reference's bf16 casts of attention
inputs, which become fp32 (its module-level ``torch`` is a view whose ``bfloat16`` is ``float32``)
so both sides compute in fp32. A tiny random reference is written as an official folder, loaded
through our key map, and both models run the same packed batch, the same noise and times.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import json
import os
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from unigen.models.bagel import (FlowSchedule, SampleLayout, load_official, official_key, pack, sample_block,
                                 token_losses)
from unigen.models.bagel.embeddings import patchify, sincos_table

REFERENCE = os.environ.get("UNIGEN_BAGEL_REFERENCE")
pytestmark = pytest.mark.skipif(not REFERENCE, reason="UNIGEN_BAGEL_REFERENCE (an official Bagel checkout) not set")

LLM = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-6,
           tie_word_embeddings=False)
BOS, EOS, SOI, EOI, MAX_SIDE, CHANNELS, SHIFT = 1, 2, 3, 4, 8, 4, 2.0
FIGURES: dict[str, tuple[float, float]] = {}


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, causal=False,
                           **_):
    """flash-attn's varlen attention through SDPA: (N, H, d) packed sequences, GQA, causal aligned
    to the bottom right (a query sees the keys up to its own position counted from the end)."""
    out = []
    for i in range(len(cu_seqlens_q) - 1):
        qi = q[cu_seqlens_q[i]:cu_seqlens_q[i + 1]].transpose(0, 1)
        ki = k[cu_seqlens_k[i]:cu_seqlens_k[i + 1]].transpose(0, 1)
        vi = v[cu_seqlens_k[i]:cu_seqlens_k[i + 1]].transpose(0, 1)
        mask = None
        if causal:
            lq, lk = qi.shape[1], ki.shape[1]
            mask = torch.arange(lk)[None] <= torch.arange(lq)[:, None] + (lk - lq)
        out.append(F.scaled_dot_product_attention(qi, ki, vi, attn_mask=mask, enable_gqa=True).transpose(0, 1))
    return torch.cat(out)


class Fp32Torch(types.ModuleType):
    """``torch`` with ``bfloat16`` pointing at ``float32`` (the reference casts before attention)."""

    bfloat16 = torch.float32

    def __getattr__(self, name):
        return getattr(torch, name)


def default_rope(config, device=None, **_):
    dim = config.hidden_size // config.num_attention_heads
    return 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)), 1.0


@pytest.fixture(scope="module")
def ref():
    """The reference modules, imported from the checkout with the shims above."""
    flash = types.ModuleType("flash_attn")
    flash.__spec__ = importlib.machinery.ModuleSpec("flash_attn", None)
    flash.flash_attn_varlen_func = flash_attn_varlen_func
    saved = {k: sys.modules.get(k) for k in ("flash_attn", "modeling", "modeling.bagel", "data")}
    sys.modules["flash_attn"] = flash
    for name in ("modeling", "modeling.bagel", "data"):  # packages without their heavy __init__
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(REFERENCE, *name.split("."))]
        sys.modules[name] = package
    qwen2 = importlib.import_module("modeling.qwen2.modeling_qwen2")
    qwen2.ROPE_INIT_FUNCTIONS = {"default": default_rope}
    navit = importlib.import_module("modeling.bagel.qwen2_navit")
    navit.torch = Fp32Torch("torch")
    navit.sdpa_kernel = lambda *a, **k: contextlib.nullcontext()
    bagel = importlib.import_module("modeling.bagel.bagel")
    utils = importlib.import_module("data.data_utils")
    yield types.SimpleNamespace(navit=navit, bagel=bagel, utils=utils)
    for name in [n for n in sys.modules if n.split(".")[0] in ("modeling", "data", "flash_attn")]:
        del sys.modules[name]
    sys.modules.update({k: v for k, v in saved.items() if v is not None})


@pytest.fixture(scope="module")
def models(ref, tmp_path_factory):
    """(reference Bagel with random weights, ours loaded from the folder the reference wrote)."""
    torch.manual_seed(0)
    llm = ref.navit.Qwen2Config(**LLM, qk_norm=True, layer_module="Qwen2MoTDecoderLayer", pad_token_id=None,
                                _attn_implementation="eager")
    config = ref.bagel.BagelConfig(visual_gen=True, visual_und=False, llm_config=llm,
                                   vae_config=types.SimpleNamespace(downsample=8, z_channels=CHANNELS),
                                   latent_patch_size=2, max_latent_size=MAX_SIDE, timestep_shift=SHIFT)
    model = ref.bagel.Bagel(ref.navit.Qwen2ForCausalLM(llm), None, config)
    table = model.latent_pos_embed.pos_embed.detach().clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # norms stay near 1, llm2vae is no longer zero
    folder = tmp_path_factory.mktemp("official")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "ema.safetensors"))
    (folder / "llm_config.json").write_text(json.dumps({**LLM, "architectures": ["Qwen2ForCausalLM"]}))
    ours, report = load_official(folder, latent_channels=CHANNELS, max_latent_size=MAX_SIDE, timestep_shift=SHIFT)
    assert report.unexpected == [] and report.missing == [] and report.not_built == []
    assert len(report.loaded) == len(model.state_dict())
    assert torch.equal(sincos_table(LLM["hidden_size"], MAX_SIDE), table)  # our table equals its init
    return model, ours


def record(name: str, ours: torch.Tensor, theirs: torch.Tensor, atol: float = 1e-5) -> None:
    ours, theirs = ours.detach().double(), theirs.detach().double()
    diff = (ours - theirs).abs()
    FIGURES[name] = (float(diff.max()), float((diff / theirs.abs().clamp_min(1e-6)).max()))
    print(f"PARITY {name}: max abs {FIGURES[name][0]:.3e}, max rel {FIGURES[name][1]:.3e}, shape {tuple(ours.shape)}")
    assert diff.max() <= atol, name


def reference_batch(ref, samples):
    """The reference's packed training inputs for samples of (text ids, (h, w) noised block, tail ids)."""
    ids, text_idx, pos, vae_idx, lat_pos, ce_idx, labels, masks, lens, latents, shapes = ([] for _ in range(11))
    curr = 0
    for text, (h, w), tail in samples:
        n = h * w
        seq = [BOS] + text + [EOS]
        ids += seq + [SOI, EOI] + tail
        text_idx += list(range(curr, curr + len(seq) + 1)) + list(range(curr + len(seq) + 1 + n, curr + len(seq) + 2 + n + len(tail)))
        ce_idx += range(curr, curr + len(seq) - 1)
        labels += seq[1:]
        vae_idx += range(curr + len(seq) + 1, curr + len(seq) + 1 + n)
        pos += list(range(len(seq))) + [len(seq)] * (n + 2) + list(range(len(seq), len(seq) + len(tail)))
        lat_pos.append(ref.utils.get_flattened_position_ids_extrapolate(16 * h, 16 * w, 16, MAX_SIDE))
        splits = [len(seq), n + 2] + ([len(tail)] if tail else [])
        masks.append(ref.utils.prepare_attention_mask_per_sample(splits, ["causal", "noise"] + ["causal"] * bool(tail)))
        lens.append(sum(splits))
        latents.append(torch.randn(CHANNELS, 2 * h, 2 * w))
        shapes.append((h, w))
        curr += lens[-1]
    as_long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return dict(sequence_length=curr, packed_text_ids=as_long(ids), packed_text_indexes=as_long(text_idx),
                sample_lens=lens, packed_position_ids=as_long(pos), nested_attention_masks=masks,
                ce_loss_indexes=as_long(ce_idx), packed_label_ids=as_long(labels), padded_latent=latents,
                patchified_vae_latent_shapes=shapes, packed_latent_position_ids=torch.cat(lat_pos),
                packed_vae_token_indexes=as_long(vae_idx), mse_loss_indexes=as_long(vae_idx))


def our_batch(samples):
    """The same samples in our layout, packed into one row."""
    row = []
    for text, (h, w), tail in samples:
        seq = [BOS] + text + [EOS]
        layout = SampleLayout().text(seq, seq[1:] + [-100]).latent_block(h, w, SOI, EOI, MAX_SIDE)
        row.append(layout.text(tail) if tail else layout)
    return pack([row])


def capture(module, store, key):
    return module.register_forward_hook(lambda m, i, o: store.__setitem__(key, o))


def test_training_step_matches_the_reference(ref, models):
    """Text logits, velocities, both losses and every gradient of one step, same t and noise."""
    theirs, ours = models
    samples = [([5, 6, 7, 8], (2, 3), [9, 10]), ([11, 12], (2, 2), [])]
    torch.manual_seed(1)
    inputs = reference_batch(ref, samples)
    raw_t = torch.randn(len(samples))
    inputs["packed_timesteps"] = torch.cat([raw_t[i].repeat(h * w) for i, (_, (h, w), _) in enumerate(samples)])
    x0 = torch.cat([patchify(x, 2) for x in inputs["padded_latent"]])
    got = {}
    hooks = [capture(theirs.language_model.lm_head, got, "logits"), capture(theirs.llm2vae, got, "velocity")]
    theirs.train()
    torch.manual_seed(7)
    out = theirs(**inputs)
    for hook in hooks:
        hook.remove()
    torch.manual_seed(7)
    noise = torch.randn_like(x0)
    block_t = SHIFT * torch.sigmoid(raw_t) / (1 + (SHIFT - 1) * torch.sigmoid(raw_t))
    batch = our_batch(samples)
    mine_out = {}
    hooks = [capture(ours.lm_head, mine_out, "logits"), capture(ours.llm2vae, mine_out, "velocity")]
    mine = token_losses(ours, batch, x0, noise, block_t)
    for hook in hooks:
        hook.remove()
    record("text logits (CE positions)", mine_out["logits"], got["logits"])
    record("velocities (latent tokens)", mine_out["velocity"], got["velocity"])
    ce_ref, mse_ref = out["ce"].sum() / out["ce"].numel(), out["mse"].mean(-1).sum() / out["mse"].shape[0]
    ce, mse = mine.means()
    record("CE loss", ce, ce_ref)
    record("MSE loss", mse, mse_ref)
    (ce + mse).backward()
    (ce_ref + mse_ref).backward()
    grads = {official_key(n): p.grad for n, p in ours.named_parameters() if p.grad is not None}
    theirs_grads = {n: p.grad for n, p in theirs.named_parameters() if p.grad is not None}
    assert set(grads) == set(theirs_grads)
    worst = max(grads, key=lambda n: (grads[n] - theirs_grads[n]).abs().max())
    record(f"gradients (worst: {worst})", grads[worst], theirs_grads[worst])


@pytest.mark.parametrize("renorm", ["global", "channel"])
def test_flow_sampling_matches_the_reference(ref, models, renorm):
    """The official schedule (steps, shift, text guidance, interval, renorm) from the same noise:
    the reference runs its KV-cached inferencer path, ours reruns the context each step."""
    theirs, ours = models
    theirs.eval()
    ours.eval()
    prompt, (h, w) = [5, 6, 7], (2, 3)
    tokenizer = types.SimpleNamespace(encode=lambda text: prompt)
    special = dict(bos_token_id=BOS, eos_token_id=EOS, start_of_image=SOI, end_of_image=EOI)
    cache = ref.navit.NaiveCache(LLM["num_hidden_layers"])
    inputs, kv_lens, ropes = theirs.prepare_prompts([0], [0], ["a prompt"], tokenizer, special)
    cache = theirs.forward_cache_update_text(cache, **inputs)
    torch.manual_seed(3)
    latent_inputs = theirs.prepare_vae_latent(kv_lens, ropes, [(16 * h, 16 * w)], special)
    cfg = theirs.prepare_vae_latent_cfg([0], [0], [(16 * h, 16 * w)])
    schedule = FlowSchedule(num_timesteps=8, timestep_shift=3.0, cfg_text_scale=4.0, cfg_interval=(0.4, 1.0),
                            cfg_renorm_type=renorm)
    expected = theirs.generate_image(
        past_key_values=cache, num_timesteps=8, timestep_shift=3.0, cfg_text_scale=4.0, cfg_interval=[0.4, 1.0],
        cfg_renorm_type=renorm, cfg_text_past_key_values=ref.navit.NaiveCache(LLM["num_hidden_layers"]),
        cfg_text_packed_position_ids=cfg["cfg_packed_position_ids"],
        cfg_text_packed_query_indexes=cfg["cfg_packed_query_indexes"],
        cfg_text_key_values_lens=cfg["cfg_key_values_lens"],
        cfg_text_packed_key_value_indexes=cfg["cfg_packed_key_value_indexes"], **latent_inputs)[0]
    cond = pack([[SampleLayout().text([BOS] + prompt + [EOS]).latent_block(h, w, SOI, EOI, MAX_SIDE)]])
    uncond = pack([[SampleLayout().latent_block(h, w, SOI, EOI, MAX_SIDE)]])
    got = sample_block(ours, cond, uncond, latent_inputs["packed_init_noises"], schedule)
    record(f"sampled latents ({renorm} renorm, 7 Euler steps, cfg 4)", got, expected, atol=1e-4)


def test_flux_vae_through_diffusers_equals_the_official_autoencoder(tmp_path):
    """The release's autoencoder code (``modeling/autoencoder.py``) at a tiny random size, saved as an
    ``ae.safetensors``, loaded through diffusers' AutoencoderKL (``bagel.flux_vae``): the same scaled
    posterior mean and the same decoded pixels."""
    pytest.importorskip("diffusers")
    pytest.importorskip("einops")
    from unigen.models.bagel.flux_vae import FluxShape, load_flux

    spec = importlib.util.spec_from_file_location("bagel_autoencoder", os.path.join(REFERENCE, "modeling", "autoencoder.py"))
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    torch.manual_seed(0)
    params = official.AutoEncoderParams(resolution=32, in_channels=3, downsample=4, ch=32, out_ch=3, ch_mult=[1, 2],
                                        num_res_blocks=1, z_channels=4, scale_factor=0.3611, shift_factor=0.1159)
    reference = official.AutoEncoder(params).eval()
    reference.reg.sample = False  # the posterior mean (the trainer samples it)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "ae.safetensors"))
    ours = load_flux(tmp_path / "ae.safetensors", FluxShape(channels=32, multipliers=(1, 2), res_blocks=1, z_channels=4))
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        record("FLUX VAE latents (scaled posterior mean)", ours.encode(pixels), reference.encode(pixels))
        z = torch.randn(2, 4, 16, 16)
        record("FLUX VAE decoded pixels", ours.decode(z), reference.decode(z).clamp(-1, 1))
