"""DPG-Bench (TencentQQGYLab/ELLA ``dpg_bench/compute_dpg_bench.py``).

Its scorer lists every file of ``--image-root-path`` (``os.listdir``), looks up the questions of
``basename.split('.')[0]`` and crops ``--pic-num`` tiles of ``--resolution`` px in the order
(0, 0), (R, 0), (0, R), (R, R): a 2x2 grid, row-major. Written here: ``images/<item_id>.png``,
the K <= 4 samples as that grid (unused slots and failures are placeholders; one sample is
written as itself). Nothing else is in ``images/``: any other file there is read as an image.
"""

from __future__ import annotations

from unigen.evals.benchmark import Benchmark
from unigen.evals.layouts.base import Layout, grid_png, sample_png

ROOT = "images"
MAX_SAMPLES = 4


class DPGBenchLayout(Layout):
    name = "dpg_bench"

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        if samples_per_prompt > MAX_SAMPLES:
            raise ValueError(f"DPG-Bench's scorer reads at most {MAX_SAMPLES} samples per prompt (a 2x2 grid), "
                             f"got samples_per_prompt={samples_per_prompt}")
        for i in indices:
            if "." in bench.prompts[i].id or "/" in bench.prompts[i].id:
                raise ValueError(f"DPG-Bench prompt {i}: item id '{bench.prompts[i].id}' has '.' or '/', "
                                 "which the scorer's file-name lookup cannot read back")

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        path = f"{ROOT}/{bench.prompts[index].id}.png"
        if len(pngs) == 1:
            return {path: sample_png(pngs[0], image_size)}
        return {path: grid_png(pngs, 2, 2, image_size)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        return (f"In TencentQQGYLab/ELLA (needs `dpg_bench/dpg_bench.csv`):\n```bash\n"
                f"PIC_NUM={samples_per_prompt} bash dpg_bench/dist_eval.sh {outdir}/{ROOT} {image_size}\n```\n")
