"""When the fit is weighted by another judge than the one that evaluates: both judges' scores of the
same evaluation images, so a gain that only the reward judge sees (the reward being hacked) shows.

The *reward judges* of a loop are the score-stage rewards its fit's ``RewardWeighting`` callbacks
weight by (read from the fit's config files) whose spec differs from ``evaluate.reward``. For each,
the report re-scores the base's and the result's evaluation images (cached as
``report-<name>.json``, :func:`.scores.folder_scores`) and shows, per category and overall, the
true gain (evaluation judge), the gain the reward judge measures, and their gap (reward judge's
gain minus true gain), each with a paired bootstrap 95% interval; the gap is paired per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from unigen.evals.bootstrap import paired_bootstrap
from unigen.pipeline.report.scores import Intervals, folder_scores
from unigen.pipeline.results import SeedResults
from unigen.registry import Spec

WEIGHTING = "RewardWeighting"


def weighted_rewards(fit_configs: list[str]) -> set[str]:
    """The ``<modality>/<name>`` rewards every ``RewardWeighting`` callback of the stacked fit
    configs weights by (a ``callbacks:`` list replaces the earlier ones, ``callbacks+:`` appends)."""
    callbacks: list = []
    for path in fit_configs:
        trainer = (yaml.safe_load(Path(path).read_text()) or {}).get("trainer") or {}
        if "callbacks" in trainer:
            callbacks = list(trainer["callbacks"] or [])
        callbacks += trainer.get("callbacks+") or []
    names = set()
    for callback in callbacks:
        if isinstance(callback, dict) and str(callback.get("class_path", "")).endswith(WEIGHTING):
            for head in (callback.get("init_args") or {}).values():
                if isinstance(head, dict):
                    names.update(head.get("rewards") or {})
    return names


def reward_judges(fit_configs: list[str], score_rewards: dict[str, Spec], evaluation: Spec | None) -> dict[str, Spec]:
    """name -> spec of the score-stage rewards the fit weights by that are not the evaluation reward."""
    weighted = {key.partition("/")[2] for key in weighted_rewards(fit_configs)}
    return {name: Spec(spec) for name, spec in score_rewards.items()
            if name in weighted and Spec(spec) != Spec(evaluation)}


def judge_intervals(runs: list[SeedResults], name: str, spec: Spec) -> Intervals:
    """``true_gain``, ``judge_gain`` and ``gap`` (judge_gain - true_gain, paired per image), with the
    base's and result's scores by both judges (``eval_base``, ``eval_result``, ``judge_base``,
    ``judge_result``), per category and overall."""
    stages, categories = {}, None
    for key, pick in (("base", lambda r: r.base), ("result", lambda r: r.result)):
        for judge, reward in (("eval", None), ("judge", (name, spec))):
            scored = [folder_scores(pick(r).folder, reward) for r in runs]
            stages[f"{judge}_{key}"] = np.stack([scores for _, scores in scored])
            categories = scored[0][0]
        stages[f"hack_{key}"] = stages[f"judge_{key}"] - stages[f"eval_{key}"]
    return paired_bootstrap(stages, categories, differences={
        "true_gain": ("eval_result", "eval_base"), "judge_gain": ("judge_result", "judge_base"),
        "gap": ("hack_result", "hack_base")})
