"""Batched, KV-cached single-pass sampling: reasoning text, a self-emitted switch, then image ids
(``interleaved``: then reflections and redraws, ``unigen.generation.rows``).

Classifier-free guidance (cfg > 1) stacks B unconditional rows under the B conditional rows and
runs both in one backbone call per step. The unconditional rows are the model family's
unconditional form of the conditional ones (``model.unconditional``; Janus' rule: every token
except BOS and begin-of-image becomes pad), the form condition dropout trains
(``condition_dropout`` of the trajectory DataModule). In ``unified``/``explicit`` mode they thus
see pad in place of every reasoning token (the reasoning restates and elaborates the prompt, so
leaving it visible would leak the condition into the unconditional branch and weaken guidance), and BOI
at the step where the conditional row switches, so both branches stay position-aligned and share
one attention mask. ``direct`` mode is thereby exactly Janus' image-mode generation.
"""

from __future__ import annotations

import torch

from unigen.generation.blocks import sample_blocks
from unigen.generation.config import SampleResult, SamplingConfig
from unigen.generation.graphs import StaticDecoder
from unigen.generation.pick import NoiseBlocks, StepNoise, row_keys
from unigen.generation.rows import CLOSE, DONE, IMAGE, TEXT, RowStates, next_embeds
from unigen.models.unified import UnifiedModel


def prompt_ids(model: UnifiedModel, prompt: str, config: SamplingConfig) -> list[int]:
    """One prompt's ids as the sampler feeds them (plus begin-of-image in ``direct`` mode)."""
    spec = model.spec
    return spec.encode_prompt(prompt) + ([spec.boi_id] if config.mode == "direct" else [])


def fits_context(model: UnifiedModel, prompt: str, config: SamplingConfig) -> bool:
    """Whether the prompt plus the reasoning/image budget fits the model's context."""
    return len(prompt_ids(model, prompt, config)) + max_new_tokens(model, config) <= model.spec.max_seq_len


def prompt_batch(model: UnifiedModel, prompts: list[str], config: SamplingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids (R, P) and their 0/1 mask; R = 2B with CFG ([cond; uncond])."""
    spec = model.spec
    ids, mask = spec.left_pad([prompt_ids(model, p, config) for p in prompts])
    if config.cfg > 1.0:
        ids = torch.cat([ids, model.unconditional(ids)])
        mask = mask.repeat(2, 1)
    return ids, mask


class DecodeMasks:
    """The attention mask for each decoding step over a static cache of L slots.

    The 2D (R, L) mask (left padding 0, the rest 1) serves any backbone; where the backbone takes an
    additive 4D mask as is, each step's (R, 1, 1, L) mask is built here in two tensor ops, which
    skips transformers' per-call mask construction.
    """

    def __init__(self, model: UnifiedModel, full_mask: torch.Tensor, dtype: torch.dtype):
        self.full_mask = full_mask
        self.additive = model.accepts_additive_mask()
        self.keep = full_mask.bool()[:, None, None, :]
        self.slots = torch.arange(full_mask.shape[1], device=full_mask.device)
        self.zero = torch.zeros((), dtype=dtype, device=full_mask.device)
        self.blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=full_mask.device)

    def at(self, slot: int) -> torch.Tensor:
        """The mask for a one-token step writing cache slot ``slot``."""
        if not self.additive:
            return self.full_mask
        return torch.where(self.keep & (self.slots <= slot), self.zero, self.blocked)


def max_new_tokens(model: UnifiedModel, config: SamplingConfig) -> int:
    """Upper bound on decoding steps: per image turn the text + the switch token + the image, and
    between turns (``interleaved``) the end-of-image step."""
    text = 0 if config.mode == "direct" else config.max_reasoning_tokens + 1
    turns = config.images_per_row
    block_markers = 0 if model.image_head.autoregressive else 1  # a block head's BOI and EOI around its latents
    return turns * (text + model.spec.image.num_tokens + block_markers) + (turns - 1)


DECODERS = ("auto", "eager", "static", "cuda_graphs")
"""``eager``: a Python loop that runs only the heads some row needs and stops as soon as every row
is done; ``static``: the fixed-shape step of ``unigen.generation.graphs`` run as is (same ids; what
CUDA graphs capture); ``cuda_graphs``: that step captured and replayed; ``auto``: CUDA graphs on a
CUDA device, else eager."""


@torch.inference_mode()
def sample(
    model: UnifiedModel,
    prompts: list[str],
    config: SamplingConfig,
    generator: torch.Generator | None = None,
    seeds: list[int] | None = None,
    decoder: str = "auto",
) -> list[SampleResult]:
    """Sample one trajectory per prompt (a block image head: ``unigen.generation.blocks``).

    ``seeds`` (one per prompt) fix each row's random stream independently of the rest of the batch;
    without them they are drawn from ``generator`` (or torch's global RNG). ``decoder``: see
    :data:`DECODERS`; every decoder gives the same ids.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder '{decoder}' is not one of {DECODERS}")
    if not prompts:
        return []
    if seeds is None:
        seeds = torch.randint(0, 2**31 - 1, (len(prompts),), generator=generator).tolist()
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    device = next(model.parameters()).device
    if not model.image_head.autoregressive:
        if decoder in ("static", "cuda_graphs"):
            raise ValueError(f"decoder '{decoder}' steps an autoregressive image head; this model draws image blocks")
        return sample_blocks(model, prompts, config, seeds, device)
    if decoder == "auto":
        decoder = "cuda_graphs" if device.type == "cuda" else "eager"
    if decoder == "cuda_graphs" and device.type != "cuda":
        raise ValueError(f"decoder 'cuda_graphs' needs a CUDA device, the model is on '{device.type}'")
    ids, mask = prompt_batch(model, prompts, config)
    width, steps = ids.shape[1], max_new_tokens(model, config)
    if width + steps > model.spec.max_seq_len:
        raise ValueError(f"prompt ({width}) + reasoning/image budget ({steps}) exceeds max_seq_len {model.spec.max_seq_len}")
    ids, mask = ids.to(device), mask.to(device)
    full_mask = torch.cat([mask, mask.new_ones(mask.shape[0], steps)], dim=1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    next_pos = mask.sum(1, keepdim=True)
    cache = model.make_cache(width + steps)
    embeds = model.embed_text(ids)
    masks = DecodeMasks(model, full_mask, embeds.dtype)
    hidden, cache = model.backbone(embeds, full_mask, positions, cache, use_cache=True)
    keys = row_keys(seeds, device)
    if decoder == "eager":
        rows = RowStates(model, config, NoiseBlocks(keys), steps, device)
        for step in range(steps):
            counts = rows.phase_counts()
            if counts[DONE] == len(prompts):
                break
            text_ids, image_ids, use_image = rows.step(hidden[:, -1], step, counts[TEXT] + counts[CLOSE] > 0,
                                                       counts[IMAGE] > 0)
            if step == steps - 1:
                break
            embeds = next_embeds(model, text_ids, image_ids, use_image)
            hidden, cache = model.backbone(embeds, masks.at(width + step), next_pos, cache, use_cache=True)
            next_pos = next_pos + 1
    else:
        rows = RowStates(model, config, StepNoise(keys), steps, device)
        StaticDecoder(model, rows, masks, cache, hidden[:, -1], next_pos, width, steps).run(decoder == "cuda_graphs")
    return rows.results()
