"""The loop's report: per-category before/after tables, switch rates, an image grid, TensorBoard."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unigen.evals.summary import image_grid, png_image
from unigen.data.trajectory import Trajectory
from unigen.files import atomic_write_bytes, atomic_write_text, png_bytes
from unigen.worlds.shapes.vocab import CATEGORIES

STAGES = (("base_explicit", "base, explicit"), ("base_unified", "base, unified"), ("post_unified", "post-trained, unified"))
"""The three evaluations: the base as used today (program appends begin-of-image), the base left
to switch by itself, and the post-trained model switching by itself."""


def _fmt(value: float | None, spread: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if spread is None else f"{value:.3f} ± {spread:.3f}"


def _rows(summaries: list[dict]) -> dict[str, list[float | None]]:
    """Metric name -> one value per summary (categories, overall, switch rate, reasoning length)."""
    rows = {c: [s["categories"].get(c, {}).get("score") for s in summaries] for c in CATEGORIES}
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
    """Markdown: one column per stage, mean ± spread (sample std) over the runs' seeds."""
    columns = {key: _rows([r[key] for r in runs]) for key, _ in STAGES}
    lines = ["| | " + " | ".join(label for _, label in STAGES) + " |", "|---|" + "---:|" * len(STAGES)]
    for metric in columns["base_explicit"]:
        cells = [_fmt(*_mean_spread(columns[key][metric])) for key, _ in STAGES]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def before_after_grid(before: list[Trajectory], after: list[Trajectory], prompts: int = 8):
    """Row 1: the base (explicit) on the first sample of ``prompts`` prompts; row 2: post-trained (unified)."""
    b, a = ([t for t in trajs if t.sample_idx == 0][:prompts] for trajs in (before, after))
    images = [png_image(t.png) for t in b] + [png_image(t.png) for t in a]
    captions = [f"base: {t.prompt}" for t in b] + [f"post: {t.prompt}" for t in a]
    return image_grid(images, captions, cols=len(b))


def write_report(run_dir: Path, results: dict, before: list[Trajectory], after: list[Trajectory]) -> None:
    """``report.md``, ``grid.png`` and TensorBoard scalars/image for one seed."""
    grid = before_after_grid(before, after)
    atomic_write_bytes(run_dir / "grid.png", png_bytes(grid))
    gen = results["self_generated"]
    text = (f"# ShapesWorld loop, seed {results['seed']}\n\nstrategy `{results['strategy']}`, weighting "
            f"`{results['weighting']}`; training prompts per category {results['budget']}; "
            f"{gen['trajectories']} self-generated trajectories, {gen['image_correct']:.3f} with a correct image.\n\n"
            + table([results]) + "\n![before (top) / after (bottom)](grid.png)\n")
    atomic_write_text(run_dir / "report.md", text)
    with SummaryWriter(str(run_dir / "tensorboard" / "loop")) as writer:
        for key, _ in STAGES:
            for metric, values in _rows([results[key]]).items():
                if values[0] is not None:
                    writer.add_scalar(f"loop/{key}/{metric.strip('*')}", values[0], 0)
        writer.add_image("loop/before_after", np.asarray(grid), 0, dataformats="HWC")


def write_seed_table(out: Path, runs: list[dict]) -> dict:
    """``report.md`` + ``results.json`` over all seeds; prints the table."""
    text = table(runs)
    print(f"\nShapesWorld loop over seeds {[r['seed'] for r in runs]} (mean ± std where several):\n\n{text}")
    atomic_write_text(out / "report.md", f"# ShapesWorld loop, seeds {[r['seed'] for r in runs]}\n\n" + text)
    payload = {"runs": runs, "table": text}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1))
    return payload


def ablation_table(root: Path) -> str:
    """One row per ``<root>/<weighting>-<strategy>/results.json``: post-trained overall and switch rate."""
    lines = ["| run | seeds | base explicit overall | post-trained overall | gain | switch rate after |",
             "|---|---:|---:|---:|---:|---:|"]
    for path in sorted(root.glob("*/results.json")):
        runs = json.loads(path.read_text())["runs"]
        base = _mean_spread([r["base_explicit"]["overall"] for r in runs])
        post = _mean_spread([r["post_unified"]["overall"] for r in runs])
        gain = _mean_spread([r["post_unified"]["overall"] - r["base_explicit"]["overall"] for r in runs])
        switch = _mean_spread([r["post_unified"]["switch_rate"] for r in runs])
        lines.append(f"| {path.parent.name} | {len(runs)} | {_fmt(*base)} | {_fmt(*post)} | {_fmt(*gain)} | "
                     f"{_fmt(*switch)} |")
    return "\n".join(lines) + "\n"
