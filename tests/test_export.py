"""Export a tiny trained model, load it with stock transformers in a fresh process, and back into unigen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from datamodules.synthetic import SyntheticDataModule
from unigen.checkpoints import load_unified
from unigen.cli import main as run_main
from unigen.export import CheckpointError, export_checkpoint
from unigen.models.janus.adapter import janus_chat_template
from unigen.models.loading import load_model, load_spec
from unigen.module import UnifiedLM

REPO = Path(__file__).resolve().parents[1]

STOCK_SCRIPT = r"""
import sys
import torch
from transformers import AutoProcessor, JanusForConditionalGeneration

folder, inputs_file, out_file = sys.argv[1:4]
model = JanusForConditionalGeneration.from_pretrained(folder).eval()
processor = AutoProcessor.from_pretrained(folder)
data = torch.load(inputs_file)
with torch.no_grad():
    text_logits = model(input_ids=data["text_ids"]).logits
    embeds = torch.cat([model.get_input_embeddings()(data["text_ids"]),
                        model.prepare_embeddings_for_image_generation(data["image_ids"])], dim=1)
    hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
    image_logits = model.model.generation_head(hidden)
prompt = processor.apply_chat_template([{"role": "user", "content": data["prompt"]}])
inputs = processor(text=[prompt], generation_mode="image", return_tensors="pt")
torch.manual_seed(0)
generated = model.generate(**inputs, generation_mode="image", do_sample=True)
pixels = model.decode_image_tokens(generated)
image = processor.postprocess(list(pixels.permute(0, 3, 1, 2).float()), return_tensors="PIL.Image.Image",
                              input_data_format="channels_first")["pixel_values"][0]
torch.save({
    "text_logits": text_logits, "image_logits": image_logits, "prompt_ids": inputs["input_ids"],
    "generated": generated, "pixels_shape": tuple(pixels.shape), "image_size": image.size,
    "processor": type(processor).__name__, "guidance_scale": model.generation_config.guidance_scale,
    "unigen_imported": sorted(m for m in sys.modules if m.split(".")[0] in {"unigen", "datamodules"}),
}, out_file)
"""


def _fit(model: str, root: Path, steps: int = 3) -> tuple[L.Trainer, UnifiedLM]:
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)
    module = UnifiedLM(model=model, lr=1e-2, warmup_steps=1)
    trainer.fit(module, SyntheticDataModule(train_samples=32, val_samples=8, batch_size=8))
    return trainer, module


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    L.seed_everything(0)
    trainer, _ = _fit("janus-micro", root)
    trainer.save_checkpoint(root / "last.ckpt")
    return root / "last.ckpt"


@pytest.fixture(scope="module")
def exported(trained_ckpt, tmp_path_factory) -> Path:
    """Export through ``run.py export`` (YAML config + flags), with an evaluation summary for the card."""
    root = tmp_path_factory.mktemp("export")
    summary = root / "summary.json"
    summary.write_text(json.dumps({"benchmark": "geneval", "averaging": "categories", "overall": 0.5,
                                   "categories": {"counting": {"score": 0.25, "scored": 4, "samples": 4},
                                                  "colors": {"score": 0.75, "scored": 4, "samples": 4}},
                                   "switch_rate": 0.9}))
    (root / "export.yaml").write_text("guidance_scale: 3.5\ndata_strategy: synthetic shapes\n")
    run_main(["export", "--config", str(root / "export.yaml"), "--ckpt", str(trained_ckpt),
              "--out", str(root / "model"), "--summary", str(summary)])
    return root / "model"


def test_folder_holds_safetensors_processor_generation_config_and_card(exported):
    names = {p.name for p in exported.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "processor_config.json",
            "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "README.md"} <= names
    assert not any(p.name.startswith(".") for p in exported.parent.iterdir())  # no leftover temp folder
    spec = load_spec("janus-micro")
    gen = json.loads((exported / "generation_config.json").read_text())
    assert (gen["bos_token_id"], gen["eos_token_id"], gen["pad_token_id"]) == (spec.bos_id, spec.eos_id, spec.pad_id)
    assert gen["generation_kwargs"] == {"boi_token_id": spec.boi_id}
    assert gen["num_image_tokens"] == 16 and gen["guidance_scale"] == 3.5
    card = (exported / "README.md").read_text()
    for needle in ("`janus-micro`", "lr: 0.01", "global step 3", "synthetic shapes", "geneval",
                   "| counting | 0.2500 | 4 / 4 |", "switch_rate", "guidance scale: 3.5"):
        assert needle in card, needle


def test_weights_are_the_trained_checkpoint(trained_ckpt, exported):
    trained = torch.load(trained_ckpt, weights_only=False)["state_dict"]
    saved = load_file(exported / "model.safetensors")
    key = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(saved[key], trained[f"net.hf.{key}"])
    assert not torch.equal(saved[key], load_model("janus-micro").hf.state_dict()[key])  # trained, not init


def test_stock_transformers_in_fresh_process_matches_unigen(trained_ckpt, exported, tmp_path):
    net = load_unified(str(trained_ckpt))
    gen = torch.Generator().manual_seed(1)
    text_ids = torch.randint(0, 256, (2, 7), generator=gen)
    image_ids = torch.randint(0, net.spec.image.codebook_size, (2, 5), generator=gen)
    with torch.no_grad():
        hidden, _ = net.backbone(net.embed_text(text_ids))
        text_logits = net.text_logits(hidden)
        mixed = torch.cat([text_ids, image_ids], 1)
        mask = torch.zeros_like(mixed, dtype=torch.bool)
        mask[:, 7:] = True
        hidden, _ = net.backbone(net.embed_mixed(mixed, mask))
        image_logits = net.image_logits(hidden)
    torch.save({"text_ids": text_ids, "image_ids": image_ids, "prompt": "2 red circles"}, tmp_path / "in.pt")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-c", STOCK_SCRIPT, str(exported), str(tmp_path / "in.pt"),
                           str(tmp_path / "out.pt")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stock = torch.load(tmp_path / "out.pt", weights_only=False)

    assert stock["unigen_imported"] == []
    assert stock["processor"] == "JanusProcessor"
    assert torch.allclose(stock["text_logits"], text_logits, atol=1e-5, rtol=1e-5)
    assert torch.allclose(stock["image_logits"], image_logits, atol=1e-5, rtol=1e-5)
    assert (stock["text_logits"] - text_logits).abs().max() < 1e-5
    assert stock["prompt_ids"][0].tolist() == net.spec.encode_prompt("2 red circles") + [net.spec.boi_id]
    assert stock["generated"].shape == (1, 16)
    assert 0 <= stock["generated"].min() and stock["generated"].max() < net.spec.image.codebook_size
    assert stock["pixels_shape"] == (1, 16, 16, 3) and stock["image_size"] == (16, 16)
    assert stock["guidance_scale"] == 3.5


def test_unigen_loads_the_folder_and_continues_training(trained_ckpt, exported, tmp_path):
    spec, reference = load_spec(str(exported)), load_spec("janus-micro")
    assert (spec.bos_id, spec.eos_id, spec.pad_id, spec.boi_id, spec.eoi_id) == (
        reference.bos_id, reference.eos_id, reference.pad_id, reference.boi_id, reference.eoi_id)
    assert (spec.image.num_tokens, spec.image.grid, spec.image.codebook_size, spec.image.size) == (16, (4, 4), 64, 16)
    assert spec.encode_prompt("a cat") == reference.encode_prompt("a cat")
    trained = load_unified(str(trained_ckpt)).state_dict()
    loaded = load_model(str(exported)).state_dict()
    assert trained.keys() == loaded.keys()
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)
    assert all(torch.equal(trained[k], v) for k, v in load_unified(str(exported)).state_dict().items())

    _, module = _fit(str(exported), tmp_path, steps=2)
    assert module.trainer.global_step == 2
    assert torch.isfinite(module.trainer.callback_metrics["train/loss"])
    key = "hf.model.language_model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(module.net.state_dict()[key], trained[key])


def test_fsdp_sharded_checkpoint_is_consolidated(tmp_path):
    """Two CPU ranks (gloo) shard janus-micro with torch FSDP and save through Lightning's
    ``FSDPStrategy(state_dict_type="sharded").save_checkpoint``; export consolidates the shards."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "fsdp_sharded_worker.py"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = tmp_path / "sharded.ckpt"
    assert sorted(p.name for p in sharded.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.pt"]
    export_checkpoint(str(sharded), str(tmp_path / "model"))
    reference = torch.load(tmp_path / "reference.pt")
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert len(saved) == len(reference) > 100
    assert all(torch.equal(saved[k.removeprefix("net.hf.")], v) for k, v in reference.items())


def test_refuses_a_checkpoint_of_another_module(tmp_path):
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    from lightning.pytorch.demos.boring_classes import BoringModel

    trainer.fit(BoringModel())
    trainer.save_checkpoint(tmp_path / "boring.ckpt")
    with pytest.raises(CheckpointError, match="not a unigen UnifiedLM checkpoint.*no 'model'"):
        export_checkpoint(str(tmp_path / "boring.ckpt"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_refuses_another_class_or_foreign_weights(trained_ckpt, tmp_path):
    checkpoint = torch.load(trained_ckpt, weights_only=False)
    checkpoint["hyper_parameters"]["_class_path"] = "lightning.pytorch.demos.boring_classes.BoringModel"
    torch.save(checkpoint, tmp_path / "other_class.ckpt")
    with pytest.raises(CheckpointError, match="written by lightning.pytorch.demos.boring_classes.BoringModel, not by"):
        export_checkpoint(str(tmp_path / "other_class.ckpt"), str(tmp_path / "out"))
    checkpoint["hyper_parameters"]["_class_path"] = "unigen.module.UnifiedLM"
    checkpoint["state_dict"]["head.weight"] = torch.zeros(2, 2)
    torch.save(checkpoint, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match=r"1 weight\(s\) outside 'net\.\*', e\.g\. \['head\.weight'\]"):
        export_checkpoint(str(tmp_path / "foreign.ckpt"), str(tmp_path / "out"))


def test_refuses_weights_that_do_not_fit_the_named_architecture(trained_ckpt, tmp_path):
    checkpoint = torch.load(trained_ckpt, weights_only=False)
    checkpoint["hyper_parameters"]["model"] = "janus-tiny"  # janus-micro weights, janus-tiny shapes
    torch.save(checkpoint, tmp_path / "mismatch.ckpt")
    with pytest.raises(CheckpointError, match=r"does not fit the architecture of its base model 'janus-tiny'"
                                              r"(.|\n)*size mismatch for hf\.model\."):
        export_checkpoint(str(tmp_path / "mismatch.ckpt"), str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mismatch.ckpt"]


def test_missing_tokenizer_in_base_model_folder_is_named(trained_ckpt, exported, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        (base / name).write_bytes((exported / name).read_bytes())
    checkpoint = torch.load(trained_ckpt, weights_only=False)
    checkpoint["hyper_parameters"]["model"] = str(base)
    torch.save(checkpoint, tmp_path / "nobase.ckpt")
    with pytest.raises(FileNotFoundError, match=rf"base model '{base}'.*no tokenizer found in '{base}'"):
        export_checkpoint(str(tmp_path / "nobase.ckpt"), str(tmp_path / "out"))


def test_existing_output_is_kept_unless_overwrite(trained_ckpt, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        export_checkpoint(str(trained_ckpt), str(out))
    assert (out / "keep.txt").read_text() == "mine"
    export_checkpoint(str(trained_ckpt), str(out), overwrite=True, dtype="bfloat16")
    assert not (out / "keep.txt").exists()
    assert load_file(out / "model.safetensors")["lm_head.weight"].dtype == torch.bfloat16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint '.*nope.ckpt' does not exist"):
        export_checkpoint(str(tmp_path / "nope.ckpt"), str(tmp_path / "out"))
    with pytest.raises(CheckpointError, match="folder but not an FSDP sharded"):
        export_checkpoint(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="evaluation summary '.*missing.json'"):
        export_checkpoint(str(tmp_path / "x.ckpt"), str(tmp_path / "out"), summary=str(tmp_path / "missing.json"))


@pytest.mark.parametrize("template", [None, "Frage: {prompt}\n«Antwort» {{quoted}} '\"\":"])
def test_chat_template_renders_the_prompt_template(template):
    spec = load_spec("janus-micro", prompt_template=template)
    rendered = spec.tokenizer.apply_chat_template([{"role": "user", "content": "a red circle"}], tokenize=False,
                                                  chat_template=janus_chat_template(spec.prompt_template))
    assert rendered == spec.tokenizer.bos_token + spec.prompt_template.format(prompt="a red circle")
    for bad in ("no placeholder", "{prompt} and {prompt}", "{prompt} {other}"):
        with pytest.raises(ValueError, match="exactly once"):
            janus_chat_template(bad)
