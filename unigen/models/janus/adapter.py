"""Janus / Janus-Pro adapter over transformers' ``JanusForConditionalGeneration``."""

from __future__ import annotations

import json
import string
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusImageProcessorPil,
    JanusProcessor,
    StaticCache,
)

from unigen.models.image import CodebookHead, ImageSpec
from unigen.models.janus.tokenizer import byte_level_tokenizer, load_janus_tokenizer
from unigen.models.unified import DEFAULT_PROMPT_TEMPLATE, TokenSpec, UnifiedModel
from unigen.scale.activations import checkpoint_kwargs

FROZEN_PARTS = {
    "vision": ("model.vision_model", "model.aligner"),
    "vq": ("model.vqmodel",),
}
"""Named groups of sub-modules that ``freeze`` can name; frozen by default: both."""

DEFAULT_GUIDANCE_SCALE = 5.0
"""Janus-Pro's published classifier-free guidance scale for image sampling."""


def janus_unconditional(ids: torch.Tensor, spec: TokenSpec) -> torch.Tensor:
    """Janus' unconditional form of text ids: every id except BOS and begin-of-image becomes pad."""
    keep = (ids == spec.bos_id) | (ids == spec.boi_id)
    return ids.masked_fill(~keep, spec.pad_id)


def janus_token_spec(config: JanusConfig, tokenizer: Any, prompt_template: str | None = None) -> TokenSpec:
    """Read special ids from the tokenizer and image geometry from the config: VQ ids
    (:class:`CodebookHead`) between begin- and end-of-image, Janus' unconditional rule."""

    def token_id(attr: str) -> int:
        token = getattr(tokenizer, attr, None)
        if token is None:
            raise ValueError(f"tokenizer has no `{attr}`: a Janus tokenizer needs bos/eos/pad/boi/eoi tokens")
        return tokenizer.convert_tokens_to_ids(token)

    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    image = ImageSpec(kind="tokens", shape=(side * side,), dtype="int64", grid=(side, side), size=vision.image_size,
                      codebook_size=config.vq_config.num_embeddings)
    boi_id, eoi_id = token_id("boi_token"), token_id("eoi_token")
    return TokenSpec(
        tokenizer=tokenizer,
        bos_id=token_id("bos_token"),
        eos_id=token_id("eos_token"),
        pad_id=token_id("pad_token"),
        boi_id=boi_id,
        eoi_id=eoi_id,
        image_head=CodebookHead(image, boi_id, eoi_id),
        unconditional_rule=janus_unconditional,
        max_seq_len=config.text_config.max_position_embeddings,
        prompt_template=prompt_template or DEFAULT_PROMPT_TEMPLATE,
    )


class JanusUnified(UnifiedModel):
    """Janus through the :class:`UnifiedModel` interface (separate text and image vocabularies)."""

    config_class = JanusConfig
    hf_class = JanusForConditionalGeneration
    token_spec = staticmethod(janus_token_spec)
    load_tokenizer = staticmethod(load_janus_tokenizer)
    default_tokenizer = staticmethod(byte_level_tokenizer)
    saved_files = ("config.json", "generation_config.json", "tokenizer_config.json", "processor_config.json")

    def __init__(self, hf: JanusForConditionalGeneration, spec: TokenSpec, freeze: tuple[str, ...] = ("vision", "vq")):
        super().__init__()
        grid = spec.image.grid
        if hf.model.vision_model.config.num_image_tokens != spec.image.num_tokens:
            raise ValueError(
                f"vision_config.num_image_tokens={hf.model.vision_model.config.num_image_tokens} must equal the VQ "
                f"grid {grid[0]}x{grid[1]} (image_size / patch_size)"
            )
        self.hf = hf
        self.spec = spec
        self.freeze(freeze)

    def freeze(self, parts: tuple[str, ...] | list[str]) -> None:
        """Freeze named parts (see ``FROZEN_PARTS``); frozen parts also stay in eval mode."""
        unknown = set(parts) - set(FROZEN_PARTS)
        if unknown:
            raise ValueError(f"unknown freeze part(s) {sorted(unknown)}; choose from {sorted(FROZEN_PARTS)}")
        self.frozen = [name for part in parts for name in FROZEN_PARTS[part]]
        for name in self.frozen:
            self.hf.get_submodule(name).requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> JanusUnified:
        """Switch train/eval mode; frozen parts stay in eval mode."""
        super().train(mode)
        for name in getattr(self, "frozen", ()):
            self.hf.get_submodule(name).eval()
        return self

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hf.get_input_embeddings()(ids)

    def embed_image(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hf.prepare_embeddings_for_image_generation(ids)

    def backbone(self, inputs_embeds, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False,
                 experts=None):
        out = self.hf.model.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
        )
        return out.last_hidden_state, out.past_key_values

    def make_cache(self, max_len: int) -> StaticCache:
        return StaticCache(config=self.hf.config.text_config, max_cache_len=max_len)

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.hf.lm_head(hidden)

    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.hf.model.generation_head(hidden)

    @property
    def vq(self) -> nn.Module:
        return self.hf.model.vqmodel

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        vq = self.vq
        ids = vq.encode(pixels.to(vq.dtype)).image_tokens
        return ids.view(pixels.shape[0], -1)

    @torch.no_grad()
    def decode_images(self, ids: torch.Tensor) -> torch.Tensor:
        return self.vq.decode(ids).clamp(-1, 1)

    def decoder_layer_class(self) -> type[nn.Module]:
        return type(self.hf.model.language_model.layers[0])

    def set_gradient_checkpointing(self, enabled: bool, mode: str = "full") -> None:
        if enabled:
            self.hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpoint_kwargs(mode))
        else:
            self.hf.gradient_checkpointing_disable()

    @property
    def attn_implementation(self) -> str:
        return self.hf.model.language_model.config._attn_implementation

    def set_attn_implementation(self, name: str) -> None:
        self.hf.set_attn_implementation(name)

    def image_question(self, question: str) -> str:
        """A question about one image as Janus' processor writes it: ``<begin_of_image>``, one
        ``<image_placeholder>`` per vision patch, ``<end_of_image>``, then the question."""
        tokenizer = self.spec.tokenizer
        image = tokenizer.boi_token + tokenizer.image_token * self.spec.image.num_tokens + tokenizer.eoi_token
        return image + "\n" + question

    def answer_logits(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        """The SigLIP encoder + aligner fill the placeholders of :meth:`image_question`; prompts are
        left-padded so every row's answer position is the last."""
        ids, mask = self.spec.left_pad([self.spec.encode_prompt(self.image_question(q)) for q in questions])
        ids, mask = ids.to(self.hf.device), mask.to(self.hf.device)
        out = self.hf(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                      pixel_values=self._pixels(images), logits_to_keep=1)
        return out.logits[:, -1].float()

    def _pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """Resize to the vision encoder's input side, scale to [-1, 1] (Janus' 0.5 mean / 0.5 std)."""
        side = self.spec.image.size
        arrays = [np.asarray(im.convert("RGB").resize((side, side), Image.BICUBIC)) for im in images]
        pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1
        param = next(self.hf.model.vision_model.parameters())
        return pixels.to(param.device, param.dtype)

    def save_pretrained(self, path: str, guidance_scale: float = DEFAULT_GUIDANCE_SCALE) -> None:
        """Weights (safetensors), config, generation config and a ``JanusProcessor`` (tokenizer +
        image processor + chat template), so stock ``from_pretrained`` / ``AutoProcessor`` load it."""
        self.hf.generation_config = janus_generation_config(self.spec, guidance_scale)
        self.hf.save_pretrained(path)
        janus_processor(self.spec).save_pretrained(path)


def janus_generation_config(spec: TokenSpec, guidance_scale: float = DEFAULT_GUIDANCE_SCALE) -> GenerationConfig:
    """Special ids, the begin-of-image id image-mode ``generate`` reads, image length and CFG scale."""
    return GenerationConfig(
        bos_token_id=spec.bos_id,
        eos_token_id=spec.eos_id,
        pad_token_id=spec.pad_id,
        generation_kwargs={"boi_token_id": spec.boi_id},
        guidance_scale=guidance_scale,
        num_image_tokens=spec.image.num_tokens,
    )


def janus_chat_template(prompt_template: str) -> str:
    """A Jinja chat template that renders a user turn exactly as ``TokenSpec.encode_prompt`` does."""
    pieces = list(string.Formatter().parse(prompt_template))  # (literal text, field name, spec, conversion)
    fields = [piece[1] for piece in pieces if piece[1] is not None]
    if fields != ["prompt"]:
        raise ValueError(f"prompt_template must contain '{{prompt}}' exactly once (and no other field): "
                         f"{prompt_template!r}")
    split = next(i for i, piece in enumerate(pieces) if piece[1] is not None)
    before = json.dumps("".join(piece[0] for piece in pieces[: split + 1]), ensure_ascii=False)
    after = json.dumps("".join(piece[0] for piece in pieces[split + 1 :]), ensure_ascii=False)
    text = (
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endif %}"
    )
    return (
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        f"{{{{ {before} }}}}{text}{{{{ {after} }}}}"
        f"{{% else %}}{text}{{{{ eos_token }}}}{{% endif %}}{{% endfor %}}"
    )


def janus_processor(spec: TokenSpec) -> JanusProcessor:
    """The stock processor for this model: tokenizer, image processor at the model's image size."""
    image_processor = JanusImageProcessorPil(
        size={"height": spec.image.size, "width": spec.image.size},
        image_mean=[0.5, 0.5, 0.5],  # Janus' SigLIP encoder and VQ model both read pixels in [-1, 1]
        image_std=[0.5, 0.5, 0.5],
    )
    return JanusProcessor(
        image_processor=image_processor,
        tokenizer=spec.tokenizer,
        chat_template=janus_chat_template(spec.prompt_template),
        num_image_tokens=spec.image.num_tokens,
    )
