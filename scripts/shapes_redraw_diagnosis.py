"""Why an interleaved ShapesWorld evaluation's redraws fix what they fix, per category (docs/shapes-history.md).

    python scripts/shapes_redraw_diagnosis.py <eval folder> [<eval folder> ...]

Each folder is an `interleaved` evaluation on the `shapes` benchmark (e.g. a loop's
`seed-<s>/eval/post_interleaved`); the counts add up over folders. A first image the strict judge
rejects is *wrong*; it comes from a *wrong plan* when the plan the model wrote before drawing does
not meet the prompt (the image shows the model's own mistake: looking at it tells the model nothing
its plan did not), otherwise it is a *drawing failure*. The model *described* an image right when its
`photo:` text, as a set of items, equals the strict judge's description of the same image, and *as
planned* when it equals the items of its plan. A redraw
*fixed* a wrong first image when the final image is accepted, *spoiled* a right one when it is not.
Samples that drew no image (scored 0 by the evaluation) are left out here.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from unigen.evals.records import prompt_layout, read_records
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import PlanError, last_plan, parse_plan, plan_score
from unigen.worlds.shapes.render import from_png

FIRST_IMAGES = {"samples": "samples", "wrong": "wrong first images", "wrong_plan": "from a wrong plan",
                "wrong_objects": "of them other shapes or counts", "shared_cell": "of them right objects, a cell twice",
                "other": "of them a relation or colour", "drawing": "drawing failures",
                "drawing_described": "of them described right", "drawing_as_planned": "of them described as planned",
                "wrong_described": "wrong described right"}
"""The first table's columns: what went wrong in the first images and what the model saw."""
REDRAWS = {"redraws": "redraws", "redraw_plan_right": "redraw plans right",
           "redrawn_right": "right first images redrawn",
           "spoiled": "spoiled", "redrawn_wrong": "wrong first images redrawn", "fixed": "fixed",
           "drawing_redrawn": "drawing failures redrawn", "drawing_fixed": "of them fixed"}
"""The second table's columns: what the redraws did."""


def plan_items(text: str) -> frozenset[str]:
    """The items of the last ``plan: a; b.`` in a text."""
    return photo_items(last_plan(text).removeprefix("plan:"))


def photo_items(text: str) -> frozenset[str]:
    """The items of a ``photo: a; b.`` text (up to a following ``plan:``)."""
    text = text.strip().removeprefix("photo:").split("plan:")[0].strip().rstrip(".")
    return frozenset(item.strip() for item in text.split(";") if item.strip())


def plan_fault(plan: str, metadata: dict) -> str:
    """What is wrong with a plan that does not meet the prompt: ``wrong_objects`` (other shapes or
    counts than the prompt's ``include``, or unparsable), ``shared_cell`` (the right objects, two in one
    cell) or ``other`` (a relation or a colour)."""
    try:
        items = parse_plan(plan)
    except PlanError:
        return "wrong_objects"
    asked = sorted(req["class"] for req in metadata["include"] for _ in range(req["count"]))
    if sorted(item.shape for item in items) != asked:
        return "wrong_objects"
    return "shared_cell" if len({item.cell for item in items}) < len(items) else "other"


def diagnose(folder: str | Path, judge: ShapesJudge | None = None) -> dict[str, Counter]:
    """Per category, the counts of :data:`COLUMNS` (and ``samples``, ``redraws``) of one evaluation folder."""
    judge = judge or ShapesJudge(strict=True)
    folder, found = Path(folder), {}
    records = read_records(folder)
    if not any("turns" in s for record in records.values() for s in record["samples"]):
        raise ValueError(f"'{folder}' holds no interleaved samples ({len(records)} prompt records, none with "
                         "turns): give the folder of an `interleaved` evaluation")
    for record in records.values():
        metadata, pngs = prompt_layout(folder, record)
        counts = found.setdefault(record["category"], Counter())
        for sample in record["samples"]:
            turns = sample.get("turns")
            if not turns or not turns["images"]:
                continue
            counts["samples"] += 1
            if turns["redrew"]:
                counts["redraws"] += 1
                counts["redraw_plan_right"] += plan_score(last_plan(turns["reflections"][0]), metadata) == 1.0
            if turns["first_score"] == 1:
                counts.update(redrawn_right=turns["redrew"], spoiled=turns["redrew"] and sample["score"] != 1)
                continue
            first = folder / (turns["files"][0] if turns["redrew"] else pngs[sample["k"]])
            said = photo_items(turns["reflections"][0]) if turns["reflections"] else None
            described = said == photo_items(judge.describe(from_png(first.read_bytes())))
            drawing, fixed = plan_score(sample["reasoning"], metadata) == 1.0, turns["redrew"] and sample["score"] == 1
            if not drawing:
                counts[plan_fault(sample["reasoning"], metadata)] += 1
            counts.update(wrong=1, wrong_plan=not drawing, drawing=drawing, drawing_described=drawing and described,
                          drawing_as_planned=drawing and said == plan_items(sample["reasoning"]),
                          wrong_described=described, redrawn_wrong=turns["redrew"], fixed=fixed,
                          drawing_redrawn=drawing and turns["redrew"], drawing_fixed=drawing and fixed)
    return found


def table(found: dict[str, Counter], columns: dict[str, str]) -> str:
    """Markdown of ``columns``: a row per category and the total."""
    rows = {**found, "**all**": sum(found.values(), Counter())}
    lines = ["| | " + " | ".join(columns.values()) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(str(c[k]) for k in columns) + " |" for name, c in rows.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="interleaved evaluation folders of the shapes benchmark")
    args = parser.parse_args()
    total: dict[str, Counter] = {}
    for folder in args.folders:
        for category, counts in diagnose(folder).items():
            total.setdefault(category, Counter()).update(counts)
    total = dict(sorted(total.items()))
    print(f"First images:\n\n{table(total, FIRST_IMAGES)}\n\nRedraws:\n\n{table(total, REDRAWS)}")


if __name__ == "__main__":
    main()
