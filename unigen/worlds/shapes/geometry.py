"""Shape masks (renderer and judge) and boxes; GenEval's relative-position rule is
``unigen.rewards.geneval_rules.relative_position``."""

from __future__ import annotations

import numpy as np

from unigen.rewards.geneval_rules import relative_position  # noqa: F401  (re-exported for the world)


def shape_mask(shape: str, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of ``shape`` filling its box, sampled at pixel centres."""
    v, u = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
    if shape == "square":
        return np.ones((height, width), dtype=bool)
    if shape == "circle":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if shape == "triangle":  # apex at the top centre, base along the bottom edge
        return np.abs(u - 0.5) <= v / 2 + 0.5 / width
    if shape == "cross":  # a plus sign, arms a third of the box wide
        return (np.abs(u - 0.5) <= 1 / 6 + 1e-9) | (np.abs(v - 0.5) <= 1 / 6 + 1e-9)
    if shape == "diamond":  # corners at the edge midpoints
        return np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.5 + 0.5 / width
    if shape == "tee":  # a capital T: a bar across the top third, a stem a third wide
        return (v <= 1 / 3 + 1e-9) | (np.abs(u - 0.5) <= 1 / 6 + 1e-9)
    raise ValueError(f"unknown shape '{shape}'")


Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1), y grows downwards."""
