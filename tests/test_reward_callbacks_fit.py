"""The callbacks inside a real Lightning fit (janus-micro, synthetic data): online reward -> weights -> loss."""

import re
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from callbacks.online_reward import OnlineReward, split_prompt
from callbacks.reward_weighting import RewardWeighting
from datamodules.trajectories import TrajectoryDataModule
from unigen.cli import main
from unigen.module import UnifiedLM
from unigen.data.synthesize import write_synthetic_shards
from unigen.rewards.images import pil_images
from unigen.rewards.weighting import ModalityWeighting

REPO = Path(__file__).resolve().parents[1]


def _micro_shards(out: Path, samples: int) -> None:
    """Synthetic janus-micro trajectory shards (16 image ids, codebook 64), train and val, as tiny.yaml reads them."""
    write_synthetic_shards(out, 16, 64, samples, shard_size=samples, prefix="train")
    write_synthetic_shards(out, 16, 64, 4, shard_size=4, seed=1, prefix="val")


class PromptCount:
    """Test-local reward (both modalities): the prompt's count / 4 (it varies over a batch), None without an image."""

    modality = "both"

    def __init__(self):
        self.seen = []

    def __call__(self, trajectories):
        self.seen += trajectories
        return [None if t.png is None else int(t.prompt.split()[0]) / 4 for t in trajectories]


class Spy(L.Callback):
    """Records the weights the loss heads will see (runs after the weighting callback)."""

    def __init__(self):
        self.weights = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.weights.append((batch.text_weight.clone(), batch.image_weight.clone(), batch.rewards))


def test_online_reward_feeds_weighting_in_fit(tmp_path):
    torch.manual_seed(0)
    reward, spy = PromptCount(), Spy()
    weighting = RewardWeighting(text=ModalityWeighting(scheme="zero"),
                                image=ModalityWeighting(scheme="rwr", rewards={"image/count": 1.0}, beta=0.5))
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        limit_val_batches=0,
                        callbacks=[OnlineReward(reward, name="count"), weighting, spy])
    _micro_shards(tmp_path / "shards", 16)
    data = TrajectoryDataModule([str(tmp_path / "shards" / "train-*.tar")], batch_size=8, num_workers=0,
                                shardshuffle=False)
    trainer.fit(UnifiedLM(model="janus-micro", warmup_steps=1), data)

    assert len(reward.seen) == 16
    for traj in reward.seen:  # prompt and reasoning decoded back from the token rows, image from the ids
        assert re.fullmatch(r"[1-4] (red|green|blue|yellow) (circle|square|triangle)s?", traj.prompt), traj.prompt
        assert traj.reasoning.startswith("plan: ") and len(traj.image_tokens) == 16
        assert pil_images([traj])[0].size == (16, 16)
    assert len(spy.weights) == 2
    for step, (text_w, image_w, rewards) in enumerate(spy.weights):
        expected_reward = torch.tensor([int(t.prompt.split()[0]) / 4 for t in reward.seen[8 * step: 8 * step + 8]])
        assert torch.equal(rewards["image/count"], expected_reward) and "text/count" in rewards
        assert "image/synthetic" in rewards  # stored rewards travel beside the online one
        rwr = torch.exp(expected_reward / 0.5)
        expected_weight = rwr / rwr.mean()  # rwr, beta 0.5, normalised to mean 1 over the batch
        assert torch.equal(text_w, torch.zeros(8)) and torch.allclose(image_w, expected_weight)
        assert image_w.max() > 1.5 * image_w.min()  # the weights are not all 1
    metrics = trainer.callback_metrics  # the last step's
    last_w, last_reward = spy.weights[-1][1].double(), spy.weights[-1][2]["image/count"]
    ess_fraction = float(last_w.sum() ** 2 / (last_w ** 2).sum() / 8)
    assert ess_fraction < 0.99 and float(metrics["reward_weight/image/ess_fraction"]) == pytest.approx(ess_fraction)
    assert float(metrics["reward_weight/text/zero_fraction"]) == 1.0
    assert float(metrics["reward/count"]) == pytest.approx(float(last_reward.mean()))
    assert float(metrics["train/loss_text"]) == 0.0  # text head fully zero-weighted


def test_batch_trajectories_same_from_padded_and_packed_batches():
    from callbacks.online_reward import batch_trajectories
    from unigen.data.batch import collate
    from unigen.data.sequence import build_example
    from unigen.data.synthesize import synthetic_trajectories
    from unigen.models.loading import load_model

    model = load_model("janus-micro")
    originals = synthetic_trajectories(5, 16, 64, seed=3)
    examples = [build_example(t, model.spec, "unified") for t in originals]
    padded = batch_trajectories(collate(examples, model.spec.pad_id), model)
    packed_batch = collate(examples, model.spec.pad_id, pack_length=256)
    assert packed_batch.input_ids.shape[0] < 5  # several samples share a row
    packed = batch_trajectories(packed_batch, model)
    for original, a, b in zip(originals, padded, packed):
        assert (a.key, a.prompt, a.reasoning, a.png) == (original.key, original.prompt, original.reasoning, b.png)
        assert list(a.image_tokens) == list(b.image_tokens) == list(original.image_tokens)
        assert (b.prompt, b.reasoning) == (original.prompt, original.reasoning)


def test_split_prompt():
    assert split_prompt("<|User|>: two cats\n\n<|Assistant|>: I plan", "<|User|>: {prompt}\n\n<|Assistant|>:") == (
        "two cats", " I plan")
    assert split_prompt("something else", "<|User|>: {prompt}\n\n<|Assistant|>:") == ("", "something else")


def _fit_args(tmp_path, *configs):
    args = ["fit", "--config", str(REPO / "configs/tiny.yaml")]
    for config in configs:
        args += ["--config", str(REPO / config)]
    return args + ["--model.init_args.model", "janus-micro", "--trainer.max_steps", "1", "--trainer.logger", "false",
                   "--trainer.enable_progress_bar", "false", "--data.init_args.num_workers", "0",
                   "--data.init_args.batch_size", "4", "--trainer.limit_val_batches", "0",
                   f"--trainer.default_root_dir={tmp_path}"]


def test_ablation_configs_stack_onto_a_fit_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["run.py"])
    expected = {"none": ("off", "off"), "text": ("rwr", "off"), "image": ("off", "rwr"), "both": ("rwr", "rwr")}
    for name, (text, image) in expected.items():
        with pytest.raises(SystemExit):
            main(_fit_args(tmp_path, f"configs/ablations/weight_{name}.yaml") + ["--print_config"])
        printed = yaml.safe_load(capsys.readouterr().out)
        kinds = [c["class_path"] for c in printed["trainer"]["callbacks"]]
        assert kinds == ["lightning.pytorch.callbacks.ModelCheckpoint", "callbacks.reward_weighting.RewardWeighting"]
        args = printed["trainer"]["callbacks"][1]["init_args"]
        assert (args["text"]["scheme"], args["image"]["scheme"]) == (text, image)


def test_online_example_config_fits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _micro_shards(tmp_path / "data" / "synthetic", 8)
    monkeypatch.setattr("sys.argv", ["run.py"])
    main(_fit_args(tmp_path, "configs/examples/online_reward.yaml") + [
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.log_every_n_steps", "1"])
    (metrics,) = tmp_path.rglob("metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    expected = {"reward/vqa_online", "reward_weight/image/ess", "reward_weight/text/mean", "train/loss_image"}
    assert expected <= set(header)
