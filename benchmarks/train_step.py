"""Median training-step time: Lightning ``Trainer.fit`` vs a plain PyTorch loop.

Both run the identical model (``UnifiedLM`` on a preset), data (the same collated batches, in the
same order), optimizer (AdamW + warmup/cosine) and gradient clipping, in one process. The step time
is the interval between consecutive step starts, so data fetching, logging and hooks count.

    python benchmarks/train_step.py [--preset janus-tiny] [--batch-size 32] [--steps 60]

Prints both medians and the ratio fit / plain (target <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader

from unigen.data.synthesize import synthetic_trajectories
from unigen.data.batch import collate
from unigen.data.sequence import build_example
from unigen.losses import combine
from unigen.module import UnifiedLM
from unigen.optim import adamw, warmup_cosine


class StepTimer(L.Callback):
    """Records the start time of every training step."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())


def loader(module: UnifiedLM, steps: int, batch_size: int) -> DataLoader:
    spec = module.spec
    trajs = synthetic_trajectories(steps * batch_size, spec.image.num_tokens, spec.image.codebook_size, seed=0)
    examples = [build_example(t, spec, "unified") for t in trajs]
    return DataLoader(examples, batch_size=batch_size, collate_fn=partial(collate, pad_id=spec.pad_id))


def lightning_steps(preset: str, steps: int, batch_size: int) -> list[float]:
    L.seed_everything(0, verbose=False)
    module = UnifiedLM(model=preset, warmup_steps=5)
    timer = StepTimer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, precision="32-true", gradient_clip_val=1.0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, train_dataloaders=loader(module, steps, batch_size))
    return [b - a for a, b in zip(timer.starts, timer.starts[1:])]


def plain_steps(preset: str, steps: int, batch_size: int) -> list[float]:
    L.seed_everything(0, verbose=False)
    module = UnifiedLM(model=preset, warmup_steps=5)
    module.configure_model()
    module.train()
    hp = module.hparams
    optimizer = adamw(module.parameters(), hp.lr, hp.weight_decay, tuple(hp.betas))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, hp.warmup_steps, steps, hp.min_lr_ratio))
    starts = []
    for batch in loader(module, steps, batch_size):
        starts.append(time.perf_counter())
        text, image = module.heads(batch)
        loss = combine(text, image, text.tokens.float(), image.tokens.float(), hp.lambda_text, hp.lambda_image)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
    starts.append(time.perf_counter())
    return [b - a for a, b in zip(starts, starts[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="janus-tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the median")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    plain = statistics.median(plain_steps(args.preset, args.steps, args.batch_size)[args.warmup:])
    fit = statistics.median(lightning_steps(args.preset, args.steps, args.batch_size)[args.warmup:])
    print(f"preset={args.preset} batch={args.batch_size} steps={args.steps} threads={torch.get_num_threads()}")
    print(f"plain PyTorch loop : {plain * 1e3:8.2f} ms/step (median)")
    print(f"Lightning fit      : {fit * 1e3:8.2f} ms/step (median)")
    print(f"ratio fit/plain    : {fit / plain:8.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
