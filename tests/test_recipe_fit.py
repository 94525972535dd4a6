"""The Janus-Pro recipes as shipped train on trajectory shards with packing: two steps each on CPU
with a janus-micro model (the 7B recipe keeps its FSDP2 strategy: one gloo rank)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.scale_helpers import REPO, run_env
from tests.test_trajectory_datamodule import micro_shards


@pytest.mark.parametrize("recipe,strategy", [("janus_pro_1b", ["--trainer.strategy", "auto"]), ("janus_pro_7b", [])])
def test_recipe_fits_on_trajectory_shards(recipe, strategy, tmp_path):
    shards = micro_shards(tmp_path / "shards", samples=32, shard_size=8)
    cmd = [sys.executable, str(REPO / "run.py"), "fit", "--config", str(REPO / f"configs/{recipe}/fit.yaml"),
           "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "32-true", *strategy,
           "--trainer.plugins", "[{class_path: unigen.scale.checkpoint_io.AtomicCheckpointIO}]",
           "--trainer.max_steps", "2", "--trainer.log_every_n_steps", "1", "--trainer.limit_val_batches", "0",
           "--model.init_args.model", "janus-micro", "--model.init_args.logits_chunk_size", "8",
           "--data.init_args.train_shards", f'["{tmp_path / "shards"}/train-{{000000..{len(shards) - 1:06d}}}.tar"]',
           "--data.init_args.pack_length", "256", "--data.init_args.num_workers", "0"]
    done = subprocess.run(cmd, cwd=tmp_path, env=run_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    events = list((tmp_path / "runs" / recipe / "local").glob("events.out.tfevents.*"))
    assert events, f"no TensorBoard events under {tmp_path / 'runs' / recipe}"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    assert "train/loss" in scalars
