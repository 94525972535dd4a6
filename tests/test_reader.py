"""One strict shard reader for fit and score: cut shards, gzip shards, counted drops, named errors."""

from __future__ import annotations

import gzip
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from datamodules.trajectories import TrajectoryDataModule
from unigen.cli import main
from unigen.data.reader import BadShardData, read_shard
from unigen.data.shards import read_index, write_shard
from unigen.data.trajectory import Trajectory
from unigen.models.loading import load_spec

SPEC = load_spec("janus-micro")


class PromptLength:
    """A text reward: the prompt's length (what it rates does not matter here)."""

    modality = "text"

    def __call__(self, trajectories: list[Trajectory]) -> list[float]:
        return [float(len(t.prompt)) for t in trajectories]


def cut_shard(folder: Path, samples: int = 64, keep: int = 20) -> Path:
    """``traj-000000.tar`` of ``samples`` trajectories (recorded in its index), cut at the member
    boundary where sample ``keep`` starts: a tar that stdlib ``tarfile`` reads as ``keep`` samples."""
    path = write_shard(folder, "traj", 0, [Trajectory(f"p{i}", 0, f"prompt {i}", "why") for i in range(samples)])
    with tarfile.open(path) as tar:
        starts = sorted({m.name.split(".")[0]: m.offset for m in reversed(tar.getmembers())}.values())
    path.write_bytes(path.read_bytes()[: starts[keep]])
    with tarfile.open(path) as tar:  # the silent drop the strict reader exists for
        assert len([m for m in tar if m.name.endswith(".json")]) == keep
    return path


def score_args(tmp_path: Path, *extra: str) -> list[str]:
    rewards = json.dumps({"length": {"class_path": "tests.test_reader.PromptLength"}})
    return ["score", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--rewards", rewards, *extra]


def test_score_counts_prints_and_records_every_sample_a_cut_shard_lost(tmp_path, capsys):
    cut_shard(tmp_path / "in")
    main(score_args(tmp_path))
    kept = list(read_shard(tmp_path / "out" / "scored-000000.tar"))
    index = read_index(tmp_path / "out", "scored")
    dropped = index["skipped"]["scored-000000.tar"]
    assert len(kept) == 19  # the reader cannot know the 20th is whole: nothing follows it, not even the end marker
    assert dropped == {"truncated_tar": 45} and len(kept) + dropped["truncated_tar"] == 64
    assert index["shards"]["scored-000000.tar"] == 19
    out = capsys.readouterr().out
    assert "scored-000000.tar: dropped 45 input samples (truncated_tar: 45)" in out
    assert "dropped 45 input samples in all" in out


def test_score_under_raise_stops_naming_the_shard(tmp_path):
    path = cut_shard(tmp_path / "in")
    with pytest.raises(BadShardData, match=f"shard '{path}', key 'p19_0': truncated_tar") as err:
        main(score_args(tmp_path, "--on_bad_sample", "raise"))
    assert err.value.__suppress_context__  # no chained traceback
    assert not (tmp_path / "out" / "scored-000000.tar").exists()


def test_a_gzip_file_named_tar_is_the_same_bad_shard_to_fit_and_to_score(tmp_path, capsys):
    good = write_shard(tmp_path / "in", "traj", 0, [Trajectory("p", 0, "x", "", image_tokens=list(range(16)))])
    gz = tmp_path / "in" / "traj-000001.tar"
    gz.write_bytes(gzip.compress(good.read_bytes()))

    dm = TrajectoryDataModule([str(tmp_path / "in" / "*.tar")], batch_size=1, num_workers=0, shuffle_buffer=0,
                              shardshuffle=False)
    dm.connect(SPEC)
    dm.setup("fit")
    fit_skips: Counter[str] = Counter()
    for batch in dm.pipeline(dm.train_paths, train=True):
        fit_skips.update(batch.skipped)
    score_skips: Counter[str] = Counter()
    assert list(read_shard(gz, "skip", score_skips)) == []
    assert fit_skips == score_skips == {"not_a_tar": 1}

    main(score_args(tmp_path))
    assert read_index(tmp_path / "out", "scored")["skipped"] == {"scored-000001.tar": {"not_a_tar": 1}}
    assert "scored-000001.tar: dropped 1 input samples (not_a_tar: 1)" in capsys.readouterr().out
    with pytest.raises(BadShardData, match=f"shard '{gz}', key 'None': not_a_tar: gzip-compressed"):
        list(read_shard(gz))


@pytest.mark.parametrize("option", ["train_shards", "val_shards"])
def test_an_empty_or_unmatched_shard_list_names_its_option(tmp_path, option):
    write_shard(tmp_path, "train", 0, [Trajectory("p", 0, "x")])
    good = [str(tmp_path / "train-*.tar")]
    for value, error in (([], "empty shard list"), ([str(tmp_path / "none-*.tar")], "matches no file")):
        kwargs = {"train_shards": good, "val_shards": good, option: value}
        if option == "val_shards" and not value:
            continue  # no validation shards: no validation loader
        with pytest.raises((ValueError, FileNotFoundError), match=f"^{option}: .*{error}"):
            TrajectoryDataModule(**kwargs).setup("fit")
