"""GenEval (djghosh13/geneval): its loader and its official layout.

Loader (``geneval``): ``evaluation_metadata.jsonl``, one ``{"tag", "include", "exclude"?, "prompt"}``
per line; file order. The line is kept byte-identical for the official scorer.

Layout: its scorer (``evaluation/evaluate_images.py``) lists ``<imagedir>``, keeps sub-folders whose
name ``isdigit()``, ``json.load``s their ``metadata.jsonl`` and scores every ``samples/`` file
matching ``re.match(r"\\d+\\.png")``; ``summary_scores.py`` averages ``correct`` per tag, then over
tags. Written here:

``images/<index:05d>/metadata.jsonl``  the benchmark's own line (byte-identical)
``images/<index:05d>/samples/<k:04d>.png``  sample k (the placeholder when it has no image)

It is also the layout of benchmarks that name none (``metadata.jsonl`` is then the record as JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unigen.data.prompts import PromptRecord
from unigen.evals.benchmark import Benchmark, Layout
from unigen.evals.benchmarks.images import sample_png

ROOT = "images"


def _geneval_entry(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    for key, kind in (("tag", str), ("prompt", str), ("include", list)):
        if not isinstance(raw.get(key), kind):
            raise ValueError(f"'{key}' missing or not a {kind.__name__}")
    for item in raw["include"] + raw.get("exclude", []):
        if not isinstance(item, dict) or not isinstance(item.get("class"), str) \
                or not isinstance(item.get("count"), int):
            raise ValueError(f"include/exclude item {item!r} needs 'class' (str) and 'count' (int)")
    return raw


def load_geneval(path: str | Path) -> Benchmark:
    """GenEval: the metadata line is kept byte-identical for the official scorer."""
    prompts, lines = [], []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = _geneval_entry(json.loads(line))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}:{lineno}: bad GenEval line: {err}") from None
        meta = {k: v for k, v in raw.items() if k != "prompt"}
        prompts.append(PromptRecord(f"geneval-{len(prompts):05d}", raw["prompt"], raw["tag"], meta))
        lines.append(line)
    if not prompts:
        raise ValueError(f"GenEval file '{path}' has no prompts")
    return Benchmark("geneval", prompts, lines, averaging="categories", layout=GenEvalLayout())


class GenEvalLayout(Layout):
    """One folder per prompt: its metadata line and its samples."""

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        folder = f"{ROOT}/{index:05d}"
        files = {f"{folder}/metadata.jsonl": (bench.source_lines[index] + "\n").encode("utf-8")}
        for k, png in enumerate(pngs):
            files[f"{folder}/samples/{k:04d}.png"] = sample_png(png, image_size)
        return files

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        return (f"In djghosh13/geneval:\n```bash\npython evaluation/evaluate_images.py {outdir}/{ROOT} "
                f"--outfile {outdir}/geneval_results.jsonl --model-path <mask2former folder>\n"
                f"python evaluation/summary_scores.py {outdir}/geneval_results.jsonl\n```\n")
