"""ShapesWorld tokenizers: the committed VQ fit round-trips renders the judge still accepts; the
fitting loop runs and learns on a tiny budget; the world text tokenizer saves and reloads."""

from __future__ import annotations

import random

import numpy as np
import torch
from transformers import AutoTokenizer

from unigen.models.loading import load_model, load_spec
from unigen.worlds.shapes.build import round_trip_acceptance
from unigen.worlds.shapes.dataset import world_model
from unigen.worlds.shapes.plan import format_plan, make_plan
from unigen.worlds.shapes.text_tokenizer import shapes_tokenizer
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.vocab import WORDS
from unigen.worlds.shapes.vq import fit_vq, load_vq, render_set, save_vq, to_images, to_pixels


def test_committed_vq_round_trip_is_accepted_by_the_judge():
    model = world_model()
    acceptance = round_trip_acceptance(model, samples=200, seed=11)
    assert acceptance >= 0.95, acceptance


def test_fit_vq_learns_and_stores_a_consistent_codebook(tmp_path):
    torch.manual_seed(0)
    vq = load_model("shapes-janus").vq
    images = render_set(8, 32, seed=0)
    pixels = to_pixels(images)

    def recon_error() -> float:
        with torch.no_grad():
            ids = vq.encode(pixels).image_tokens.view(len(pixels), -1)
            return float(((vq.decode(ids) - pixels) ** 2).mean())

    before = recon_error()
    fit_vq(vq, images, steps=10, batch_size=4, lr=3e-3, crop=16, restart_every=5, progress=False)
    assert recon_error() < before * 0.8
    norms = vq.quantize.embedding.weight.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    path = tmp_path / "vq.safetensors"
    save_vq(vq, path)
    fresh = load_model("shapes-janus").vq
    load_vq(fresh, path)
    with torch.no_grad():
        assert torch.equal(fresh.encode(pixels).image_tokens, vq.half().float().encode(pixels).image_tokens)


def test_pixel_conversions_round_trip():
    images = render_set(4, 32, seed=1)
    assert np.array_equal(to_images(to_pixels(images)), images)


def test_world_tokenizer_makes_world_words_single_tokens(tmp_path):
    tokenizer = shapes_tokenizer()
    rng = random.Random(0)
    record = sample_prompts(1, 0, {"color_attr": 1.0})[0]
    plan = format_plan(make_plan(record.metadata, rng))
    ids = tokenizer.encode(plan, add_special_tokens=False)
    assert len(ids) == 2 + 2 * 4 + 2  # "plan" ":" (color shape row col) ";" (color shape row col) "."
    assert tokenizer.decode(ids) == plan
    for word in WORDS:
        assert len(tokenizer.encode(" " + word, add_special_tokens=False)) == 1
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.encode(plan, add_special_tokens=False) == ids
    spec = load_spec("shapes-janus")
    assert spec.image.num_tokens == 64 and spec.image.codebook_size == 256 and spec.image.size == 32
    assert spec.encode_text(record.prompt) == tokenizer.encode(record.prompt, add_special_tokens=False)
