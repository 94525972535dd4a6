"""Where a ShapesWorld evaluation's strict score comes from: the plan or the drawing (docs/shapes.md).

    python scripts/shapes_plan_vs_drawing.py <eval folder> [<eval folder> ...]

For each evaluation folder (a loop's ``seed-<s>/eval/<phase>``), one line: the strict score, the
share of samples whose plan (the reasoning, by ``plan_score``) fully meets the prompt, and the strict
score among those: how often the model draws what it correctly planned.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unigen.evals.records import prompt_layout, read_records
from unigen.worlds.shapes.plan import plan_score


def plan_and_drawing(folder: Path) -> tuple[float, float, float]:
    """(strict score, correct-plan share, strict score given a correct plan) of one evaluation."""
    rows = []
    for record in read_records(folder).values():
        meta, _ = prompt_layout(folder, record)
        rows += [(plan_score(s["reasoning"], meta) >= 1.0, s["score"]) for s in record["samples"]]
    planned = [score for good, score in rows if good]
    return (sum(score for _, score in rows) / len(rows), len(planned) / len(rows),
            sum(planned) / max(len(planned), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    for folder in parser.parse_args().folders:
        strict, planned, drawn = plan_and_drawing(folder)
        print(f"{folder}: strict {strict:.3f}, plan correct {planned:.3f}, strict given a correct plan {drawn:.3f}")


if __name__ == "__main__":
    main()
