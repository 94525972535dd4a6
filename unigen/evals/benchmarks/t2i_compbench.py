"""T2I-CompBench (Karine-Huang/T2I-CompBench; one scorer run per category): its loader and its
official layout.

Loader (``t2i_compbench``): a ``<category>_val.txt`` file (one prompt per line, LF or CRLF) or a
folder of them (files by name, lines in order); the ``_val_seen``/``_val_action``... subsets are
not matched. The category is the file name without ``_val``.

Layout: its scorers list ``<out_dir>/samples/`` (``os.listdir``; BLIP_vqa.py, CLIP_similarity.py,
UniDet's ``generate_dataset.py``), read the prompt as ``name.split('_')[0]`` and order files by the
integer after the last ``_``. The official generation script names image n of the file
``f"{prompt}_{n:06}.png"`` with n counting over all prompts in file order, so sample k of line p is
n = p * K + k. Written here: ``<category>/samples/<prompt>_<p*K+k:06d>.png``. A prompt holding
``_`` or ``/`` (or too long for a file name) cannot be written this way and is refused up front.
"""

from __future__ import annotations

from pathlib import Path

from unigen.data.prompts import PromptRecord
from unigen.evals.benchmark import Benchmark, Layout
from unigen.evals.benchmarks.images import sample_png
from unigen.evals.benchmarks.reading import matching_files

MAX_NAME_BYTES = 255
SCORERS = {
    "color": "cd BLIPvqa_eval && python BLIP_vqa.py --out_dir={out}/",
    "shape": "cd BLIPvqa_eval && python BLIP_vqa.py --out_dir={out}/",
    "texture": "cd BLIPvqa_eval && python BLIP_vqa.py --out_dir={out}/",
    "spatial": "cd UniDet_eval && python 2D_spatial_eval.py --outpath={out}/",
    "3d_spatial": "cd UniDet_eval && python 3D_spatial_eval.py --outpath={out}/",
    "numeracy": "cd UniDet_eval && python numeracy_eval.py --outpath={out}/",
    "non_spatial": "python CLIPScore_eval/CLIP_similarity.py --outpath={out}/",
    "complex": ("(cd BLIPvqa_eval && python BLIP_vqa.py --out_dir={out}/)\n"
                "(cd UniDet_eval && python 2D_spatial_eval.py --outpath={out}/ --complex True)\n"
                "python CLIPScore_eval/CLIP_similarity.py --outpath={out}/ --complex True\n"
                "(cd 3_in_1_eval && python 3_in_1.py --outpath={out}/ --data_path=../examples/dataset/)"
                "  # 3_in_1.py assumes 10 samples per prompt"),
}


def load_t2i_compbench(path: str | Path) -> Benchmark:
    """T2I-CompBench: ``color_val.txt`` etc.; the category is the file name without ``_val``.

    Lines are split as the official generation script does (``read().splitlines()`` after universal
    newlines), so ``line`` (0-based, in metadata) numbers its images ``line * K + k``.
    """
    records = []
    for file in matching_files(Path(path), "*_val.txt"):
        category = file.stem.removesuffix("_val")
        lines = file.read_text(encoding="utf-8").splitlines()
        if not lines:
            raise ValueError(f"{file}:1: empty T2I-CompBench prompt file")
        for line_index, line in enumerate(lines):
            if not line.strip():
                raise ValueError(f"{file}:{line_index + 1}: empty prompt line")
            records.append(PromptRecord(f"{category}-{line_index:04d}", line, category, {"line": line_index}))
    return Benchmark("t2i_compbench", records, averaging="categories", layout=T2ICompBenchLayout())


def image_name(prompt: str, number: int) -> str:
    return f"{prompt}_{number:06d}.png"


class T2ICompBenchLayout(Layout):
    """One ``samples/`` folder per category, images numbered as the official generator does."""

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        for i in indices:
            prompt = bench.prompts[i].prompt
            if "_" in prompt or "/" in prompt or "\0" in prompt:
                raise ValueError(f"T2I-CompBench prompt {i} ({prompt!r}) holds '_', '/' or NUL: its scorers "
                                 "read the prompt back from the file name")
            if len(image_name(prompt, 0).encode("utf-8")) > MAX_NAME_BYTES:
                raise ValueError(f"T2I-CompBench prompt {i} is too long for a file name ({MAX_NAME_BYTES} bytes)")

    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        record = bench.prompts[index]
        first = record.metadata["line"] * len(pngs)
        return {f"{record.category}/samples/{image_name(record.prompt, first + k)}": sample_png(png, image_size)
                for k, png in enumerate(pngs)}

    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        lines = [SCORERS.get(c, "# no official scorer known for {out}").format(out=f"{outdir}/{c}")
                 for c in bench.categories]
        return "In Karine-Huang/T2I-CompBench, per category:\n```bash\n" + "\n".join(lines) + "\n```\n"
