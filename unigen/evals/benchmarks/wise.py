"""WISE (PKU-YuanGroup/WISE): its loader and its official layout.

Loader (``wise``): a WISE JSON file (list of ``{"prompt_id", "Prompt", "Explanation", "Category",
"Subcategory"}``) or a folder of them without ``merge.json`` (the release's copy of all prompts;
pass it alone as a file); ordered by ``prompt_id``.

Layout: its evaluator (``vllm_eval.py``; legacy ``WISE_legacy/gpt_eval.py``) opens
``os.path.join(image_dir, f"{prompt_id}.png")`` for every prompt of a category file and skips (with
a warning) the ones it cannot find; ``calculate_verified.py --category all`` checks every id 1-1000
is scored. One image per prompt, so sample k goes to its own image folder: ``sample<k>/<prompt_id>.png``,
each scored as one run.
"""

from __future__ import annotations

import json
from pathlib import Path

from unigen.data.prompts import PromptRecord
from unigen.evals.benchmark import Benchmark, Layout
from unigen.evals.benchmarks.images import sample_png
from unigen.evals.benchmarks.reading import matching_files

WISE_MERGED = "merge.json"


def _wise_items(file: Path) -> list[PromptRecord]:
    try:
        items = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}:{err.lineno}: bad JSON: {err.msg}") from None
    if not isinstance(items, list):
        raise ValueError(f"{file}:1: expected a JSON list of prompt objects")
    records = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("prompt_id"), int) \
                or not isinstance(item.get("Prompt"), str):
            raise ValueError(f"{file}: item {n}: needs an integer 'prompt_id' and a string 'Prompt'")
        category = str(item.get("Category") or item.get("Subcategory") or file.stem)
        meta = {k: v for k, v in item.items() if k != "Prompt"}
        records.append(PromptRecord(f"wise-{item['prompt_id']}", item["Prompt"], category, meta))
    return records


def load_wise(path: str | Path) -> Benchmark:
    """WISE: category = ``Category`` (else ``Subcategory``, else the file name); ordered by prompt_id."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in matching_files(path, "*.json") if f.name != WISE_MERGED]
    if not files:
        raise ValueError(f"WISE: '{path}' holds only {WISE_MERGED}; pass that file itself")
    seen: dict[str, Path] = {}
    records = []
    for file in files:
        for record in _wise_items(file):
            if record.id in seen:
                raise ValueError(f"WISE: prompt_id {record.metadata['prompt_id']} is in both '{seen[record.id]}' "
                                 f"and '{file}'; pass the files of one release")
            seen[record.id] = file
            records.append(record)
    return Benchmark("wise", sorted(records, key=lambda r: r.metadata["prompt_id"]), averaging="samples",
                     layout=WISELayout())


class WISELayout(Layout):
    """One image folder per sample index, ``<prompt_id>.png`` in each."""

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        pid = bench.prompts[index].metadata["prompt_id"]
        return {f"sample{k}/{pid}.png": sample_png(png, image_size) for k, png in enumerate(pngs)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        runs = "\n".join(f"IMAGE_DIR={outdir}/sample{k} bash eval_qwen.sh" for k in range(samples_per_prompt))
        return f"In PKU-YuanGroup/WISE (one run per sample folder; average the scores):\n```bash\n{runs}\n```\n"
