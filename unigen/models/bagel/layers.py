"""The Qwen2 Mixture-of-Transformers decoder of BAGEL, built from transformers' Qwen2 parts.

Every token runs through one of two experts of identical shape, picked by a per-token expert
index (0 = understanding: text and image markers; 1 = generation: latent tokens): its own q/k/v/o
projections, q/k RMS norms, input / post-attention norms, MLP and final norm. Attention is joint:
all tokens of a row attend to each other as the explicit block mask allows (see ``layout.py``).
A :class:`KVCache` keeps the keys and values of the positions decoded so far (the sampler's text
phase); a latent block being denoised reads it without writing to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import (
    Qwen2MLP,
    Qwen2RMSNorm,
    Qwen2RotaryEmbedding,
    apply_rotary_pos_emb,
)


class Routed(nn.Module):
    """Two modules of the same shape, ``und`` (expert 0) and ``gen`` (expert 1), each applied to
    its own tokens; ``gen`` is a bool mask over the leading dims of the input."""

    def __init__(self, und: nn.Module, gen: nn.Module):
        super().__init__()
        self.und = und
        self.gen = gen

    def forward(self, x: torch.Tensor, gen: torch.Tensor) -> torch.Tensor:
        und_out = self.und(x[~gen])
        gen_out = self.gen(x[gen])
        out = und_out.new_empty(*gen.shape, *und_out.shape[1:])
        out[~gen] = und_out
        out[gen] = gen_out
        return out


def pair(make) -> Routed:
    """A :class:`Routed` pair of two fresh modules from ``make()``."""
    return Routed(make(), make())


class KVCache:
    """Per layer, keys and values (B, kv_heads, max_len, head_dim) of the ``length`` slots written."""

    def __init__(self, layers: int, max_len: int):
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers
        self.max_len, self.length = max_len, 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor, write: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the cached slots followed by the new ones (n = ``k.shape[2]``);
        ``write`` stores the new ones at slots ``length .. length + n`` (:meth:`advance` commits)."""
        n, end = k.shape[2], self.length + k.shape[2]
        if not write:
            if self.keys[layer] is None:
                return k, v
            return (torch.cat([self.keys[layer][:, :, :self.length], k], 2),
                    torch.cat([self.values[layer][:, :, :self.length], v], 2))
        if end > self.max_len:
            raise ValueError(f"the KV cache holds {self.max_len} positions, writing {n} after {self.length}")
        if self.keys[layer] is None:
            shape = (k.shape[0], k.shape[1], self.max_len, k.shape[3])
            self.keys[layer], self.values[layer] = k.new_zeros(shape), v.new_zeros(shape)
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def select(self, rows: torch.Tensor) -> "KVCache":
        """A cache holding only ``rows``' written slots (copies of them)."""
        picked = KVCache(len(self.keys), self.length)
        picked.keys = [k[rows, :, :self.length] for k in self.keys]
        picked.values = [v[rows, :, :self.length] for v in self.values]
        picked.length = self.length
        return picked


def head_dim(config: Qwen2Config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


class MoTAttention(nn.Module):
    """Joint attention over a row; per-expert projections and q/k norms (applied before RoPE)."""

    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, head_dim(config)
        hidden, eps = config.hidden_size, config.rms_norm_eps
        self.q = pair(lambda: nn.Linear(hidden, self.heads * self.head_dim, bias=True))
        self.k = pair(lambda: nn.Linear(hidden, self.kv_heads * self.head_dim, bias=True))
        self.v = pair(lambda: nn.Linear(hidden, self.kv_heads * self.head_dim, bias=True))
        self.o = pair(lambda: nn.Linear(self.heads * self.head_dim, hidden, bias=False))
        self.q_norm = pair(lambda: Qwen2RMSNorm(self.head_dim, eps=eps))
        self.k_norm = pair(lambda: Qwen2RMSNorm(self.head_dim, eps=eps))

    def forward(self, h: torch.Tensor, gen: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor, cache: KVCache | None = None, layer: int = 0, write: bool = True) -> torch.Tensor:
        """``h`` (B, L, D), ``gen`` (B, L) bool, ``rope`` = (cos, sin) (B, L, head_dim), ``mask``
        (B, L, K) bool, True where query i may attend to key j (K = L, or the cached slots + L)."""
        b, n, _ = h.shape
        q = self.q_norm(self.q(h, gen).view(b, n, self.heads, self.head_dim), gen)
        k = self.k_norm(self.k(h, gen).view(b, n, self.kv_heads, self.head_dim), gen)
        v = self.v(h, gen).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), *rope)
        if cache is not None:
            k, v = cache.extend(layer, k, v, write)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None],
                                             enable_gqa=self.kv_heads != self.heads)
        return self.o(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim), gen)


class MoTDecoderLayer(nn.Module):
    """Pre-norm residual block: routed norm -> joint attention, routed norm -> routed MLP."""

    def __init__(self, config: Qwen2Config):
        super().__init__()
        hidden, eps = config.hidden_size, config.rms_norm_eps
        self.input_norm = pair(lambda: Qwen2RMSNorm(hidden, eps=eps))
        self.attn = MoTAttention(config)
        self.post_norm = pair(lambda: Qwen2RMSNorm(hidden, eps=eps))
        self.mlp = pair(lambda: Qwen2MLP(config))

    def forward(self, x: torch.Tensor, gen: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor, cache: KVCache | None = None, layer: int = 0, write: bool = True) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x, gen), gen, rope, mask, cache, layer, write)
        return x + self.mlp(self.post_norm(x, gen), gen)


class MoTDecoder(nn.Module):
    """Token embedding, the MoT layers, the routed final norm and Qwen2 rotary positions."""

    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MoTDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = pair(lambda: Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps))
        self.rotary = Qwen2RotaryEmbedding(config)
        self.checkpointing: dict | None = None
        """``torch.utils.checkpoint`` keyword arguments while activation checkpointing is on."""

    def forward(self, embeds: torch.Tensor, gen: torch.Tensor, position_ids: torch.Tensor,
                mask: torch.Tensor, cache: KVCache | None = None, write: bool = True) -> torch.Tensor:
        """Final hidden states (B, L, D) of input embeddings ``embeds`` (B, L, D); with ``cache``,
        after its slots (``write``: keep these positions there)."""
        rope = self.rotary(embeds, position_ids)
        for i, layer in enumerate(self.layers):
            if self.checkpointing is not None and self.training and cache is None:
                embeds = checkpoint(layer, embeds, gen, rope, mask, **self.checkpointing)
            else:
                embeds = layer(embeds, gen, rope, mask, cache, i, write)
        if cache is not None and write:
            cache.advance(embeds.shape[1])
        return self.norm(embeds, gen)
