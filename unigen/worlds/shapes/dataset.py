"""ShapesWorld pretraining data: (prompt, plan, image) trajectories rendered into shards.

Each trajectory is a training-split prompt, its plan as the reasoning text, the rendered scene as
PNG and its VQ ids from the world model's fitted tokenizer. Categories are drawn by weights, by
default with ``counting`` and ``position`` rare, so a base trained on it has real weaknesses.

Two-take trajectories (:func:`two_takes`) teach what a real unified base brings to interleaved
generation: seeing (saying what an image shows) and drawing again later in the same sequence. The
first take is rendered, half of it wrong on purpose (:func:`two_take_trajectories`), or a model's
own drawing (:func:`seen_two_take_trajectories`). They never teach judging: the second take
follows every first image, right or not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from unigen.data.prompts import PromptRecord
from unigen.data.shardmap import write_planned_shards
from unigen.data.trajectory import Trajectory, Turn
from unigen.generation.config import SamplingConfig
from unigen.generation.rollouts import generate_trajectories
from unigen.models.unified import UnifiedModel
from unigen.models.loading import load_model
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import PlanError, PlanItem, format_plan, make_plan, parse_plan, plan_checks
from unigen.files import png_bytes
from unigen.worlds.shapes.render import render
from unigen.worlds.shapes.vocab import CELLS, COLORS, SHAPES
from unigen.worlds.shapes.vq import DEFAULT_VQ_WEIGHTS, load_vq, to_images, to_pixels

PRETRAIN_WEIGHTS = {"single_object": 0.2, "two_object": 1.0, "colors": 1.0, "color_attr": 1.0, "counting": 0.02,
                    "position": 0.02}
"""Category mix of the base's pretraining set (split ``pretrain``): counting and position deliberately
rare. ``single_object``'s six contents are all held out, so the base sees them here as a real base has
seen single-object captions (without them it writes multi-item plans for "a photo of a circle"); the
loop never trains on a benchmark prompt."""
SOURCE = "shapes-render"


def world_model(source: str = "shapes-janus", vq_weights: str | None = str(DEFAULT_VQ_WEIGHTS)) -> UnifiedModel:
    """The world's model: ``source`` (preset / folder) with fitted VQ weights loaded if given."""
    model = load_model(source)
    if vq_weights:
        load_vq(model.vq, vq_weights)
    return model.eval()


def payloads(model: UnifiedModel, images: np.ndarray) -> np.ndarray:
    """The model's image payloads of rendered images: VQ ids (int64) or latent tokens (float32)."""
    with torch.no_grad():
        encoded = model.encode_images(to_pixels(images)).cpu().numpy()
    return encoded.astype(np.int64 if model.spec.image.kind == "tokens" else np.float32)


def render_trajectories(records: list[PromptRecord], model: UnifiedModel, seed: int) -> list[Trajectory]:
    """One rendered trajectory per record (plan as reasoning, PNG, VQ ids), seeded."""
    rng = random.Random(seed)
    plans = [make_plan(r.metadata, rng) for r in records]
    images = np.stack([render(p, model.spec.image.size, rng) for p in plans])
    ids = payloads(model, images)
    return [
        Trajectory(prompt_id=r.id, sample_idx=0, prompt=r.prompt, reasoning=format_plan(plan),
                   image_tokens=tokens, category=r.category, metadata=r.metadata, mode="explicit",
                   generation={"source": SOURCE, "seed": seed}, model=SOURCE, png=png_bytes(image))
        for r, plan, image, tokens in zip(records, plans, images, ids)
    ]


def slip(items: list[PlanItem], rng: random.Random) -> list[PlanItem]:
    """The plan drawn with one slip, as a model's drawing goes wrong: one object recoloured,
    reshaped or moved to a free cell, one dropped (of two or more), or an extra one added."""
    items = list(items)
    free = [cell for cell in CELLS if cell not in {item.cell for item in items}]
    kinds = ["color", "shape"] + ["move", "add"] * bool(free) + ["drop"] * (len(items) > 1)
    kind, i = rng.choice(kinds), rng.randrange(len(items))
    item = items[i]
    if kind == "color":
        items[i] = PlanItem(rng.choice([c for c in COLORS if c != item.color]), item.shape, item.cell)
    elif kind == "shape":
        items[i] = PlanItem(item.color, rng.choice([s for s in SHAPES if s != item.shape]), item.cell)
    elif kind == "move":
        items[i] = PlanItem(item.color, item.shape, rng.choice(free))
    elif kind == "add":
        items.insert(rng.randrange(len(items) + 1), PlanItem(rng.choice(list(COLORS)), rng.choice(SHAPES), rng.choice(free)))
    else:
        del items[i]
    return items


def paste_fragment(ids: np.ndarray, donor: np.ndarray, rng: random.Random) -> np.ndarray:
    """``ids`` (a square grid, raster order) with a random k x k block (k in 2..4) of ``donor``
    pasted at a random place: part of another drawing, like the partial shapes and blobs a model
    draws. The donor block shows something (not only ``donor``'s most common id, the background)."""
    side = math.isqrt(len(ids))
    grid, source = ids.reshape(side, side).copy(), donor.reshape(side, side)
    background = np.bincount(donor).argmax()
    k = rng.randint(2, 4)
    corners = [(r, c) for r in range(side - k + 1) for c in range(side - k + 1)
               if (source[r:r + k, c:c + k] != background).any()] or [(0, 0)]
    r, c = rng.choice(corners)
    y, x = rng.randrange(side - k + 1), rng.randrange(side - k + 1)
    grid[y:y + k, x:x + k] = source[r:r + k, c:c + k]
    return grid.reshape(-1)


SLIPS = ("plan", "fragment")
"""How a two-take trajectory's first image goes wrong: drawn from a :func:`slip` of its plan, or with
a :func:`paste_fragment` in its ids."""


def plan_to_keep(text: str, metadata: dict) -> list[PlanItem] | None:
    """The plan in ``text`` when it meets the prompt exactly (every check passes, no extra item):
    a second take keeps what was right and draws it again; None otherwise."""
    try:
        items = parse_plan(text)
    except PlanError:
        return None
    exact = len(items) == sum(req["count"] for req in metadata["include"])
    return items if exact and all(plan_checks(items, metadata)) else None


def two_takes(records: list[PromptRecord], model: UnifiedModel, rng: random.Random, first_texts: list[str],
              first_ids: np.ndarray, generation: list[dict]) -> list[Trajectory]:
    """Two-take trajectories (``unified`` mode) from first takes: each first take (text, image ids)
    is followed by what its image shows (the strict judge's description of the decoded ids, as
    the loop's reflections say it) and the plan again (:func:`plan_to_keep`; a new one when it
    does not meet the prompt), that plan's rendered image, what it shows, the end."""
    n = len(records)
    second_plans = [plan_to_keep(text, r.metadata) or make_plan(r.metadata, rng) for text, r in zip(first_texts, records)]
    rendered = np.stack([render(p, model.spec.image.size, rng) for p in second_plans])
    ids = np.concatenate([first_ids, payloads(model, rendered)])
    with torch.no_grad():
        seen = to_images(model.decode_images(torch.from_numpy(ids)))
    judge = ShapesJudge(strict=True)
    says = [judge.describe(image) for image in seen]
    return [
        Trajectory(prompt_id=r.id, sample_idx=0, prompt=r.prompt, reasoning=first, image_tokens=ids[k],
                   category=r.category, metadata=r.metadata, mode="unified", generation=generation[k],
                   model=generation[k]["source"],
                   png=png_bytes(seen[k]),
                   turns=[Turn(f"{says[k]} {format_plan(second)}", ids[n + k], png_bytes(seen[n + k])),
                          Turn(says[n + k])])
        for k, (r, first, second) in enumerate(zip(records, first_texts, second_plans))
    ]


def two_take_trajectories(records: list[PromptRecord], model: UnifiedModel, seed: int,
                          slip_rate: float = 0.5) -> list[Trajectory]:
    """One :func:`two_takes` trajectory per record, seeded, whose first take is rendered: a plan
    and its image, at ``slip_rate`` with one of :data:`SLIPS`."""
    rng = random.Random(seed)
    n = len(records)
    first_plans = [make_plan(r.metadata, rng) for r in records]
    slips = [rng.choice(SLIPS) if rng.random() < slip_rate else None for _ in records]
    drawn = [slip(p, rng) if kind == "plan" else p for p, kind in zip(first_plans, slips)]
    images = np.stack([render(p, model.spec.image.size, rng) for p in drawn])
    ids = payloads(model, images)
    for k, kind in enumerate(slips):
        if kind == "fragment":
            ids[k] = paste_fragment(ids[k], ids[rng.choice([i for i in range(n) if i != k] or [k])], rng)
    generation = [{"source": SOURCE, "seed": seed, "slip": kind or "none"} for kind in slips]
    return two_takes(records, model, rng, [format_plan(p) for p in first_plans], ids, generation)


SEEN_SAMPLING = SamplingConfig(mode="explicit", max_reasoning_tokens=40, cfg=2.0, text_temperature=1.0,
                               image_temperature=0.7)
"""How :func:`seen_two_take_trajectories` samples first takes: as the loop's round 1 generates
(``configs/loop/shapes.yaml``: the program appends begin-of-image, plans at the model's own
temperature, the base's guidance scale)."""


def seen_two_take_trajectories(records: list[PromptRecord], model: UnifiedModel, sampler: UnifiedModel,
                               seed: int) -> list[Trajectory]:
    """One :func:`two_takes` trajectory per record whose first take is ``sampler``'s own sample
    (:data:`SEEN_SAMPLING`, seeded per record): what a model draws wrong (half-drawn shapes, blobs,
    wrong cells), described, instead of rendered slips."""
    firsts = generate_trajectories(sampler, records, 1, SEEN_SAMPLING, seed, model_id=SOURCE, decode_png=False)
    undrawn = [t.prompt_id for t in firsts if not t.has_image]
    if undrawn:
        raise RuntimeError(f"the sampler drew no image for {len(undrawn)} prompts (e.g. '{undrawn[0]}'): "
                           f"explicit mode always appends begin-of-image; is it an image model?")
    generation = [{"source": "shapes-seen", "seed": t.generation["seed"], "slip": "sampled"} for t in firsts]
    return two_takes(records, model, random.Random(seed), [t.reasoning for t in firsts],
                     np.stack([t.image_tokens for t in firsts]), generation)


def write_world_shards(out: str | Path, prefix: str, samples: int, shard_size: int, seed: int,
                       build: Callable[..., list[Trajectory]],
                       weights: dict[str, float] | None = None, progress: bool = True) -> list[Path]:
    """Resumable: ``samples`` trajectories of ``split="pretrain"`` prompts in shards of ``shard_size``
    (same plan every run), each shard ``build(records=..., seed=<shard seed>)`` (e.g.
    :func:`render_trajectories` with its model bound)."""
    records = sample_prompts(samples, seed, weights, split="pretrain", id_prefix=f"shapes-s{seed}")
    chunks = [(i, records[i: i + shard_size]) for i in range(0, len(records), shard_size)]
    return write_planned_shards(out, prefix, chunks, lambda chunk: build(records=chunk[1], seed=seed * 100_003 + chunk[0]),
                                progress=progress)
