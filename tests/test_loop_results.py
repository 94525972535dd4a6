"""The loop's typed results: phase names and labels rendered from the round, the JSON round trip of
``results.json``, and a ``results.json`` of the untyped layout refused by name."""

from __future__ import annotations

import json

import pytest

from unigen.pipeline.results import Evaluation, LoopResults, Phase, Round, SeedResults, results_path


def seed_results() -> SeedResults:
    summary = {"overall": 0.5, "categories": {"colors": {"score": 0.5}}, "switch_rate": 1.0}
    evaluations = [Evaluation(0, "explicit", None, "shapes_strict", "eval/base_explicit", summary),
                   Evaluation(0, "explicit", "dpg_bench", "vqa", "eval/base_explicit_dpg_bench", summary),
                   Evaluation(1, "unified", None, "shapes_strict", "eval/post_unified", summary),
                   Evaluation(2, "unified", None, "shapes_strict", "round-2/eval/post2_unified", summary),
                   Evaluation(2, "direct", None, "shapes_strict", "round-2/eval/post2_direct", summary)]
    rounds = [Round(1, "explicit", 2.0, 40, {"image/shapes_strict": {"count": 40, "missing": 0, "mean": 0.4}}),
              Round(2, "unified", 1.5, 40, {"image/shapes_strict": {"count": 40, "missing": 0, "mean": 0.6}})]
    return SeedResults(3, "targeted", ["post_train.yaml"], {"colors": 20}, rounds, evaluations, [2.0, 1.5, 1.0])


def test_phase_names_and_labels_render_from_the_round():
    assert [Phase(r).name for r in (0, 1, 2)] == ["base", "post", "post2"]
    assert [Phase(r).label for r in (0, 1, 2)] == ["base", "post-trained", "post-trained (round 2)"]
    assert Phase(2).key("unified") == "post2_unified" and Phase(1).key("direct", "dpg_bench") == "post_direct_dpg_bench"
    evaluations = seed_results().evaluations
    assert [e.key for e in evaluations] == ["base_explicit", "base_explicit_dpg_bench", "post_unified",
                                            "post2_unified", "post2_direct"]
    assert [e.label for e in evaluations[1:4]] == ["base, explicit, dpg_bench", "post-trained, unified",
                                                   "post-trained (round 2), unified"]


def test_seed_results_pick_the_base_the_result_and_a_phase_in_mode_order():
    results = seed_results()
    assert results.base.key == "base_explicit" and results.result.key == "post2_unified"
    assert [e.key for e in results.of(Phase(2))] == ["post2_unified", "post2_direct"]
    assert [e.key for e in results.of(results.rounds[0].phase)] == ["post_unified"]
    assert results.same(results.evaluations[4]) is results.evaluations[4]


def test_results_json_round_trip(tmp_path):
    results = seed_results()
    data = json.loads(json.dumps(results.to_json()))
    assert data["evaluations"][0] == {"round": 0, "mode": "explicit", "benchmark": None, "reward": "shapes_strict",
                                      "folder": "eval/base_explicit", "summary": results.evaluations[0].summary}
    assert SeedResults.from_json(data) == results
    loop = LoopResults([results], {"gain": {"overall": {"value": 0.1, "low": 0.0, "high": 0.2}}}, "| table |\n")
    results_path(tmp_path).write_text(json.dumps(loop.to_json()))
    assert LoopResults.read(tmp_path) == loop


def test_untyped_results_json_is_refused_by_name(tmp_path):
    results_path(tmp_path).write_text(json.dumps({"runs": [{"seed": 0, "evaluations": ["base_explicit"]}]}))
    with pytest.raises(ValueError, match=r"results schema 1, this unigen reads 2: rerun that loop"):
        LoopResults.read(tmp_path)
