"""Scorers for benchmarks, and how a scorer is named on the command line.

A scorer is any reward of the reward contract: ``scorer(trajectories) -> list[float | None]`` with a
``modality`` attribute, None meaning "does not apply to this sample". ``resolve_scorer`` accepts a
built-in name (``SCORERS``) or ``package.module:attribute`` (a class is instantiated without args),
so rewards from ``unigen.rewards`` plug in unchanged.

A mapping ``{class_path, init_args}`` instantiates a reward that takes arguments.

``ColorMatch`` is a small exact scorer over decoded pixels (no learned judge): each pixel is
snapped to the nearest of GenEval's ten named colors and the image scores 1 when the most common
one is a color the prompt's metadata asks for. It is a real check for flat-color images (tests,
tiny models, ShapesWorld-like data), not a replacement for GenEval's detector.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from unigen.data.trajectory import Trajectory

PALETTE = {
    "red": (255, 0, 0), "orange": (255, 165, 0), "yellow": (255, 255, 0), "green": (0, 128, 0),
    "blue": (0, 0, 255), "purple": (128, 0, 128), "pink": (255, 192, 203), "brown": (139, 69, 19),
    "black": (0, 0, 0), "white": (255, 255, 255),
}


def dominant_color(png: bytes) -> str:
    """The palette color most pixels are nearest to."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32).reshape(-1, 3)
    palette = np.array(list(PALETTE.values()), dtype=np.float32)
    nearest = ((pixels[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
    return list(PALETTE)[int(np.bincount(nearest, minlength=len(PALETTE)).argmax())]


class ColorMatch:
    """1.0 when the image's dominant color is one the prompt asks for, 0.0 otherwise (also when
    no image was drawn); None when the prompt names no color."""

    modality = "image"
    name = "color_match"

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]:
        scores: list[float | None] = []
        for traj in trajectories:
            wanted = {item["color"] for item in traj.metadata.get("include", []) if "color" in item}
            if not wanted:
                scores.append(None)
            elif traj.png is None:
                scores.append(0.0)
            else:
                scores.append(float(dominant_color(traj.png) in wanted))
        return scores


Scorer = Callable[[list[Trajectory]], list[float | None]]
SCORERS: dict[str, Callable[[], Scorer]] = {"color_match": ColorMatch}


def resolve_scorer(spec: str | dict | None) -> Scorer | None:
    """``None``/``"none"`` -> no scorer; a ``SCORERS`` name; ``module:attribute``; or
    ``{"class_path": "module.Class", "init_args": {...}}`` for a reward that takes arguments."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, dict):
        if "class_path" not in spec or set(spec) - {"class_path", "init_args"}:
            raise ValueError(f"scorer mapping needs 'class_path' (and optional 'init_args'), got {sorted(spec)}")
        module, _, name = spec["class_path"].rpartition(".")
        return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))
    if spec in SCORERS:
        return SCORERS[spec]()
    if ":" not in spec:
        raise ValueError(f"unknown scorer '{spec}': use one of {sorted(SCORERS)} or 'package.module:attribute'")
    module, attr = spec.split(":", 1)
    obj = getattr(importlib.import_module(module), attr)
    return obj() if isinstance(obj, type) else obj
