"""SLURM: a simulated allocation (environment variables) -> ranks, nodes, data split, run naming."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.plugins.environments import SLURMEnvironment

from datamodules.synthetic import SyntheticDataModule
from unigen.data.synthesize import synthetic_trajectories
from tests.scale_helpers import REPO
from unigen.lightning_cli import UnigenCLI
from unigen.module import UnifiedLM
from unigen.scale.resume import latest_checkpoint, resolve_ckpt_path

@pytest.fixture(autouse=True)
def restore_rank_zero(monkeypatch):
    """A simulated rank-5 trainer sets Lightning's process-global rank; later tests must see rank 0."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only as fabric_rank_zero_only
    from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero_only

    for fn in (fabric_rank_zero_only, utils_rank_zero_only):
        monkeypatch.setattr(fn, "rank", getattr(fn, "rank", 0))


CPU = ["--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.precision", "32-true"]


def slurm_env(monkeypatch, *, nodes: int, per_node: int, proc: int, job: str = "4242") -> None:
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    values = {
        "SLURM_JOB_ID": job, "SLURM_JOB_NAME": "unigen-fit", "SLURM_NTASKS": str(nodes * per_node),
        "SLURM_NTASKS_PER_NODE": str(per_node), "SLURM_NNODES": str(nodes), "SLURM_PROCID": str(proc),
        "SLURM_LOCALID": str(proc % per_node), "SLURM_NODEID": str(proc // per_node),
        "SLURM_NODELIST": "gpu[07-08]" if nodes > 1 else "gpu07",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)


def recipe_cli(recipe: str, tmp_path: Path, *extra: str) -> UnigenCLI:
    """The recipe parsed and instantiated (no fit) with CPU overrides, run from tmp_path."""
    args = ["--config", str(REPO / recipe), *CPU,
            "--model.init_args.model", "janus-micro", "--data.init_args.num_workers", "0",
            "--data.init_args.train_shards", "[shards/train-000000.tar]", *extra]
    return UnigenCLI(UnifiedLM, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                     parser_kwargs={"parser_mode": "omegaconf"}, save_config_kwargs={"overwrite": True},
                     args=args, run=False)


@pytest.mark.parametrize("recipe", ["configs/janus_pro_1b/fit.yaml", "configs/janus_pro_7b/fit.yaml"])
def test_recipe_under_a_simulated_two_node_allocation(recipe, monkeypatch, tmp_path):
    """Task 5 of 2 nodes x 4 tasks: global rank 5, local rank 1, node 1; logger version = job id."""
    monkeypatch.chdir(tmp_path)
    slurm_env(monkeypatch, nodes=2, per_node=4, proc=5)
    monkeypatch.setattr("sys.argv", ["run.py"])
    cli = recipe_cli(recipe, tmp_path, "--trainer.num_nodes", "2", "--trainer.devices", "4")
    trainer = cli.trainer
    env = trainer.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue and env.requeue_signal == signal.SIGUSR1
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (8, 5, 1, 1)
    assert env.main_address == "gpu07" and env.job_id() == 4242
    assert str(trainer.logger.version) == "4242"
    assert any(type(p).__name__ == "AtomicCheckpointIO" for p in [trainer.strategy.checkpoint_io])
    assert {type(c).__name__ for c in trainer.callbacks} >= {"AttentionBackend", "RNGState", "ModelCheckpoint"}
    assert type(cli.datamodule).__name__ == "TrajectoryDataModule"
    assert cli.datamodule.hparams.pack_length == 16384 and cli.datamodule.hparams.resampled


def test_rank_reads_every_world_th_sample(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    slurm_env(monkeypatch, nodes=2, per_node=2, proc=3)
    trainer = L.Trainer(accelerator="cpu", devices=2, num_nodes=2, strategy="ddp", logger=False)
    assert (trainer.world_size, trainer.global_rank, trainer.node_rank) == (4, 3, 1)
    data = SyntheticDataModule(train_samples=32, batch_size=2, shuffle=False)
    data.trainer = trainer
    data.connect(UnifiedLM(model="janus-micro").spec)
    keys = [k for batch in data.train_dataloader() for k in batch.keys]
    expected = [t.key for t in synthetic_trajectories(32, 16, 64, seed=0)[3::4]]
    assert keys == expected and len(keys) == 8


def test_ckpt_path_latest_picks_the_newest_of_requeue_and_last(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt_dir = tmp_path / "checkpoints"
    trainer = L.Trainer(accelerator="cpu", logger=False, default_root_dir=tmp_path,
                        callbacks=[ModelCheckpoint(dirpath=ckpt_dir, save_last=True)])
    assert resolve_ckpt_path("latest", trainer) is None  # first start: fresh
    assert resolve_ckpt_path("last", trainer) == "last" and resolve_ckpt_path(None, trainer) is None
    ckpt_dir.mkdir()
    last, hpc = ckpt_dir / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt"
    last.write_bytes(b"x")
    os.utime(last, (1000, 1000))
    assert latest_checkpoint(trainer) == str(last)
    hpc.write_bytes(b"x")
    os.utime(hpc, (2000, 2000))
    assert latest_checkpoint(trainer) == str(hpc)  # requeued after the signal: the requeue checkpoint
    os.utime(last, (3000, 3000))
    assert latest_checkpoint(trainer) == str(last)  # killed later without a signal: the newer `last`
    (ckpt_dir / ".partial-0123").write_bytes(b"torn")
    assert latest_checkpoint(trainer) == str(last)


def test_sbatch_template_requests_requeue_and_one_task_per_gpu():
    text = (REPO / "configs/slurm/fit.sbatch").read_text()
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?", text, flags=re.M))
    assert directives["signal"] == "SIGUSR1@90" and "requeue" in directives
    assert directives["ntasks-per-node"] == directives["gpus-per-node"]
    assert re.search(r"^srun .*python run.py fit --config \"\$CONFIG\"", text, flags=re.M)
    assert "--ckpt_path latest" in text and '--trainer.num_nodes "$SLURM_NNODES"' in text
