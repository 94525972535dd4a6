"""The report's Markdown tables: every evaluation's scores, named by the reward that scored them,
with their intervals (from :mod:`.scores`), the gains, switch rates, rounds, interleaved turns and
comparisons with other loops."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unigen.evals.bootstrap import Interval
from unigen.pipeline.report.judges import judge_intervals
from unigen.pipeline.report.scores import (GAIN, REASONING, Intervals, comparison_intervals, intervals, round_gain,
                                           turn_intervals)
from unigen.pipeline.results import RESULTS, Evaluation, LoopResults, Phase, SeedResults
from unigen.registry import Spec


def fmt(value: float | Interval | None) -> str:
    """``0.562 [0.531, 0.594]`` for an interval, ``0.562`` for a value, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, Interval):
        return f"{value.value:.3f} [{value.low:.3f}, {value.high:.3f}]"
    return f"{value:.3f}"


def _row(category: str, cells: list[str]) -> str:
    return f"| {'**overall**' if category == 'overall' else category} | " + " | ".join(cells) + " |"


def table(runs: list[SeedResults], main: Intervals, extra: dict[str, Intervals] | None = None) -> str:
    """Markdown of ``main`` (:func:`.scores.intervals` of ``runs``): every evaluation's score with its
    95% interval and the paired gain, headed by the reward that scored them, and the base's and
    result's values of each ``extra`` reward (name -> its intervals); then switch rates, reasoning
    lengths, guidance scales, the reasoning effect, interleaved turns and rounds."""
    first, extra = runs[0], extra or {}
    base, result = first.base, first.result
    head = [_head(e, base.reward) for e in first.evaluations] + [f"gain ({result.label} - {base.label})"]
    head += [f"{name}: {e.label}" for name in extra for e in (base, result)]
    lines = [f"| {base.reward} | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for cat in main[base.key]:
        cells = [fmt(main[e.key][cat]) for e in first.evaluations] + [fmt(main[GAIN][cat])]
        cells += [fmt(extra[name][e.key][cat].value) for name in extra for e in (base, result)]
        lines.append(_row(cat, cells))
    mean = lambda field, e: float(np.mean([r.same(e).summary[field] for r in runs]))  # noqa: E731
    lines.append("\nswitch rate (the model emits begin-of-image itself): " + ", ".join(
        f"{e.label} {mean('switch_rate', e):.3f}" for e in first.evaluations) + "; mean reasoning tokens: " + ", ".join(
        f"{e.label} {mean('mean_reasoning_tokens', e):.1f}" for e in first.evaluations) + ".")
    if first.guidance:
        lines.append("\nguidance scale, chosen on validation prompts (per seed): " + ", ".join(
            f"{Phase(i).label} " + "/".join(f"{r.guidance[i]:g}" for r in runs) for i in range(len(first.guidance)))
            + ".")
    if REASONING in main:
        lines.append(f"\nReasoning ablation, overall: with its reasoning minus drawing directly (`direct`): "
                     f"{fmt(main[REASONING]['overall'])}.")
    lines += turns_table(runs)
    if len(first.rounds) > 1:
        lines += ["", f"| round | generated in | trajectories | post-trained overall ({result.reward}) | "
                  "gain over the base |", "|---:|---|---:|---:|---:|"]
        for r in first.rounds:
            post = first.of(r.phase)[0]
            lines.append(f"| {r.round} | {r.mode} | {r.trajectories} | {fmt(main[post.key]['overall'])} | "
                         f"{fmt(main[round_gain(r.round)]['overall'])} |")
    return "\n".join(lines) + "\n"


def turns_table(runs: list[SeedResults]) -> list[str]:
    """Lines of two tables per interleaved evaluation (:func:`.scores.turn_intervals`). First, per
    category and overall, the first image's score, the final image's (the evaluation's score) and
    final minus first, each with its interval, and the share of samples that redrew (mean over
    seeds). Second, where the redraws gain and lose."""
    lines = []
    for evaluation in [e for e in runs[0].evaluations if "first_overall" in e.summary]:
        over_seeds = [r.same(evaluation) for r in runs]
        found, account = turn_intervals(over_seeds)
        lines += ["", f"Interleaved generation, {evaluation.label} (scores are the final image's; paired "
                  "bootstrap 95% intervals over seeds, prompts and samples):", "",
                  f"| {evaluation.reward} | first image | final image | final - first | redraw share |",
                  "|---|---:|---:|---:|---:|"]
        for cat in found["final"]:
            shares = [e.summary["redraw_share"] if cat == "overall" else e.summary["categories"][cat]["redraw_share"]
                      for e in over_seeds]
            lines.append(_row(cat, [fmt(found["first"][cat]), fmt(found["final"][cat]), fmt(found["redraw_gain"][cat]),
                                    fmt(float(np.mean(shares)))]))
        lines += ["", ("Where the redraws gain and lose (all seeds; a first image *failed* when it scored below 1; "
                       "ceilings: the gain of a perfect stop-or-redraw decision, overall the mean over categories):"),
                  "", ("| | redraws / samples | improved / worsened | redraws after a failed first image | their score "
                       "| a new sample's | ceiling, new sample as redraw | ceiling, this model's redraws |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for cat, a in account.items():
            lines.append(_row(cat, [f"{a.redraws} / {a.samples}", f"{a.improved} / {a.worsened}", str(a.after_failed),
                                    fmt(a.redraw_score), fmt(a.new_sample_score), f"{a.ceiling_new_sample:+.3f}",
                                    "-" if a.ceiling_model is None else f"{a.ceiling_model:+.3f}"]))
    return lines


def judges_table(runs: list[SeedResults], judges: dict[str, Spec]) -> list[str]:
    """Lines of one table per reward judge (a reward the fit was weighted by that is not the
    evaluation reward, :mod:`.judges`): both judges' scores of the base's and the result's images,
    the true gain, the reward judge's gain and the gap; none without reward judges."""
    lines = []
    evaluation, base, result = runs[0].base.reward, runs[0].base.label, runs[0].result.label
    for name, spec in judges.items():
        found = judge_intervals(runs, name, spec)
        lines += ["", f"The fit was weighted by `{name}`, not by the evaluation judge `{evaluation}`: both judges "
                  "on the same evaluation images (paired bootstrap 95% intervals; gap = the reward judge's gain "
                  "minus the true gain: what the reward judge saw that did not happen):", "",
                  f"| {evaluation} vs {name} | {evaluation}: {base} | {evaluation}: {result} | true gain | "
                  f"{name}: {base} | {name}: {result} | gain by {name} | gap |", "|---|" + "---:|" * 7]
        for cat in found["true_gain"]:
            lines.append(_row(cat, [fmt(found[key][cat]) for key in (
                "eval_base", "eval_result", "true_gain", "judge_base", "judge_result", "judge_gain", "gap")]))
    return lines


def comparison_table(runs: list[SeedResults], other: list[SeedResults]) -> list[str]:
    """Lines comparing this loop's method result (e.g. the interleaved model's final image) with
    another loop's (e.g. single-pass post-training at the same sample budget):
    :func:`.scores.comparison_intervals`."""
    found = comparison_intervals(runs, other)
    headline = runs[0].result.reward
    mine, theirs = _head(runs[0].result, headline), _head(other[0].result, headline)
    lines = ["", f"Compared with the other run ({theirs}), paired bootstrap 95% intervals:", "",
             f"| {headline} | this run ({mine}) | other run ({theirs}) | this - other |", "|---|---:|---:|---:|"]
    for cat in found["this"]:
        lines.append(_row(cat, [fmt(found["this"][cat]), fmt(found["other"][cat]), fmt(found["difference"][cat])]))
    return lines


def _head(evaluation: Evaluation, headline: str) -> str:
    """An evaluation as the head of a column in a table of ``headline`` (a reward's name, in the
    table's first cell) scores: its label, prefixed by its own reward's name where that differs."""
    return evaluation.label if evaluation.reward == headline else f"{evaluation.reward}: {evaluation.label}"


def ablation_table(root: Path) -> str:
    """One row per finished loop ``<root>/<run>/``: the base, round 1's post-trained model and the
    gain (overall, 95% intervals over seeds, prompts and samples), the reward that scored them, and
    its switch rate."""
    lines = ["| run | seeds | scored by | base | post-trained (round 1) | gain | switch rate |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for folder in sorted(path.parent for path in root.glob(f"*/{RESULTS}")):
        runs = LoopResults.read(folder).runs
        main = intervals(runs)
        base, post = runs[0].base, runs[0].of(Phase(1))[0]
        switch = np.mean([r.same(post).summary["switch_rate"] for r in runs])
        lines.append(f"| {folder.name} | {len(runs)} | {base.reward} | {fmt(main[base.key]['overall'])} | "
                     f"{fmt(main[post.key]['overall'])} | {fmt(main[round_gain(1)]['overall'])} | {switch:.3f} |")
    return "\n".join(lines) + "\n"
