"""VQAScore judge throughput: images scored per second, batched vs a per-image loop (the baseline).

A random Qwen-VL judge (``unigen.rewards.qwen_vl``: the published folder layout, its processor
loaded by ``unigen.rewards.vlm_processor`` without torchvision) scores ShapesWorld renders of
benchmark prompts, resized to ``--image-size``; both arms run ``VLMJudge.p_yes`` (one forward per
batch vs one per image) and must agree (the largest |log P(yes)| difference is printed).

Usage:
    python benchmarks/judge_throughput.py                                   # tiny, CPU, fp32
    python benchmarks/judge_throughput.py --size 7b --device cuda --dtype bfloat16 --image-size 384
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unigen.dtypes import torch_dtype  # noqa: E402
from unigen.rewards.qwen_vl import FAMILIES, qwen_tokenizer, qwen_vl_config, save_processor  # noqa: E402
from unigen.rewards.vlm_processor import load_processor  # noqa: E402
from unigen.rewards.vqa import QUESTION, VLMJudge  # noqa: E402
from unigen.worlds.shapes.grammar import benchmark_prompts  # noqa: E402
from unigen.worlds.shapes.plan import make_plan  # noqa: E402
from unigen.worlds.shapes.render import render  # noqa: E402
from unigen.worlds.shapes.vocab import WORDS  # noqa: E402


def build_judge(family: str, size: str, device: str, dtype: torch.dtype) -> VLMJudge:
    """A random ``family`` judge built directly on ``device`` in ``dtype``, its processor saved and
    loaded back the way ``VQAScore`` loads a folder."""
    tokenizer = qwen_tokenizer(list(WORDS))
    config = qwen_vl_config(family, tokenizer, size)
    torch.manual_seed(0)
    with torch.device(device):
        model = FAMILIES[family][1]._from_config(config, dtype=dtype).eval()
    with tempfile.TemporaryDirectory() as folder:
        config.save_pretrained(folder)
        save_processor(folder, family, tokenizer, config.vision_config.patch_size)
        processor = load_processor(folder)
    return VLMJudge.loaded(model, processor)


def inputs(n: int, image_size: int, seed: int = 0) -> tuple[list[Image.Image], list[str]]:
    """``n`` renders of benchmark prompts (cycled), resized to ``image_size``, with their questions."""
    rng = random.Random(seed)
    records = benchmark_prompts()
    images, questions = [], []
    for i in range(n):
        record = records[i % len(records)]
        image = Image.fromarray(render(make_plan(record.metadata, rng), 32, rng))
        images.append(image.resize((image_size, image_size), Image.NEAREST))
        questions.append(QUESTION.format(prompt=record.prompt))
    return images, questions


def timed(judge: VLMJudge, images: list, questions: list, batch: int, device: str) -> tuple[float, torch.Tensor]:
    """Seconds to score all images in chunks of ``batch``, and the scores."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    scores = torch.cat([judge.p_yes(images[i:i + batch], questions[i:i + batch])
                        for i in range(0, len(images), batch)])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    parser.add_argument("--size", choices=["tiny", "7b"], default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    judge = build_judge(args.family, args.size, args.device, torch_dtype(args.dtype))
    params = sum(p.numel() for p in judge.model.parameters())
    images, questions = inputs(args.images, args.image_size)
    timed(judge, images[:args.batch_size], questions[:args.batch_size], args.batch_size, args.device)  # warm-up
    arms = {}
    for name, batch in (("per-image loop", 1), (f"batched ({args.batch_size})", args.batch_size)):
        runs = [timed(judge, images, questions, batch, args.device) for _ in range(args.repeats)]
        arms[name] = (statistics.median(t for t, _ in runs), runs[0][1])
    print(f"{args.family} {args.size} ({params / 1e6:.1f}M parameters) on {args.device} {args.dtype}: "
          f"{args.images} images of {args.image_size} px, median of {args.repeats}")
    for name, (seconds, _) in arms.items():
        print(f"  {name:16s} {args.images / seconds:9.1f} images/s  ({seconds:.3f} s)")
    (loop_s, loop_scores), (batch_s, batch_scores) = arms.values()
    diff = (loop_scores.double().log() - batch_scores.double().log()).abs().max().item()
    print(f"ratio batched / per-image: {loop_s / batch_s:.2f}x  (max |log P(yes)| difference {diff:.2e})")


if __name__ == "__main__":
    main()
