"""The report's files: per seed ``report.md``, ``grid.png`` (before / after) and TensorBoard scalars;
over all seeds ``report.md`` and ``results.json`` (:class:`~unigen.pipeline.results.LoopResults`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from unigen.evals.runner import first_samples
from unigen.evals.summary import image_grid, png_image
from unigen.files import atomic_write_bytes, atomic_write_text, png_bytes
from unigen.pipeline.report.scores import Intervals, intervals
from unigen.pipeline.report.tables import comparison_table, judges_table, table
from unigen.pipeline.results import LoopResults, SeedResults, results_path
from unigen.registry import Spec

REPORT = "report.md"
GRID = "grid.png"


def before_after_grid(before: Path, after: Path, prompts: int = 8) -> Image.Image:
    """Row 1: the first evaluation's first sample of ``prompts`` prompts; row 2: the last evaluation's."""
    b, a = first_samples(before, prompts), first_samples(after, prompts)
    images = [png_image(png) for _, png in b] + [png_image(png) for _, png in a]
    captions = [f"base: {p}" for p, _ in b] + [f"post: {p}" for p, _ in a]
    return image_grid(images, captions, cols=len(b))


def _tables(runs: list[SeedResults], report_rewards: dict[str, Spec] | None,
            judges: dict[str, Spec] | None = None) -> tuple[Intervals, str]:
    """The intervals of ``runs`` (by their evaluations' reward) and the report's tables, with a column
    pair per ``report_rewards`` entry and a two-judge table per reward judge (``judges``:
    :func:`.judges.reward_judges`)."""
    main = intervals(runs)
    extra = {name: intervals(runs, (name, spec)) for name, spec in (report_rewards or {}).items()}
    text = table(runs, main, extra)
    lines = judges_table(runs, judges or {})
    return main, text + ("\n".join(lines) + "\n" if lines else "")


def write_report(run_dir: Path, results: SeedResults, report_rewards: dict[str, Spec] | None = None,
                 judges: dict[str, Spec] | None = None) -> None:
    """``report.md``, ``grid.png``, TensorBoard scalars/image and ``results.json`` for one seed
    (``judges``: the fit's reward judges that are not the evaluation reward, :func:`_tables`)."""
    main, text = _tables([results], report_rewards, judges)
    grid = before_after_grid(Path(results.base.folder), Path(results.result.folder))
    atomic_write_bytes(run_dir / GRID, png_bytes(grid))
    first = results.rounds[0]
    means = ", ".join(f"{key} {stats['mean']:.3f}" for key, stats in first.rewards.items())
    atomic_write_text(run_dir / REPORT, (
        f"# Loop, seed {results.seed}\n\nstrategy `{results.strategy}`; training prompts per category "
        f"{results.budget}; {first.trajectories} self-generated trajectories (round 1), mean rewards: "
        f"{means}.\n\nScores by {results.base.reward} with paired bootstrap 95% intervals (prompts, samples).\n\n"
        f"{text}\n![before (top) / after (bottom)]({GRID})\n"))
    with SummaryWriter(str(run_dir / "tensorboard" / "loop")) as writer:
        for key, by_category in main.items():
            for category, interval in by_category.items():
                writer.add_scalar(f"loop/{key}/{category}", interval.value, 0)
        writer.add_image("loop/before_after", np.asarray(grid), 0, dataformats="HWC")
    atomic_write_text(results_path(run_dir), json.dumps(results.to_json(), indent=1))


def write_seed_table(out: Path, runs: list[SeedResults], report_rewards: dict[str, Spec] | None = None,
                     compare_with: str | None = None, judges: dict[str, Spec] | None = None) -> LoopResults:
    """``report.md`` + ``results.json`` over all seeds (the intervals resample seeds too); prints the
    table. ``compare_with``: another finished loop's output folder, compared with this one by
    :func:`.tables.comparison_table`; ``judges``: as for :func:`write_report`."""
    main, text = _tables(runs, report_rewards, judges)
    if compare_with is not None:
        text += "\n".join(comparison_table(runs, LoopResults.read(compare_with).runs)) + "\n"
    seeds = [r.seed for r in runs]
    print(f"\nLoop over seeds {seeds}, scores by {runs[0].base.reward} (paired bootstrap 95% intervals):\n\n{text}")
    atomic_write_text(out / REPORT, f"# Loop, seeds {seeds}\n\n" + text)
    results = LoopResults(runs, {name: {k: v.as_dict() for k, v in by_key.items()} for name, by_key in main.items()},
                          text)
    atomic_write_text(results_path(out), json.dumps(results.to_json(), indent=1))
    return results
