"""The loop's report: per-category scores of every evaluation with paired bootstrap 95% intervals
(over seeds, prompts and samples), the gain of the post-trained model over the base, switch rates,
the rounds, an image grid, TensorBoard.

Per-sample scores come from the evaluation folders (``scores.json`` of each prompt folder, the
evaluate stage's reward); a ``report_rewards`` entry re-scores the folders' images with another
reward for an extra column (cached in the folder as ``report-<name>.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unigen.data.trajectory import Trajectory
from unigen.evals.bootstrap import Interval, paired_bootstrap
from unigen.evals.records import prompt_layout, read_records
from unigen.evals.redraws import accounts
from unigen.evals.runner import first_samples, score_samples
from unigen.evals.summary import image_grid, png_image
from unigen.files import atomic_write_bytes, atomic_write_text, png_bytes
from unigen.registry import Spec
from unigen.rewards import REWARDS

PHASES = {"base": "base", "post": "post-trained"}
GAIN = "gain"
"""The last round's post-trained model (first post mode) minus the base (first base mode)."""
REASONING = "reasoning"
"""The last round's post-trained model with its reasoning (unified) minus drawing directly (direct)."""


def label(key: str) -> str:
    """``base_explicit`` -> ``base, explicit``; ``post2_unified`` -> ``post-trained (round 2), unified``."""
    phase, _, mode = key.partition("_")
    if phase.startswith("post") and phase[4:].isdigit():
        return f"post-trained (round {phase[4:]}), {mode}"
    return f"{PHASES.get(phase, phase)}, {mode}"


def _fmt(value: float | Interval | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, Interval):
        return f"{value.value:.3f} [{value.low:.3f}, {value.high:.3f}]"
    return f"{value:.3f}"


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


def intervals(runs: list[dict], reward: tuple[str, Spec] | None = None) -> dict[str, dict[str, Interval]]:
    """Every evaluation's per-category and overall score with its interval, the gain and (with a
    direct-mode evaluation) the reasoning effect, paired over seeds and prompts."""
    keys = runs[0]["evaluations"]
    stages = {}
    for key in keys:
        scored = [folder_scores(r["folders"][key], reward) for r in runs]
        stages[key] = np.stack([scores for _, scores in scored])
        categories = scored[0][0]
    last = runs[0]["rounds"][-1]["evaluations"]
    differences = {GAIN: (last[0], keys[0])}
    for key in runs[0]["evaluations"]:
        if key.startswith("post") and key.endswith("_direct") and key.split("_")[0] == last[0].split("_")[0]:
            differences[REASONING] = (last[0], key)
    for r in runs[0]["rounds"]:
        differences[f"{GAIN}_round_{r['round']}"] = (r["evaluations"][0], keys[0])
    return paired_bootstrap(stages, categories, differences=differences)


def table(runs: list[dict], main: dict[str, dict[str, Interval]], report_rewards: dict[str, Spec] | None = None) -> str:
    """Markdown of ``main`` (``intervals(runs)``): every evaluation's score with its 95% interval, the
    paired gain, extra rewards' base and post-trained values; then switch rates, reasoning lengths,
    the reasoning effect and rounds."""
    keys, last = runs[0]["evaluations"], runs[0]["rounds"][-1]["evaluations"][0]
    extra = {name: intervals(runs, (name, spec)) for name, spec in (report_rewards or {}).items()}
    head = [label(k) for k in keys] + [f"gain ({label(last)} - {label(keys[0])})"]
    head += [f"{name}: {label(k)}" for name in extra for k in (keys[0], last)]
    lines = ["| | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for cat in main[keys[0]]:
        cells = [_fmt(main[k][cat]) for k in keys] + [_fmt(main[GAIN][cat])]
        cells += [_fmt(extra[name][k][cat].value) for name in extra for k in (keys[0], last)]
        lines.append(f"| {'**overall**' if cat == 'overall' else cat} | " + " | ".join(cells) + " |")
    mean = lambda field, key: float(np.mean([r[key][field] for r in runs]))  # noqa: E731
    lines.append("\nswitch rate (the model emits begin-of-image itself): " + ", ".join(
        f"{label(k)} {mean('switch_rate', k):.3f}" for k in keys) + "; mean reasoning tokens: " + ", ".join(
        f"{label(k)} {mean('mean_reasoning_tokens', k):.1f}" for k in keys) + ".")
    if runs[0].get("guidance"):
        chosen = {phase: "/".join(f"{r['guidance'][phase]:g}" for r in runs) for phase in runs[0]["guidance"]}
        lines.append("\nguidance scale, chosen on validation prompts (per seed): "
                     + ", ".join(f"{phase} {scales}" for phase, scales in chosen.items()) + ".")
    if REASONING in main:
        lines.append(f"\nReasoning ablation, overall: with its reasoning minus drawing directly (`direct`): "
                     f"{_fmt(main[REASONING]['overall'])}.")
    lines += turns_table(runs)
    if len(runs[0]["rounds"]) > 1:
        lines += ["", "| round | generated in | trajectories | post-trained overall | gain over the base |",
                  "|---:|---|---:|---:|---:|"]
        for r in runs[0]["rounds"]:
            lines.append(f"| {r['round']} | {r['mode']} | {r['trajectories']} | "
                         f"{_fmt(main[r['evaluations'][0]]['overall'])} | "
                         f"{_fmt(main[GAIN + '_round_' + str(r['round'])]['overall'])} |")
    return "\n".join(lines) + "\n"


def record_redraws(folder: str | Path) -> np.ndarray:
    """(prompts, samples) flags of an interleaved evaluation folder's records: the sample redrew."""
    records = read_records(folder)
    return np.array([[bool(s.get("turns", {}).get("redrew")) for s in records[i]["samples"]] for i in sorted(records)])


def turns_table(runs: list[dict]) -> list[str]:
    """Lines of two tables per interleaved evaluation. First, per category and overall, the first
    image's score, the final image's (the evaluation's score) and final minus first, each with its
    paired bootstrap 95% interval over seeds, prompts and samples (per sample: score minus first
    score), and the share of samples that redrew (mean over seeds). Second, where the redraws gain
    and lose (``unigen.evals.redraws``, over all seeds)."""
    lines = []
    for key in [k for k in runs[0]["evaluations"] if "first_overall" in runs[0][k]]:
        categories = record_scores(runs[0]["folders"][key])[0]
        stages = {name: np.stack([record_scores(r["folders"][key], first=name == "first")[1] for r in runs])
                  for name in ("first", "final")}
        found = paired_bootstrap(stages, categories, differences={"redraw_gain": ("final", "first")})
        lines += ["", f"Interleaved generation, {label(key)} (scores are the final image's; paired bootstrap 95% "
                  "intervals over seeds, prompts and samples):", "",
                  "| | first image | final image | final - first | redraw share |", "|---|---:|---:|---:|---:|"]
        for cat in found["final"]:
            shares = [r[key]["redraw_share"] if cat == "overall" else r[key]["categories"][cat]["redraw_share"]
                      for r in runs]
            lines.append(f"| {'**overall**' if cat == 'overall' else cat} | {_fmt(found['first'][cat])} | "
                         f"{_fmt(found['final'][cat])} | {_fmt(found['redraw_gain'][cat])} | "
                         f"{_fmt(float(np.mean(shares)))} |")
        redrew = np.concatenate([record_redraws(r["folders"][key]) for r in runs])
        account = accounts(np.concatenate(stages["first"]), np.concatenate(stages["final"]), redrew,
                           categories * len(runs))
        lines += ["", ("Where the redraws gain and lose (all seeds; a first image *failed* when it scored below 1; "
                       "ceilings: the gain of a perfect stop-or-redraw decision, overall the mean over categories):"),
                  "", ("| | redraws / samples | improved / worsened | redraws after a failed first image | their score "
                       "| a new sample's | ceiling, new sample as redraw | ceiling, this model's redraws |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for cat, a in account.items():
            lines.append(f"| {'**overall**' if cat == 'overall' else cat} | {a.redraws} / {a.samples} | "
                         f"{a.improved} / {a.worsened} | {a.after_failed} | {_fmt(a.redraw_score)} | "
                         f"{_fmt(a.new_sample_score)} | {a.ceiling_new_sample:+.3f} | "
                         f"{'-' if a.ceiling_model is None else f'{a.ceiling_model:+.3f}'} |")
    return lines


def comparison_table(runs: list[dict], other: list[dict]) -> list[str]:
    """Lines comparing this loop's method result (its last round's first post mode, e.g. the
    interleaved model's final image) with another loop's (e.g. single-pass post-training at the same
    sample budget), paired over the seeds both ran and the shared evaluation prompts."""
    mine, theirs = runs[0]["rounds"][-1]["evaluations"][0], other[0]["rounds"][-1]["evaluations"][0]
    by_seed = {r["seed"]: r for r in other}
    missing = [r["seed"] for r in runs if r["seed"] not in by_seed]
    if missing:
        raise ValueError(f"compare_with: seeds {missing} are not in the other run (it has {sorted(by_seed)})")
    scored = {name: [record_scores(r["folders"][key]) for r in rs] for name, key, rs in
              (("this", mine, runs), ("other", theirs, [by_seed[r["seed"]] for r in runs]))}
    categories = scored["this"][0][0]
    if any(c != categories for runs_scores in scored.values() for c, _ in runs_scores):
        raise ValueError("compare_with: the two runs' evaluations have different prompts")
    found = paired_bootstrap({name: np.stack([v for _, v in values]) for name, values in scored.items()},
                             categories, differences={"difference": ("this", "other")})
    lines = ["", f"Compared with the other run ({label(theirs)}), paired bootstrap 95% intervals:", "",
             f"| | this run ({label(mine)}) | other run ({label(theirs)}) | this - other |", "|---|---:|---:|---:|"]
    for cat in found["this"]:
        lines.append(f"| {'**overall**' if cat == 'overall' else cat} | {_fmt(found['this'][cat])} | "
                     f"{_fmt(found['other'][cat])} | {_fmt(found['difference'][cat])} |")
    return lines


def before_after_grid(before: Path, after: Path, prompts: int = 8):
    """Row 1: the first evaluation's first sample of ``prompts`` prompts; row 2: the last evaluation's."""
    b, a = first_samples(before, prompts), first_samples(after, prompts)
    images = [png_image(png) for _, png in b] + [png_image(png) for _, png in a]
    captions = [f"base: {p}" for p, _ in b] + [f"post: {p}" for p, _ in a]
    return image_grid(images, captions, cols=len(b))


def write_report(run_dir: Path, results: dict, report_rewards: dict[str, Spec] | None = None) -> None:
    """``report.md``, ``grid.png`` and TensorBoard scalars/image for one seed."""
    keys, last = results["evaluations"], results["rounds"][-1]["evaluations"][0]
    main = intervals([results])
    grid = before_after_grid(Path(results["folders"][keys[0]]), Path(results["folders"][last]))
    atomic_write_bytes(run_dir / "grid.png", png_bytes(grid))
    gen = results["self_generated"]
    means = ", ".join(f"{key} {stats['mean']:.3f}" for key, stats in gen["rewards"].items())
    text = (f"# Loop, seed {results['seed']}\n\nstrategy `{results['strategy']}`; training prompts per category "
            f"{results['budget']}; {gen['trajectories']} self-generated trajectories (round 1), mean rewards: "
            f"{means}.\n\nScores with paired bootstrap 95% intervals (prompts, samples).\n\n"
            + table([results], main, report_rewards) + "\n![before (top) / after (bottom)](grid.png)\n")
    atomic_write_text(run_dir / "report.md", text)
    with SummaryWriter(str(run_dir / "tensorboard" / "loop")) as writer:
        for key, by_category in main.items():
            for category, interval in by_category.items():
                writer.add_scalar(f"loop/{key}/{category}", interval.value, 0)
        writer.add_image("loop/before_after", np.asarray(grid), 0, dataformats="HWC")


def write_seed_table(out: Path, runs: list[dict], report_rewards: dict[str, Spec] | None = None,
                     compare_with: str | None = None) -> dict:
    """``report.md`` + ``results.json`` over all seeds (the intervals resample seeds too); prints the
    table. ``compare_with``: another loop's output folder (its ``results.json``), compared with this
    one by :func:`comparison_table`."""
    main = intervals(runs)
    text = table(runs, main, report_rewards)
    if compare_with is not None:
        text += "\n".join(comparison_table(runs, json.loads((Path(compare_with) / "results.json").read_text())["runs"]))
        text += "\n"
    seeds = [r["seed"] for r in runs]
    print(f"\nLoop over seeds {seeds} (paired bootstrap 95% intervals):\n\n{text}")
    atomic_write_text(out / "report.md", f"# Loop, seeds {seeds}\n\n" + text)
    summary = {name: {k: v.as_dict() for k, v in by_key.items()} for name, by_key in main.items()}
    payload = {"runs": runs, "intervals": summary, "table": text}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1))
    return payload


def ablation_table(root: Path) -> str:
    """One row per ``<root>/<run>/results.json``: the base, round 1's post-trained model and the gain
    (overall, 95% intervals over seeds, prompts and samples), and its switch rate."""
    lines = ["| run | seeds | base | post-trained (round 1) | gain | switch rate |", "|---|---:|---:|---:|---:|---:|"]
    for path in sorted(root.glob("*/results.json")):
        runs = json.loads(path.read_text())["runs"]
        main = intervals(runs)
        first, post = runs[0]["evaluations"][0], runs[0]["rounds"][0]["evaluations"][0]
        switch = np.mean([r[post]["switch_rate"] for r in runs])
        lines.append(f"| {path.parent.name} | {len(runs)} | {_fmt(main[first]['overall'])} | "
                     f"{_fmt(main[post]['overall'])} | {_fmt(main[GAIN + '_round_1']['overall'])} | {switch:.3f} |")
    return "\n".join(lines) + "\n"
