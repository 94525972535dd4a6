"""A learned VQAScore judge for ShapesWorld: a tiny Qwen2.5-VL trained on the strict judge's labels.

A real user trains on a learned judge that is sometimes wrong; this one lets ShapesWorld measure how
much of a gain is the judge being fooled (the loop's two-judge table: the learned judge as the
training reward, the exact strict judge as the evaluation). The judge is the paper's family
(Qwen2.5-VL, :mod:`unigen.rewards.qwen_vl`) at tiny size, read by :class:`unigen.rewards.vqa.VQAScore`
like any local judge folder.

Recipe (:func:`examples`, :func:`fit`):

- data: training-split prompts (plus ``single_object`` phrasings), each drawn from its plan or from
  a :func:`~unigen.worlds.shapes.dataset.slip` of it, passed through the world's VQ tokenizer
  (encode then decode, so the pictures carry the decoder's artefacts as the base's samples do),
  some with a :func:`~unigen.worlds.shapes.dataset.paste_fragment` (the blobs a model draws);
  labelled by the exact strict judge on the decoded picture, balanced to half accepted;
- geometry: 4 px vision patches, no 2x2 merge (``spatial_merge_size`` 1): a 32 px picture is 8 x 8
  image tokens, one per 4 px (the published 2x2 merge leaves 4 x 4), full vision attention;
- loss: cross-entropy of the assistant's first answer token (``Yes`` / ``No``) over the whole
  vocabulary (VQAScore reads P(Yes) over the whole vocabulary), plus the strict judge's
  description of the picture as the answer to :data:`DESCRIBE` (:func:`caption_loss`: without it
  the yes/no loss stays at ln 2, the judge never starts to see); AdamW, linear warmup, cosine decay.

Measured agreement with the strict judge: docs/shapes.md ("A learned judge as the training reward").
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unigen.rewards.qwen_vl import FAMILIES, qwen_tokenizer, qwen_vl_config, save_judge
from unigen.rewards.vlm_processor import load_processor
from unigen.rewards.vqa import QUESTION, VLMJudge, assistant_answer_token
from unigen.worlds.shapes.dataset import paste_fragment, slip, world_model
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import make_plan
from unigen.worlds.shapes.render import render
from unigen.worlds.shapes.vocab import WORDS
from unigen.worlds.shapes.vq import to_images, to_pixels

LEARNED_JUDGE = Path(__file__).resolve().parent / "assets" / "learned_judge"
"""The committed judge folder (rebuilt by ``python run.py shapes-judge``, see docs/shapes.md)."""
DESCRIBE = "What does this image show?"
"""The auxiliary question whose answer is the strict judge's description (:func:`caption_loss`)."""
PROMPT_WEIGHTS = {"single_object": 0.5, "two_object": 1.0, "counting": 1.0, "colors": 1.0, "position": 1.0,
                  "color_attr": 1.0}
"""Category mix of the judge's prompts (split ``pretrain``: the train contents, plus single-object phrasings)."""


@dataclass(frozen=True)
class JudgeSize:
    """The tiny Qwen2.5-VL's shape."""

    hidden: int = 64
    layers: int = 3
    heads: int = 8
    vision_hidden: int = 64
    vision_depth: int = 3
    patch: int = 4
    merge: int = 1


@dataclass(frozen=True)
class Example:
    """One labelled (picture, prompt) pair: ``label`` is the strict judge's verdict."""

    image: Image.Image
    prompt: str
    label: float
    caption: str
    metadata: dict


def examples(n: int, seed: int, slip_rate: float = 0.6, fragment_rate: float = 0.15,
             vq_batch: int = 256) -> list[Example]:
    """``n`` labelled examples, half accepted by the strict judge (see the module docstring)."""
    rng = random.Random(seed)
    model, strict = world_model(), ShapesJudge(strict=True)
    size = model.spec.image.size
    out: dict[float, list[Example]] = {0.0: [], 1.0: []}
    round_ = 0
    while min(len(v) for v in out.values()) < n // 2:
        records = sample_prompts(vq_batch, seed * 1000 + round_, PROMPT_WEIGHTS, split="pretrain")
        round_ += 1
        plans = [make_plan(r.metadata, rng) for r in records]
        plans = [slip(p, rng) if rng.random() < slip_rate else p for p in plans]
        images = np.stack([render(p, size, rng) for p in plans])
        with torch.no_grad():
            ids = model.encode_images(to_pixels(images)).cpu().numpy()
            for i in range(len(ids)):
                if rng.random() < fragment_rate:
                    ids[i] = paste_fragment(ids[i], ids[rng.randrange(len(ids))], rng)
            decoded = to_images(model.decode_images(torch.as_tensor(ids)))
        for record, image in zip(records, decoded):
            label = float(strict.judge(image, record.metadata)[0])
            out[label].append(Example(Image.fromarray(image), record.prompt, label, strict.describe(image), record.metadata))
    data = out[0.0][: n // 2] + out[1.0][: n - n // 2]
    rng.shuffle(data)
    return data


def new_judge(size: JudgeSize = JudgeSize(), seed: int = 0) -> tuple[torch.nn.Module, object]:
    """(random tiny Qwen2.5-VL, its tokenizer): the world's words in the vocabulary, ``size.patch`` px patches."""
    tokenizer = qwen_tokenizer(list(WORDS))
    config = qwen_vl_config("qwen2_5_vl", tokenizer, "tiny", hidden_size=size.hidden, intermediate_size=2 * size.hidden,
                            num_hidden_layers=size.layers, num_attention_heads=size.heads,
                            num_key_value_heads=size.heads // 2, initializer_range=0.02)
    vision = config.vision_config
    vision.hidden_size, vision.out_hidden_size, vision.intermediate_size = size.vision_hidden, size.hidden, 2 * size.vision_hidden
    vision.depth, vision.num_heads, vision.patch_size, vision.initializer_range = size.vision_depth, 4, size.patch, 0.02
    vision.spatial_merge_size, vision.fullatt_block_indexes = size.merge, list(range(size.vision_depth))
    torch.manual_seed(seed)
    return FAMILIES["qwen2_5_vl"][1](config), tokenizer


def loaded_judge(model: torch.nn.Module, tokenizer: object, folder: Path) -> VLMJudge:
    """A :class:`VLMJudge` over ``model`` with its processor files written to ``folder``."""
    return VLMJudge.loaded(model, load_processor(str(save_judge(folder, model, tokenizer))))


def no_token(judge: VLMJudge) -> int:
    """The id of ``No`` as the assistant's first answer token."""
    return assistant_answer_token(judge.processor.tokenizer, judge.prompt("?"), "No")


def fit(judge: VLMJudge, data: list[Example], steps: int, batch_size: int = 32, lr: float = 1e-3,
        warmup: int = 100, seed: int = 0, describe: float = 1.0, minutes: float | None = None, log_every: int = 100) -> int:
    """Train ``judge.model`` on ``data`` (answer-token cross-entropy) for ``steps`` steps or
    ``minutes``; the cosine schedule spans ``steps``. Returns the steps taken."""
    if len(data) < batch_size:
        raise ValueError(f"{len(data)} examples are fewer than batch_size {batch_size}")
    model, rng = judge.model, random.Random(seed)
    targets = {0.0: no_token(judge), 1.0: judge.yes_id}
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.45 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    model.train()
    start, running = time.time(), []
    for step in range(steps):
        if minutes is not None and time.time() - start > minutes * 60:
            return step
        batch = rng.sample(data, batch_size)
        logits = judge.answer_logits([b.image for b in batch], [QUESTION.format(prompt=b.prompt) for b in batch])
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([targets[b.label] for b in batch]))
        if describe:
            loss = loss + describe * caption_loss(judge, rng.sample(data, batch_size))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        running.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1} {time.time() - start:.0f}s loss {np.mean(running):.3f}", flush=True)
            running = []
    model.eval()
    return steps


def caption_loss(judge: VLMJudge, batch: list[Example]) -> torch.Tensor:
    """Mean cross-entropy of the strict judge's description of each picture (``photo: red circle top
    left.``) as the assistant's answer to :data:`DESCRIBE`: dense supervision that teaches the judge
    to see before it learns to answer yes or no."""
    tokenizer = judge.processor.tokenizer
    prompt = judge.prompt(DESCRIBE)
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        inputs = judge.processor(images=[b.image for b in batch], text=[prompt + b.caption + "<|im_end|>" for b in batch],
                                 return_tensors="pt", padding=True)
        start = len(judge.processor(images=[batch[0].image], text=[prompt])["input_ids"][0])
    finally:
        tokenizer.padding_side = side
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    labels[:, :start] = -100
    return judge.model(**inputs, labels=labels).loss


@torch.no_grad()
def agreement(judge: VLMJudge, data: list[Example], batch_size: int = 64) -> float:
    """Share of ``data`` where the judge's verdict (P(Yes) > 0.5) equals the strict judge's label."""
    judge.model.eval()
    hits = []
    for i in range(0, len(data), batch_size):
        chunk = data[i:i + batch_size]
        p = judge.p_yes([c.image for c in chunk], [QUESTION.format(prompt=c.prompt) for c in chunk])
        hits += [(float(q) > 0.5) == bool(c.label) for q, c in zip(p, chunk)]
    return float(np.mean(hits))


def judge_main(argv: list[str]) -> None:
    """ShapesWorld: train the learned VQAScore judge (a tiny Qwen2.5-VL) and report its agreement."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="run.py shapes-judge", description=judge_main.__doc__)
    parser.add_argument("--out", type=str, default=str(LEARNED_JUDGE), help="judge folder to write")
    parser.add_argument("--examples", type=int, default=6000, help="training examples (half accepted)")
    parser.add_argument("--heldout", type=int, default=600, help="held-out examples for the agreement check")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps (batch 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate")
    parser.add_argument("--warmup", type=int, default=100, help="linear warmup steps")
    parser.add_argument("--init", type=str | None, default=None, help="judge folder to continue training (null: random)")
    parser.add_argument("--describe", type=float, default=1.0, help="weight of the description loss")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init and batches")
    args = parser.parse_args(argv)
    train, heldout = examples(args.examples, args.seed), examples(args.heldout, args.seed + 1)
    model, tokenizer = new_judge(seed=args.seed)
    if args.init:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(args.init)
    judge = loaded_judge(model, tokenizer, Path(args.out))
    fit(judge, train, args.steps, lr=args.lr, warmup=args.warmup, seed=args.seed, describe=args.describe)
    save_judge(Path(args.out), model, tokenizer)
    print(json.dumps({"heldout_agreement": agreement(judge, heldout), "out": args.out}))
