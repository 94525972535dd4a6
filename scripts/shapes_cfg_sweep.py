"""Base accuracy vs classifier-free guidance scale on the ShapesWorld benchmark (explicit mode).

    python scripts/shapes_cfg_sweep.py [--base DIR] [--scales 1 1.5 2 3] [--samples 16]

Prints strict and GenEval-rule overall scores (paired bootstrap 95% intervals over prompts and
samples) and objects drawn per image for each scale; used to pick the loop's ``sampling.cfg``.
"""

from __future__ import annotations

import argparse
import base64
from dataclasses import replace

import numpy as np

from unigen.bootstrap import paired_bootstrap
from unigen.models.loading import load_model
from unigen.worlds.shapes.grammar import benchmark_prompts
from unigen.worlds.shapes.loop import DEFAULT_BASE, evaluate
from unigen.worlds.shapes.render import from_png
from unigen.worlds.shapes.scorer import ShapesJudge
from unigen.generation import SamplingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=str(DEFAULT_BASE))
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load_model(args.base).eval()
    bench = benchmark_prompts()
    sampling = SamplingConfig(mode="explicit", max_reasoning_tokens=40, text_temperature=0.7, image_temperature=0.7)
    judge = ShapesJudge()
    print("| cfg | strict overall | GenEval-rule overall | objects per image (first samples) |\n|---:|---:|---:|---:|")
    for scale in args.scales:
        stage = evaluate(model, bench, args.samples, replace(sampling, cfg=scale), args.seed, f"cfg-{scale}")
        out = paired_bootstrap({m: np.array([stage[m]]) for m in ("strict", "geneval")}, stage["categories"])
        objects = np.mean([len(judge.detect(from_png(base64.b64decode(p)))) for p in stage["first_pngs"] if p])
        fmt = lambda i: f"{i.value:.3f} [{i.low:.3f}, {i.high:.3f}]"  # noqa: E731
        print(f"| {scale} | {fmt(out['strict']['overall'])} | {fmt(out['geneval']['overall'])} | {objects:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
