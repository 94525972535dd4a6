"""DPG-Bench (TencentQQGYLab/ELLA ``dpg_bench/``): its loader and its official layout.

Loader (``dpg_bench``): the ``prompts/`` folder of ``<item_id>.txt`` files (the prompt is the whole
file) or ``dpg_bench.csv`` (one row per question), or a folder holding either; ordered by item id.
One category ("dpg"); the score is the mean over prompts (question tuples in metadata).

Layout: its scorer (``compute_dpg_bench.py``) lists every file of ``--image-root-path``
(``os.listdir``), looks up the questions of ``basename.split('.')[0]`` and crops ``--pic-num``
tiles of ``--resolution`` px in the order (0, 0), (R, 0), (0, R), (R, R): a 2x2 grid, row-major.
Written here: ``images/<item_id>.png``, the K <= 4 samples as that grid (unused slots and failures
are placeholders; one sample is written as itself). Nothing else is in ``images/``: any other file
there is read as an image.
"""

from __future__ import annotations

from pathlib import Path

from unigen.data.prompts import PromptRecord
from unigen.evals.benchmark import Benchmark, Layout
from unigen.evals.benchmarks.images import grid_png, sample_png
from unigen.evals.benchmarks.reading import csv_rows

DPG_COLUMNS = ("item_id", "text", "proposition_id", "dependency", "category_broad", "category_detailed",
               "tuple", "question_natural_language")
ROOT = "images"
MAX_SAMPLES = 4


def _dpg_from_csv(path: Path) -> list[PromptRecord]:
    items: dict[str, PromptRecord] = {}
    for lineno, row in csv_rows(path, DPG_COLUMNS):
        item, text = row["item_id"], row["text"]
        if not item.strip() or not text.strip():
            raise ValueError(f"{path}:{lineno}: empty item_id or text")
        try:
            question = {"proposition_id": int(row["proposition_id"]),
                        "dependency": [int(d) for d in row["dependency"].split(",")],
                        "category_broad": row["category_broad"], "category_detailed": row["category_detailed"],
                        "tuple": row["tuple"], "question": row["question_natural_language"]}
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: bad proposition_id/dependency: {err}") from None
        record = items.setdefault(item, PromptRecord(item, text, "dpg", {"questions": []}))
        if record.prompt != text:
            raise ValueError(f"{path}:{lineno}: item '{item}' has a different text than its earlier rows")
        record.metadata["questions"].append(question)
    return list(items.values())


def _dpg_from_txt(folder: Path) -> list[PromptRecord]:
    records = []
    for file in folder.glob("*.txt"):
        text = file.read_bytes().decode("utf-8")
        if not text.strip():
            raise ValueError(f"{file}:1: empty DPG-Bench prompt file")
        records.append(PromptRecord(file.stem, text, "dpg", {}))
    return records


def load_dpg_bench(path: str | Path) -> Benchmark:
    """DPG-Bench: one category ("dpg"); the score is the mean over prompts (question tuples in metadata)."""
    path = Path(path)
    if path.is_file():
        records = _dpg_from_csv(path)
    elif (path / "dpg_bench.csv").is_file():
        records = _dpg_from_csv(path / "dpg_bench.csv")
    else:
        records = _dpg_from_txt(path / "prompts" if (path / "prompts").is_dir() else path)
    if not records:
        raise ValueError(f"DPG-Bench: no prompts found at '{path}' (expected dpg_bench.csv or a folder of .txt)")
    return Benchmark("dpg_bench", sorted(records, key=lambda r: r.id), averaging="samples", layout=DPGBenchLayout())


class DPGBenchLayout(Layout):
    """One PNG per item: its samples as a 2x2 grid."""

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        if samples_per_prompt > MAX_SAMPLES:
            raise ValueError(f"DPG-Bench's scorer reads at most {MAX_SAMPLES} samples per prompt (a 2x2 grid), "
                             f"got samples_per_prompt={samples_per_prompt}")
        for i in indices:
            if "." in bench.prompts[i].id or "/" in bench.prompts[i].id:
                raise ValueError(f"DPG-Bench prompt {i}: item id '{bench.prompts[i].id}' has '.' or '/', "
                                 "which the scorer's file-name lookup cannot read back")

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        path = f"{ROOT}/{bench.prompts[index].id}.png"
        if len(pngs) == 1:
            return {path: sample_png(pngs[0], image_size)}
        return {path: grid_png(pngs, 2, 2, image_size)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        return (f"In TencentQQGYLab/ELLA (needs `dpg_bench/dpg_bench.csv`):\n```bash\n"
                f"PIC_NUM={samples_per_prompt} bash dpg_bench/dist_eval.sh {outdir}/{ROOT} {image_size}\n```\n")
