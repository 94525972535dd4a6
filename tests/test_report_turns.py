"""The loop report's interleaved table (first image, final image, final - first with paired
bootstrap intervals) and its comparison with another run (e.g. single-pass at the same budget)."""

from __future__ import annotations

import numpy as np
import pytest

from unigen.evals.bootstrap import paired_bootstrap
from unigen.evals.records import SampleOutput, TurnOutputs, write_record
from unigen.evals.runner import sample_rows
from unigen.evals.summary import summarize
from unigen.data.prompts import PromptRecord
from unigen.pipeline.report.scores import record_scores
from unigen.pipeline.report.tables import comparison_table, turns_table
from unigen.pipeline.results import Evaluation, Round, SeedResults

CATEGORIES = ["a", "a", "b", "b"]


def evaluation(folder, first: np.ndarray, final: np.ndarray, interleaved: bool = True) -> dict:
    """An evaluation folder of (prompts, samples) first / final scores; returns its summary."""
    records = [PromptRecord(f"p{i}", f"prompt {i}", c) for i, c in enumerate(CATEGORIES)]
    groups = []
    for i, (firsts, finals) in enumerate(zip(first, final)):
        group = [SampleOutput(b"png", "", float(z), turns=TurnOutputs(1 + int(y != z), [b"x"] * int(y != z), float(y), [])
                              if interleaved else None) for y, z in zip(firsts, finals)]
        write_record(folder, i, {"id": f"p{i}", "category": CATEGORIES[i], "prompt": ""}, [], group)
        groups.append(group)
    return summarize(sample_rows(records, groups), "categories")


def runs_of(tmp_path, name: str, scores: dict[int, tuple[np.ndarray, np.ndarray]],
            interleaved: bool = True) -> list[SeedResults]:
    mode = "interleaved" if interleaved else "unified"
    runs = []
    for seed, (first, final) in scores.items():
        folder = tmp_path / name / f"seed-{seed}"
        post = Evaluation(1, mode, None, "judge", str(folder), evaluation(folder, first, final, interleaved))
        runs.append(SeedResults(seed, "targeted", [], {}, [Round(1, "explicit", None, 12, {})], [post], []))
    return runs


def scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = (rng.random((4, 3)) < 0.3).astype(float)
    final = np.maximum(first, rng.random((4, 3)) < 0.5)
    return first, final


def test_turns_table_has_paired_intervals_of_final_minus_first(tmp_path):
    by_seed = {s: scores(s) for s in (0, 1, 2)}
    runs = runs_of(tmp_path, "irg", by_seed)
    cats, firsts = record_scores(runs[0].evaluations[0].folder, first=True)
    assert cats == CATEGORIES and np.array_equal(firsts, by_seed[0][0])
    lines = turns_table(runs)
    expected = paired_bootstrap({"first": np.stack([f for f, _ in by_seed.values()]),
                                 "final": np.stack([z for _, z in by_seed.values()])}, CATEGORIES,
                                differences={"d": ("final", "first")})
    gain = expected["d"]["overall"]
    final = np.stack([z for _, z in by_seed.values()])
    first = np.stack([f for f, _ in by_seed.values()])
    by_hand = np.mean([(final - first)[:, :2].mean(), (final - first)[:, 2:].mean()])
    assert gain.value == pytest.approx(by_hand) and gain.low < gain.value < gain.high
    overall = next(line for line in lines if line.startswith("| **overall**"))
    share = np.mean([(z != f).mean() for f, z in by_seed.values()])
    assert overall == (f"| **overall** | {expected['first']['overall'].value:.3f} [{expected['first']['overall'].low:.3f}, "
                       f"{expected['first']['overall'].high:.3f}] | {expected['final']['overall'].value:.3f} "
                       f"[{expected['final']['overall'].low:.3f}, {expected['final']['overall'].high:.3f}] | "
                       f"{gain.value:.3f} [{gain.low:.3f}, {gain.high:.3f}] | {share:.3f} |")
    assert sum(line.startswith("| a |") or line.startswith("| b |") for line in lines) == 4
    # the redraw account: a sample redrew where its final score differs (final >= first here)
    redraws = sum(int((z != f).sum()) for f, z in by_seed.values())
    account = [line for line in lines if line.startswith("| **overall**")][1]
    assert account.startswith(f"| **overall** | {redraws} / 36 | {redraws} / 0 | {redraws} | 1.000 |")


def test_comparison_with_a_single_pass_run(tmp_path):
    irg = runs_of(tmp_path, "irg", {s: scores(s) for s in (0, 1)})
    single = runs_of(tmp_path, "single", {s: (scores(s + 10)[0], scores(s + 10)[0]) for s in (1, 0, 5)},
                     interleaved=False)
    lines = comparison_table(irg, single)
    mine = np.stack([scores(s)[1] for s in (0, 1)])
    theirs = np.stack([scores(s + 10)[0] for s in (0, 1)])  # paired by seed, not by list order
    expected = paired_bootstrap({"this": mine, "other": theirs}, CATEGORIES, differences={"d": ("this", "other")})
    overall = next(line for line in lines if line.startswith("| **overall**"))
    d = expected["d"]["overall"]
    assert overall.endswith(f"| {d.value:.3f} [{d.low:.3f}, {d.high:.3f}] |")
    with pytest.raises(ValueError, match=r"seeds \[0, 1\] are not in the other run"):
        comparison_table(irg, single[2:])


def test_first_overall_over_samples_counts_the_first_images_scored():
    """Under ``samples`` averaging the first images' overall divides by their own scored count
    (here 3 first scores, but only 2 final scores)."""
    rows = [{"category": "a", "score": None, "turns": {"first_score": 1.0, "redrew": True}},
            {"category": "a", "score": 1.0, "turns": {"first_score": 0.0, "redrew": True}},
            {"category": "b", "score": 1.0, "turns": {"first_score": 1.0, "redrew": False}}]
    summary = summarize(rows, "samples")
    assert summary["overall"] == 1.0 and summary["first_overall"] == pytest.approx(2 / 3)
    assert summarize(rows, "categories")["first_overall"] == pytest.approx(0.75)
