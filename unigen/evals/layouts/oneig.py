"""OneIG-Bench (OneIG-Bench/OneIG-Benchmark ``scripts/*``).

Its alignment and text scorers glob ``<image_dir>/<class>/<model>/<id>*`` and score only when
exactly one file matches; reasoning, style and diversity glob every file of
``<image_dir>/<class>/<model>/`` and take the id from the first 3 characters of its name. Each file
is a grid that ``split_mxn_grid`` cuts with ``--image_grid "c,r"`` (width // c, height // r,
row-major) and in which all-black tiles are dropped. Written here:
``images/<class>/unigen/<id>.png``, class = anime | human | object | text | reasoning |
multilingualism, the K samples as a square grid (or one row when K is not a square).
"""

from __future__ import annotations

from unigen.evals.benchmark import Benchmark
from unigen.evals.layouts.base import Layout, grid_png, sample_png, square_or_row

ROOT = "images"
MODEL = "unigen"
CLASSES = {"Anime_Stylization": "anime", "Portrait": "human", "General_Object": "object",
           "Text_Rendering": "text", "Knowledge_Reasoning": "reasoning", "Multilingualism": "multilingualism"}


class OneIGLayout(Layout):
    name = "oneig"

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        for i in indices:
            if bench.prompts[i].category not in CLASSES:
                raise ValueError(f"OneIG-Bench prompt {i}: category '{bench.prompts[i].category}' has no image "
                                 f"folder (known: {sorted(CLASSES)})")

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        record = bench.prompts[index]
        path = f"{ROOT}/{CLASSES[record.category]}/{MODEL}/{record.metadata['id']}.png"
        if len(pngs) == 1:
            return {path: sample_png(pngs[0], image_size)}
        return {path: grid_png(pngs, *square_or_row(len(pngs)), image_size)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        cols, rows = square_or_row(samples_per_prompt)
        mode = "ZH" if bench.prompts[0].metadata.get("language") == "cn" else "EN"
        return (f"In OneIG-Bench/OneIG-Benchmark, set in `run_overall.sh` (or one `run_<metric>.sh`):\n```bash\n"
                f'MODE={mode}\nIMAGE_DIR="{outdir}/{ROOT}"\nMODEL_NAMES=("{MODEL}")\nIMAGE_GRIDS=("{cols},{rows}")\n'
                f"bash run_overall.sh\n```\n")
