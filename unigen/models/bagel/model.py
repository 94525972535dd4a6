"""BAGEL: the MoT decoder with a text head (``lm_head``) and a rectified-flow latent head.

Latent tokens enter as ``vae2llm(x_t) + time_embedder(t) + latent_pos_embed(grid id)`` and leave
as a velocity ``llm2vae(h)`` (zero-initialised, so a fresh head predicts 0). Module names and the
official state-dict keys are mapped in ``checkpoint.py``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm, Qwen2RotaryEmbedding

from unigen.models.bagel.config import BagelConfig
from unigen.models.bagel.embeddings import LatentPositionEmbedding, TimestepEmbedder
from unigen.models.bagel.layers import MoTDecoder
from unigen.models.bagel.layout import PackedBatch


class BagelModel(nn.Module):
    """The generation side of BAGEL-7B-MoT (the SigLIP understanding encoder is not built)."""

    def __init__(self, config: BagelConfig):
        super().__init__()
        self.config = config
        llm = config.llm
        self.decoder = MoTDecoder(llm)
        self.lm_head = nn.Linear(llm.hidden_size, llm.vocab_size, bias=False)
        self.time_embedder = TimestepEmbedder(llm.hidden_size)
        self.vae2llm = nn.Linear(config.patch_dim, llm.hidden_size)
        self.llm2vae = nn.Linear(llm.hidden_size, config.patch_dim)
        self.latent_pos_embed = LatentPositionEmbedding(config.max_latent_size, llm.hidden_size)
        self.init_weights()

    def init_weights(self) -> None:
        """Qwen2's normal(0, initializer_range) init for linear and embedding weights, unit norms,
        zero biases; ``llm2vae`` zero (a fresh flow head predicts velocity 0)."""
        for module in self.modules():
            self._init_weights(module)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """One module's initial state, as transformers names it (a meta-device build materialises
        module by module: ``unigen.models.sharded``): weights above, the rotary frequencies and the
        sin-cos table recomputed."""
        if isinstance(module, (nn.Linear, nn.Embedding)) and not module.weight.is_meta:
            if module is self.llm2vae:
                nn.init.zeros_(module.weight)
            else:
                nn.init.normal_(module.weight, std=self.config.llm.initializer_range)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, Qwen2RMSNorm) and not module.weight.is_meta:
            nn.init.ones_(module.weight)
        elif isinstance(module, Qwen2RotaryEmbedding) and not module.inv_freq.is_meta:
            inv_freq, _ = module.compute_default_rope_parameters(module.config)
            module.inv_freq.copy_(inv_freq)
            module.original_inv_freq.copy_(inv_freq)
        elif isinstance(module, LatentPositionEmbedding):
            module.reset_parameters()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (transformers' name: FSDP2 shards it as its own group)."""
        return self.decoder.embed_tokens

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def embed(self, batch: PackedBatch, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, L, D) inputs: token embeddings, latent slots replaced by the embedded noisy latents
        ``x_t`` (N, patch_dim) at times ``t`` (N,)."""
        h = self.decoder.embed_tokens(batch.input_ids)
        if batch.num_latent_tokens:
            latent = (self.vae2llm(x_t.to(h.dtype)) + self.time_embedder(t)
                      + self.latent_pos_embed(batch.latent_position_ids))
            h = h.index_put((batch.gen,), latent.to(h.dtype))
        return h

    def forward(self, batch: PackedBatch, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Final hidden states (B, L, D)."""
        return self.decoder(self.embed(batch, x_t, t), batch.gen, batch.position_ids, batch.mask)

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)

    def velocity(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """(N, patch_dim) predicted velocities (noise - data) at the latent tokens."""
        return self.llm2vae(hidden[batch.gen])
