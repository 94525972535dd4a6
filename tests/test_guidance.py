"""Guidance selection: the best scale on the validation prompts wins (ties: the first listed), each
scale is evaluated at its own CFG on the validation file, a ceiling leaves out the larger scales, and
a prompt file reads as a benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unigen.data.prompts import PromptRecord, write_prompts
from unigen.evals.benchmark import load_benchmark
from unigen.evals.summary import summary_path
from unigen.pipeline import guidance
from unigen.pipeline.evaluate import EvaluateSettings
from unigen.pipeline.guidance import GuidanceSearch, select_guidance


def _fake_evaluate(scores: dict[float, float], calls: list[EvaluateSettings]):
    def evaluate(settings: EvaluateSettings) -> Path:
        calls.append(settings)
        out = Path(settings.outdir)
        out.mkdir(parents=True)
        summary_path(out).write_text(json.dumps({"overall": scores[settings.sampling.cfg]}))
        return out
    return evaluate


@pytest.mark.parametrize("scores, chosen", [({1.0: 0.5, 1.5: 0.7, 2.0: 0.6}, 1.5),
                                            ({1.0: 0.6, 1.5: 0.6, 2.0: 0.5}, 1.0)])
def test_select_guidance_keeps_the_best_scale(tmp_path, monkeypatch, scores, chosen):
    calls: list[EvaluateSettings] = []
    monkeypatch.setattr(guidance, "evaluate", _fake_evaluate(scores, calls))
    validation = tmp_path / "validation.jsonl"
    evaluating = EvaluateSettings(benchmark="shapes", model="m", mode="unified", samples_per_prompt=32, max_prompts=3)
    search = GuidanceSearch(scales=[1.0, 1.5, 2.0], prompts=12, samples_per_prompt=2)
    assert select_guidance(search, evaluating, validation, tmp_path / "g") == chosen
    assert [c.sampling.cfg for c in calls] == [1.0, 1.5, 2.0]
    assert {(c.samples_per_prompt, c.max_prompts, c.mode, c.model) for c in calls} == {(2, None, "unified", "m")}
    assert {json.dumps(c.benchmark) for c in calls} == {json.dumps(
        {"class_path": "prompts", "init_args": {"path": str(validation)}})}
    assert [c.outdir for c in calls] == [str(tmp_path / "g" / f"cfg-{s}") for s in ("1", "1.5", "2")]
    record = json.loads((tmp_path / "g" / "guidance.json").read_text())
    assert record["chosen"] == chosen and record["scores"] == {"1": scores[1.0], "1.5": scores[1.5], "2": scores[2.0]}


def test_a_ceiling_leaves_out_the_larger_scales(tmp_path, monkeypatch):
    calls: list[EvaluateSettings] = []
    monkeypatch.setattr(guidance, "evaluate", _fake_evaluate({1.0: 0.5, 1.5: 0.6, 2.0: 0.9}, calls))
    evaluating = EvaluateSettings(benchmark="shapes", model="m", mode="unified")
    search = GuidanceSearch(scales=[1.0, 1.5, 2.0])
    assert select_guidance(search, evaluating, tmp_path / "v.jsonl", tmp_path / "g", ceiling=1.5) == 1.5
    assert [c.sampling.cfg for c in calls] == [1.0, 1.5]  # 2 is never evaluated
    assert json.loads((tmp_path / "g" / "guidance.json").read_text())["scores"] == {"1": 0.5, "1.5": 0.6}
    with pytest.raises(ValueError, match=r"no guidance scale of \[1.0, 1.5, 2.0\] is at most the ceiling 0.5"):
        select_guidance(search, evaluating, tmp_path / "v.jsonl", tmp_path / "h", ceiling=0.5)


def test_guidance_search_refuses_scales_below_one():
    with pytest.raises(ValueError, match=r"guidance scales .* >= 1, got \[0.5, 2.0\]"):
        GuidanceSearch(scales=[0.5, 2.0])
    with pytest.raises(ValueError, match="non-empty"):
        GuidanceSearch(scales=[])


def test_a_prompt_file_is_a_benchmark(tmp_path):
    path = tmp_path / "validation.jsonl"
    records = [PromptRecord("a", "a photo of a red circle", "colors", {"tag": "colors", "include": []}),
               PromptRecord("b", "a photo of two tees", "counting", {"tag": "counting", "include": []})]
    write_prompts(path, records)
    bench = load_benchmark({"class_path": "prompts", "init_args": {"path": str(path)}})
    assert bench.name == "validation" and bench.prompts == records and bench.categories == ["colors", "counting"]
