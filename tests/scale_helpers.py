"""Helpers for the scale tests: write a fit config and run ``run.py fit`` in a subprocess."""

from __future__ import annotations

import json
import os
import time
import subprocess
import sys
from pathlib import Path

import lightning as L
import torch
import yaml

STALL_ENV = "UNIGEN_TEST_STALL_AT_STEP"

REPO = Path(__file__).resolve().parents[1]


def fit_config(root: Path, *, devices: int = 1, batch_size: int = 8, accumulate: int = 1, max_steps: int = 6,
               every_n_steps: int | None = None, train_samples: int = 64, shuffle: bool = False,
               extra_trainer: dict | None = None) -> Path:
    """A janus-micro fit on fixed-order synthetic data, logging every step to CSV under ``root``."""
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu", "devices": devices, "strategy": "ddp" if devices > 1 else "auto",
            "precision": "32-true", "max_steps": max_steps, "accumulate_grad_batches": accumulate,
            "gradient_clip_val": 1.0, "log_every_n_steps": 1, "limit_val_batches": 0,
            "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(root),
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": str(root), "name": "csv", "version": 0}},
            "plugins": [{"class_path": "unigen.scale.checkpoint_io.AtomicCheckpointIO"}],
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": {"dirpath": str(root / "ckpt"), "save_last": True, "save_top_k": -1,
                                         "every_n_train_steps": every_n_steps or max_steps}},
                          {"class_path": "callbacks.rng.RNGState"},
                          {"class_path": "tests.scale_helpers.StallAt", "init_args": {"marker": str(root / "stalled")}}],
            **(extra_trainer or {}),
        },
        "model": {"class_path": "unigen.module.UnifiedLM",
                  "init_args": {"model": "janus-micro", "lr": 3.0e-3, "warmup_steps": 2}},
        "data": {"class_path": "datamodules.synthetic.SyntheticDataModule",
                 "init_args": {"train_samples": train_samples, "val_samples": 4, "batch_size": batch_size,
                               "shuffle": shuffle}},
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class StallAt(L.Callback):
    """Test aid: logs each step's sample keys to ``<marker>.keys.jsonl``; when ``$UNIGEN_TEST_STALL_AT_STEP``
    is set, writes ``marker`` at that step and hangs (to be killed)."""

    def __init__(self, marker: str):
        self.marker = marker

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.is_global_zero:
            with open(f"{self.marker}.keys.jsonl", "a") as f:
                f.write(json.dumps({"step": trainer.global_step, "keys": batch.keys}) + "\n")
        if os.environ.get(STALL_ENV) == str(trainer.global_step):
            Path(self.marker).write_text(str(trainer.global_step))
            time.sleep(300)


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LOCAL_RANK", "WORLD_SIZE"))}
    return {**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def run_fit(config: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """``python run.py fit --config config *args`` from the repository root; raises with its output on failure."""
    cmd = [sys.executable, "run.py", "fit", "--config", str(config), *args]
    done = subprocess.run(cmd, cwd=REPO, env=env or run_env(), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def train_losses(root: Path, version: int = 0) -> dict[int, float]:
    """step -> logged train/loss from the CSV logger."""
    import csv

    rows = csv.DictReader((root / "csv" / f"version_{version}" / "metrics.csv").open())
    return {int(r["step"]): float(r["train/loss"]) for r in rows if r.get("train/loss")}


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def max_weight_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def checkpoint_step(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])


def step_keys(root: Path) -> dict[int, list[str]]:
    """global step after the batch -> its sample keys (rank 0), last write wins."""
    lines = (root / "stalled.keys.jsonl").read_text().splitlines()
    return {row["step"]: row["keys"] for row in map(json.loads, lines)}
