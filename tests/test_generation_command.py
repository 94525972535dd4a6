"""``run.py generate``: shards with PNGs, resume after a killed run, byte-identical reruns."""

from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image

from unigen.cli import main
from unigen.data.prompts import PromptRecord, write_prompts
from unigen.data.reader import read_shard
from unigen.data.shards import finished_shards, shard_name

K, PER_SHARD = 2, 2


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    write_prompts(path, [PromptRecord(f"p{i}", f"prompt number {i}", "color" if i % 2 else "count",
                                      {"tag": "t", "n": i}) for i in range(5)])
    return path


def generate(prompt_file, out_dir, *extra: str) -> None:
    torch.manual_seed(123)  # neither the preset's weights (seeded by its name) nor the samples (per-row seeds) see it
    main(["generate", "--prompts", f"[{prompt_file}]", "--out_dir", str(out_dir), "--model", "janus-micro",
          "--samples_per_prompt", str(K), "--prompts_per_shard", str(PER_SHARD), "--batch_size", "3",
          "--sampling.mode", "explicit", "--sampling.max_reasoning_tokens", "4", *extra])


def shard_bytes(out_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out_dir.glob("traj-*.tar"))}


def test_generate_writes_complete_shards_with_pngs(prompt_file, tmp_path, capsys):
    generate(prompt_file, tmp_path / "out")
    out = tmp_path / "out"
    assert finished_shards(out, "traj") == {shard_name("traj", 0): 4, shard_name("traj", 1): 4, shard_name("traj", 2): 2}
    trajs = [t for name in sorted(finished_shards(out, "traj")) for t in read_shard(out / name)]
    assert [(t.prompt_id, t.sample_idx) for t in trajs] == [(f"p{i}", k) for i in range(5) for k in range(K)]
    first = trajs[3]
    assert first.prompt == "prompt number 1" and first.category == "color" and first.metadata == {"tag": "t", "n": 1}
    assert first.mode == "explicit" and first.model == "janus-micro" and first.generation["cfg"] == 5.0
    assert len({t.generation["seed"] for t in trajs}) == len(trajs)
    for t in trajs:
        assert t.image_tokens.shape == (16,)
        assert Image.open(io.BytesIO(t.png)).size == (16, 16)
    assert "generated 10 trajectories" in capsys.readouterr().out


def test_resume_after_a_killed_run_fills_only_missing_shards(prompt_file, tmp_path, capsys):
    generate(prompt_file, tmp_path / "full")
    reference = shard_bytes(tmp_path / "full")

    out = tmp_path / "resumed"
    generate(prompt_file, out)
    index = out / "traj-index.json"  # simulate a kill while shard 1 was being written
    payload = json.loads(index.read_text())
    del payload["shards"][shard_name("traj", 1)]
    index.write_text(json.dumps(payload))
    (out / shard_name("traj", 1)).rename(out / (shard_name("traj", 1) + ".tmp"))
    capsys.readouterr()

    generate(prompt_file, out)
    log = capsys.readouterr().out
    assert "3 shards (2 already done)" in log and "generated 4 trajectories" in log
    assert shard_bytes(out) == reference  # byte-identical, no duplicates

    generate(prompt_file, out)  # nothing left to do
    assert "3 shards (3 already done)" in capsys.readouterr().out
    assert shard_bytes(out) == reference


def test_other_seed_other_samples_and_changed_settings_refuse_to_resume(prompt_file, tmp_path):
    generate(prompt_file, tmp_path / "a")
    generate(prompt_file, tmp_path / "b", "--seed", "1")
    assert shard_bytes(tmp_path / "a") != shard_bytes(tmp_path / "b")
    with pytest.raises(ValueError, match="seed"):
        generate(prompt_file, tmp_path / "a", "--seed", "1")


def test_prompt_ids_repeated_across_files_are_an_error(prompt_file, tmp_path):
    with pytest.raises(ValueError, match="appears in both"):
        main(["generate", "--prompts", f"[{prompt_file},{prompt_file}]", "--out_dir", str(tmp_path / "o"),
              "--model", "janus-micro"])


def test_a_preset_is_one_model_whatever_the_global_seed():
    from unigen.checkpoints import weights_sha256
    from unigen.models.loading import load_model

    torch.manual_seed(1)
    first = weights_sha256(load_model("janus-micro"))
    after = torch.rand(1)
    torch.manual_seed(2)
    assert weights_sha256(load_model("janus-micro")) == first
    torch.manual_seed(1)
    assert torch.equal(torch.rand(1), after)  # loading did not consume the caller's random stream


def test_resume_onto_other_weights_is_refused_naming_both(prompt_file, tmp_path):
    out = tmp_path / "out"
    generate(prompt_file, out, "--limit", "4")
    (out / shard_name("traj", 1)).unlink()  # as if killed before the last shard
    index = json.loads((out / "traj-index.json").read_text())
    del index["shards"][shard_name("traj", 1)]
    (out / "traj-index.json").write_text(json.dumps(index))
    record = json.loads((out / "traj-model.json").read_text())
    assert record["model"] == "janus-micro" and len(record["sha256"]) == 64
    record["sha256"] = "0" * 64  # as if the first run had drawn other random weights
    (out / "traj-model.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"model mismatch: the shards in .* weights 0000000000000000 \(.*traj-model"
                                         r".json'\), but --model 'janus-micro' has weights [0-9a-f]{16}"):
        generate(prompt_file, out, "--limit", "4")


def test_resume_refuses_a_finished_shard_damaged_since(prompt_file, tmp_path):
    out = tmp_path / "out"
    generate(prompt_file, out, "--limit", "2")
    shard = out / shard_name("traj", 0)
    shard.write_bytes(shard.read_bytes()[:2048])
    with pytest.raises(Exception, match=f"shard '{shard}'.*truncated_tar"):
        generate(prompt_file, out, "--limit", "2")
