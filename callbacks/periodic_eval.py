"""Periodic benchmark evaluation during a fit (unified mode, rank 0, bounded cost).

Every ``every_n_steps`` optimizer steps and at the end of the fit, rank 0 draws a fixed subset
of a benchmark (``max_prompts`` prompts spread over categories, ``samples_per_prompt`` each) in
``unified`` mode and logs, under ``eval/<benchmark>/``: the score of each category, ``overall``,
``switch_rate`` (share of samples where the model emitted begin-of-image itself) and
``reasoning_tokens`` (mean reasoning length). With a TensorBoard logger it also adds a grid of
the first sample of each prompt and a table of the prompts. The other ranks wait at a barrier.
The metrics also land in ``trainer.callback_metrics`` (so checkpointing can monitor them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from unigen.evals.benchmark import Benchmark, load_benchmark
from unigen.evals.runner import draw_and_score, sample_rows
from unigen.registry import Spec, spec_value
from unigen.rewards import REWARDS
from unigen.evals.summary import image_grid, png_image, summarize
from unigen.generation import SamplingConfig


class BenchmarkEvaluation(L.Callback):
    """Run a benchmark subset every N steps and at fit end; log scores, switch rate, reasoning length."""

    def __init__(self, benchmark: Spec, every_n_steps: int = 500, max_prompts: int = 24,
                 samples_per_prompt: int = 1, reward: Spec | None = "color_match",
                 sampling: SamplingConfig | None = None, seed: int = 0, grid_prompts: int = 16,
                 at_fit_end: bool = True):
        """
        Args:
            benchmark: the benchmark, e.g. ``{class_path: geneval, init_args: {path: <file>}}``.
            every_n_steps: evaluate after every this many optimizer steps (0 = only at fit end).
            max_prompts: prompts evaluated each time (spread over categories): bounds the cost.
            samples_per_prompt: samples per prompt: bounds the cost.
            reward: the reward scoring each sample (short name, import path or
                ``{class_path, init_args}``); None: unscored.
            sampling: sampler settings; the mode is always ``unified``.
            seed: sampling seed (the same every time, so evaluations are comparable).
            grid_prompts: prompts shown in the TensorBoard grid.
            at_fit_end: also evaluate when the fit ends.
        """
        super().__init__()
        value = spec_value(benchmark)
        if isinstance(value, dict) and "path" in (value.get("init_args") or {}) and value["init_args"]["path"] is None:
            raise ValueError("BenchmarkEvaluation has no benchmark file: give its path (after configs/eval_callback.yaml: "
                             "--trainer.callbacks.init_args.benchmark '{class_path: geneval, init_args: {path: <file>}}')")
        self.benchmark = benchmark
        self.every_n_steps, self.max_prompts, self.samples_per_prompt = every_n_steps, max_prompts, samples_per_prompt
        self.reward_spec, self.seed, self.grid_prompts, self.at_fit_end = reward, seed, grid_prompts, at_fit_end
        self.config = replace(sampling or SamplingConfig(), mode="unified")
        self.bench: Benchmark | None = None
        self.reward = None
        self.history: list[tuple[int, dict[str, float]]] = []
        self._last_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and self.bench is None:
            self.bench = load_benchmark(self.benchmark).subset(self.max_prompts)
            self.reward = REWARDS.build(self.reward_spec) if self.reward_spec is not None else None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self._run(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_fit_end and trainer.global_step != self._last_step:
            self._run(trainer, pl_module)

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_step = trainer.global_step
        if trainer.is_global_zero:
            self._evaluate(trainer, pl_module)
        trainer.strategy.barrier("benchmark_evaluation")

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = pl_module.net
        was_training = net.training
        net.eval()
        try:
            samples = draw_and_score(net, self.bench.prompts, self.samples_per_prompt, self.config, self.reward,
                                     self.seed, f"step{trainer.global_step}")
        finally:
            net.train(was_training)
        summary = summarize(sample_rows(self.bench.prompts, samples), self.bench.averaging, self.bench.name)
        metrics = self._metrics(summary)
        step = trainer.global_step
        self.history.append((step, metrics))
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
            if isinstance(logger, TensorBoardLogger):
                self._log_grid(logger, samples, step)

    def _metrics(self, summary: dict) -> dict[str, float]:
        prefix = f"eval/{self.bench.name}"
        metrics = {f"{prefix}/{cat}": e["score"] for cat, e in summary["categories"].items() if e["score"] is not None}
        if summary["overall"] is not None:
            metrics[f"{prefix}/overall"] = summary["overall"]
        metrics[f"{prefix}/switch_rate"] = summary["switch_rate"]
        metrics[f"{prefix}/reasoning_tokens"] = summary["mean_reasoning_tokens"]
        return {k: float(v) for k, v in metrics.items()}

    def _log_grid(self, logger: TensorBoardLogger, samples: list, step: int) -> None:
        records = self.bench.prompts[: self.grid_prompts]
        images = [png_image(group[0].png if group else None) for group in samples[: len(records)]]
        grid = image_grid(images, [r.prompt for r in records])
        logger.experiment.add_image(f"eval/{self.bench.name}/samples", np.asarray(grid), step, dataformats="HWC")
        table = "| # | category | prompt | reasoning |\n|---|---|---|---|\n" + "\n".join(
            f"| {i} | {r.category} | {r.prompt} | {(g[0].reasoning if g else '')[:80]!r} |"
            for i, (r, g) in enumerate(zip(records, samples)))
        logger.experiment.add_text(f"eval/{self.bench.name}/prompts", table, step)
