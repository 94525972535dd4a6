"""BAGEL through the :class:`~unigen.models.unified.UnifiedModel` interface: latent images drawn
by the flow head (:class:`~unigen.models.bagel.flow_head.FlowHead`), text by the LM head, one
Mixture-of-Transformers backbone whose image expert takes the latent tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from unigen.files import atomic_write_text
from unigen.models.bagel.autoencoder import FluxFromFolder, PixelLatents, build_autoencoder, from_tokens, to_tokens
from unigen.models.bagel.checkpoint import WEIGHTS, key_map, load_official, save_official
from unigen.models.bagel.config import GEOMETRY_FILE, BagelConfig
from unigen.models.bagel.embeddings import latent_position_ids
from unigen.models.bagel.flow_head import FlowHead
from unigen.models.bagel.layers import KVCache, MoTDecoderLayer
from unigen.models.bagel.model import BagelModel
from unigen.models.byte_tokenizer import byte_level
from unigen.models.image import ImageSpec
from unigen.models.unified import TokenSpec, UnifiedModel
from unigen.scale.activations import checkpoint_kwargs

BOS, EOS, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
BOI, EOI = "<|vision_start|>", "<|vision_end|>"
"""Qwen2's chat markers as BAGEL uses them: ``<|im_start|>`` opens and ``<|im_end|>`` closes a text
turn, ``<|vision_start|>`` / ``<|vision_end|>`` frame an image (``<|vision_start|>``: the switch)."""
PROMPT_TEMPLATE = "user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
"""After BOS: the prompt as a user turn, then the assistant's turn, where the reasoning starts."""
FREEZABLE = ("vision", "vq")
"""``vision``: the SigLIP encoder (not built: nothing to freeze); ``vq``: the autoencoder (no weights
trained here)."""


def byte_tokenizer(extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with BAGEL's special tokens (tiny presets)."""
    return byte_level(BOS, EOS, PAD, {"boi_token": BOI, "eoi_token": EOI}, extra_words=extra_words)


def load_tokenizer(path: str) -> Any:
    """The Qwen2 tokenizer files of a BAGEL folder."""
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"no tokenizer found in '{path}': a BAGEL folder holds Qwen2 tokenizer files ({err})") from err


def pad_everything(ids: torch.Tensor, spec: TokenSpec) -> torch.Tensor:
    """BAGEL's unconditional text: none (every id pad; the flow head's context is empty anyway)."""
    return torch.full_like(ids, spec.pad_id)


def token_spec(config: BagelConfig, tokenizer: Any, prompt_template: str | None = None) -> TokenSpec:
    """Special ids by name from the tokenizer; latent tokens of ``image_size`` images."""

    def token_id(token: str) -> int:
        found = tokenizer.convert_tokens_to_ids(token)
        if found is None or found == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no '{token}': a BAGEL tokenizer needs {[BOS, EOS, PAD, BOI, EOI]}")
        return found

    side = config.grid_side
    image = ImageSpec(kind="latents", shape=(side * side, config.patch_dim), dtype="float32", grid=(side, side),
                      size=config.image_size)
    boi_id, eoi_id = token_id(BOI), token_id(EOI)
    return TokenSpec(tokenizer=tokenizer, bos_id=token_id(BOS), eos_id=token_id(EOS), pad_id=token_id(PAD),
                     boi_id=boi_id, eoi_id=eoi_id, image_head=FlowHead(image, boi_id, eoi_id, config.timestep_shift),
                     unconditional_rule=pad_everything, max_seq_len=config.llm.max_position_embeddings,
                     prompt_template=prompt_template or PROMPT_TEMPLATE)


@dataclass
class BlockContext:
    """What a latent block being denoised reads: the rows' KV cache, which of its slots each row
    sees and the block's rotary position (the row's next text position)."""

    cache: KVCache
    key_mask: torch.Tensor
    """(B, cache length) bool."""
    position: torch.Tensor
    """(B,) long."""


class BagelUnified(UnifiedModel):
    """BAGEL-7B-MoT's generation side (``BagelModel``) with its autoencoder."""

    config_class = BagelConfig
    hf_class = BagelModel
    token_spec = staticmethod(token_spec)
    load_tokenizer = staticmethod(load_tokenizer)
    default_tokenizer = staticmethod(byte_tokenizer)
    saved_files = ("llm_config.json", WEIGHTS, "tokenizer_config.json", GEOMETRY_FILE)
    lora_pattern = r".*decoder\.layers\.\d+\..*\.({names})\.(und|gen)"
    """The attention projections of both experts: LoRA targets ``q``, ``k``, ``v``, ``o``."""

    def __init__(self, hf: BagelModel, spec: TokenSpec, freeze: tuple[str, ...] = FREEZABLE):
        super().__init__()
        unknown = set(freeze) - set(FREEZABLE)
        if unknown:
            raise ValueError(f"unknown freeze part(s) {sorted(unknown)}; choose from {sorted(FREEZABLE)}")
        self.hf, self.spec = hf, spec
        self.autoencoder = build_autoencoder(hf.config)
        self.latent_positions = latent_position_ids(*spec.image.grid, hf.config.max_latent_size)

    # -- building (``unigen.models.loading``) --
    @classmethod
    def config_from_dict(cls, raw: dict[str, Any]) -> BagelConfig:
        return BagelConfig.from_dict(raw)

    @classmethod
    def official_layout(cls, folder: Path) -> bool:
        return (folder / "llm_config.json").is_file() and (folder / WEIGHTS).is_file()

    @classmethod
    def folder_config(cls, folder: str) -> BagelConfig:
        return BagelConfig.from_folder(folder)

    @classmethod
    def pretrained(cls, folder: str, dtype: torch.dtype | None, attn_implementation: str) -> BagelModel:
        check_attention(attn_implementation)
        return load_official(folder, dtype)[0]

    def weight_files(self, folder: Path) -> dict[str, tuple[Path, str]]:
        """Every tensor from ``ema.safetensors`` under its official name (``checkpoint.key_map``)."""
        return {ours: (folder / WEIGHTS, official) for official, ours in key_map(self.hf).items()}

    # -- the interface --
    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hf.decoder.embed_tokens(ids)

    def embed_image(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("BAGEL's images are latents, not ids: the flow head embeds them (embed_latents)")

    def embed_latents(self, x: torch.Tensor, t: torch.Tensor, images: int) -> torch.Tensor:
        """(images * N, C) noisy latent tokens at times ``t`` (one per token) -> (images * N, hidden)."""
        hf = self.hf
        positions = self.latent_positions.to(x.device).repeat(images)
        return hf.vae2llm(x.to(hf.vae2llm.weight.dtype)) + hf.time_embedder(t) + hf.latent_pos_embed(positions)

    def velocity(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., C) predicted velocities (noise - data)."""
        return self.hf.llm2vae(hidden)

    def backbone(self, inputs_embeds, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False,
                 experts=None):
        b, n = inputs_embeds.shape[:2]
        device = inputs_embeds.device
        cache = past_key_values if use_cache else None
        offset = cache.length if cache is not None else 0
        if position_ids is None:
            position_ids = torch.arange(offset, offset + n, device=device)[None].expand(b, n)
        if experts is None:
            experts = torch.zeros(b, n, dtype=torch.bool, device=device)
        if attention_mask is not None and attention_mask.dim() == 4:
            mask = attention_mask[:, 0].bool()
        else:
            slots = torch.arange(offset + n, device=device)
            mask = (slots[None, :] <= slots[offset:, None])[None].expand(b, n, offset + n)
            if attention_mask is not None:
                mask = mask & attention_mask[:, None, :offset + n].bool()
        return self.hf.decoder(inputs_embeds, experts, position_ids, mask, cache), cache

    def make_cache(self, max_len: int) -> KVCache:
        return KVCache(self.hf.config.llm.num_hidden_layers, max_len)

    def block_context(self, cache: KVCache, key_mask: torch.Tensor, position: torch.Tensor,
                      rows: torch.Tensor) -> BlockContext:
        """The context of ``rows``' latent blocks after the text phase (the sampler calls this)."""
        return BlockContext(cache.select(rows), key_mask[rows, :cache.length].bool(), position[rows])

    def flow_velocity(self, x: torch.Tensor, t: float, context: BlockContext | None) -> torch.Tensor:
        """(B, N, C) velocities of latent blocks ``x`` at time ``t``, each reading its row's context
        (None: the text-free context, the block alone)."""
        b, n, _ = x.shape
        device = x.device
        times = torch.full((b * n,), t, device=device)
        latent = self.embed_latents(x.reshape(b * n, -1), times, b).view(b, n, -1)
        markers = self.embed_text(torch.tensor([self.spec.boi_id, self.spec.eoi_id], device=device))
        embeds = torch.cat([markers[0].expand(b, 1, -1), latent.to(markers.dtype), markers[1].expand(b, 1, -1)], 1)
        experts = torch.zeros(b, n + 2, dtype=torch.bool, device=device)
        experts[:, 1:-1] = True
        block = torch.ones(b, n + 2, n + 2, dtype=torch.bool, device=device)
        if context is None:
            positions = torch.zeros(b, n + 2, dtype=torch.long, device=device)
            hidden = self.hf.decoder(embeds, experts, positions, block)
        else:
            positions = context.position[:, None].expand(b, n + 2)
            mask = torch.cat([context.key_mask[:, None].expand(b, n + 2, -1), block], 2)
            hidden = self.hf.decoder(embeds, experts, positions, mask, context.cache, write=False)
        return self.velocity(hidden[:, 1:-1]).float()

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.hf.lm_head(hidden)

    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("BAGEL's image head predicts velocities (velocity), not codebook logits")

    @property
    def vq(self) -> PixelLatents | FluxFromFolder:
        """The image autoencoder (kept outside the module tree: frozen, never checkpointed)."""
        return self.autoencoder

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return to_tokens(self.autoencoder.encode(pixels.float()), self.hf.config.latent_patch_size)

    @torch.no_grad()
    def decode_images(self, payload: torch.Tensor) -> torch.Tensor:
        latents = from_tokens(payload.float(), self.spec.image.grid[0], self.hf.config.latent_patch_size)
        return self.autoencoder.decode(latents).clamp(-1, 1)

    def decoder_layer_class(self) -> type[nn.Module]:
        return MoTDecoderLayer

    def set_gradient_checkpointing(self, enabled: bool, mode: str = "full") -> None:
        self.hf.decoder.checkpointing = checkpoint_kwargs(mode) if enabled else None

    @property
    def attn_implementation(self) -> str:
        return "sdpa"

    def set_attn_implementation(self, name: str) -> None:
        check_attention(name)

    def accepts_additive_mask(self) -> bool:
        return False

    def save_pretrained(self, path: str, guidance_scale: float = 4.0) -> None:
        """The official layout (``save_official``), the tokenizer, and ``unigen_bagel.json``: the
        latent geometry where it differs from the release's, and the guidance scale."""
        save_official(self.hf, path, source=self.hf.config.folder)  # a release's VAE, SigLIP and files pass through
        self.spec.tokenizer.save_pretrained(path)
        sidecar = {**self.hf.config.geometry(), "guidance_scale": guidance_scale}
        atomic_write_text(Path(path) / GEOMETRY_FILE, json.dumps(sidecar, indent=2, sort_keys=True))


def check_attention(name: str) -> None:
    """BAGEL's layers run SDPA with an explicit block mask (``eager`` is the same here)."""
    if name not in ("sdpa", "eager"):
        raise ValueError(f"attn_implementation '{name}': BAGEL runs 'sdpa' (with its block mask) only")
