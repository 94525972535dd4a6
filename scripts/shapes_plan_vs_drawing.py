"""Where a ShapesWorld evaluation's strict score comes from: the plan or the drawing (docs/shapes.md).

    python scripts/shapes_plan_vs_drawing.py <eval folder> [<eval folder> ...]

For each evaluation folder (a loop's ``seed-<s>/eval/<phase>``), one line: the strict score, the
share of samples whose plan (the reasoning, by ``plan_score``) fully meets the prompt, and the strict
score among those: how often the model draws what it correctly planned. A second line: the share of
samples with each kind of the strict judge's findings (``missing``, ``recolored``, ``misplaced``,
``extra``, ``stray``; a sample can have several).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from unigen.evals.records import prompt_layout, read_records
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import plan_score

KINDS = ("missing", "recolored", "misplaced", "extra", "stray")


def finding_kind(finding: str) -> str:
    """The kind of one strict finding (``unigen.worlds.shapes.judge.findings``' phrases)."""
    first = finding.split()[0]
    if first in ("missing", "extra", "stray"):
        return first
    return "recolored" if " should be " in finding else "misplaced"


def plan_and_drawing(folder: Path) -> tuple[float, float, float, dict[str, float]]:
    """(strict score, correct-plan share, strict score given a correct plan, share of samples with
    each finding kind) of one evaluation."""
    judge, rows, kinds = ShapesJudge(strict=True), [], Counter()
    for record in read_records(folder).values():
        meta, _ = prompt_layout(folder, record)
        images = [f for f in record["files"] if f.endswith(".png")]
        for sample, image in zip(record["samples"], images, strict=True):
            rows.append((plan_score(sample["reasoning"], meta) >= 1.0, sample["score"]))
            kinds.update({finding_kind(f) for f in judge.findings(np.asarray(Image.open(folder / image).convert("RGB")), meta)})
    planned = [score for good, score in rows if good]
    return (sum(score for _, score in rows) / len(rows), len(planned) / len(rows),
            sum(planned) / max(len(planned), 1), {k: kinds[k] / len(rows) for k in KINDS})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    for folder in parser.parse_args().folders:
        strict, planned, drawn, kinds = plan_and_drawing(folder)
        print(f"{folder}: strict {strict:.3f}, plan correct {planned:.3f}, strict given a correct plan {drawn:.3f}")
        print("    findings (share of samples): " + ", ".join(f"{k} {v:.3f}" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
