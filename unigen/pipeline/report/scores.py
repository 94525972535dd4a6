"""The report's numbers: per-sample scores read from (or re-scored in) the evaluation folders and
their paired bootstrap 95% intervals over seeds, prompts and samples.

Per-sample scores come from the evaluation folders (``scores.json`` of each prompt folder, the
evaluate stage's reward); a ``report_rewards`` entry re-scores the folders' images with another
reward for an extra column (cached in the folder as ``report-<name>.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unigen.data.trajectory import Trajectory
from unigen.evals.bootstrap import Interval, paired_bootstrap
from unigen.evals.records import prompt_layout, read_records
from unigen.evals.redraws import RedrawAccount, accounts
from unigen.evals.runner import score_samples
from unigen.files import atomic_write_text
from unigen.pipeline.results import Evaluation, SeedResults
from unigen.registry import Spec
from unigen.rewards import REWARDS

Intervals = dict[str, dict[str, Interval]]
"""Stage or difference name -> category (and ``overall``) -> interval."""

GAIN = "gain"
"""The last round's post-trained model (first post mode) minus the base (first base mode)."""
REASONING = "reasoning"
"""The last round's post-trained model with its reasoning (unified) minus drawing directly (direct)."""


def round_gain(round_: int) -> str:
    """The interval name of round ``round_``'s post-trained model (first post mode) minus the base."""
    return f"{GAIN}_round_{round_}"


def folder_scores(folder: str | Path, reward: tuple[str, Spec] | None = None) -> tuple[list[str], np.ndarray]:
    """(category per prompt, (prompts, samples) scores, NaN where unscored) of an evaluation folder:
    its own reward's (the records), or ``reward = (name, spec)`` applied to its images as the evaluate
    stage scores them (a failed sample scores 0; cached as ``report-<name>.json``). Re-scoring needs
    one image per sample and the prompt's ``metadata.jsonl`` line (GenEval's layout)."""
    if reward is None:
        return record_scores(folder)
    records = read_records(folder)
    categories = [records[i]["category"] for i in sorted(records)]
    name, spec = reward
    cache = Path(folder) / f"report-{name}.json"
    if not cache.exists():
        trajs, shape = [], (len(records), len(records[min(records)]["samples"]))
        for i in sorted(records):
            meta, pngs = prompt_layout(folder, records[i])
            if len(pngs) != shape[1]:
                raise ValueError(f"report reward '{name}': '{folder}' prompt {i} has {len(pngs)} images for "
                                 f"{shape[1]} samples; re-scoring needs GenEval's layout")
            for k, (sample, png) in enumerate(zip(records[i]["samples"], pngs)):
                data = None if sample.get("failure") else (Path(folder) / png).read_bytes()
                trajs.append(Trajectory(str(i), k, records[i]["prompt"], category=records[i]["category"],
                                        metadata=meta, png=data))
        values = score_samples(REWARDS.build(spec), trajs, records[min(records)].get("image_size", 32))
        grid = np.array([np.nan if v is None else v for v in values], dtype=float).reshape(shape)
        atomic_write_text(cache, json.dumps(grid.tolist()))
    return categories, np.array(json.loads(cache.read_text()), dtype=float)


def record_scores(folder: str | Path, first: bool = False) -> tuple[list[str], np.ndarray]:
    """(category per prompt, (prompts, samples) scores, NaN where unscored) from an evaluation
    folder's records: each sample's score (its final image's), or with ``first`` its first image's
    (``turns.first_score`` of an interleaved sample; its score when it has no turns)."""
    records = read_records(folder)

    def value(sample: dict) -> float:
        v = sample["turns"]["first_score"] if first and "turns" in sample else sample["score"]
        return np.nan if v is None else v

    return ([records[i]["category"] for i in sorted(records)],
            np.array([[value(s) for s in records[i]["samples"]] for i in sorted(records)], dtype=float))


def record_redraws(folder: str | Path) -> np.ndarray:
    """(prompts, samples) flags of an interleaved evaluation folder's records: the sample redrew."""
    records = read_records(folder)
    return np.array([[bool(s.get("turns", {}).get("redrew")) for s in records[i]["samples"]] for i in sorted(records)])


def intervals(runs: list[SeedResults], reward: tuple[str, Spec] | None = None) -> Intervals:
    """Every evaluation's per-category and overall score with its interval (by :attr:`Evaluation.key`),
    the gain, each round's gain and (with a direct-mode evaluation of the last round's model) the
    reasoning effect, paired over seeds and prompts; scored by the evaluations' reward or ``reward``."""
    stages = {}
    for evaluation in runs[0].evaluations:
        scored = [folder_scores(r.same(evaluation).folder, reward) for r in runs]
        stages[evaluation.key] = np.stack([scores for _, scores in scored])
        categories = scored[0][0]
    first = runs[0]
    differences = {GAIN: (first.result.key, first.base.key)}
    for evaluation in first.of(first.result.phase):
        if evaluation.mode == "direct":
            differences[REASONING] = (first.result.key, evaluation.key)
    for r in first.rounds:
        differences[round_gain(r.round)] = (first.of(r.phase)[0].key, first.base.key)
    return paired_bootstrap(stages, categories, differences=differences)


def turn_intervals(evaluations: list[Evaluation]) -> tuple[Intervals, dict[str, RedrawAccount]]:
    """One interleaved evaluation over seeds (``evaluations``, one per seed): the first image's score,
    the final image's and ``redraw_gain`` (final minus first per sample), each per category and
    overall with its paired bootstrap interval; and where the redraws gain and lose
    (``unigen.evals.redraws``, over all seeds)."""
    categories = record_scores(evaluations[0].folder)[0]
    stages = {name: np.stack([record_scores(e.folder, first=name == "first")[1] for e in evaluations])
              for name in ("first", "final")}
    found = paired_bootstrap(stages, categories, differences={"redraw_gain": ("final", "first")})
    redrew = np.concatenate([record_redraws(e.folder) for e in evaluations])
    return found, accounts(np.concatenate(stages["first"]), np.concatenate(stages["final"]), redrew,
                           categories * len(evaluations))


def comparison_intervals(runs: list[SeedResults], other: list[SeedResults]) -> Intervals:
    """This loop's method result (``this``) and another loop's (``other``), and ``difference`` (this
    minus other), paired over the seeds both ran and the shared evaluation prompts."""
    by_seed = {r.seed: r for r in other}
    missing = [r.seed for r in runs if r.seed not in by_seed]
    if missing:
        raise ValueError(f"compare_with: seeds {missing} are not in the other run (it has {sorted(by_seed)})")
    scored = {name: [record_scores(r.result.folder) for r in rs] for name, rs in
              (("this", runs), ("other", [by_seed[r.seed] for r in runs]))}
    categories = scored["this"][0][0]
    if any(c != categories for runs_scores in scored.values() for c, _ in runs_scores):
        raise ValueError("compare_with: the two runs' evaluations have different prompts")
    return paired_bootstrap({name: np.stack([v for _, v in values]) for name, values in scored.items()},
                            categories, differences={"difference": ("this", "other")})
