"""scripts/shapes_redraw_diagnosis.py on a hand-built interleaved evaluation folder of rendered images."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from unigen.evals.records import SampleOutput, TurnOutputs, turn_image_path, write_record
from unigen.files import png_bytes
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.plan import PlanItem, format_plan
from unigen.worlds.shapes.render import render

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "shapes_redraw_diagnosis.py"
METADATA = {"tag": "two_object", "include": [{"class": "circle", "count": 1}, {"class": "square", "count": 1}],
            "prompt": "a photo of a circle and a square"}
RIGHT = [PlanItem("red", "circle", "top left"), PlanItem("blue", "square", "bottom right")]
WRONG = [PlanItem("red", "circle", "top left"), PlanItem("blue", "triangle", "bottom right")]


def load_script():
    spec = importlib.util.spec_from_file_location("shapes_redraw_diagnosis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diagnosis_splits_wrong_plans_from_drawing_failures(tmp_path):
    judge, rng = ShapesJudge(strict=True), random.Random(0)
    image = {name: png_bytes(render(items, 32, rng)) for name, items in
             (("right", RIGHT), ("wrong", WRONG), ("circle only", RIGHT[:1]))}
    said = {name: judge.describe(render(items, 32, random.Random(1))) for name, items in
            (("right", RIGHT), ("wrong", WRONG))}
    redraw, stray = f" {format_plan(RIGHT)}", f" {format_plan(WRONG)}"
    samples = [  # (plan, first image, first score, final score, reflection or None when it did not redraw)
        (RIGHT, "right", 1.0, 1.0, None),
        (WRONG, "wrong", 0.0, 1.0, said["wrong"] + redraw),   # wrong plan, described right, fixed
        (RIGHT, "circle only", 0.0, 0.0, said["right"]),       # drawing failure, described as planned, stops
        (RIGHT, "right", 1.0, 0.0, said["right"] + stray),     # right, redrawn from a wrong plan: spoiled
    ]
    (tmp_path / "images/00000/samples").mkdir(parents=True)
    (tmp_path / "records/turns").mkdir(parents=True)
    (tmp_path / "images/00000/metadata.jsonl").write_text(json.dumps(METADATA) + "\n")
    files, outputs = ["images/00000/metadata.jsonl"], []
    for k, (plan, first, first_score, score, reflection) in enumerate(samples):
        redrew = reflection is not None and "plan:" in reflection
        final = image["right" if score == 1 else "wrong"] if redrew else image[first]
        files.append(f"images/00000/samples/{k:04d}.png")
        (tmp_path / files[-1]).write_bytes(final)
        if redrew:
            (tmp_path / turn_image_path(0, k, 0)).write_bytes(image[first])
        outputs.append(SampleOutput(final, format_plan(plan), score, turns=TurnOutputs(
            1 + redrew, [image[first]] * redrew, first_score, [reflection] if reflection else [])))
    write_record(tmp_path, 0, {"id": "p0", "category": "two_object", "prompt": METADATA["prompt"]}, files, outputs)

    script = load_script()
    found = script.diagnose(tmp_path, judge)["two_object"]
    assert dict(found) == {"samples": 4, "redraws": 2, "redraw_plan_right": 1, "redrawn_right": 1, "spoiled": 1,
                           "wrong": 2, "wrong_plan": 1, "wrong_objects": 1, "drawing": 1, "drawing_described": 0,
                           "drawing_as_planned": 1, "wrong_described": 1, "redrawn_wrong": 1, "fixed": 1,
                           "drawing_redrawn": 0, "drawing_fixed": 0}
    redraws = script.table({"two_object": found}, script.REDRAWS).splitlines()
    assert redraws[-1] == "| **all** | 2 | 1 | 1 | 1 | 1 | 1 | 0 | 0 |"


def test_plan_faults():
    fault = load_script().plan_fault
    position = {"include": [{"class": "circle", "count": 1},
                            {"class": "square", "count": 1, "position": ["left of", 0]}]}
    assert fault("plan: red circle top left; blue circle top right.", position) == "wrong_objects"
    assert fault("plan: red circle top left; blue square top right.", position) == "other"  # square right of it
    assert fault("a circle and a square", position) == "wrong_objects"  # no plan
    counting = {"include": [{"class": "circle", "count": 2}]}
    assert fault("plan: red circle top left; red circle top left.", counting) == "shared_cell"


def test_a_folder_without_interleaved_samples_or_metadata_is_refused(tmp_path):
    script = load_script()
    with pytest.raises(ValueError, match="holds no interleaved samples .0 prompt records"):
        script.diagnose(tmp_path)  # no records at all
    png = png_bytes(render(RIGHT, 32, random.Random(0)))
    write_record(tmp_path, 0, {"id": "p0", "category": "two_object", "prompt": ""}, ["images/00000/samples/0000.png"],
                 [SampleOutput(png, format_plan(RIGHT), 1.0, turns=TurnOutputs(1, [], 1.0, []))])
    with pytest.raises(ValueError, match="prompt 0 lists no metadata.jsonl"):
        script.diagnose(tmp_path)
