"""LoRA on the backbone (``unigen.lora``): a janus-tiny fit trains only the adapters, and
``run.py export`` writes them merged (stock transformers) or as a peft adapter, both giving the
trained model's logits."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from transformers import JanusForConditionalGeneration

from datamodules.synthetic import SyntheticDataModule
from unigen.checkpoints import load_unified
from unigen.cli import main as run_main
from unigen.models.loading import load_model
from unigen.module import UnifiedLM

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, UnifiedLM, dict]:
    """(base model folder, LoRA checkpoint, the trained module, the base weights before training)."""
    root = tmp_path_factory.mktemp("lora")
    torch.manual_seed(0)
    load_model("janus-tiny").save_pretrained(str(root / "base"))
    L.seed_everything(0)
    module = UnifiedLM(model=str(root / "base"), lr=1e-2, warmup_steps=1,
                       lora={"rank": 4, "alpha": 8.0, "targets": ["q_proj", "v_proj", "down_proj"]})
    module.configure_model()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    trainer = L.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)
    trainer.fit(module, SyntheticDataModule(train_samples=24, val_samples=4, batch_size=8))
    trainer.save_checkpoint(root / "lora.ckpt")
    return root / "base", root / "lora.ckpt", module, before


def test_unknown_lora_setting_is_named():
    with pytest.raises(ValueError, match="rnak"):
        UnifiedLM(model="janus-micro", lora={"rnak": 4})


def test_default_settings_are_lora_too():
    """``lora: {}`` (every field at its default) adds adapters on one device and is refused under FSDP2."""
    module = UnifiedLM(model="janus-micro", lora={})
    module.configure_model()
    assert any(".lora_" in name for name, _ in module.net.named_parameters())
    sharded = UnifiedLM(model="janus-micro", lora={})
    sharded._device_mesh = {"data_parallel": None}  # what ModelParallelStrategy sets before configure_model
    with pytest.raises(ValueError, match="lora is not supported with the FSDP2 strategy"):
        sharded.configure_model()


def text_logits(hf, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf(input_ids=ids).logits


def test_only_the_backbone_adapters_train(trained):
    _, _, module, before = trained
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n and ".language_model.layers." in n for n in trainable)
    assert len(trainable) == 2 * 2 * 3  # 2 layers x (A, B) x 3 target projections
    changed = {n for n, p in module.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= trainable
    assert any(".lora_B." in n for n in changed)  # B starts at zero: the update is live


def test_export_merged_is_a_plain_transformers_model(trained, tmp_path):
    _, ckpt, module, _ = trained
    run_main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "merged"), "--lora", "merge"])
    stock = JanusForConditionalGeneration.from_pretrained(str(tmp_path / "merged")).eval()
    assert not any("lora" in n for n, _ in stock.named_parameters())
    trained_net = load_unified(str(ckpt))
    ids = torch.randint(0, 200, (2, 12))
    torch.testing.assert_close(text_logits(stock, ids), text_logits(trained_net.hf, ids), rtol=1e-4, atol=1e-4)


def test_export_adapter_loads_with_peft_on_the_base(trained, tmp_path):
    from peft import PeftModel

    base, ckpt, _, _ = trained
    run_main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "adapter"), "--lora", "adapter"])
    names = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= names
    assert "config.json" not in names
    peft_model = PeftModel.from_pretrained(JanusForConditionalGeneration.from_pretrained(str(base)),
                                           str(tmp_path / "adapter")).eval()
    trained_net = load_unified(str(ckpt))
    plain_base = JanusForConditionalGeneration.from_pretrained(str(base)).eval()
    ids = torch.randint(0, 200, (2, 12))
    ours = text_logits(trained_net.hf, ids)
    torch.testing.assert_close(text_logits(peft_model, ids), ours, rtol=1e-5, atol=1e-5)
    assert (text_logits(plain_base, ids) - ours).abs().max() > 1e-3  # the adapter changes the model
