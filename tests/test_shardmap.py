"""Shard I/O in one place: the naming rule, the globber, and one verifying resume check (score,
reflect and the planned writer verify a finished shard, as generate does, and refuse a damaged one)."""

from __future__ import annotations

import json

import pytest

from tests.test_reflect import samples
from unigen.data.reader import BadShardData
from unigen.data.shardmap import write_planned_shards
from unigen.data.shards import expand_shards, parse_shard_name, shard_name, write_shard
from unigen.pipeline.reflect import reflect
from unigen.pipeline.score import score
from unigen.pipeline.stage import parse

STAGES = {
    "score": (score, ["--rewards", '{"strict": "shapes_strict"}'], "scored"),
    "reflect": (reflect, ["--judge", "shapes_strict"], "reflect"),
}


def test_the_naming_rule_round_trips():
    assert parse_shard_name(f"/a/b-c/{shard_name('x-y', 12)}") == ("x-y", 12)
    assert parse_shard_name("x-1234567.tar") == ("x", 1234567)
    for name in ("x.tar", "x-12.tar.tmp", "x-index.json", "x-1a.tar"):
        with pytest.raises(ValueError, match="is not named <prefix>-<number>.tar"):
            parse_shard_name(name)


def test_a_folder_is_its_tar_shards_and_a_stage_input_must_be_numbered(tmp_path):
    paths = [write_shard(tmp_path / "in", "t", i, samples()[:1]) for i in (1, 0)]
    assert expand_shards(str(tmp_path / "in"), "input") == [str(p) for p in reversed(paths)]
    (tmp_path / "in" / "extra.tar").write_bytes(paths[0].read_bytes())
    assert expand_shards(str(tmp_path / "in" / "t-*.tar"), "input", numbered=True) == [str(p) for p in reversed(paths)]
    with pytest.raises(ValueError, match="extra.tar' is not named <prefix>-<number>.tar"):
        expand_shards(str(tmp_path / "in"), "input", numbered=True)
    with pytest.raises(FileNotFoundError, match=f"^input: shard pattern '{tmp_path / 'none'}' matches no file"):
        expand_shards(str(tmp_path / "none"), "input")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="^input: shard pattern .*empty' matches no file"):
        expand_shards(str(tmp_path / "empty"), "input")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_resumed_stage_keeps_verified_shards_and_refuses_a_damaged_one(tmp_path, stage):
    run, extra, prefix = STAGES[stage]
    write_shard(tmp_path / "in", "scored", 0, samples()[:3])
    write_shard(tmp_path / "in", "scored", 1, samples()[3:])
    settings = parse(run, ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *extra], stage)
    assert run(settings) == tmp_path / "out"  # a stage returns its output folder
    out = tmp_path / "out"
    written = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob(f"{prefix}-*.tar")}
    run(settings)  # resume: every shard verified and kept
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob(f"{prefix}-*.tar")} == written

    shard = out / shard_name(prefix, 0)
    shard.write_bytes(shard.read_bytes()[:2048])  # damaged after it was recorded as finished
    with pytest.raises(BadShardData, match=f"shard '{shard}'.*truncated_tar"):
        run(settings)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=f"shard '{shard}' is listed in .*{prefix}-index.json' but missing"):
        run(settings)
    index = out / f"{prefix}-index.json"  # the way out the error names: drop its entry, and it is made again
    payload = json.loads(index.read_text())
    del payload["shards"][shard.name]
    index.write_text(json.dumps(payload))
    run(settings)
    assert shard.read_bytes() == written[shard.name][1]


def test_the_planned_writer_refuses_a_finished_shard_damaged_since(tmp_path):
    groups = [samples()[:3], samples()[3:]]
    paths = write_planned_shards(tmp_path, "train", groups, list, progress=False)
    paths[1].write_bytes(paths[1].read_bytes()[:2048])
    with pytest.raises(BadShardData, match=f"shard '{paths[1]}'.*truncated_tar"):
        write_planned_shards(tmp_path, "train", groups, list, progress=False)
