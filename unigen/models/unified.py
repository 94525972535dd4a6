"""The model interface the rest of unigen codes against.

A unified model reads and writes two modalities through one transformer. Callers never touch a
concrete Hugging Face class: they embed text ids or image ids, run the backbone, and read text
logits (LM head); everything that depends on what an image *is* (its layout in a sequence, its
loss, its sampling phase, its decoding to pixels) goes through the family's image head
(``spec.image_head``, :mod:`unigen.models.image`). A single-vocabulary model (Chameleon, Emu3)
implements the same methods by offsetting image ids into its vocabulary; a continuous family
(flow matching over latents) brings its own :class:`~unigen.models.image.ImageHead`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import AutoConfig

from unigen.models.image import ImageHead, ImageSpec
from unigen.models.weight_files import safetensors_files

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_PROMPT_TEMPLATE = "<|User|>: {prompt}\n\n<|Assistant|>:"


@dataclass(frozen=True)
class TokenSpec:
    """What data code needs to know about a model: tokenizer, special ids, the image head (with the
    image spec) and the unconditional-sequence rule. Cheap and picklable: built by the adapter's
    ``token_spec`` without weights, handed to DataModules and their workers."""

    tokenizer: Any
    """A transformers tokenizer (``PreTrainedTokenizerBase``)."""
    bos_id: int
    eos_id: int
    pad_id: int
    boi_id: int
    """Begin-of-image: the switch token the model learns to emit in ``unified`` mode."""
    eoi_id: int
    image_head: ImageHead
    """Layout, loss, sampling phase and decoding of the family's images (:mod:`unigen.models.image`)."""
    unconditional_rule: Callable[[torch.Tensor, TokenSpec], torch.Tensor]
    """The family's rule for the unconditional form of text ids (:meth:`unconditional`)."""
    max_seq_len: int
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE

    @property
    def image(self) -> ImageSpec:
        """The image payload: kind, shape, dtype, grid, side in pixels, codebook size."""
        return self.image_head.spec

    def unconditional(self, ids: torch.Tensor) -> torch.Tensor:
        """The unconditional form of text ids (same shape): what classifier-free guidance's
        unconditional rows see and condition dropout trains (prompt, reasoning and switch alike)."""
        return self.unconditional_rule(ids, self)

    def encode_prompt(self, prompt: str) -> list[int]:
        """BOS + the chat-formatted user prompt, ending where the assistant starts writing."""
        text = self.prompt_template.format(prompt=prompt)
        return [self.bos_id, *self.encode_text(text)]

    def encode_text(self, text: str) -> list[int]:
        """Plain text ids (no special tokens added)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # the Rust tokenizer itself: same ids, ~2x faster than the wrapper
            return backend.encode(text, add_special_tokens=False).ids
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt rows left-padded to one width (the last position is every row's next token): ids and 0/1 mask."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r)
            mask[i, width - len(r):] = 1
        return ids, mask


class UnifiedModel(nn.Module, ABC):
    """A text-image model: one backbone, a text head and an image head.

    An adapter also tells the loader (``unigen.models.loading``) how to build it, as class attributes.
    """

    spec: TokenSpec
    config_class: type
    """transformers config class of the architecture (an architecture YAML's keys go to it)."""
    hf_class: type
    """transformers model class (``from_pretrained`` for folders, random init for configs)."""
    token_spec: Callable[[Any, Any, str | None], TokenSpec]
    """(config, tokenizer, prompt_template) -> the :class:`TokenSpec`."""
    load_tokenizer: Callable[[str], Any]
    """Folder -> the tokenizer saved with the model."""
    default_tokenizer: Callable[[], Any]
    """The tokenizer of an architecture YAML that names none."""
    saved_files: tuple[str, ...]
    """Files every folder :meth:`save_pretrained` writes holds (an export checks them)."""
    lora_pattern: str = r".*language_model\.layers\.\d+\..*\.({names})"
    """The decoder's projections LoRA adapts (a regex over ``hf``'s module names; ``{names}``: the targets)."""

    @classmethod
    def config_from_dict(cls, raw: dict[str, Any]) -> Any:
        """The architecture config of an architecture YAML's keys."""
        return cls.config_class(**raw)

    @classmethod
    def official_layout(cls, folder: Path) -> bool:
        """Whether ``folder`` (without a transformers ``config.json``) is this family's release layout."""
        return False

    @classmethod
    def folder_config(cls, folder: str) -> Any:
        """The architecture config of a model folder."""
        return AutoConfig.from_pretrained(folder)

    def weight_files(self, folder: Path) -> dict[str, tuple[Path, str]]:
        """Each tensor of ``self.hf``'s state -> (the safetensors file of ``folder`` holding it, its
        name there): per-rank sharded reads (``unigen.models.sharded``)."""
        return safetensors_files(folder)

    @classmethod
    def pretrained(cls, folder: str, dtype: torch.dtype | None, attn_implementation: str) -> nn.Module:
        """The model of a folder with its weights."""
        return cls.hf_class.from_pretrained(folder, dtype=dtype, attn_implementation=attn_implementation)

    @property
    @abstractmethod
    def vq(self) -> nn.Module:
        """The image tokenizer (VQ encoder and decoder)."""

    @abstractmethod
    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., ) text ids -> (..., hidden) input embeddings."""

    @abstractmethod
    def embed_image(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., ) image codebook ids -> (..., hidden) input embeddings."""

    @abstractmethod
    def backbone(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        experts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """Run the transformer: returns (hidden states (B, T, H), the cache or None).

        ``attention_mask``: (B, T) 0/1 (padding; with a cache, over all cache slots), or a
        (B, 1, T, T) bool block mask (True: may attend). ``experts``: (B, T) bool, tokens of the
        image expert of a Mixture-of-Transformers backbone (single-expert backbones ignore it)."""

    @abstractmethod
    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., text vocab) through the LM head."""

    @abstractmethod
    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., codebook) through the image-generation head."""

    @abstractmethod
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [-1, 1] -> (B, *spec.image.shape) image payloads, raster order."""

    @abstractmethod
    def decode_images(self, payload: torch.Tensor) -> torch.Tensor:
        """(B, *spec.image.shape) image payloads -> (B, 3, H, W) pixels in [-1, 1]."""

    @property
    def image_head(self) -> ImageHead:
        """The family's image head (layout, loss, sampling phase, decoding); see :mod:`unigen.models.image`."""
        return self.spec.image_head

    def unconditional(self, ids: torch.Tensor) -> torch.Tensor:
        """The unconditional form of text ids, by the family's rule (:meth:`TokenSpec.unconditional`)."""
        return self.spec.unconditional(ids)

    @abstractmethod
    def decoder_layer_class(self) -> type[nn.Module]:
        """The transformer block class, for FSDP wrapping and activation checkpointing."""

    @abstractmethod
    def set_gradient_checkpointing(self, enabled: bool, mode: str = "full") -> None:
        """Recompute transformer blocks in backward instead of storing activations; ``mode``:
        ``full`` (whole blocks) or ``selective`` (see ``unigen.scale.activations``)."""

    @property
    def attn_implementation(self) -> str:
        """The backbone's attention kernel (``sdpa``, ``eager``, ``flash_attention_2``, ...)."""
        raise NotImplementedError(f"{type(self).__name__} does not report its attention implementation")

    def set_attn_implementation(self, name: str) -> None:
        """Switch the attention kernel of a built model (raises ImportError if it is not installed)."""
        raise NotImplementedError(f"{type(self).__name__} cannot switch its attention implementation")

    @abstractmethod
    def save_pretrained(self, path: str, guidance_scale: float = 5.0) -> None:
        """Write weights, config, generation config (``guidance_scale``: default CFG scale) and
        tokenizer / processor in the backbone's native (transformers) format."""

    def answer_logits(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        """(B, text vocab) fp32 logits of the first answer token to each question about its image,
        through the model's understanding branch (the self-judge of ``unigen.rewards.vqa``)."""
        raise NotImplementedError(f"{type(self).__name__} has no understanding branch to answer questions about images")

    def make_cache(self, max_len: int) -> Any:
        """A fixed-size KV cache of ``max_len`` positions for ``backbone(..., use_cache=True)``.

        Attention masks passed with it span all ``max_len`` positions (left padding 0, the rest 1;
        causality hides positions not yet written). Used by the sampler's static decoding loop.
        """
        raise NotImplementedError(f"{type(self).__name__} does not provide a static KV cache")

    def accepts_additive_mask(self) -> bool:
        """Whether ``backbone`` uses a (B, 1, Q, K) additive float attention mask as given (eager /
        sdpa attention); the sampler then builds decode-step masks itself instead of a 2D mask."""
        try:
            return self.attn_implementation in ("sdpa", "eager")
        except NotImplementedError:
            return False

    def embed_mixed(self, ids: torch.Tensor, image_mask: torch.Tensor) -> torch.Tensor:
        """Embed a sequence whose positions hold text ids or, where ``image_mask``, image ids."""
        embeds = self.embed_text(ids.masked_fill(image_mask, self.spec.pad_id))
        if image_mask.any():
            embeds = embeds.index_put((image_mask,), self.embed_image(ids[image_mask]).to(embeds.dtype))
        return embeds
