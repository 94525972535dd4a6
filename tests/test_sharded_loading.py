"""Meta-device build + FSDP2 sharding + per-rank loading (``unigen.models.sharded``) on 2 gloo ranks:
the loaded shards are the checkpoint's weights, Lightning trains through it like DDP, and a
Janus-Pro-1B-sized model loads with each rank's host memory about half the model, not all of it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from safetensors.torch import save_file

from tests.scale_helpers import REPO, fit_config, run_env, run_fit, train_losses, weights
from unigen.export import export_checkpoint
from unigen.models.loading import load_model
from unigen.models.sharded import build_on_meta


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compare_worker(rank: int, folder: str, port: int) -> None:
    import os

    from torch.distributed.device_mesh import init_device_mesh

    from unigen.models.sharded import load_sharded

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    sharded = load_sharded(folder, init_device_mesh("cpu", (2,)), "cpu")
    reference = load_model(folder)
    for (name, value), (ref_name, ref) in zip(sharded.state_dict().items(), reference.state_dict().items(), strict=True):
        assert name == ref_name
        full = value.full_tensor() if hasattr(value, "full_tensor") else value
        assert torch.equal(full, ref), name
    local = sharded.hf.lm_head.weight.to_local()
    assert local.shape[0] == -(-reference.hf.lm_head.weight.shape[0] // 2) or rank == 1
    ids = torch.randint(0, 100, (2, 8))
    hidden, _ = sharded.backbone(sharded.embed_text(ids))
    ref_hidden, _ = reference.backbone(reference.embed_text(ids))
    torch.testing.assert_close(sharded.text_logits(hidden), reference.text_logits(ref_hidden), rtol=0, atol=0)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def micro_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("micro") / "model"
    torch.manual_seed(0)
    load_model("janus-micro").save_pretrained(str(folder))
    return folder


def test_each_rank_loads_its_rows_of_the_checkpoint(micro_folder):
    mp.spawn(compare_worker, args=(str(micro_folder), free_port()), nprocs=2)


def test_lightning_fsdp2_trains_like_ddp(micro_folder, tmp_path):
    losses = {}
    for name, strategy in [("ddp", "ddp"), ("fsdp2", {"class_path": "unigen.scale.fsdp2.ShardedDataParallel"})]:
        config = fit_config(tmp_path / name, devices=2, batch_size=4, max_steps=4, extra_trainer={"strategy": strategy})
        raw = yaml.safe_load(config.read_text())
        raw["model"]["init_args"]["model"] = str(micro_folder)
        config.write_text(yaml.safe_dump(raw))
        run_fit(config, timeout=300)
        losses[name] = train_losses(tmp_path / name)
    assert len(losses["fsdp2"]) == 4 and losses["fsdp2"][3] < losses["fsdp2"][0]
    for step, loss in losses["ddp"].items():
        assert abs(losses["fsdp2"][step] - loss) < 1e-4
    # the FSDP2 checkpoint (a torch.distributed.checkpoint folder) exports like any other
    sharded = tmp_path / "fsdp2" / "ckpt" / "last.ckpt"
    assert sharded.is_dir()
    exported = load_model(str(export_checkpoint(str(sharded), str(tmp_path / "exported"))))
    reference = {k.removeprefix("net."): v for k, v in weights(tmp_path / "ddp" / "ckpt" / "last.ckpt").items()}
    for name, value in exported.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=1e-4, atol=1e-4, msg=name)


def write_constant_checkpoint(source: str, folder: Path, dtype: torch.dtype, file_bytes: int = 256 << 20) -> dict:
    """A transformers folder for ``source``'s architecture whose i-th tensor is filled with
    ``(i % 97 + 1) / 1000`` (cheap to write, checkable), in several safetensors files + index."""
    model, _ = build_on_meta(source)
    folder.mkdir(parents=True)
    model.hf.config.save_pretrained(folder)
    model.spec.tokenizer.save_pretrained(folder)
    weight_map, batch, size, part = {}, {}, 0, 0
    values = {}
    items = list(model.hf.state_dict().items())
    for i, (name, meta) in enumerate(items):
        value = (i % 97 + 1) / 1000
        values[name] = value
        tensor_dtype = dtype if meta.is_floating_point() else meta.dtype
        batch[name] = torch.full(meta.shape, value, dtype=tensor_dtype)
        size += batch[name].numel() * batch[name].element_size()
        if size >= file_bytes or i == len(items) - 1:
            file = f"model-{part:05d}.safetensors"
            save_file(batch, folder / file)
            weight_map.update({key: file for key in batch})
            batch, size, part = {}, 0, part + 1
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return values


def check_half_per_rank(tmp_path: Path, folder: Path, probe: str, probe_value: float, min_bytes: float) -> None:
    """2 ranks load ``folder`` sharded (bf16): each holds exactly half and peaks at about half of the
    model above its baseline; building the model on each rank before sharding would need all of it."""
    port = str(free_port())
    logs = [tmp_path / f"rank{rank}.log" for rank in range(2)]
    procs = [subprocess.Popen([sys.executable, str(REPO / "tests/sharded_load_worker.py"), str(folder), str(rank),
                               port, "bfloat16", probe], cwd=REPO, env=run_env(), stdout=log.open("w"),
                              stderr=subprocess.STDOUT) for rank, log in enumerate(logs)]
    reports = []
    for proc, log in zip(procs, logs):
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
        reports.append(json.loads(log.read_text().strip().splitlines()[-1]))
    full = reports[0]["full_bytes"]
    assert full > min_bytes  # the whole model in bf16
    for r in reports:
        grown = r["peak"] - r["before"]
        print(f"rank {r['rank']}: peak RSS {r['peak'] / 1e9:.2f} GB, +{grown / 1e9:.2f} GB over its baseline "
              f"({grown / full:.0%} of the {full / 1e9:.2f} GB model); its shard {r['local_bytes'] / 1e9:.2f} GB")
        assert abs(r["local_bytes"] - full / 2) < 0.01 * full
        assert grown < 0.65 * full  # its half + the tensor rows in flight + allocator slack (measured 59 %)
        assert r["q_local_rows"] == r["q_rows"] // 2
        assert abs(r["q_first"] - probe_value) < 1e-2  # bf16 of the constant written for that tensor


def test_1b_sized_model_loads_with_half_the_host_memory_per_rank(tmp_path):
    """Janus-Pro-1B's architecture in bf16 (4.2 GB)."""
    folder = tmp_path / "janus-pro-1b-constant"
    values = write_constant_checkpoint(str(REPO / "configs/models/janus_pro_1b.yaml"), folder, torch.bfloat16)
    probe = "model.language_model.layers.0.self_attn.q_proj.weight"
    check_half_per_rank(tmp_path, folder, probe, values[probe], 4.0e9)


def test_bagel_7b_width_at_one_layer_loads_with_half_the_host_memory_per_rank(tmp_path):
    """BAGEL-7B-MoT's width (both experts, 152k vocabulary) at one decoder layer in bf16 (3.1 GB), as
    an official folder (one ``ema.safetensors`` under the official names): the same half per rank."""
    from unigen.models.bagel import official_key

    raw = yaml.safe_load((REPO / "configs/models/bagel_7b.yaml").read_text())
    raw["llm_config"]["num_hidden_layers"] = 1
    (tmp_path / "bagel_1layer.yaml").write_text(yaml.safe_dump(raw))
    model, _ = build_on_meta(str(tmp_path / "bagel_1layer.yaml"))
    folder = tmp_path / "bagel-7b-1layer-constant"
    folder.mkdir()
    (folder / "llm_config.json").write_text(json.dumps(model.hf.config.llm.to_dict()))
    model.spec.tokenizer.save_pretrained(folder)
    values = {name: (i % 97 + 1) / 1000 for i, name in enumerate(model.hf.state_dict())}
    save_file({official_key(name): torch.full(meta.shape, values[name], dtype=torch.bfloat16)
               for name, meta in model.hf.state_dict().items()}, str(folder / "ema.safetensors"))
    probe = "decoder.layers.0.attn.q.und.weight"
    check_half_per_rank(tmp_path, folder, probe, values[probe], 3.0e9)


def test_each_rank_loads_its_rows_of_an_official_bagel_folder(tmp_path):
    """The same per-rank reads from BAGEL's ``ema.safetensors`` under the official names."""
    torch.manual_seed(0)
    load_model("bagel-micro").save_pretrained(str(tmp_path / "bagel"))
    mp.spawn(compare_worker, args=(str(tmp_path / "bagel"), free_port()), nprocs=2)
