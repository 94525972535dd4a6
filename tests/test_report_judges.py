"""A loop whose fit is weighted by another judge than the evaluation's: its report shows both
judges' scores of the same images, the true gain, the reward judge's gain and the gap; a loop
trained on its evaluation judge (the main job) gets no such table."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from unigen.evals.bootstrap import paired_bootstrap
from unigen.pipeline.report import judges as judges_module
from unigen.pipeline.report.judges import reward_judges, weighted_rewards
from unigen.pipeline.report.tables import judges_table
from unigen.pipeline.results import Evaluation, Round, SeedResults
from unigen.registry import Spec

CATEGORIES = ["a", "a", "b", "b"]


def loop_judges(*configs: str) -> dict[str, Spec]:
    loop: dict = {}
    for path in configs:
        loop.update(yaml.safe_load((REPO / path).read_text()))
    fit = [str(REPO / p) for p in loop["fit"]["config"]]
    return reward_judges(fit, loop["score"]["rewards"], loop["evaluate"]["reward"])


def test_shipped_loops_reward_judges():
    assert loop_judges("configs/loop/shapes.yaml") == {}  # the main job trains on its evaluation judge
    tiny = loop_judges("configs/loop/tiny_geneval.yaml")
    assert list(tiny) == ["vqa"] and tiny["vqa"].value["class_path"] == "vqa_score"
    assert list(loop_judges("configs/loop/janus_pro_7b.yaml")) == ["vqa"]  # geneval (lenient) is not the metric


def test_later_callbacks_lists_replace_and_plus_appends(tmp_path):
    def weighting(name: str) -> dict:
        return {"class_path": "callbacks.reward_weighting.RewardWeighting",
                "init_args": {"image": {"scheme": "rwr", "rewards": {f"image/{name}": 1.0}}}}
    files = {"a.yaml": {"trainer": {"callbacks": [weighting("one")]}},
             "b.yaml": {"trainer": {"callbacks+": [weighting("two")]}},
             "c.yaml": {"trainer": {"callbacks": [weighting("three")]}}}
    for name, data in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(data))
    paths = [str(tmp_path / n) for n in files]
    assert weighted_rewards(paths[:2]) == {"image/one", "image/two"}
    assert weighted_rewards(paths) == {"image/three"}


def two_seed_runs() -> list[SeedResults]:
    runs = []
    for seed in (0, 1):
        base = Evaluation(0, "explicit", None, "strict", f"s{seed}/base", {})
        post = Evaluation(1, "unified", None, "strict", f"s{seed}/post", {})
        runs.append(SeedResults(seed, "targeted", [], {}, [Round(1, "explicit", None, 8, {})], [base, post], []))
    return runs


def test_judges_table_shows_true_gain_judge_gain_and_their_gap(monkeypatch):
    rng = np.random.default_rng(0)
    exact = {(s, k): (rng.random((4, 3)) < (0.3 if k == "base" else 0.5)).astype(float) for s in (0, 1)
             for k in ("base", "post")}
    # the learned judge agrees on the base's images and is fooled by 80% of the post-trained model's failures
    learned = {key: v if key[1] == "base" else np.maximum(v, rng.random(v.shape) < 0.8) for key, v in exact.items()}

    def folder_scores(folder, reward=None):
        seed, key = int(folder[1]), folder.split("/")[1]
        return CATEGORIES, (exact if reward is None else learned)[(seed, key)]

    monkeypatch.setattr(judges_module, "folder_scores", folder_scores)
    lines = judges_table(two_seed_runs(), {"learned": Spec("learned_judge")})
    assert any("weighted by `learned`, not by the evaluation judge `strict`" in line for line in lines)
    stack = lambda d, k: np.stack([d[(s, k)] for s in (0, 1)])  # noqa: E731
    expected = paired_bootstrap(
        {"eval_base": stack(exact, "base"), "judge_base": stack(learned, "base"),
         "hack_base": stack(learned, "base") - stack(exact, "base"), "eval_result": stack(exact, "post"),
         "judge_result": stack(learned, "post"), "hack_result": stack(learned, "post") - stack(exact, "post")},
        CATEGORIES,
        differences={"true_gain": ("eval_result", "eval_base"), "judge_gain": ("judge_result", "judge_base"),
                     "gap": ("hack_result", "hack_base")})
    overall = next(line for line in lines if line.startswith("| **overall**")).strip("| ").split(" | ")[1:]
    true, judged, gap = (expected[k]["overall"] for k in ("true_gain", "judge_gain", "gap"))
    assert overall[2] == f"{true.value:.3f} [{true.low:.3f}, {true.high:.3f}]"
    assert overall[5] == f"{judged.value:.3f} [{judged.low:.3f}, {judged.high:.3f}]"
    assert overall[6] == f"{gap.value:.3f} [{gap.low:.3f}, {gap.high:.3f}]"
    assert gap.value == pytest.approx(judged.value - true.value) and gap.low > 0  # the planted hacking shows
    assert judges_table(two_seed_runs(), {}) == []
