"""What the layouts share: the failure placeholder and sample grids.

A sample without an image is written as the placeholder: a uniform mid-grey tile. It is never
black: OneIG-Bench's scorer drops all-black tiles (``scripts/utils/utils.py: split_mxn_grid``),
which would leave the failure out of its average; GenEval's detector finds no object in it, so
every GenEval prompt (each asks for at least one object) scores it wrong.
"""

from __future__ import annotations

import io
import math

from PIL import Image

from unigen.evals.summary import PLACEHOLDER_RGB, placeholder
from unigen.files import png_bytes


def placeholder_png(size: int) -> bytes:
    """The image written for a sample that produced none."""
    return png_bytes(placeholder(size))


def sample_png(png: bytes | None, size: int) -> bytes:
    """The sample's PNG, or the placeholder when it has none."""
    return placeholder_png(size) if png is None else png


def grid_png(pngs: list[bytes | None], cols: int, rows: int, size: int) -> bytes:
    """``cols x rows`` tiles of ``size`` px, row-major (sample k at row k // cols, column k % cols);
    missing samples and unused slots are placeholders."""
    grid = Image.new("RGB", (cols * size, rows * size), PLACEHOLDER_RGB)
    for k, png in enumerate(pngs):
        if png is None:
            continue
        tile = Image.open(io.BytesIO(png)).convert("RGB")
        if tile.size != (size, size):
            raise ValueError(f"sample {k} is {tile.size[0]}x{tile.size[1]} px, expected {size}x{size}")
        grid.paste(tile, ((k % cols) * size, (k // cols) * size))
    return png_bytes(grid)


def square_or_row(samples: int) -> tuple[int, int]:
    """(cols, rows): n x n when ``samples`` is a square, else one row of ``samples``."""
    side = math.isqrt(samples)
    return (side, side) if side * side == samples else (samples, 1)
