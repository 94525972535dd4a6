"""Paired bootstrap intervals for benchmark scores over seeds, prompts and samples.

A stage's scores form an array (seeds, prompts, samples) of 0/1 (or any) values; every prompt has
a category, and a score is GenEval's average: the mean over categories of the mean over the
category's prompts of the mean over seeds and samples. One bootstrap replicate resamples, with
replacement, the seeds, the prompts within each category (stratified, so every category keeps its
size) and the samples of every (seed, prompt); two stages are *paired* by sharing the seed and
prompt draws, so a difference between stages (the gain) is not widened by which prompts happen to
be drawn. Intervals are percentile intervals of the replicates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def category_means(scores: np.ndarray, categories: list[str]) -> dict[str, np.ndarray]:
    """(..., seeds, prompts, samples) -> category -> (...,) mean over its prompts, seeds and samples
    (NaN marks an unscored sample and is left out; so is a prompt with no scored sample, as a
    bootstrap replicate may draw one)."""
    names = np.asarray(categories)
    with warnings.catch_warnings():  # "Mean of empty slice": the all-NaN case, left out as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        per_prompt = np.nanmean(scores, axis=(-3, -1))
        return {c: np.nanmean(per_prompt[..., names == c], axis=-1) for c in dict.fromkeys(categories)}


def overall(by_category: dict[str, np.ndarray]) -> np.ndarray:
    """GenEval's overall: the unweighted mean of the category scores."""
    return np.mean(np.stack(list(by_category.values())), axis=0)


def paired_bootstrap(stages: dict[str, np.ndarray], categories: list[str], replicates: int = 2000,
                     seed: int = 0, level: float = 0.95, differences: dict[str, tuple[str, str]] | None = None
                     ) -> dict[str, dict[str, Interval]]:
    """Intervals for every stage's per-category and overall score, and for stage differences.

    Args:
        stages: name -> (seeds, prompts, samples) scores; the seed and prompt axes must agree
            across stages (sample counts may differ).
        categories: the category of each prompt.
        replicates: bootstrap replicates.
        seed: seed of the resampling.
        level: interval coverage.
        differences: name -> (stage b, stage a): intervals of b - a (paired).

    Returns: name (stage or difference) -> {category..., "overall"} -> :class:`Interval`.
    """
    shapes = {name: s.shape for name, s in stages.items()}
    if len({shape[:2] for shape in shapes.values()}) != 1 or next(iter(shapes.values()))[1] != len(categories):
        raise ValueError(f"stages must share (seeds, prompts) = (.., {len(categories)}); got {shapes}")
    n_seeds, n_prompts = next(iter(shapes.values()))[:2]
    rng = np.random.default_rng(seed)
    seed_draw = rng.integers(n_seeds, size=(replicates, n_seeds))
    prompt_draw = np.empty((replicates, n_prompts), dtype=np.int64)
    names = np.asarray(categories)
    for category in dict.fromkeys(categories):
        members = np.flatnonzero(names == category)
        prompt_draw[:, members] = members[rng.integers(len(members), size=(replicates, len(members)))]
    point, draws = {}, {}
    for name, scores in stages.items():
        samples = rng.integers(scores.shape[2], size=(replicates, n_seeds, n_prompts, scores.shape[2]))
        resampled = scores[seed_draw[:, :, None, None], prompt_draw[:, None, :, None], samples]
        point[name] = _with_overall(category_means(scores, categories))
        draws[name] = _with_overall(category_means(resampled, categories))
    for name, (b, a) in (differences or {}).items():
        point[name] = {k: point[b][k] - point[a][k] for k in point[b]}
        draws[name] = {k: draws[b][k] - draws[a][k] for k in draws[b]}
    tail = (1 - level) / 2 * 100
    return {name: {k: Interval(float(point[name][k]), float(np.percentile(draws[name][k], tail)),
                               float(np.percentile(draws[name][k], 100 - tail))) for k in point[name]}
            for name in point}


def _with_overall(by_category: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**by_category, "overall": overall(by_category)}
