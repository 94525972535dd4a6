"""TrajectoryDataModule: shard patterns, node/worker split, bad-data policies, a real fit."""

from __future__ import annotations

import io
import json
import math
import random
import tarfile
from collections import Counter
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import webdataset as wds

from datamodules.trajectories import TrajectoryDataModule
from unigen.data.reader import BadShardData, shard_samples
from unigen.data.shards import expand_shards, to_sample, write_shard
from unigen.data.stream import to_examples
from unigen.data.synthesize import synthetic_trajectories, write_synthetic_shards
from unigen.models.loading import load_spec

SPEC = load_spec("janus-micro")  # 16 image ids, codebook 64, max_seq_len 256


def micro_shards(out: Path, samples: int = 64, shard_size: int = 8, prefix: str = "train") -> list[Path]:
    return write_synthetic_shards(out, SPEC.image.num_tokens, SPEC.image.codebook_size, samples, shard_size, prefix=prefix)


def datamodule(patterns: list[str], **kw) -> TrajectoryDataModule:
    kw = {"batch_size": 4, "num_workers": 0, "shuffle_buffer": 0, "shardshuffle": False, **kw}
    dm = TrajectoryDataModule(patterns, **kw)
    dm.connect(SPEC)
    dm.setup("fit")
    return dm


def keys_of(batches) -> list[str]:
    return [k for b in batches for k in b.keys]


def skips_of(batches) -> Counter:
    total: Counter = Counter()
    for b in batches:
        total.update(b.skipped)
    return total


def test_patterns_paths_braces_globs(tmp_path):
    paths = micro_shards(tmp_path, samples=24)
    assert expand_shards([str(tmp_path / "train-*.tar")]) == [str(p) for p in paths]
    braces = expand_shards([str(tmp_path / "train-{000001..000002}.tar"), str(paths[0])])
    assert braces == [str(p) for p in paths[1:] + paths[:1]]
    with pytest.raises(FileNotFoundError, match="nothing-\\*.tar"):
        expand_shards([str(paths[0]), str(tmp_path / "nothing-*.tar")])
    with pytest.raises(ValueError, match="empty"):
        expand_shards([])
    with pytest.raises(FileNotFoundError, match="nope"):
        TrajectoryDataModule([str(tmp_path / "nope/*.tar")]).setup("fit")


def test_batches_are_the_shared_collate(tmp_path):
    micro_shards(tmp_path, samples=10, shard_size=10)
    dm = datamodule([str(tmp_path / "*.tar")], batch_size=4)
    batches = list(dm.pipeline(dm.train_paths, train=True))
    assert [len(b.keys) for b in batches] == [4, 4, 2]
    assert keys_of(batches) == [f"syn{i}_0" for i in range(10)]
    first = batches[0]
    assert first.input_ids.shape == first.text_labels.shape == first.image_mask.shape
    assert int(first.image_mask[0].sum()) == SPEC.image.num_tokens
    assert first.rewards["image/synthetic"].tolist() == [1.0] * 4
    assert all(b.skipped == {} for b in batches)


def test_pack_length_packs_each_batch(tmp_path):
    micro_shards(tmp_path, samples=12, shard_size=12)
    dm = datamodule([str(tmp_path / "*.tar")], batch_size=6, pack_length=SPEC.max_seq_len, num_workers=1)
    batches = list(dm.train_dataloader())
    assert keys_of(batches) == [f"syn{i}_0" for i in range(12)]
    for batch in batches:
        assert batch.packed and batch.input_ids.shape[0] < 6  # ~50-token samples share 256-token rows
        assert int(batch.image_mask.sum()) == 6 * SPEC.image.num_tokens and batch.skipped == {}
    with pytest.raises(ValueError, match="pack_length 64"):
        datamodule([str(tmp_path / "*.tar")], pack_length=64).make_batch()


@pytest.mark.parametrize("world", [1, 2, 4])
@pytest.mark.parametrize("workers", [1, 2])
def test_node_and_worker_split_gives_each_sample_to_one_reader(tmp_path, monkeypatch, world, workers):
    paths = micro_shards(tmp_path, samples=64, shard_size=4)  # 16 shards
    dm = datamodule([str(tmp_path / "*.tar")], shardshuffle=4, shuffle_buffer=8)
    seen: list[str] = []
    for rank in range(world):
        for worker in range(workers):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", str(world))
            monkeypatch.setenv("WORKER", str(worker))
            monkeypatch.setenv("NUM_WORKERS", str(workers))
            mine = keys_of(dm.pipeline([str(p) for p in paths], train=True))
            assert len(mine) == 64 // (world * workers)
            seen += mine
    assert len(seen) == len(set(seen)) == 64
    assert set(seen) == {f"syn{i}_0" for i in range(64)}


def test_fewer_train_shards_than_ranks_is_refused_by_name(tmp_path):
    """A rank without a shard would spin through empty epochs (seen under Slurm with 2 tasks and the
    loop's one generated shard): the fit refuses it up front; resampling or enough shards pass."""
    micro_shards(tmp_path / "d", samples=8, shard_size=8)  # one shard
    two_ranks = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)  # no process starts here
    assert two_ranks.world_size == 2
    dm = TrajectoryDataModule([str(tmp_path / "d/train-*.tar")])
    dm.trainer = two_ranks
    with pytest.raises(ValueError, match=r"train_shards: 1 shard\(s\) for 2 ranks"):
        dm.setup("fit")
    dm.setup("validate")  # only the fit splits train shards over ranks
    resampled = TrajectoryDataModule([str(tmp_path / "d/train-*.tar")], resampled=True)
    resampled.trainer = two_ranks
    resampled.setup("fit")
    micro_shards(tmp_path / "d", samples=16, shard_size=8)  # two shards
    dm.setup("fit")
    assert len(dm.train_paths) == 2


def test_condition_dropout_differs_between_workers_and_ranks(tmp_path, monkeypatch):
    """Each rank and worker draws its own dropout decisions (one seed everywhere made every worker
    drop the same positions of its stream); a single process keeps the plain seed's draws."""
    paths = micro_shards(tmp_path, samples=64, shard_size=64)
    samples = list(wds.DataPipeline(wds.SimpleShardList([str(p) for p in paths]),
                                    partial(shard_samples, policy="raise")))

    def dropped_positions() -> list[int]:  # stream index of each sample trained unconditionally
        examples = to_examples(samples, SPEC, "unified", "raise", condition_dropout=0.5, seed=3)
        return [i for i, example in enumerate(examples) if example.input_ids[1] == SPEC.pad_id]

    single = dropped_positions()
    draws = random.Random(3)
    assert single == [i for i in range(64) if draws.random() < 0.5]
    patterns = {}
    for rank, worker in ((0, 0), (0, 1), (1, 0)):
        for name, value in (("RANK", rank), ("WORLD_SIZE", 2), ("WORKER", worker), ("NUM_WORKERS", 2)):
            monkeypatch.setenv(name, str(value))
        patterns[rank, worker] = dropped_positions()
    assert patterns[0, 0] == single and len({tuple(p) for p in patterns.values()}) == 3


def test_real_dataloader_workers_split_exactly(tmp_path):
    micro_shards(tmp_path, samples=32, shard_size=4)
    dm = datamodule([str(tmp_path / "*.tar")], num_workers=2, shardshuffle=8, shuffle_buffer=16)
    loader = dm.train_dataloader()
    epoch1, epoch2 = keys_of(loader), keys_of(loader)
    assert sorted(epoch1) == sorted(epoch2) == sorted(f"syn{i}_0" for i in range(32))


def test_resampled_epochs_have_a_fixed_batch_count(tmp_path):
    micro_shards(tmp_path, samples=16, shard_size=4)
    dm = datamodule([str(tmp_path / "*.tar")], resampled=True, batches_per_epoch=7, shuffle_buffer=8)
    batches = list(dm.pipeline(dm.train_paths, train=True))
    assert len(batches) == 7 and all(len(b.keys) == 4 for b in batches)


# ---- bad data: every case with both policies ---------------------------------------------------

def write_raw(path: Path, samples: list[dict]) -> None:
    with wds.TarWriter(str(path)) as sink:
        for sample in samples:
            sink.write(sample)


def good(i: int) -> dict:
    return to_sample(synthetic_trajectories(1, SPEC.image.num_tokens, SPEC.image.codebook_size, seed=5, start=100 + i)[0])


def edited_json(edit) -> dict:
    sample = good(0)
    meta = json.loads(sample["json"])
    edit(meta)
    sample["json"] = json.dumps(meta).encode()
    return sample


def with_tokens(ids) -> dict:
    sample = good(0)
    traj = synthetic_trajectories(1, SPEC.image.num_tokens, SPEC.image.codebook_size, seed=5, start=100)[0]
    traj.image_tokens = np.asarray(ids, dtype=np.int64)
    return {**sample, "image_tokens.npy": to_sample(traj)["image_tokens.npy"]}


BAD_SAMPLES = {
    "missing_member": lambda: {k: v for k, v in good(0).items() if k != "image_tokens.npy"},
    "bad_json": lambda: {**good(0), "json": b'{"prompt_id": "syn100", '},
    "bad_reward": lambda: edited_json(lambda m: m["rewards"]["image"].update(synthetic=float("nan"))),
    "bad_reward_inf": lambda: edited_json(lambda m: m["rewards"]["text"].update(synthetic=float("inf"))),
    "image_id_range": lambda: with_tokens([SPEC.image.codebook_size] * SPEC.image.num_tokens),
    "image_token_count": lambda: with_tokens([1] * (SPEC.image.num_tokens - 1)),
    "too_long": lambda: {**good(0), "reasoning.txt": b"x" * SPEC.max_seq_len},
}


def bad_set(tmp_path: Path, case: str) -> tuple[Path, str]:
    """good shard (8 samples) + a shard of good(1), <bad sample syn100_0>, good(2)."""
    micro_shards(tmp_path, samples=8, shard_size=8)
    if case.startswith("truncated"):
        bad_path = tmp_path / "train-000001.tar"
        write_shard(tmp_path, "train", 1, synthetic_trajectories(3, 16, 64, seed=5, start=100))
        data = bad_path.read_bytes()
        with tarfile.open(bad_path) as tar:
            third = [m for m in tar][10]  # first member of the third sample
        cut = third.offset if case == "truncated_boundary" else third.offset_data + third.size // 2
        bad_path.write_bytes(data[:cut])
        return bad_path, "truncated_tar"
    bad_path = tmp_path / "train-000001.tar"
    write_raw(bad_path, [good(1), BAD_SAMPLES[case](), good(2)])
    return bad_path, case.removesuffix("_inf")


ALL_CASES = [*BAD_SAMPLES, "truncated_boundary", "truncated_mid_member"]


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_data_skip_counts_per_reason(tmp_path, case):
    bad_path, reason = bad_set(tmp_path, case)
    dm = datamodule([str(tmp_path / "train-*.tar")])
    batches = list(dm.pipeline(dm.train_paths, train=True))
    keys = keys_of(batches)
    assert skips_of(batches) == {reason: 1}
    assert len(keys) == len(set(keys))
    assert {f"syn{i}_0" for i in range(8)} | {"syn101_0"} <= set(keys)
    if not case.startswith("truncated"):
        assert "syn100_0" not in keys and "syn102_0" in keys


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_data_raise_names_shard_key_reason(tmp_path, case):
    bad_path, reason = bad_set(tmp_path, case)
    dm = datamodule([str(tmp_path / "train-*.tar")], on_bad_sample="raise")
    with pytest.raises(BadShardData) as err:
        list(dm.pipeline(dm.train_paths, train=True))
    assert err.value.reason == reason and err.value.shard == str(bad_path)
    assert str(bad_path) in str(err.value) and reason in str(err.value)
    if not case.startswith("truncated"):
        assert err.value.key == "syn100_0" and "'syn100_0'" in str(err.value)


def test_raise_crosses_a_worker_process(tmp_path):
    bad_path, _ = bad_set(tmp_path, "bad_json")
    dm = datamodule([str(tmp_path / "train-*.tar")], on_bad_sample="raise", num_workers=1)
    with pytest.raises(Exception, match=f"shard '{bad_path}', key 'syn100_0': bad_json"):
        list(dm.train_dataloader())


def write_members(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A tar of exactly these (name, bytes) members, in order (duplicates included)."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def members_of(sample: dict) -> list[tuple[str, bytes]]:
    return [(f"{sample['__key__']}.{field}", data) for field, data in sample.items() if field != "__key__"]


def test_a_repeated_member_counts_once_and_a_repeated_key_is_its_own_reason(tmp_path):
    one, two, three = good(1), good(2), good(3)
    doubled = members_of(two)
    doubled.insert(2, doubled[1])  # syn102_0's second member written twice in a row
    write_members(tmp_path / "a-000000.tar", members_of(one) + doubled + members_of(three) + members_of(one))
    dm = datamodule([str(tmp_path / "a-*.tar")], batch_size=1)
    batches = list(dm.pipeline(dm.train_paths, train=True))
    assert keys_of(batches) == ["syn101_0", "syn103_0"]
    assert skips_of(batches) == {"duplicate_member": 1, "duplicate_key": 1}
    with pytest.raises(BadShardData, match="key 'syn102_0': duplicate_member: member 'syn102_0.reasoning.txt'"):
        list(datamodule([str(tmp_path / "a-*.tar")], on_bad_sample="raise").pipeline(dm.train_paths, train=True))


def test_skips_after_the_last_full_batch_are_still_counted(tmp_path):
    write_raw(tmp_path / "a-000000.tar", [good(1), good(2), good(3), good(4), BAD_SAMPLES["bad_json"]()])
    dm = datamodule([str(tmp_path / "a-*.tar")], batch_size=2)
    batches = list(dm.pipeline(dm.train_paths, train=True))
    assert [len(b.keys) for b in batches] == [2, 2] and skips_of(batches) == {"bad_json": 1}


def test_fit_from_shards_logs_skips(tmp_path, caplog, monkeypatch):
    from lightning.pytorch.utilities import rank_zero_only
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from unigen.module import UnifiedLM

    monkeypatch.setattr(rank_zero_only, "rank", 0)  # a simulated-rank Trainer elsewhere leaves it set
    micro_shards(tmp_path / "d", samples=32, shard_size=8)
    too_long = {**good(3), "reasoning.txt": b"x" * SPEC.max_seq_len}
    write_raw(tmp_path / "d" / "train-000009.tar", [good(1), BAD_SAMPLES["bad_json"](), too_long])
    micro_shards(tmp_path / "d", samples=8, shard_size=8, prefix="val")
    dm = TrajectoryDataModule([str(tmp_path / "d/train-*.tar")], [str(tmp_path / "d/val-*.tar")], batch_size=8,
                              num_workers=0, shuffle_buffer=16, shardshuffle=4)
    logger = L.pytorch.loggers.TensorBoardLogger(tmp_path, name="fit")
    trainer = L.Trainer(accelerator="cpu", max_steps=10, logger=logger, log_every_n_steps=1, val_check_interval=3,
                        check_val_every_n_epoch=None, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(UnifiedLM("janus-micro", lr=3e-3, warmup_steps=1), datamodule=dm)
    assert trainer.global_step == 10
    assert dm.skipped == {"bad_json": 2, "too_long": 2}  # two whole epochs of 33 samples (5 batches) each
    assert "rank 0 fit: skipped 4 bad samples (bad_json: 2, too_long: 2)" in caplog.text
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert events.Scalars("data/skipped_bad_json")[-1].value == 2
    assert "val/loss_image" in events.Tags()["scalars"]
    loss = [e.value for e in events.Scalars("train/loss")]
    assert loss[-1] < loss[0]


TEXTS = ["", "plan: 3 x red circle", "<|User|>: ünï 漢字 {x}\n\n<|Assistant|>:", "  a\tb  "]


@pytest.mark.parametrize("text", TEXTS)
def test_fast_encode_text_matches_the_tokenizer(text):
    assert SPEC.encode_text(text) == SPEC.tokenizer.encode(text, add_special_tokens=False)


def test_prompt_groups_give_per_prompt_weights_on_a_shuffled_stream(tmp_path):
    """``group_by_prompt`` keeps a prompt's K samples in one batch through a real shuffle, so
    per-prompt advantage weights use the whole group; a sample-level shuffle leaves most alone."""
    import torch

    from callbacks.reward_weighting import apply_weights
    from unigen.data.shards import write_shard
    from unigen.data.trajectory import Trajectory
    from unigen.rewards.weighting import ModalityWeighting

    k, image = 4, np.arange(SPEC.image.num_tokens) % SPEC.image.codebook_size
    trajs = [Trajectory(f"p{p:02d}", s, "a red circle", "plan", image, rewards={"image": {"judge": float(s % 2)}})
             for p in range(24) for s in range(k)]
    for index in range(0, len(trajs), 16):
        write_shard(tmp_path, "train", index // 16, trajs[index:index + 16])
    weighting = ModalityWeighting(scheme="advantage", rewards={"image/judge": 1.0}, group="prompt", beta=1.0)

    def weights(group_by_prompt: bool) -> tuple[list[float], list[list[str]]]:
        dm = datamodule([str(tmp_path / "train-*.tar")], batch_size=8, shuffle_buffer=24, shardshuffle=6,
                        group_by_prompt=group_by_prompt, seed=3)
        out, ids = [], []
        for batch in dm.train_dataloader():
            apply_weights(batch, ModalityWeighting(), weighting)
            out += batch.image_weight.tolist()
            ids.append(batch.prompt_ids)
        return out, ids

    grouped, grouped_ids = weights(True)
    assert len(grouped) == len(trajs) and all(len(b) == 8 for b in grouped_ids)
    assert all(ids.count(p) == k for ids in grouped_ids for p in ids)  # whole groups per batch
    assert [p for ids in grouped_ids for p in ids] != sorted(p for ids in grouped_ids for p in ids)  # shuffled
    assert grouped == pytest.approx([math.e if w > 1 else 1 / math.e for w in grouped], rel=1e-5)  # A = +-1 everywhere
    flat, _ = weights(False)
    assert sum(w == 1.0 for w in flat) > len(flat) / 4  # alone (or in a one-valued group): weight 1
