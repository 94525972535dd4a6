"""LoRA adapters (peft) on the shared backbone: both loss heads train through the same low-rank
updates of the language model's projections; everything else stays frozen.

Adapters are injected in place (``peft.inject_adapter_in_model``), so the unified interface and
parameter names keep their shape (``...q_proj.base_layer.weight``, ``...q_proj.lora_A.default.weight``)
and a Lightning checkpoint holds the base weights and the adapters. Export either merges the
adapters into the weights (a plain transformers folder) or writes them in peft's adapter layout,
loadable with ``PeftModel.from_pretrained(JanusForConditionalGeneration.from_pretrained(base), folder)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from torch import nn

from unigen.files import atomic_write_bytes
from unigen.models.unified import UnifiedModel

ADAPTER = "default"


@dataclass
class LoraSettings:
    """Low-rank adapters on the backbone's attention and MLP projections."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                        "gate_proj", "up_proj", "down_proj"])
    """Projection names (suffixes) inside the language model's decoder layers."""

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"lora rank must be >= 1, got {self.rank}")
        if not self.targets:
            raise ValueError("lora targets must name at least one projection")

    @classmethod
    def from_dict(cls, values: dict) -> LoraSettings:
        """From a config mapping; unknown keys are an error naming them."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown lora setting(s) {sorted(unknown)}; known: {[f.name for f in fields(cls)]}")
        return cls(**values)

    def peft_config(self, pattern: str):
        """peft's config; ``pattern``: the backbone's projection names with ``{names}`` for the
        targets (``UnifiedModel.lora_pattern``)."""
        from peft import LoraConfig

        return LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=pattern.format(names="|".join(self.targets)))


def require_peft() -> None:
    try:
        import peft  # noqa: F401
    except ImportError as err:
        raise ImportError("LoRA needs peft: pip install 'unigen[lora]'") from err


def add_lora(net: UnifiedModel, settings: LoraSettings) -> None:
    """Inject adapters into ``net``'s backbone and make them the only trainable parameters."""
    require_peft()
    from peft import inject_adapter_in_model

    inject_adapter_in_model(settings.peft_config(net.lora_pattern), net.hf, adapter_name=ADAPTER)
    for name, param in net.named_parameters():
        param.requires_grad_(".lora_" in name)
    net.train(net.training)


def has_lora(net: nn.Module) -> bool:
    return any(".lora_" in name for name, _ in net.named_parameters())


def merge_lora(net: UnifiedModel) -> None:
    """Fold every adapter into its base weight and put the plain layer back (in place)."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(net.hf.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
            parent_name, _, child = name.rpartition(".")
            setattr(net.hf.get_submodule(parent_name), child, module.get_base_layer())


def save_adapter(net: UnifiedModel, folder: Path, base_model: str) -> None:
    """``adapter_config.json`` + ``adapter_model.safetensors`` in peft's layout, for ``base_model``."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save

    config = net.hf.peft_config[ADAPTER]
    config.base_model_name_or_path = base_model
    config.save_pretrained(str(folder))
    state = get_peft_model_state_dict(net.hf, adapter_name=ADAPTER)
    tensors = {f"base_model.model.{key}": value.detach().contiguous() for key, value in state.items()}
    atomic_write_bytes(folder / "adapter_model.safetensors", save(tensors))
