"""GenEval's output layout, so the official scorers read unigen's images unchanged.

``<outdir>/<index:05d>/metadata.jsonl``  the benchmark's own line for that prompt (byte-identical)
``<outdir>/<index:05d>/samples/<n:04d>.png``  the images
``<outdir>/<index:05d>/samples/<n:04d>.txt``  the reasoning text written before each image
``<outdir>/<index:05d>/scores.json``  per-sample score, switch flag and reasoning length

A prompt folder is built under ``<index:05d>.tmp`` and renamed when complete, so a folder named by
its index is always finished (the official scripts skip non-digit names and non-``NNNN.png`` files).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SampleOutput:
    """One drawn sample of a prompt."""

    png: bytes | None
    reasoning: str
    score: float | None = None
    switched: bool = True
    reasoning_tokens: int = 0


def prompt_dir(outdir: str | Path, index: int) -> Path:
    return Path(outdir) / f"{index:05d}"


def finished_indices(outdir: str | Path) -> set[int]:
    """Indices whose prompt folder is complete (renamed into place)."""
    root = Path(outdir)
    if not root.is_dir():
        return set()
    return {int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()
            and (p / "scores.json").is_file()}


def write_prompt_folder(outdir: str | Path, index: int, source_line: str, category: str,
                        samples: list[SampleOutput]) -> Path:
    """Write one prompt's folder atomically (temporary folder + rename)."""
    final = prompt_dir(outdir, index)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "samples").mkdir(parents=True)
    (tmp / "metadata.jsonl").write_bytes((source_line + "\n").encode("utf-8"))
    rows = []
    for n, sample in enumerate(samples):
        if sample.png is not None:
            (tmp / "samples" / f"{n:04d}.png").write_bytes(sample.png)
        (tmp / "samples" / f"{n:04d}.txt").write_text(sample.reasoning, encoding="utf-8")
        rows.append({"n": n, "score": sample.score, "switched": sample.switched,
                     "reasoning_tokens": sample.reasoning_tokens, "has_image": sample.png is not None})
    (tmp / "scores.json").write_text(json.dumps({"category": category, "samples": rows}, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def read_scores(outdir: str | Path) -> dict[int, dict]:
    """Index -> the ``scores.json`` of every finished prompt folder."""
    return {i: json.loads((prompt_dir(outdir, i) / "scores.json").read_text()) for i in sorted(finished_indices(outdir))}
