"""Pick the fastest attention kernel the machine can run and set it on the model.

Order: FlashAttention 3, FlashAttention 2 (``flash-attn`` installed, CUDA device, half precision),
FlexAttention (CUDA: packed rows get a block-diagonal ``BlockMask``, so fully masked tiles are
skipped instead of multiplied by a dense mask), then PyTorch SDPA (which itself dispatches to its flash / memory-efficient backends on GPU), then
eager. The choice is logged once; a kernel that was asked for but cannot run is warned about once,
with the reason, and the next one down is used. Nothing here fails on a CPU machine.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

ORDER = ("flash_attention_3", "flash_attention_2", "flex_attention", "sdpa", "eager")
"""Fastest first."""


def unavailable_reason(name: str, device: torch.device, precision: str) -> str | None:
    """Why ``name`` cannot run here (None if it can)."""
    if name in ("sdpa", "eager"):
        return None
    if name == "flex_attention":
        return None if device.type == "cuda" else f"FlexAttention is used on CUDA only (no CPU backward), the model runs on '{device.type}'"
    if device.type != "cuda":
        return f"FlashAttention needs a CUDA device, the model runs on '{device.type}'"
    installed = is_flash_attn_3_available() if name == "flash_attention_3" else is_flash_attn_2_available()
    if not installed:
        package = "flash-attn 3 (flash_attn_interface)" if name == "flash_attention_3" else "flash-attn 2"
        return f"{package} is not installed or does not match this torch/CUDA (pip install 'unigen[flash]')"
    if "16" not in precision:
        return f"FlashAttention needs fp16/bf16 activations, trainer precision is '{precision}'"
    return None


def sdpa_backends() -> str:
    """The SDPA backends PyTorch may dispatch to on this machine."""
    if not torch.cuda.is_available():
        return "math (CPU)"
    enabled = [
        name for name, on in (
            ("flash", torch.backends.cuda.flash_sdp_enabled()),
            ("mem_efficient", torch.backends.cuda.mem_efficient_sdp_enabled()),
            ("cudnn", torch.backends.cuda.cudnn_sdp_enabled()),
            ("math", torch.backends.cuda.math_sdp_enabled()),
        ) if on
    ]
    return ", ".join(enabled)


def choose(prefer: str, device: torch.device, precision: str) -> tuple[str, list[str]]:
    """(chosen implementation, reasons the preferred ones were skipped).

    ``auto`` tries every kernel in :data:`ORDER`; a named one is tried first, then those after it.
    """
    candidates = ORDER if prefer == "auto" else ORDER[ORDER.index(prefer):]
    skipped = []
    for name in candidates:
        reason = unavailable_reason(name, device, precision)
        if reason is None:
            return name, skipped
        skipped.append(f"{name}: {reason}")
    return "eager", skipped


class AttentionBackend(L.Callback):
    """Set the fastest available attention implementation on ``pl_module.net`` when a run starts."""

    def __init__(self, prefer: str = "auto"):
        """
        Args:
            prefer: ``auto`` (fastest available, no warning when FlashAttention is absent), or a
                kernel to insist on (``flash_attention_3``, ``flash_attention_2``, ``sdpa``,
                ``eager``): warned about once if it cannot run here, then the next one is used.
        """
        if prefer != "auto" and prefer not in ORDER:
            raise ValueError(f"unknown attention implementation '{prefer}'; choose 'auto' or one of {', '.join(ORDER)}")
        self.prefer = prefer
        self.chosen: str | None = None

    def _apply(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = getattr(pl_module, "net", None)
        if net is None:
            raise RuntimeError("AttentionBackend needs the model built (UnifiedLM.configure_model) before the run starts")
        if self.chosen is None:
            self.chosen, skipped = choose(self.prefer, pl_module.device, str(trainer.precision))
            if self.prefer != "auto" and skipped:
                rank_zero_warn(f"attention '{self.prefer}' unavailable, using '{self.chosen}': " + "; ".join(skipped))
            detail = f" (backends: {sdpa_backends()})" if self.chosen == "sdpa" else ""
            rank_zero_info(f"attention implementation: {self.chosen}{detail}")
        if net.attn_implementation != self.chosen:
            net.set_attn_implementation(self.chosen)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, pl_module)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, pl_module)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, pl_module)
