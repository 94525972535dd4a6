"""Fault tolerance: atomic checkpoint writes, and a fit killed with SIGKILL then resumed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from functools import partial

import pytest
import torch

from tests.scale_helpers import (REPO, STALL_ENV, checkpoint_step, fit_config, run_env, run_fit, step_keys,
                                 train_losses)
from unigen.data.batch import collate
from unigen.data.resumable import ResumableBatches
from unigen.data.sequence import Example
from unigen.losses import IGNORE
from unigen.scale.checkpoint_io import PARTIAL_PREFIX, AtomicCheckpointIO

SLOW_SAVE = """
import sys, time, torch
from pathlib import Path
sys.path.insert(0, {repo!r})
from unigen.scale.checkpoint_io import AtomicCheckpointIO

class Slow:  # pickling it stalls the save half-way
    def __reduce__(self):
        Path({started!r}).write_text("writing")
        time.sleep(60)
        return (int, (1,))

AtomicCheckpointIO().save_checkpoint({{"w": torch.ones(1000), "slow": Slow()}}, {target!r})
"""


def test_a_save_killed_mid_write_leaves_the_previous_checkpoint(tmp_path):
    target, started = tmp_path / "last.ckpt", tmp_path / "started"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 4, "w": torch.zeros(3)}, target)
    code = SLOW_SAVE.format(repo=str(REPO), started=str(started), target=str(target))
    child = subprocess.Popen([sys.executable, "-c", code], env=run_env())
    deadline = time.time() + 60
    while not started.exists():
        assert child.poll() is None and time.time() < deadline, "the slow save never started"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    partials = list(tmp_path.glob(PARTIAL_PREFIX + "*"))
    assert len(partials) == 1  # the interrupted write went to a partial file, not to `last`
    assert io.load_checkpoint(target)["global_step"] == 4  # `last` is still the previous, whole checkpoint
    io.save_checkpoint({"global_step": 6}, target)
    assert io.load_checkpoint(target)["global_step"] == 6
    assert not list(tmp_path.glob(PARTIAL_PREFIX + "*"))  # the next save cleared the leftover


def test_a_failing_save_raises_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 2}, target)
    with pytest.raises(Exception):
        io.save_checkpoint({"bad": lambda: 0}, target)  # lambdas cannot be pickled
    assert io.load_checkpoint(target)["global_step"] == 2
    assert not list(tmp_path.glob(PARTIAL_PREFIX + "*"))


def test_sigkilled_fit_resumes_to_the_same_step_and_loss(tmp_path):
    """Checkpoint every 2 steps, SIGKILL at step 5, resume from `last` (step 4), finish at step 10.

    6 batches per epoch: the resumed run finishes epoch 0 (batches 4, 5; not 0-3 again) and goes on
    into epoch 1 exactly as the uninterrupted run did, so losses match, not just within noise.
    """
    steps = dict(max_steps=10, every_n_steps=2, batch_size=8, train_samples=48, shuffle=True)
    whole_run = subprocess.Popen(  # the uninterrupted run, beside the one to be killed
        [sys.executable, "run.py", "fit", "--config", str(fit_config(tmp_path / "whole", **steps))],
        cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed = tmp_path / "killed"
    config = fit_config(killed, **steps)
    cmd = [sys.executable, "run.py", "fit", "--config", str(config)]
    child = subprocess.Popen(cmd, cwd=REPO, env={**run_env(), STALL_ENV: "5"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "stalled").exists():
        assert child.poll() is None, f"the run ended (rc {child.returncode}) before reaching step 5"
        assert time.time() < deadline
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert checkpoint_step(killed / "ckpt" / "last.ckpt") == 4

    run_fit(config, "--ckpt_path", "last", "--trainer.logger.init_args.version", "1")
    _, err = whole_run.communicate(timeout=120)
    assert whole_run.returncode == 0, err[-3000:]
    assert checkpoint_step(killed / "ckpt" / "last.ckpt") == checkpoint_step(tmp_path / "whole/ckpt/last.ckpt") == 10
    whole_keys, killed_keys = step_keys(tmp_path / "whole"), step_keys(killed)
    assert [killed_keys[s] for s in range(5, 11)] == [whole_keys[s] for s in range(5, 11)]
    whole = train_losses(tmp_path / "whole")
    first = train_losses(killed)  # what the killed run flushed (up to its last checkpoint): as uninterrupted
    resumed = train_losses(killed, version=1)
    print({"whole": whole, "killed": first, "resumed": resumed})
    assert sorted(resumed) == list(range(4, 10)) and len(first) >= 4
    for step in first:
        assert abs(first[step] - whole[step]) < 1e-4 * whole[step]
    assert whole[9] < whole[0]
    for step in resumed:  # same data, weights, optimizer moments, LR schedule and RNG -> same losses
        assert abs(resumed[step] - whole[step]) < 1e-4 * whole[step], (step, resumed[step], whole[step])


class StepCounter:
    """The two trainer attributes ResumableBatches reads."""

    def __init__(self, accumulate: int):
        self.global_step, self.accumulate_grad_batches = 0, accumulate


def keys_of(loader) -> list[list[int]]:
    return [[int(key) for key in batch.keys] for batch in loader]


def test_resumable_batches_skip_consumed_windows_and_cross_epochs():
    samples = [Example([1, 2], [False, False], [2, IGNORE], [IGNORE, IGNORE], [0, 1], [0, 0], None, str(i), "p", [(0, {})]) for i in range(12)]
    collate_ids = partial(collate, pad_id=0)

    trainer = StepCounter(accumulate=2)
    loader = ResumableBatches(samples, 2, collate_ids, trainer, shuffle=True, seed=3)
    epoch0 = keys_of(loader)
    assert sorted(i for b in epoch0 for i in b) == list(range(12)) and len(epoch0) == 6
    trainer.global_step = 3  # 6 batches / 2 per window
    epoch1 = keys_of(loader)
    assert epoch1 != epoch0 and sorted(i for b in epoch1 for i in b) == list(range(12))

    trainer.global_step = 4  # one window into epoch 1, a requeue signal arrived mid-way through the next
    state = loader.state_dict()
    assert state == {"epoch": 1, "consumed": 2, "seed": 3}
    fresh = ResumableBatches(samples, 2, collate_ids, trainer, shuffle=True, seed=3)
    fresh.load_state_dict(state)
    assert keys_of(fresh) == epoch1[2:]  # the cut window is read again from its start, nothing before it
    trainer.global_step = 6
    assert fresh.state_dict() == {"epoch": 2, "consumed": 0, "seed": 3}  # the epoch is done
    assert keys_of(fresh) != epoch1  # next: epoch 2

    at_end = ResumableBatches(samples, 2, collate_ids, trainer, shuffle=True, seed=3)
    at_end.load_state_dict({"epoch": 1, "consumed": 6, "seed": 3})  # saved on the epoch's last step
    order = at_end.order(2)
    assert keys_of(at_end) == [order[i:i + 2] for i in range(0, 12, 2)] and at_end.epoch == 2


SLURM_SINGLE_TASK = {
    "SLURM_JOB_ID": "777", "SLURM_JOB_NAME": "unigen-fit", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_NNODES": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
    "SLURM_NODELIST": "localhost",
}


def test_requeue_signal_checkpoint_resumes_with_ckpt_path_latest(tmp_path):
    """SLURM path: SIGUSR1 at step 5 -> hpc_ckpt_1.ckpt (newer than last@4); killed; `latest` resumes at 5."""
    steps = dict(max_steps=8, every_n_steps=4, batch_size=8, train_samples=48, shuffle=True)
    whole_run = subprocess.Popen(
        [sys.executable, "run.py", "fit", "--config", str(fit_config(tmp_path / "whole", **steps))],
        cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = tmp_path / "slurm"
    config = fit_config(root, **steps)
    env = {**run_env(), **SLURM_SINGLE_TASK}
    child = subprocess.Popen([sys.executable, "run.py", "fit", "--config", str(config), "--ckpt_path", "latest"],
                             cwd=REPO, env={**env, STALL_ENV: "5"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (root / "stalled").exists():
        assert child.poll() is None and time.time() < deadline, "the run did not reach step 5"
        time.sleep(0.1)
    child.send_signal(signal.SIGUSR1)  # what SLURM sends 90 s before the time limit
    requeue_ckpt = root / "hpc_ckpt_1.ckpt"
    while not requeue_ckpt.exists():  # appears whole or not at all (atomic IO)
        assert child.poll() is None and time.time() < deadline, "no requeue checkpoint was written"
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)  # scontrol is absent here; SLURM would now end and requeue the job
    child.wait()
    assert checkpoint_step(requeue_ckpt) == 5 and checkpoint_step(root / "ckpt" / "last.ckpt") == 4

    # the requeued job: same job id, same logger version folder, so config.yaml is there already
    assert (root / "csv" / "version_0" / "config.yaml").exists()
    done = run_fit(config, "--ckpt_path", "latest", env=env)
    assert "resuming from" in done.stdout + done.stderr and "hpc_ckpt_1.ckpt" in done.stdout + done.stderr
    _, err = whole_run.communicate(timeout=120)
    assert whole_run.returncode == 0, err[-3000:]
    assert checkpoint_step(root / "ckpt" / "last.ckpt") == 8
    whole, logged = train_losses(tmp_path / "whole"), train_losses(root)
    resumed = {step: loss for step, loss in logged.items() if step >= 5}
    assert sorted(resumed) == [5, 6, 7]
    for step in resumed:
        assert abs(resumed[step] - whole[step]) < 1e-4 * whole[step], (step, resumed[step], whole[step])


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    import random

    import lightning as L
    import numpy as np

    from callbacks.rng import RNGState

    L.seed_everything(7, verbose=False)
    saver = RNGState()
    state = saver.state_dict()
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restored = RNGState()
    restored.load_state_dict(torch.load(tmp_path / "rng.pt", weights_only=True))  # plain types only
    L.seed_everything(123, verbose=False)
    restored.on_train_start(L.Trainer(accelerator="cpu", logger=False), None)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
