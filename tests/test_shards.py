"""Shard format v1: round trip of every field, read-time checks, and a killed writer's restart."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from unigen.data.sequence import BadSample
from unigen.data.reader import read_shard
from unigen.data.shardmap import write_planned_shards
from unigen.data.shards import finished_shards, from_sample, shard_name, to_sample, write_shard
from unigen.data.synthesize import synthetic_trajectories
from unigen.data.trajectory import Trajectory


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)).save(buf, format="PNG")
    return buf.getvalue()


def full_trajectory() -> Trajectory:
    return Trajectory(
        prompt_id="geneval.0042", sample_idx=3, prompt="a photo of 2 red cups", reasoning="Two cups, both red. Ünï",
        image_tokens=np.array([5, 0, 63, 17], dtype=np.int64), category="counting",
        metadata={"tag": "counting", "include": [{"class": "cup", "count": 2}]}, mode="explicit",
        generation={"temperature": 0.8, "cfg": 5.0, "seed": 7}, model="janus-micro@step100",
        rewards={"image": {"vqascore": 0.75}, "text": {"length": -1.5}}, png=png_bytes(),
    )


def test_round_trip_every_field(tmp_path):
    trajs = [full_trajectory(), Trajectory("p2", 0, "no image yet", "just text")]  # empty image, no png
    path = write_shard(tmp_path, "t", 0, trajs)
    back = list(read_shard(path))
    assert [b.key for b in back] == ["geneval-0042_3", "p2_0"]
    for a, b in zip(trajs, back):
        for name in ("prompt_id", "sample_idx", "prompt", "reasoning", "category", "metadata", "mode",
                     "generation", "model", "rewards", "png"):
            assert getattr(a, name) == getattr(b, name), name
        assert b.image_tokens.dtype == np.int64 and np.array_equal(a.image_tokens, b.image_tokens)
    assert back[1].image_tokens.shape == (0,) and not back[1].has_image and back[1].png is None
    assert Image.open(io.BytesIO(back[0].png)).size == (16, 16)
    assert finished_shards(tmp_path, "t") == {"t-000000.tar": 2}


def test_keys_have_no_dots_and_one_member_per_field(tmp_path):
    path = write_shard(tmp_path, "t", 0, [full_trajectory()])
    with tarfile.open(path) as tar:
        names = sorted(m.name for m in tar)
    fields = ("prompt.txt", "reasoning.txt", "image_tokens.npy", "json", "png")
    assert names == sorted(f"geneval-0042_3.{f}" for f in fields)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "high"])
def test_non_finite_reward_is_named_at_read_time(value):
    sample = to_sample(full_trajectory())
    meta = json.loads(sample["json"])
    meta["rewards"]["image"]["vqascore"] = value
    sample["json"] = json.dumps(meta).encode()
    with pytest.raises(BadSample, match="image/vqascore") as err:
        from_sample(sample)
    assert err.value.reason == "bad_reward"


@pytest.mark.parametrize("edit, reason", [
    (lambda s: s.pop("reasoning.txt"), "missing_member"),
    (lambda s: s.update(json=b"{not json"), "bad_json"),
    (lambda s: s.update(json=b'{"format_version": 1}'), "bad_json"),
    (lambda s: s.update(json=s["json"].replace(b'"format_version": 1', b'"format_version": 9')), "format_version"),
    (lambda s: s.update({"image_tokens.npy": b"garbage"}), "bad_tokens"),
])
def test_bad_fields_have_reasons(edit, reason):
    sample = to_sample(full_trajectory())
    edit(sample)
    with pytest.raises(BadSample) as err:
        from_sample(sample)
    assert err.value.reason == reason


def plan(n_shards: int, size: int) -> list[int]:
    return list(range(0, n_shards * size, size))


def make(start: int, size: int = 5) -> list[Trajectory]:
    return synthetic_trajectories(size, 16, 64, seed=0, start=start)


def test_killed_writer_restart_leaves_whole_shards_without_duplicates(tmp_path):
    groups = plan(4, 5)
    write_planned_shards(tmp_path, "train", groups[:3], make, progress=False)
    # Kill simulation: shard 2 was renamed but the index update never happened, shard 3 was half written.
    index = json.loads((tmp_path / "train-index.json").read_text())
    del index["shards"][shard_name("train", 2)]
    (tmp_path / "train-index.json").write_text(json.dumps(index))
    full = (tmp_path / shard_name("train", 1)).read_bytes()
    (tmp_path / (shard_name("train", 3) + ".tmp")).write_bytes(full[: len(full) // 2])
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.tar")}

    paths = write_planned_shards(tmp_path, "train", groups, make, progress=False)

    expected_files = [shard_name("train", i) for i in range(4)] + ["train-index.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected_files
    assert finished_shards(tmp_path, "train") == {shard_name("train", i): 5 for i in range(4)}
    keys = [t.key for p in paths for t in read_shard(p)]
    assert len(keys) == len(set(keys)) == 20
    assert keys == [f"syn{i}_0" for i in range(20)]
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.tar")}
    assert after["train-000000.tar"] == before["train-000000.tar"]  # finished shards are not rewritten


def test_restart_of_a_finished_job_writes_nothing(tmp_path):
    calls = []
    write_planned_shards(tmp_path, "train", plan(2, 3), lambda s: make(s, 3), progress=False)
    write_planned_shards(tmp_path, "train", plan(2, 3), lambda s: calls.append(s) or make(s, 3), progress=False)
    assert calls == []


def test_tar_reader_matches_tarfile_and_refuses_cut_short_archives(tmp_path):
    from unigen.data.tarstream import tar_members

    path = tmp_path / "mixed.tar"
    names = ["k1.json", "d/" + "x" * 150 + ".txt", "k2.ünï.txt", "k3.npy"]  # a PAX long name, a non-ASCII one
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        with tarfile.open(path, "w", format=fmt) as tar:
            tar.addfile(_dir("adir"))
            for i, name in enumerate(names if fmt != tarfile.USTAR_FORMAT else [names[0], names[3]]):
                info = tarfile.TarInfo(name)
                info.size = 700 * i
                tar.addfile(info, io.BytesIO(bytes([i]) * info.size))
        with tarfile.open(path) as tar:
            expected = [(m.name, tar.extractfile(m).read()) for m in tar if m.isreg()]
        with open(path, "rb") as stream:
            assert list(tar_members(stream)) == expected
    data = path.read_bytes()
    for cut in (0, 100, 512, 512 + 300, len(data) - 10240 + 700):
        (tmp_path / "cut.tar").write_bytes(data[:cut])
        with open(tmp_path / "cut.tar", "rb") as stream, pytest.raises(tarfile.ReadError):
            list(tar_members(stream))
    (tmp_path / "garbage.tar").write_bytes(b"not a tar" * 200)
    with open(tmp_path / "garbage.tar", "rb") as stream, pytest.raises((tarfile.ReadError, ValueError)):
        list(tar_members(stream))


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info
