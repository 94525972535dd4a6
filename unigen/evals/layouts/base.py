"""What every benchmark layout shares: the layout contract, the failure placeholder and grids.

A layout turns one prompt's K samples into the files its benchmark's official scorer reads
(``render``: relative path -> bytes), refuses up front what that scorer could not read back
(``check``), and names the command a user runs next (``scoring``). A sample without an image is
written as ``placeholder``: a uniform mid-grey tile. It is never black: OneIG-Bench's scorer drops
all-black tiles (``scripts/utils/utils.py: split_mxn_grid``), which would leave the failure out
of its average; GenEval's detector finds no object in it, so every GenEval prompt (each asks for
at least one object) scores it wrong.
"""

from __future__ import annotations

import io
import math
from abc import ABC, abstractmethod

from PIL import Image

from unigen.evals.benchmark import Benchmark
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


class Layout(ABC):
    """One benchmark's official output layout."""

    name: str

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        """Raise ValueError naming the prompt when one of ``indices`` cannot be laid out (before drawing)."""

    @abstractmethod
    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        """Files for prompt ``index`` (relative to the output folder) from its K samples in order."""

    @abstractmethod
    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        """The official scorer's command(s) for this folder (Markdown)."""
