"""Base accuracy vs classifier-free guidance scale on the ShapesWorld benchmark (explicit mode).

    python scripts/shapes_cfg_sweep.py [--base DIR] [--scales 1 1.5 2 3 4] [--samples 16] [--out DIR]

One ``run.py evaluate`` per scale (folders under ``--out``, resumable); prints strict and
GenEval-rule overall scores with bootstrap 95% intervals over prompts and samples, and the objects
drawn per image: the benchmark's accuracy-vs-guidance curve of docs/shapes-history.md. (The loop chooses
each model's scale itself, on validation prompts: ``guidance`` in configs/loop/shapes.yaml.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unigen.evals.bootstrap import paired_bootstrap
from unigen.generation import SamplingConfig
from unigen.pipeline.evaluate import EvaluateSettings, evaluate
from unigen.pipeline.report.scores import folder_scores
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.render import from_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="unigen/worlds/shapes/assets/base")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 4.0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--out", default="outputs/cfg_sweep")
    args = parser.parse_args()
    judge = ShapesJudge()
    print("| cfg | strict overall | GenEval-rule overall | objects per image |\n|---:|---:|---:|---:|")
    for scale in args.scales:
        outdir = Path(args.out) / f"cfg-{scale}"
        sampling = SamplingConfig(max_reasoning_tokens=40, cfg=scale, text_temperature=0.7, image_temperature=0.7)
        evaluate(EvaluateSettings(benchmark="shapes", model=args.base, outdir=str(outdir), mode="explicit",
                                  reward="shapes_strict", samples_per_prompt=args.samples, sampling=sampling))
        categories, strict = folder_scores(outdir)
        _, geneval = folder_scores(outdir, ("shapes_geneval", "shapes_geneval"))
        out = paired_bootstrap({"strict": strict[None], "geneval": geneval[None]}, categories)
        objects = np.mean([len(judge.detect(from_png(p.read_bytes()))) for p in outdir.glob("images/*/samples/*.png")])
        fmt = lambda i: f"{i.value:.3f} [{i.low:.3f}, {i.high:.3f}]"  # noqa: E731
        print(f"| {scale} | {fmt(out['strict']['overall'])} | {fmt(out['geneval']['overall'])} | {objects:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
