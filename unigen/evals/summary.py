"""Per-category and overall scores, written as ``summary.json``, a Markdown table and an image grid.

``summary.json``::

    {"benchmark": "geneval", "averaging": "categories", "overall": 0.61,
     "categories": {"counting": {"score": 0.4, "scored": 320, "samples": 320, "failed": 3}, ...},
     "samples": 2212, "scored": 2212, "failed": 9, "failures": {"no_image": 7, "prompt_too_long": 2},
     "switch_rate": 0.97, "mean_reasoning_tokens": 41.2}

Scores are per sample in [0, 1] (1 = correct); a category's score is the mean of its scored
samples; ``overall`` follows the benchmark's averaging rule (``base.AVERAGING``). Samples with no
score (scorer returned None) are counted in ``samples`` but not in ``scored``. A sample without an
image (``failure`` set) is counted in ``failed`` and scores 0 wherever the scorer applies
(``evaluation.score_samples``). Interleaved runs (rows with ``turns``) score the **final** image
and add ``scored_image: "final"``, ``first_overall``, ``redraw_share`` and, per category,
``first_score`` (the first image's score) and ``redraw_share`` (``turn_summary``).
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from unigen.files import atomic_write_bytes, atomic_write_text, png_bytes


def summarize(rows: list[dict[str, Any]], averaging: str, benchmark: str = "") -> dict[str, Any]:
    """``rows``: one dict per sample with ``category``, ``score`` (float|None), ``switched``,
    ``reasoning_tokens`` and ``failure`` (None or a reason). Returns the summary dict described in
    the module docstring."""
    cats: dict[str, dict[str, Any]] = {}
    failures: dict[str, int] = {}
    for row in rows:
        entry = cats.setdefault(row["category"], {"total": 0.0, "scored": 0, "samples": 0, "failed": 0})
        entry["samples"] += 1
        if row.get("failure"):
            entry["failed"] += 1
            failures[row["failure"]] = failures.get(row["failure"], 0) + 1
        if row.get("score") is not None:
            entry["total"] += float(row["score"])
            entry["scored"] += 1
    categories = {c: {"score": e["total"] / e["scored"] if e["scored"] else None, "scored": e["scored"],
                      "samples": e["samples"], "failed": e["failed"]} for c, e in cats.items()}
    n = len(rows)
    out = {
        "benchmark": benchmark, "averaging": averaging, "overall": average(categories, averaging, "score", cats),
        "categories": categories, "samples": n, "scored": sum(e["scored"] for e in cats.values()),
        "failed": sum(failures.values()), "failures": failures,
        "switch_rate": sum(bool(r.get("switched", True)) for r in rows) / n if n else None,
        "mean_reasoning_tokens": sum(r.get("reasoning_tokens", 0) for r in rows) / n if n else None,
    }
    if any("turns" in r for r in rows):
        out.update(turn_summary(rows, categories, averaging))
    return out


def average(categories: dict[str, dict[str, Any]], averaging: str, key: str,
            totals: dict[str, dict[str, Any]] | None = None) -> float | None:
    """The overall of the categories' ``key`` scores: their mean (``categories``) or the mean over
    all their scored samples (``samples``; from the exact ``totals`` when given)."""
    rated = {c: e for c, e in categories.items() if e[key] is not None}
    if averaging == "categories":
        return sum(e[key] for e in rated.values()) / len(rated) if rated else None
    if averaging == "samples":
        scored = sum(e["scored"] for e in rated.values())
        total = sum(totals[c]["total"] if totals else e[key] * e["scored"] for c, e in rated.items())
        return total / scored if scored else None
    raise ValueError(f"unknown averaging rule '{averaging}'")


def turn_summary(rows: list[dict[str, Any]], categories: dict[str, dict[str, Any]], averaging: str) -> dict[str, Any]:
    """Interleaved samples (rows with ``turns``): each category's ``first_score`` (the first image's
    score, same rules) and ``redraw_share`` (samples that drew again) are added in place; returns the
    overall ``first_overall``, ``redraw_share`` and ``scored_image: final`` (``score`` is the final image's)."""
    firsts: dict[str, dict[str, Any]] = {}  # the first images' own totals and scored counts
    for category, entry in categories.items():
        mine = [r for r in rows if r["category"] == category]
        first = [r["turns"]["first_score"] if "turns" in r else r.get("score") for r in mine]
        first = [v for v in first if v is not None]
        entry["first_score"] = sum(first) / len(first) if first else None
        entry["redraw_share"] = sum(bool(r.get("turns", {}).get("redrew")) for r in mine) / len(mine)
        firsts[category] = {"first_score": entry["first_score"], "scored": len(first), "total": sum(first)}
    return {"scored_image": "final", "first_overall": average(firsts, averaging, "first_score", firsts),
            "redraw_share": sum(bool(r.get("turns", {}).get("redrew")) for r in rows) / len(rows)}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown_table(summary: dict[str, Any]) -> str:
    """A Markdown table: one row per category, then the overall row (interleaved runs: also the
    first image's score and the redraw share; ``score`` is the final image's)."""
    turns = "first_overall" in summary

    def extra(first: str, share: str) -> str:
        return f" {first} | {share} |" if turns else ""

    lines = ["| category | samples | failed (no image) | scored | score |" + extra("first image", "redraw share"),
             "|---|---:|---:|---:|---:|" + extra("---:", "---:").replace(" ", "")]
    for cat, e in summary["categories"].items():
        lines.append(f"| {cat} | {e['samples']} | {e['failed']} | {e['scored']} | {_fmt(e['score'])} |"
                     + extra(_fmt(e.get("first_score")), _fmt(e.get("redraw_share"))))
    lines.append(f"| **overall ({summary['averaging']})** | {summary['samples']} | {summary['failed']} | "
                 f"{summary['scored']} | **{_fmt(summary['overall'])}** |"
                 + extra(_fmt(summary.get("first_overall")), _fmt(summary.get("redraw_share"))))
    note = "\nInterleaved generation: `score` is the final image's.\n" if turns else ""
    return "\n".join(lines) + "\n" + note


def image_grid(images: list[Image.Image], captions: list[str], cols: int = 4, tile: int = 128) -> Image.Image:
    """Tiles of ``tile`` px with a wrapped caption under each (missing images drawn grey)."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    font = ImageFont.load_default()
    cap_h = 40
    rows = max(1, -(-len(images) // cols))
    grid = Image.new("RGB", (cols * tile, rows * (tile + cap_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (img, cap) in enumerate(zip(images, captions)):
        x, y = (i % cols) * tile, (i // cols) * (tile + cap_h)
        grid.paste(img.convert("RGB").resize((tile, tile), Image.NEAREST), (x, y))
        text = "\n".join(textwrap.wrap(cap, width=max(8, tile // 6))[:3])
        draw.multiline_text((x + 2, y + tile + 1), text, fill="black", font=font, spacing=1)
    return grid


PLACEHOLDER_RGB = (128, 128, 128)


def placeholder(size: int = 16) -> Image.Image:
    """Uniform mid-grey tile standing for a sample that produced no image
    (see ``unigen/evals/benchmarks/images.py``)."""
    return Image.new("RGB", (size, size), PLACEHOLDER_RGB)


def png_image(png: bytes | None) -> Image.Image:
    return placeholder() if png is None else Image.open(io.BytesIO(png))


def summary_path(outdir: str | Path) -> Path:
    """An evaluation folder's ``summary.json``."""
    return Path(outdir) / "summary.json"


def read_summary(outdir: str | Path) -> dict[str, Any]:
    """An evaluation folder's summary (the module docstring)."""
    return json.loads(summary_path(outdir).read_text())


def write_summary(outdir: str | Path, summary: dict[str, Any], grid: Image.Image | None = None,
                  notes: str = "", tmp_dir: str | Path | None = None) -> None:
    """``summary.json``, ``summary.md`` (the table, then ``notes``) and (when given) ``grid.png`` in
    ``outdir``, each atomically (temporary files in ``tmp_dir`` when given)."""
    outdir = Path(outdir)
    atomic_write_text(summary_path(outdir), json.dumps(summary, indent=2, ensure_ascii=False), tmp_dir)
    atomic_write_text(outdir / "summary.md", markdown_table(summary) + (f"\n{notes}" if notes else ""), tmp_dir)
    if grid is not None:
        atomic_write_bytes(outdir / "grid.png", png_bytes(grid), tmp_dir)


def failure_rates(summary: dict[str, Any]) -> dict[str, float]:
    """Category -> 1 - score (categories without a score are left out)."""
    return {c: 1.0 - e["score"] for c, e in summary["categories"].items() if e.get("score") is not None}
