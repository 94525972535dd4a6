"""BAGEL runs the method: the shipped tiny loop end to end, a fit that learns both heads and the
switch, and a SIGKILLed fit that resumes to the uninterrupted loss."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from tests.test_kill_resume import SHORT_FIT, kill_when, resume_and_compare, run, workdir
from unigen.cli import main
from unigen.data.batch import collate
from unigen.data.sequence import build_example
from unigen.data.synthesize import image_geometry, synthetic_trajectories, write_synthetic_shards
from unigen.generation.config import SamplingConfig
from unigen.generation.sampler import sample
from unigen.models.bagel import load_official
from unigen.models.loading import load_spec
from unigen.module import UnifiedLM
from unigen.pipeline.results import LoopResults


def test_tiny_bagel_loop_end_to_end(tmp_path, monkeypatch):
    """configs/loop/tiny_bagel.yaml as shipped: every stage, latent shards (format 3), the fit's
    export in the official layout, evaluated again in `unified` and `direct` mode."""
    monkeypatch.chdir(REPO)
    main(["loop", "--config", "configs/loop/tiny_bagel.yaml", "--out", str(tmp_path / "loop")])
    results = LoopResults.read(tmp_path / "loop").runs[0]
    assert [e.key for e in results.evaluations] == ["base_explicit", "post_unified", "post_direct"]
    assert [e.summary["samples"] for e in results.evaluations] == [6, 6, 6]
    assert results.rounds[0].trajectories == 12
    assert set(results.rounds[0].rewards) == {"image/shapes_strict", "text/shapes_plan"}
    run_dir = tmp_path / "loop" / "seed-0"
    with tarfile.open(sorted((run_dir / "generated").glob("*.tar"))[0]) as shard:
        meta = json.loads(shard.extractfile(next(m for m in shard.getmembers() if m.name.endswith(".json"))).read())
    assert meta["format_version"] == 3
    model, report = load_official(run_dir / "fit" / "model")
    assert report.unexpected == [] and report.missing == [] and report.loaded
    assert (run_dir / "report.md").is_file() and (run_dir / "grid.png").is_file()
    weights = run_dir / "fit" / "model" / "ema.safetensors"
    written = weights.stat().st_mtime_ns
    main(["loop", "--config", "configs/loop/tiny_bagel.yaml", "--out", str(tmp_path / "loop")])
    assert weights.stat().st_mtime_ns == written  # a finished run is reused, its fit not redone


def test_fit_lowers_both_losses_and_learns_to_emit_the_switch():
    """A short `unified` fit on a fixed toy batch: CE and flow MSE fall, and greedy sampling then
    writes the trained reasoning and emits <|vision_start|> itself on every prompt."""
    torch.manual_seed(0)
    module = UnifiedLM(model="bagel-micro")
    module.configure_model()
    spec = module.spec
    trajs = synthetic_trajectories(6, seed=0, **image_geometry(spec.image))
    batch = collate([build_example(t, spec, "unified") for t in trajs], spec.pad_id)
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        text, image = module.heads(batch, noise_seed=step % 4)
        loss = text.weighted_loss / text.tokens + image.weighted_loss / image.tokens
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append((float(text.weighted_loss / text.tokens), float(image.weighted_loss / image.tokens)))
    first, last = torch.tensor(losses[:4]).mean(0), torch.tensor(losses[-4:]).mean(0)  # the same 4 noise draws
    assert last[0] < 0.2 * first[0] and last[1] < 0.75 * first[1], (first, last)
    results = sample(module.net.eval(), [t.prompt for t in trajs],
                     SamplingConfig(mode="unified", greedy=True, max_reasoning_tokens=32, cfg=1.0,
                                    flow={"num_timesteps": 4}), seeds=list(range(6)))
    assert all(r.switched and r.stop == "image" and r.image_tokens.shape == (16, 48) for r in results)
    assert [r.reasoning for r in results] == [t.reasoning for t in trajs]


@pytest.fixture(scope="module")
def bagel_data(tmp_path_factory) -> Path:
    """Synthetic latent shards for bagel-micro (format 3), 256 train and 16 val trajectories."""
    data = tmp_path_factory.mktemp("bagel") / "data" / "synthetic"
    geometry = image_geometry(load_spec("bagel-micro").image)
    write_synthetic_shards(data, samples=256, shard_size=64, prefix="train", **geometry)
    write_synthetic_shards(data, samples=16, shard_size=64, seed=1, prefix="val", **geometry)
    return data


def test_sigkilled_bagel_fit_resumes_to_the_same_final_loss(tmp_path, bagel_data):
    """configs/tiny.yaml on bagel-micro: the flow head's noise is a function of the step, so the
    resumed fit draws what the uninterrupted one drew."""
    config = ["fit", "--config", str(REPO / "configs/tiny.yaml"), *SHORT_FIT, "--model.init_args.model", "bagel-micro"]
    whole = workdir(tmp_path, "whole", bagel_data)
    run(config, whole)
    killed = workdir(tmp_path, "killed", bagel_data)
    ckpt = killed / "runs/tiny/checkpoints/last.ckpt"
    kill_when(config + ["--ckpt_path", "latest"], killed, ckpt.exists)
    resume_and_compare(config, killed, whole)
