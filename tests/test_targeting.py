import json

import pytest

from benchmark_assets import real_geneval
from unigen.evals.targeting import allocate, check_no_overlap, merged_failure_rates, normalise
from unigen.cli import main as run
from unigen.data.prompts import PromptRecord, read_prompts


def test_allocation_follows_failure_rates_with_a_floor():
    counts = allocate({"a": 0.5, "b": 0.3, "c": 0.2, "d": 0.0}, budget=100, floor=0.05)
    assert counts == {"a": 45, "b": 29, "c": 21, "d": 5}
    # largest remainder: 10 over three equal weights -> 4/3/3 (tie broken by name), still sums to budget
    assert allocate({"x": 1.0, "y": 1.0, "z": 1.0}, 10) == {"x": 4, "y": 3, "z": 3}
    assert allocate({"x": 0.0, "y": 0.0}, 7, floor=0.1) == {"x": 4, "y": 3}
    assert sum(allocate({"a": 0.13, "b": 0.71, "c": 0.05}, 3500, 0.05).values()) == 3500
    with pytest.raises(ValueError, match="exceeds the budget"):
        allocate({"a": 1, "b": 1, "c": 1}, 10, floor=0.5)


def _geneval() -> str:
    return json.dumps({"class_path": "geneval", "init_args": {"path": str(real_geneval())}})


def _templates(vocabulary) -> str:
    return json.dumps({"class_path": "templates", "init_args": {"vocabulary": str(vocabulary)}})


def _summary(tmp_path, name, scores):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"averaging": "categories", "categories": {
        c: {"score": s, "scored": 4, "samples": 4} for c, s in scores.items()}}))
    return str(path)


def test_failure_rates_are_ranked_and_averaged_over_summaries(tmp_path):
    a = _summary(tmp_path, "a", {"counting": 0.2, "colors": 0.9, "position": 0.5})
    b = _summary(tmp_path, "b", {"counting": 0.4, "position": 0.1})
    rates = merged_failure_rates([a, b])
    assert list(rates) == ["counting", "position", "colors"]
    assert rates["counting"] == pytest.approx(0.7) and rates["position"] == pytest.approx(0.7)
    assert rates["colors"] == pytest.approx(0.1)


def test_overlap_check_refuses_benchmark_prompts():
    bench = ["a photo of a bench", "a photo of two clocks"]
    check_no_overlap([PromptRecord("x", "a bench on a plain background")], bench)
    with pytest.raises(ValueError, match="1 prompts copy benchmark prompts.*Two Clocks"):
        check_no_overlap([PromptRecord("x", "A photo of  Two Clocks."), PromptRecord("y", "a cat")], bench)
    assert normalise(" A photo, of a  TV-remote!") == "a photo of a tv remote"


def test_run_target_writes_allocated_new_prompts(tmp_path):
    summary = _summary(tmp_path, "s", {"counting": 0.25, "position": 0.55, "colors": 0.95, "single_object": 1.0})
    out = tmp_path / "targeted.jsonl"
    run(["target", "--strategy", "targeted", "--summaries", f"[{summary}]", "--budget", "60", "--floor", "0.05",
         "--benchmark", _geneval(), "--out", str(out)])
    records = read_prompts(out)
    by_cat = {c: [r for r in records if r.category == c] for c in ("counting", "position", "colors", "single_object")}
    # m = 3 each, rest 48 over failure rates 0.75/0.45/0.05/0 -> 28.8/17.28/1.92/0 -> 32, 20, 5, 3 (+1 remainder)
    assert {c: len(v) for c, v in by_cat.items()} == {"counting": 32, "position": 20, "colors": 5, "single_object": 3}
    geneval = {normalise(json.loads(l)["prompt"]) for l in real_geneval().read_text().splitlines()}
    assert not {normalise(r.prompt) for r in records} & geneval
    assert len({r.prompt for r in records}) == 60
    c = by_cat["counting"][0].metadata
    assert c["tag"] == "counting" and c["exclude"][0]["count"] == c["include"][0]["count"] + 1
    p = by_cat["position"][0].metadata["include"]
    assert p[1]["position"][0] in ("left of", "right of", "above", "below") and p[1]["position"][1] == 0
    plan = json.loads((tmp_path / "targeted.jsonl.plan.json").read_text())
    assert plan["budgets"] == {"counting": 32, "position": 20, "colors": 5, "single_object": 3}


def test_benchmark_aligned_follows_benchmark_mix_without_copying(tmp_path):
    out = tmp_path / "aligned.jsonl"
    run(["target", "--strategy", "benchmark_aligned", "--budget", "100", "--benchmark", _geneval(),
         "--out", str(out), "--seed", "1"])
    records = read_prompts(out)
    counts = {c: sum(r.category == c for r in records) for c in ("single_object", "two_object", "counting",
                                                                "colors", "position", "color_attr")}
    # GenEval's 80/99/80/94/100/100 of 553 scaled to 100 by largest remainder
    assert counts == {"single_object": 14, "two_object": 18, "counting": 15, "colors": 17, "position": 18,
                      "color_attr": 18}
    assert all(r.prompt.startswith("a photo of ") for r in records)
    plan = json.loads((tmp_path / "aligned.jsonl.plan.json").read_text())
    assert plan["redrawn"] > 0          # some draws hit verbatim GenEval prompts and were redrawn
    geneval = {normalise(json.loads(l)["prompt"]) for l in real_geneval().read_text().splitlines()}
    assert not {normalise(r.prompt) for r in records} & geneval


def test_broad_mix_and_custom_vocabulary(tmp_path):
    vocab = tmp_path / "vocab.yaml"
    vocab.write_text("objects: [kettle, lantern, violin]\ncolors: [teal, amber]\n")
    out = tmp_path / "broad.jsonl"
    run(["target", "--strategy", "broad", "--budget", "20", "--prompts", _templates(vocab), "--out", str(out)])
    records = read_prompts(out)
    assert [sum(r.category == c for r in records) for c in ("single_object", "two_object", "colors")] == [7, 5, 3]
    words = {w for r in records for item in r.metadata["include"] for w in (item["class"], item.get("color"))}
    assert words - {None} <= {"kettle", "lantern", "violin", "teal", "amber"}


def test_targeted_refuses_unknown_category_and_tiny_vocabulary(tmp_path):
    summary = _summary(tmp_path, "s", {"dpg": 0.3})
    with pytest.raises(ValueError, match=r"no prompt generator for categories \['dpg'\]"):
        run(["target", "--summaries", f"[{summary}]", "--out", str(tmp_path / "x.jsonl")])
    vocab = tmp_path / "v.yaml"
    vocab.write_text("objects: [kettle]\n")
    summary = _summary(tmp_path, "s2", {"single_object": 0.3})
    with pytest.raises(ValueError, match=r"\[.single_object.\].*vocabulary is too small"):
        run(["target", "--summaries", f"[{summary}]", "--budget", "10", "--prompts", _templates(vocab),
             "--out", str(tmp_path / "x.jsonl")])


def test_exhausted_category_moves_its_shortfall_when_not_targeted(tmp_path):
    vocab = tmp_path / "v.yaml"
    vocab.write_text("objects: [kettle, lantern, violin]\ncolors: [teal, amber, red]\n")
    out = tmp_path / "aligned.jsonl"
    # geneval mix over 40: single_object gets 6 but only 3 new "a photo of a X" exist
    run(["target", "--strategy", "benchmark_aligned", "--budget", "40", "--prompts", _templates(vocab),
         "--benchmark", _geneval(), "--out", str(out)])
    records = read_prompts(out)
    assert len(records) == 40 and len({r.prompt for r in records}) == 40
    assert sum(r.category == "single_object" for r in records) == 3
    plan = json.loads((tmp_path / "aligned.jsonl.plan.json").read_text())
    assert plan["budgets"]["single_object"] == 3 and sum(plan["budgets"].values()) == 40
