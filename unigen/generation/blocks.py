"""Sampling for a block image head (``image_head.autoregressive`` false, BAGEL's flow head): a
batched text phase in the KV cache, then every row's image block drawn at once.

Text phase: all rows decode in lockstep from one cache, each on its own schedule. In ``unified``
mode a row writes reasoning until it emits begin-of-image itself (it will draw), EOS or the
reasoning limit (it ends without an image); ``explicit`` rows draw after their text ends however
it ends (the program appends begin-of-image); ``direct`` rows have no text phase. A row that
stopped is fed pad at a slot no row reads, so rows switch at different steps and still share the
cache. Block phase: the head denoises the blocks of every drawing row together, each reading its
own row's prompt and reasoning (``UnifiedModel.block_context``); guidance reads the block alone.
Per-row seeds fix the text noise (``unigen.generation.pick``) and the block's starting noise.
"""

from __future__ import annotations

import torch

from unigen.data.trajectory import no_image
from unigen.generation.config import SampleResult, SamplingConfig
from unigen.generation.pick import TEXT_STREAM, NoiseBlocks, choose, row_keys
from unigen.models.unified import UnifiedModel


def block_noise(seeds: list[int], shape: tuple[int, ...]) -> torch.Tensor:
    """(B, *shape) standard normal starting noise, each row from its own seed."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in seeds])


def sample_blocks(model: UnifiedModel, prompts: list[str], config: SamplingConfig, seeds: list[int],
                  device: torch.device) -> list[SampleResult]:
    """One trajectory per prompt (see the module docstring)."""
    if config.mode == "interleaved":
        raise ValueError("mode 'interleaved' needs an autoregressive image head: this model's image block is noised "
                         "and no later turn could read it")
    spec, head = model.spec, model.image_head
    ids, mask = spec.left_pad([spec.encode_prompt(p) for p in prompts])
    rows, width = ids.shape
    text_steps = 0 if config.mode == "direct" else config.max_reasoning_tokens + 1
    if width + text_steps + spec.image.num_tokens + 2 > spec.max_seq_len:
        raise ValueError(f"prompt ({width}) + reasoning ({text_steps}) + image block ({spec.image.num_tokens + 2}) "
                         f"exceeds max_seq_len {spec.max_seq_len}")
    ids, mask = ids.to(device), mask.to(device).bool()
    key_mask = torch.cat([mask, mask.new_zeros(rows, text_steps)], 1)
    cache = model.make_cache(width + text_steps)
    hidden, cache = model.backbone(model.embed_text(ids), key_mask, (mask.cumsum(1) - 1).clamp(min=0), cache,
                                   use_cache=True)
    next_pos = mask.sum(1)
    noise = NoiseBlocks(row_keys(seeds, device))
    writing = torch.full((rows,), config.mode != "direct", dtype=torch.bool, device=device)
    switched = torch.zeros(rows, dtype=torch.bool, device=device)
    stop = ["image"] * rows
    written = torch.full((rows, max(text_steps, 1)), -1, dtype=torch.long, device=device)
    for step in range(text_steps):
        tok = choose(model.text_logits(hidden[:, -1]), noise, step, TEXT_STREAM, config.greedy,
                     config.text_temperature, config.top_k, config.top_p)
        boi = writing & (tok == spec.boi_id)
        eos = writing & (tok == spec.eos_id) & ~boi
        limit = writing & ~boi & ~eos & (step >= config.max_reasoning_tokens)
        keep = writing & ~boi & ~eos & ~limit
        switched |= boi
        if config.mode == "unified":
            for row in torch.nonzero(eos).flatten().tolist():
                stop[row] = "eos"
            for row in torch.nonzero(limit).flatten().tolist():
                stop[row] = "limit"
        written[:, step] = torch.where(keep, tok, -1)
        writing = keep
        if not bool(keep.any()):
            break
        key_mask[:, width + step] = keep
        feed = torch.where(keep, tok, torch.full_like(tok, spec.pad_id))
        hidden, cache = model.backbone(model.embed_text(feed)[:, None], key_mask, next_pos[:, None], cache,
                                       use_cache=True)
        next_pos = next_pos + keep.long()
    draws = switched if config.mode == "unified" else torch.ones(rows, dtype=torch.bool, device=device)
    drawing = torch.nonzero(draws).flatten()
    payloads = torch.zeros(0)
    if len(drawing):
        context = model.block_context(cache, key_mask, next_pos, drawing)
        start = block_noise([seeds[i] for i in drawing.tolist()], spec.image.shape).to(device)
        payloads = head.draw(model, context, start, config.cfg, dict(config.flow)).float().cpu().numpy()
    images = dict(zip(drawing.tolist(), payloads))
    out = []
    for row, text in enumerate(written.cpu().tolist()):
        text = [t for t in text if t >= 0]
        out.append(SampleResult(spec.decode_text(text), text, images.get(row, no_image()), bool(switched[row]),
                                stop[row]))
    return out
