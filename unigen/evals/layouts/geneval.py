"""GenEval (djghosh13/geneval ``evaluation/evaluate_images.py``).

Its scorer lists ``<imagedir>``, keeps sub-folders whose name ``isdigit()``, ``json.load``s their
``metadata.jsonl`` and scores every ``samples/`` file matching ``re.match(r"\\d+\\.png")``;
``summary_scores.py`` averages ``correct`` per tag, then over tags. Written here:

``images/<index:05d>/metadata.jsonl``  the benchmark's own line (byte-identical)
``images/<index:05d>/samples/<k:04d>.png``  sample k (the placeholder when it has no image)

It is also the layout of benchmarks without their own (``metadata.jsonl`` is then the record as JSON).
"""

from __future__ import annotations

from unigen.evals.benchmark import Benchmark
from unigen.evals.layouts.base import Layout, sample_png

ROOT = "images"


class GenEvalLayout(Layout):
    name = "geneval"

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        folder = f"{ROOT}/{index:05d}"
        files = {f"{folder}/metadata.jsonl": (bench.source_lines[index] + "\n").encode("utf-8")}
        for k, png in enumerate(pngs):
            files[f"{folder}/samples/{k:04d}.png"] = sample_png(png, image_size)
        return files

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        return (f"In djghosh13/geneval:\n```bash\npython evaluation/evaluate_images.py {outdir}/{ROOT} "
                f"--outfile {outdir}/geneval_results.jsonl --model-path <mask2former folder>\n"
                f"python evaluation/summary_scores.py {outdir}/geneval_results.jsonl\n```\n")
