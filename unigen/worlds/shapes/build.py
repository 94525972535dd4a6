"""``run.py`` commands of ShapesWorld: ``shapes-vq`` (fit the image tokenizer) and ``shapes-data``
(base-model init folder + pretraining shards)."""

from __future__ import annotations

import json
import random
from functools import partial
from pathlib import Path

import numpy as np
from jsonargparse import ArgumentParser

from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.plan import make_plan
from unigen.worlds.shapes.render import render
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.vq import DEFAULT_VQ_WEIGHTS, to_images, to_pixels


def round_trip_acceptance(model, samples: int = 300, seed: int = 12345, split: str = "heldout") -> float:
    """Share of clean renders the exact judge still accepts after VQ encode -> decode."""
    records = sample_prompts(samples, seed, split=split)
    rng = random.Random(seed)
    images = np.stack([render(make_plan(r.metadata, rng), model.spec.image.size, rng) for r in records])
    decoded = to_images(model.decode_images(model.encode_images(to_pixels(images))))
    judge = ShapesJudge()
    return float(np.mean([judge.judge(image, r.metadata)[0] for image, r in zip(decoded, records)]))


def vq_main(argv: list[str]) -> None:
    """ShapesWorld: fit the ``shapes-janus`` VQ on renders, save it, report the round trip."""
    import torch

    from unigen.models.loading import load_model
    from unigen.worlds.shapes.vq import fit_vq, load_vq, render_set, save_vq

    parser = ArgumentParser(prog="run.py shapes-vq", parser_mode="omegaconf", description=vq_main.__doc__)
    parser.add_argument("--config", action="config")
    parser.add_argument("--out", type=str, default=str(DEFAULT_VQ_WEIGHTS), help="weights file (.safetensors)")
    parser.add_argument("--model", type=str, default="shapes-janus", help="preset whose VQ geometry to fit")
    parser.add_argument("--init", type=str | None, default=None,
                        help="VQ weights to start from (fine-tune, e.g. after adding a shape); null: random init")
    parser.add_argument("--images", type=int, default=4000, help="training renders")
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps")
    parser.add_argument("--batch_size", type=int, default=16, help="crops per step")
    parser.add_argument("--crop", type=int, default=16, help="crop side in pixels (the image size: no crops)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate (cosine decay)")
    parser.add_argument("--restart_every", type=int, default=50,
                        help="restart unused codes every this many steps (0: never, e.g. when fine-tuning)")
    parser.add_argument("--seed", type=int, default=0, help="seed of renders and training")
    parser.add_argument("--device", type=str, default="cpu", help="torch device of the fit (cpu, cuda)")
    parser.add_argument("--check_samples", type=int, default=300, help="held-out renders for the round-trip check")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = load_model(args.model)
    if args.init:
        load_vq(model.vq, args.init)
    vq = model.vq.to(args.device)
    stats = fit_vq(vq, render_set(args.images, model.spec.image.size, args.seed), args.steps, args.batch_size,
                   args.lr, crop=args.crop, restart_every=args.restart_every, seed=args.seed)
    save_vq(vq, args.out)
    model.vq.cpu()
    stats["round_trip_acceptance"] = round_trip_acceptance(model.eval(), args.check_samples)
    print(json.dumps(stats, indent=1))
    print(f"saved VQ weights to {args.out}")


def data_main(argv: list[str]) -> None:
    """ShapesWorld: the base-model init folder and rendered pretraining shards.

    ``<out>/model``: the preset + fitted VQ, random backbone; train / val trajectory shards for the
    pretraining recipe (``configs/shapes/pretrain.yaml``); optional two-take shards for the
    interleaved base, with rendered first takes (``configs/shapes/pretrain_two_take.yaml``) or a
    model's own (``configs/shapes/pretrain_seen.yaml``)."""
    from unigen.worlds.shapes.dataset import (PRETRAIN_WEIGHTS, render_trajectories, seen_two_take_trajectories,
                                              two_take_trajectories, world_model, write_world_shards)

    parser = ArgumentParser(prog="run.py shapes-data", parser_mode="omegaconf", description=data_main.__doc__)
    parser.add_argument("--config", action="config")
    parser.add_argument("--out", type=str, required=True, help="output folder")
    parser.add_argument("--model", type=str, default="shapes-janus", help="preset (or folder) to start from")
    parser.add_argument("--vq_weights", type=str | None, default=str(DEFAULT_VQ_WEIGHTS),
                        help="fitted VQ weights loaded into the model (null: keep the model's own)")
    parser.add_argument("--train_samples", type=int, default=65536, help="training trajectories")
    parser.add_argument("--val_samples", type=int, default=256, help="validation trajectories (0: none)")
    parser.add_argument("--shard_size", type=int, default=1024, help="trajectories per shard")
    parser.add_argument("--weights", type=dict[str, float], default=PRETRAIN_WEIGHTS,
                        help="category -> relative share (counting and position rare by default)")
    parser.add_argument("--two_take_samples", type=int, default=0,
                        help="two-take trajectories with rendered first takes (two_take-*.tar: see, draw again; "
                             "configs/shapes/pretrain_two_take.yaml)")
    parser.add_argument("--seen_samples", type=int, default=0,
                        help="two-take trajectories whose first take is --seen_model's own sample (seen-*.tar)")
    parser.add_argument("--seen_model", type=str | None, default=None,
                        help="the model (folder or .ckpt) that draws the first takes of --seen_samples")
    parser.add_argument("--seen_weights", type=dict[str, float] | None, default=None,
                        help="category -> relative share of --seen_samples (null: every category equally, as the "
                             "loop's benchmark asks)")
    parser.add_argument("--seed", type=int, default=0, help="seed of prompts, plans and layouts")
    args = parser.parse_args(argv)
    if args.seen_samples and not args.seen_model:
        parser.error("--seen_samples needs --seen_model (the model whose own drawings are described)")
    out = Path(args.out)
    model = world_model(args.model, args.vq_weights)
    init = out / "model"
    if not all((init / name).is_file() for name in model.saved_files):
        model.save_pretrained(str(init))
    rendered = partial(render_trajectories, model=model)
    train = write_world_shards(out, "train", args.train_samples, args.shard_size, args.seed, rendered, args.weights)
    val = write_world_shards(out, "val", args.val_samples, args.shard_size, args.seed + 1, rendered, args.weights)
    two_take = write_world_shards(out, "two_take", args.two_take_samples, args.shard_size, args.seed + 2,
                                  partial(two_take_trajectories, model=model), args.weights)
    seen = []
    if args.seen_samples:
        from unigen.checkpoints import load_unified  # here: only seen takes need a sampler

        sampler = load_unified(args.seen_model, option="seen_model")
        seen = write_world_shards(out, "seen", args.seen_samples, args.shard_size, args.seed + 3,
                                  partial(seen_two_take_trajectories, model=model, sampler=sampler), args.seen_weights)
    print(f"wrote {init} and {len(train)} train / {len(val)} val / {len(two_take)} two-take / {len(seen)} seen "
          f"shards to {out}")
