"""ShapesWorld in the BAGEL family: the flow base's preset, its data and its latents' round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.conftest import REPO
from unigen.cli import main
from unigen.models.loading import load_model
from unigen.pipeline.fit import FitSettings, fit_argv
from unigen.worlds.shapes.build import round_trip_acceptance
from unigen.worlds.shapes.dataset import render_trajectories
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.vq import to_images


def test_flow_world_model_renders_latent_trajectories_that_decode_to_their_pictures():
    model = load_model("shapes-bagel").eval()
    assert model.spec.image.kind == "latents" and model.spec.image.shape == (64, 48)
    assert len(model.spec.encode_text(" red circle")) == 2  # world words are single tokens
    records = sample_prompts(8, 3, split="pretrain")
    trajectories = render_trajectories(records, model, seed=3)
    payload = np.stack([t.image_tokens for t in trajectories])
    assert payload.dtype == np.float32 and payload.shape == (8, 64, 48)
    decoded = to_images(model.decode_images(torch.from_numpy(payload)))
    for t, image in zip(trajectories, decoded):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(t.png)).convert("RGB")), image)


def test_pixel_latents_round_trip_every_render_the_judge_accepts():
    """The VQ's check (300/300 for the committed VQ): here the latents are the pixels."""
    assert round_trip_acceptance(load_model("shapes-bagel"), samples=100, seed=11) == 1.0


def test_committed_flow_base_draws_what_the_strict_judge_accepts():
    """The committed base (configs/shapes/pretrain_flow.yaml): 32 held-out prompts, one sample each at
    its chosen guidance (3) and 20 Euler steps. Over 3 seeds x 1,152 samples it scores 0.466
    (docs/shapes.md); here a fixed draw, with a margin for the sampling noise of 32 samples."""
    from unigen.generation.config import SamplingConfig
    from unigen.generation.sampler import sample
    from unigen.rewards.images import pixels_to_pil
    from unigen.worlds.shapes.judge import ShapesJudge

    model = load_model("unigen/worlds/shapes/assets/base_flow").eval()
    records = sample_prompts(32, 5, split="heldout")
    config = SamplingConfig(mode="explicit", max_reasoning_tokens=40, cfg=3.0, text_temperature=0.7,
                            flow={"num_timesteps": 20, "timestep_shift": 3.0, "cfg_interval": [0.4, 1.0]})
    results = sample(model, [r.prompt for r in records], config, seeds=list(range(32)))
    pixels = model.decode_images(torch.from_numpy(np.stack([r.image_tokens for r in results])))
    judge = ShapesJudge(strict=True)
    accepted = [judge.judge(np.asarray(image), r.metadata)[0] for image, r in zip(pixels_to_pil(pixels), records)]
    assert np.mean(accepted) >= 0.3, np.mean(accepted)


def test_the_flow_loops_fit_stage_trains_the_noisy_end_at_lr_1e_4(monkeypatch, capsys):
    """configs/loop/shapes_flow.yaml's fit stage as the loop runs it (its configs and args) resolves to
    the documented recipe: lr 1e-4, flow times in [0.7, 1] (docs/shapes.md)."""
    monkeypatch.chdir(REPO)
    stage = yaml.safe_load((REPO / "configs/loop/shapes_flow.yaml").read_text())["fit"]
    argv = fit_argv(FitSettings(config=stage["config"], args=stage["args"]))
    with pytest.raises(SystemExit):
        main([a for a in argv if a not in ("--ckpt_path", "latest")] + ["--print_config"])
    model = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert model["lr"] == 1e-4 and model["flow_timesteps"] == [0.7, 1.0]
