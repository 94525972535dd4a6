"""The loop's report: per-category before/after tables, switch rates, an image grid, TensorBoard."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unigen.evals.runner import first_samples
from unigen.evals.summary import image_grid, png_image
from unigen.files import atomic_write_bytes, atomic_write_text, png_bytes

PHASES = {"base": "base", "post": "post-trained"}


def label(key: str) -> str:
    """``base_explicit`` -> ``base, explicit``: the model (base / post-trained) and the generation mode."""
    phase, mode, *benchmark = key.split("_", 2)
    return f"{PHASES.get(phase, phase)}, {mode}" + (f" ({benchmark[0]})" if benchmark else "")


def _fmt(value: float | None, spread: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if spread is None else f"{value:.3f} ± {spread:.3f}"


def _rows(summaries: list[dict]) -> dict[str, list[float | None]]:
    """Metric name -> one value per summary (categories, overall, switch rate, reasoning length)."""
    categories = dict.fromkeys(c for s in summaries for c in s["categories"])
    rows = {c: [s["categories"].get(c, {}).get("score") for s in summaries] for c in categories}
    rows["**overall**"] = [s["overall"] for s in summaries]
    rows["switch rate"] = [s["switch_rate"] for s in summaries]
    rows["reasoning tokens"] = [s["mean_reasoning_tokens"] for s in summaries]
    return rows


def _mean_spread(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return None, None
    return statistics.fmean(known), (statistics.stdev(known) if len(known) > 1 else None)


def table(runs: list[dict]) -> str:
    """Markdown: one column per evaluation, mean ± spread (sample std) over the runs' seeds."""
    keys = runs[0]["evaluations"]
    columns = {key: _rows([r[key] for r in runs]) for key in keys}
    lines = ["| | " + " | ".join(label(key) for key in keys) + " |", "|---|" + "---:|" * len(keys)]
    for metric in columns[keys[0]]:
        cells = [_fmt(*_mean_spread(columns[key].get(metric, [None]))) for key in keys]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def before_after_grid(before: Path, after: Path, prompts: int = 8):
    """Row 1: the first evaluation's first sample of ``prompts`` prompts; row 2: the last evaluation's."""
    b, a = first_samples(before, prompts), first_samples(after, prompts)
    images = [png_image(png) for _, png in b] + [png_image(png) for _, png in a]
    captions = [f"base: {p}" for p, _ in b] + [f"post: {p}" for p, _ in a]
    return image_grid(images, captions, cols=len(b))


def write_report(run_dir: Path, results: dict, before: Path, after: Path) -> None:
    """``report.md``, ``grid.png`` and TensorBoard scalars/image for one seed (``before`` / ``after``:
    the evaluation folders shown in the grid)."""
    grid = before_after_grid(before, after)
    atomic_write_bytes(run_dir / "grid.png", png_bytes(grid))
    gen = results["self_generated"]
    means = ", ".join(f"{key} {stats['mean']:.3f}" for key, stats in gen["rewards"].items())
    text = (f"# Loop, seed {results['seed']}\n\nstrategy `{results['strategy']}`; training prompts per category "
            f"{results['budget']}; {gen['trajectories']} self-generated trajectories, mean rewards: {means}.\n\n"
            + table([results]) + "\n![before (top) / after (bottom)](grid.png)\n")
    atomic_write_text(run_dir / "report.md", text)
    with SummaryWriter(str(run_dir / "tensorboard" / "loop")) as writer:
        for key in results["evaluations"]:
            for metric, values in _rows([results[key]]).items():
                if values[0] is not None:
                    writer.add_scalar(f"loop/{key}/{metric.strip('*')}", values[0], 0)
        writer.add_image("loop/before_after", np.asarray(grid), 0, dataformats="HWC")


def write_seed_table(out: Path, runs: list[dict]) -> dict:
    """``report.md`` + ``results.json`` over all seeds; prints the table."""
    text = table(runs)
    print(f"\nLoop over seeds {[r['seed'] for r in runs]} (mean ± std where several):\n\n{text}")
    atomic_write_text(out / "report.md", f"# Loop, seeds {[r['seed'] for r in runs]}\n\n" + text)
    payload = {"runs": runs, "table": text}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1))
    return payload


def ablation_table(root: Path) -> str:
    """One row per ``<root>/<run>/results.json``: the first and last evaluation's overall, the gain,
    and the last evaluation's switch rate."""
    lines = ["| run | seeds | before overall | after overall | gain | switch rate after |",
             "|---|---:|---:|---:|---:|---:|"]
    for path in sorted(root.glob("*/results.json")):
        runs = json.loads(path.read_text())["runs"]
        first, last = runs[0]["evaluations"][0], runs[0]["evaluations"][-1]
        base = _mean_spread([r[first]["overall"] for r in runs])
        post = _mean_spread([r[last]["overall"] for r in runs])
        gain = _mean_spread([r[last]["overall"] - r[first]["overall"] for r in runs])
        switch = _mean_spread([r[last]["switch_rate"] for r in runs])
        lines.append(f"| {path.parent.name} | {len(runs)} | {_fmt(*base)} | {_fmt(*post)} | {_fmt(*gain)} | "
                     f"{_fmt(*switch)} |")
    return "\n".join(lines) + "\n"
