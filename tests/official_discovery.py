"""How each benchmark's official scorer finds and reads images, rewritten from its documented behaviour.

Each function mirrors one scorer's file discovery (the file and line it follows are named), so the
tests can check that a unigen output folder is found complete by the real tools without their
models. They return what the scorer would evaluate: paths, the ids it derives, and the tiles it cuts.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from PIL import Image


def geneval_images(imagedir: Path) -> list[tuple[dict, Path]]:
    """djghosh13/geneval evaluation/evaluate_images.py:261-275: digit-named sub-folders,
    ``json.load(metadata.jsonl)``, then every file of ``samples/`` with ``re.match(r"\\d+\\.png")``."""
    found = []
    for sub in os.listdir(imagedir):
        folder = imagedir / sub
        if not folder.is_dir() or not sub.isdigit():
            continue
        with open(folder / "metadata.jsonl") as fp:
            metadata = json.load(fp)
        for name in os.listdir(folder / "samples"):
            path = folder / "samples" / name
            if path.is_file() and re.match(r"\d+\.png", name):
                found.append((metadata, path))
    return found


def geneval_correct_without_detections(metadata: dict) -> bool:
    """evaluate_images.py:160-220 (``evaluate``) when the detector finds nothing: every ``include``
    clause needs ``count`` objects of its class, ``exclude`` clauses cannot fire."""
    return all(req["count"] <= 0 for req in metadata.get("include", []))


def geneval_summary(results: list[dict]) -> dict:
    """summary_scores.py:36-45: mean ``correct`` per tag (in order of appearance), then over tags."""
    tags: dict[str, list[bool]] = {}
    for row in results:
        tags.setdefault(row["tag"], []).append(bool(row["correct"]))
    per_tag = {t: sum(v) / len(v) for t, v in tags.items()}
    return {"images": len(results), "tags": per_tag, "overall": sum(per_tag.values()) / len(per_tag)}


DPG_CROPS = ((0, 0), (1, 0), (0, 1), (1, 1))


def dpg_tiles(image_root: Path, item_ids: set[str], pic_num: int, resolution: int) -> dict[str, list[Image.Image]]:
    """TencentQQGYLab/ELLA dpg_bench/compute_dpg_bench.py:190-204 and 109-131: every entry of
    ``os.listdir(image_root)`` is opened as an image, its key is ``basename.split('.')[0]``, and the
    first ``pic_num`` crops of (0,0,R,R), (R,0,2R,R), (0,R,R,2R), (R,R,2R,2R) are scored. An entry
    that fails (unknown key, not an image) is skipped by the scorer: that is an error here."""
    tiles = {}
    for name in os.listdir(image_root):
        key = os.path.basename(name).split(".")[0]
        if key not in item_ids:
            raise AssertionError(f"DPG-Bench scorer would fail on '{name}' (no questions for key '{key}')")
        image = Image.open(image_root / name)
        tiles[key] = [image.crop((x * resolution, y * resolution, (x + 1) * resolution, (y + 1) * resolution))
                      for x, y in DPG_CROPS[:pic_num]]
    return tiles


def t2i_compbench_images(out_dir: Path) -> list[tuple[int, str, Path]]:
    """Karine-Huang/T2I-CompBench BLIPvqa_eval/BLIP_vqa.py:20-31 and CLIPScore_eval/CLIP_similarity.py:47-59:
    ``os.listdir(<out_dir>/samples)`` sorted by ``int(name.split("_")[-1].split('.')[0])``, prompt =
    ``name.split('_')[0]``; UniDet_eval/experts/obj_detection/generate_dataset.py:24-25 sorts by
    ``int(name.split("_")[1].split('.')[0])`` (so exactly one ``_``). Returns (number, prompt, path)."""
    samples = out_dir / "samples"
    names = os.listdir(samples)
    names.sort(key=lambda x: int(x.split("_")[-1].split(".")[0]))
    unidet = sorted(names, key=lambda x: int(x.split("_")[1].split(".")[0]))
    assert unidet == names
    return [(int(n.split("_")[-1].split(".")[0]), n.split("_")[0], samples / n) for n in names]


def wise_missing(image_dir: Path, prompt_ids: list[int]) -> list[int]:
    """PKU-YuanGroup/WISE vllm_eval.py:264-271: ``os.path.join(image_dir, f"{pid}.png")`` per prompt;
    a missing one is skipped with a warning (and calculate_verified.py then lacks its id)."""
    return [pid for pid in prompt_ids if not os.path.exists(os.path.join(image_dir, f"{pid}.png"))]


def oneig_tiles(image_dir: Path, class_item: str, model: str, ids: list[str], grid: tuple[int, int]) -> dict:
    """OneIG-Bench/OneIG-Benchmark scripts/alignment/alignment_score.py:102 (and text_score.py:59):
    ``glob(<image_dir>/<class>/<model>/<id>*)`` must match exactly one file (else the prompt is
    skipped), cut by scripts/utils/utils.py:26-58 ``split_mxn_grid`` (grid "c,r": width // c,
    height // r, row-major), all-black tiles dropped. reasoning_score.py:45-55 globs every file of
    the model folder and takes the id from ``name[:3]``: every file there must be a prompt's."""
    folder = image_dir / class_item / model
    for name in os.listdir(folder):
        assert name[:3] in ids, f"reasoning/style scorers would read '{name}' as prompt id '{name[:3]}'"
    out = {}
    for pid in ids:
        matches = sorted(folder.glob(pid + "*"))
        assert len(matches) == 1, f"OneIG scorer skips id {pid}: {len(matches)} files match"
        image = Image.open(matches[0]).convert("RGB")
        w, h = image.width // grid[0], image.height // grid[1]
        tiles = [image.crop((j * w, i * h, (j + 1) * w, (i + 1) * h)) for i in range(grid[1]) for j in range(grid[0])]
        out[pid] = [t for t in tiles if t.getextrema() != ((0, 0), (0, 0), (0, 0))]
    return out
