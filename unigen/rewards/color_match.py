"""``color_match``: a small exact image reward over decoded pixels (no learned judge).

Each pixel is snapped to the nearest of GenEval's ten named colors and the image scores 1 when the
most common one is a color the prompt's metadata asks for. It is a real check for flat-color
images (tests, tiny models, ShapesWorld-like data), not a replacement for GenEval's detector.
"""

from __future__ import annotations

import io

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
