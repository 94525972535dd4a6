"""WISE (PKU-YuanGroup/WISE ``vllm_eval.py``; legacy ``WISE_legacy/gpt_eval.py``).

Its evaluator opens ``os.path.join(image_dir, f"{prompt_id}.png")`` for every prompt of a category
file and skips (with a warning) the ones it cannot find; ``calculate_verified.py --category all``
checks every id 1-1000 is scored. One image per prompt, so sample k goes to its own image folder:
``sample<k>/<prompt_id>.png``, each scored as one run.
"""

from __future__ import annotations

from unigen.evals.benchmark import Benchmark
from unigen.evals.layouts.base import Layout, sample_png


class WISELayout(Layout):
    name = "wise"

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        pid = bench.prompts[index].metadata["prompt_id"]
        return {f"sample{k}/{pid}.png": sample_png(png, image_size) for k, png in enumerate(pngs)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        runs = "\n".join(f"IMAGE_DIR={outdir}/sample{k} bash eval_qwen.sh" for k in range(samples_per_prompt))
        return f"In PKU-YuanGroup/WISE (one run per sample folder; average the scores):\n```bash\n{runs}\n```\n"
