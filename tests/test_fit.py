"""`run.py` end to end on CPU: fast_dev_run, a short fit whose loss falls, config printing and stacking."""

from __future__ import annotations

import glob

import lightning as L
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import REPO
from unigen.cli import main

TINY = str(REPO / "configs" / "tiny.yaml")
MICRO = ["--model.init_args.model=janus-micro"]


def synthesize_micro_shards() -> None:
    """The shards configs/tiny.yaml reads (``data/synthetic``, relative to the working directory)."""
    main(["synthesize", "--out", "data/synthetic", "--model", "janus-micro", "--train_samples", "256",
          "--val_samples", "32", "--shard_size", "64"])


def test_fast_dev_run(tmp_path, monkeypatch):
    """The fit config under ``fast_dev_run=2``: 2 optimizer steps that change the weights, 2 validation
    batches, finite losses, no logger output."""
    monkeypatch.chdir(tmp_path)
    synthesize_micro_shards()
    fitted, fit = {}, L.Trainer.fit

    def recording_fit(trainer, model, *args, **kwargs):
        fitted.update(trainer=trainer, model=model)
        model.on_train_start = lambda: fitted.update(before={k: v.clone() for k, v in model.state_dict().items()})
        return fit(trainer, model, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "fit", recording_fit)
    main(["fit", "--config", TINY, *MICRO, "--trainer.fast_dev_run=2"])
    trainer, model, before = fitted["trainer"], fitted["model"], fitted["before"]
    assert trainer.global_step == 2 and trainer.fit_loop.epoch_loop.batch_progress.total.completed == 2
    assert trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.completed == 2
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[k]) and metrics[k] > 0 for k in ("train/loss", "val/loss_text", "val/loss_image"))
    after = model.state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(v, after[k]) for k, v in before.items())
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_fit_loss_falls_writes_tensorboard_and_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthesize_micro_shards()
    main(["fit", "--config", TINY, *MICRO, "--trainer.max_steps=40", "--trainer.val_check_interval=20",
          "--trainer.callbacks.init_args.every_n_train_steps=20", "--trainer.log_every_n_steps=2"])
    events = glob.glob(str(tmp_path / "runs" / "tiny" / "version_0" / "events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(events[0])
    acc.Reload()
    for tag in ("train/loss_text", "train/loss_image"):
        values = [e.value for e in acc.Scalars(tag)]
        assert values[-1] < values[0] * 0.8, (tag, values)
    assert {"val/loss_text", "val/loss_image", "train/switch_acc"} <= set(acc.Tags()["scalars"])
    checkpoints = glob.glob(str(tmp_path / "runs" / "tiny" / "checkpoints" / "*.ckpt"))  # not in version_0
    assert any(c.endswith("last.ckpt") for c in checkpoints)
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)
    assert state["global_step"] in (20, 40) and any(k.startswith("net.hf.") for k in state["state_dict"])


def test_print_config_is_valid_yaml_and_configs_stack_with_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    override = tmp_path / "override.yaml"
    override.write_text("model:\n  init_args:\n    lambda_image: 0.5\n    lr: ${oc.decode:'0.002'}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", TINY, "--config", str(override), "--model.init_args.lambda_text=2.0", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    args = printed["model"]["init_args"]
    assert args["lambda_image"] == 0.5 and args["lambda_text"] == 2.0 and args["lr"] == 0.002
    assert printed["model"]["class_path"] == "unigen.module.UnifiedLM"
    assert printed["trainer"]["max_steps"] == 80
