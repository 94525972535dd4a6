"""Flat test images standing for a prompt's K samples, and writing a whole benchmark with them."""

import io

from PIL import Image

from unigen.evals.runner import layout_of, write_prompt
from unigen.evals.records import SampleOutput

SIZE = 8
COLORS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250), (250, 0, 250), (90, 40, 10),
          (10, 90, 40), (40, 10, 90)]


def flat_png(rgb) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (SIZE, SIZE), rgb).save(buf, format="PNG")
    return buf.getvalue()


def samples(k: int, missing: set[int] = frozenset()) -> list[SampleOutput]:
    """Sample j is a flat image of COLORS[j], or no image (a failure) when j is in ``missing``."""
    return [SampleOutput(None if j in missing else flat_png(COLORS[j]), f"reasoning {j}", None, j not in missing, 3,
                         100 + j, "limit" if j in missing else "image", "no_image" if j in missing else None)
            for j in range(k)]


def write_all(outdir, bench, k: int, missing: set[int] = frozenset()) -> None:
    """Every prompt of ``bench`` written in its layout with ``samples(k, missing)``."""
    layout = layout_of(bench)
    layout.check(bench, list(range(len(bench.prompts))), k)
    for index in range(len(bench.prompts)):
        write_prompt(outdir, bench, layout, index, samples(k, missing), SIZE)
