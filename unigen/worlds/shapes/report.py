"""The loop's report: strict and GenEval-rule scores per category with paired bootstrap intervals,
switch rates, the rounds, an image grid, TensorBoard scalars."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unigen.benchmarks.summary import image_grid, png_image
from unigen.bootstrap import Interval, paired_bootstrap
from unigen.files import atomic_write_bytes, atomic_write_text, png_bytes

GAIN = "gain"
"""Post-trained (unified, last round) minus base (explicit): the acceptance figure."""
REASONING = "reasoning_effect"
"""Post-trained with its reasoning (unified) minus the same model drawing directly (direct mode)."""


def _fmt(value: float | Interval | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, Interval):
        return f"{value.value:.3f} [{value.low:.3f}, {value.high:.3f}]"
    return f"{value:.3f}"


def stage_arrays(runs: list[dict], metric: str) -> dict[str, np.ndarray]:
    """Stage -> (seeds, prompts, samples) scores: the base (explicit, unified) and every round's post-trained model."""
    stages = {"base_explicit": [r["base_explicit"] for r in runs], "base_unified": [r["base_unified"] for r in runs]}
    for i in range(len(runs[0]["rounds"])):
        stages[f"round_{i + 1}"] = [r["rounds"][i]["post_unified"] for r in runs]
        if "post_direct" in runs[0]["rounds"][i]:
            stages[f"round_{i + 1}_direct"] = [r["rounds"][i]["post_direct"] for r in runs]
    return {name: np.array([s[metric] for s in per_seed], dtype=float) for name, per_seed in stages.items()}


def intervals(runs: list[dict], metric: str = "strict") -> dict[str, dict[str, Interval]]:
    """Paired bootstrap over seeds, prompts and samples: every stage, and each round's gain over the base."""
    arrays = stage_arrays(runs, metric)
    rounds = [name for name in arrays if name.startswith("round_") and not name.endswith("_direct")]
    diffs = {f"{GAIN}_{name}": (name, "base_explicit") for name in rounds}
    diffs[GAIN] = (rounds[-1], "base_explicit")
    if f"{rounds[-1]}_direct" in arrays:
        diffs[REASONING] = (rounds[-1], f"{rounds[-1]}_direct")
    return paired_bootstrap(arrays, runs[0]["base_explicit"]["categories"], differences=diffs)


def table(runs: list[dict]) -> str:
    """Markdown: base (explicit) and post-trained (unified, last round) per category, strict with
    95% intervals and the paired gain, the GenEval-rule score beside; switch rates and lengths."""
    strict, geneval = intervals(runs, "strict"), intervals(runs, "geneval")
    last = f"round_{len(runs[0]['rounds'])}"
    lines = ["| | strict: base, explicit | strict: post-trained, unified | strict: gain | "
             "GenEval rules: base | GenEval rules: post-trained |", "|---|---:|---:|---:|---:|---:|"]
    for key in strict[last]:
        label = "**overall**" if key == "overall" else key
        lines.append(f"| {label} | {_fmt(strict['base_explicit'][key])} | {_fmt(strict[last][key])} | "
                     f"{_fmt(strict[GAIN][key])} | {_fmt(geneval['base_explicit'][key].value)} | "
                     f"{_fmt(geneval[last][key].value)} |")
    mean = lambda values: float(np.mean(values))  # noqa: E731
    switch = {k: mean([r[k]["switch_rate"] for r in runs]) for k in ("base_explicit", "base_unified")}
    post = [r["rounds"][-1]["post_unified"] for r in runs]
    lines.append(f"\nSwitch rate (the model emits begin-of-image itself): base {switch['base_unified']:.3f} "
                 f"(unified; explicit mode never switches: the program appends it), post-trained "
                 f"{mean([p['switch_rate'] for p in post]):.3f}. Base left to switch by itself (unified): strict "
                 f"{_fmt(strict['base_unified']['overall'])}. Reasoning tokens: base "
                 f"{mean([r['base_explicit']['reasoning_tokens'] for r in runs]):.1f}, post-trained "
                 f"{mean([p['reasoning_tokens'] for p in post]):.1f}.")
    if REASONING in strict:
        lines.append(f"\nReasoning ablation (post-trained model, strict overall): with its reasoning "
                     f"{_fmt(strict[last]['overall'])}, drawing directly (`direct`) "
                     f"{_fmt(strict[last + '_direct']['overall'])}, difference {_fmt(strict[REASONING]['overall'])}.")
    if len(runs[0]["rounds"]) > 1:
        lines.append("\n" + rounds_table(runs, strict))
    return "\n".join(lines) + "\n"


def rounds_table(runs: list[dict], strict: dict[str, dict[str, Interval]] | None = None) -> str:
    """Markdown: per round, self-generated correct share, post-trained strict overall and gain."""
    strict = strict or intervals(runs, "strict")
    lines = ["| round | self-generated, strict-correct | post-trained strict overall | gain over base | switch rate |",
             "|---:|---:|---:|---:|---:|"]
    for i in range(len(runs[0]["rounds"])):
        name = f"round_{i + 1}"
        made = np.mean([r["rounds"][i]["self_generated"]["image_correct"] for r in runs])
        switch = np.mean([r["rounds"][i]["post_unified"]["switch_rate"] for r in runs])
        lines.append(f"| {i + 1} | {made:.3f} | {_fmt(strict[name]['overall'])} | "
                     f"{_fmt(strict[f'{GAIN}_{name}']['overall'])} | {switch:.3f} |")
    return "\n".join(lines)


def before_after_grid(before: dict, after: dict, columns: int = 9):
    """Row 1: the base (explicit), row 2: post-trained (unified); the first sample of spread-out prompts."""
    picks = np.linspace(0, len(before["prompt_ids"]) - 1, columns).round().astype(int)
    decode = lambda b64: None if b64 is None else base64.b64decode(b64)  # noqa: E731
    images = [png_image(decode(stage["first_pngs"][i])) for stage in (before, after) for i in picks]
    captions = [f"{who}: {before['categories'][i]}" for who in ("base", "post") for i in picks]
    return image_grid(images, captions, cols=columns)


def write_report(run_dir: Path, results: dict) -> None:
    """``report.md``, ``grid.png`` and TensorBoard scalars/image for one seed."""
    last = results["rounds"][-1]
    grid = before_after_grid(results["base_explicit"], last["post_unified"])
    atomic_write_bytes(run_dir / "grid.png", png_bytes(grid))
    made = ", ".join(f"round {r['round']}: {r['self_generated']['trajectories']} ({r['self_generated']['image_correct']:.3f} strict-correct)"
                     for r in results["rounds"])
    text = (f"# ShapesWorld loop, seed {results['seed']}\n\nstrategy `{results['strategy']}`, weighting "
            f"`{results['weighting']}`; training prompts per category {results['budget']}; self-generated "
            f"trajectories {made}.\n\nScores with paired bootstrap 95% intervals (prompts, samples).\n\n"
            + table([results]) + "\n![before (top) / after (bottom)](grid.png)\n")
    atomic_write_text(run_dir / "report.md", text)
    strict = intervals([results])
    with SummaryWriter(str(run_dir / "tensorboard" / "loop")) as writer:
        for stage, by_key in strict.items():
            for key, interval in by_key.items():
                writer.add_scalar(f"loop/{stage}/{key}", interval.value, 0)
        writer.add_image("loop/before_after", np.asarray(grid), 0, dataformats="HWC")


def write_table(out: Path, runs: list[dict]) -> dict:
    """``report.md`` + ``results.json`` over all seeds (intervals resample seeds too); prints the table."""
    text = table(runs)
    seeds = [r["seed"] for r in runs]
    print(f"\nShapesWorld loop over seeds {seeds} (paired bootstrap 95% intervals):\n\n{text}")
    atomic_write_text(out / "report.md", f"# ShapesWorld loop, seeds {seeds}\n\n" + text)
    summary = {name: {k: v.as_dict() for k, v in by_key.items()} for name, by_key in intervals(runs).items()}
    payload = {"seeds": seeds, "strict": summary, "table": text}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1))
    return payload


def ablation_table(root: Path) -> str:
    """One row per ``<root>/<run>/seed-*/results.json`` set: strict overall of the base, of round 1's
    post-trained model and the gain (95% intervals over seeds, prompts and samples)."""
    lines = ["| run | seeds | strict base (explicit) | strict post-trained (unified) | gain | switch rate |",
             "|---|---:|---:|---:|---:|---:|"]
    for run in sorted(p for p in root.iterdir() if p.is_dir() and list(p.glob("seed-*/results.json"))):
        runs = [json.loads(p.read_text()) for p in sorted(run.glob("seed-*/results.json"))]
        strict = intervals(runs)
        switch = np.mean([r["rounds"][0]["post_unified"]["switch_rate"] for r in runs])
        lines.append(f"| {run.name} | {len(runs)} | {_fmt(strict['base_explicit']['overall'])} | "
                     f"{_fmt(strict['round_1']['overall'])} | {_fmt(strict[GAIN + '_round_1']['overall'])} | "
                     f"{switch:.3f} |")
    return "\n".join(lines) + "\n"
