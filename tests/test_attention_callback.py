"""The attention callback falls back cleanly on CPU and sets its choice on the model."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import pytest
import torch

from callbacks.attention import AttentionBackend, choose
from datamodules.synthetic import SyntheticDataModule
from unigen.module import UnifiedLM


def test_choose_on_cpu_skips_flash_with_reasons():
    chosen, skipped = choose("flash_attention_2", torch.device("cpu"), "32-true")
    assert chosen == "sdpa"
    assert len(skipped) == 2 and "CUDA device" in skipped[0] and "FlexAttention" in skipped[1]
    assert choose("auto", torch.device("cpu"), "bf16-mixed")[0] == "sdpa"
    assert choose("eager", torch.device("cpu"), "32-true") == ("eager", [])


def test_choose_on_cuda_without_flash_attn_names_the_package():
    chosen, skipped = choose("flash_attention_3", torch.device("cuda"), "bf16-mixed")
    assert chosen == "flex_attention"  # block masks for packed rows
    assert "flash-attn 3" in skipped[0] and "flash-attn 2" in skipped[1]


def test_unknown_name_is_a_config_error():
    with pytest.raises(ValueError, match="flash_attention_9"):
        AttentionBackend("flash_attention_9")


def fit_with(callback: AttentionBackend, tmp_path) -> UnifiedLM:
    torch.manual_seed(0)
    module = UnifiedLM(model="janus-micro")
    data = SyntheticDataModule(train_samples=8, val_samples=4, batch_size=4)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, callbacks=[callback],
                        default_root_dir=tmp_path)
    trainer.fit(module, data)
    return module


def test_requested_flash_warns_once_and_trains_with_sdpa(tmp_path, caplog):
    callback = AttentionBackend("flash_attention_2")
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = fit_with(callback, tmp_path)
    ours = [w for w in caught if "attention 'flash_attention_2' unavailable" in str(w.message)]
    assert len(ours) == 1 and "CUDA device" in str(ours[0].message)
    assert callback.chosen == module.net.attn_implementation == "sdpa"
    chosen = [r for r in caplog.records if r.getMessage().startswith("attention implementation: sdpa")]
    assert len(chosen) == 1  # fit start and validation start both apply it; logged once


def test_eager_is_set_on_the_built_model(tmp_path):
    module = fit_with(AttentionBackend("eager"), tmp_path)
    assert module.net.attn_implementation == "eager"
    assert module.net.hf.model.language_model.config._attn_implementation == "eager"
