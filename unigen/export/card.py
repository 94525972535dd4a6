"""The model card (``README.md``) of an exported model: where it came from and how it scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from unigen.models.unified import TokenSpec

USAGE = '''```python
import torch
from transformers import AutoProcessor, JanusForConditionalGeneration

model = JanusForConditionalGeneration.from_pretrained("{name}")
processor = AutoProcessor.from_pretrained("{name}")
messages = [{{"role": "user", "content": "a red cube on a blue sphere"}}]
prompt = processor.apply_chat_template(messages)
inputs = processor(text=[prompt], generation_mode="image", return_tensors="pt")
ids = model.generate(**inputs, generation_mode="image", do_sample=True)  # CFG scale from generation_config
pixels = model.decode_image_tokens(ids).permute(0, 3, 1, 2).float()  # (batch, 3, H, W) in [-1, 1]
images = processor.postprocess(list(pixels), return_tensors="PIL.Image.Image",
                               input_data_format="channels_first")["pixel_values"]
```'''


def read_summary(path: str | Path) -> dict[str, Any]:
    """An evaluation ``summary.json``, with an error naming the file when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation summary '{path}' does not exist")
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"evaluation summary '{path}' is not valid JSON: {err}") from err
    if not isinstance(summary, dict):
        raise ValueError(f"evaluation summary '{path}' must hold a JSON object, found {type(summary).__name__}")
    return summary


def _yaml_block(data: dict[str, Any]) -> str:
    plain = json.loads(json.dumps(data, default=str))  # tuples -> lists, anything odd -> str
    return "```yaml\n" + yaml.safe_dump(plain, sort_keys=False).rstrip() + "\n```"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _flat_scalars(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flat_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            rows.append((f"{prefix}{key}", value))
    return rows


def evaluation_section(summary: dict[str, Any] | None, source: str | None) -> str:
    """A table per category (unigen's benchmark ``summary.json``) or of every scalar in the file."""
    if summary is None:
        return "No evaluation summary was given at export time."
    lines = [f"From `{source}`.", ""] if source else []
    categories = summary.get("categories")
    if isinstance(categories, dict) and "overall" in summary:
        lines += [f"Benchmark: **{summary.get('benchmark') or 'unnamed'}**, overall "
                  f"({summary.get('averaging', 'mean')}): **{_fmt(summary['overall'])}**", "",
                  "| category | score | scored / samples |", "|---|---:|---:|"]
        for name, entry in categories.items():
            entry = entry if isinstance(entry, dict) else {"score": entry}
            lines.append(f"| {name} | {_fmt(entry.get('score'))} | {entry.get('scored', '-')} / "
                         f"{entry.get('samples', '-')} |")
        extra = {k: v for k, v in summary.items() if k not in {"categories", "overall", "benchmark", "averaging"}}
    else:
        extra = summary
    rows = _flat_scalars(extra)
    if rows:
        lines += ["", "| metric | value |", "|---|---:|", *(f"| {k} | {_fmt(v)} |" for k, v in rows)]
    return "\n".join(lines).strip()


def render_card(
    name: str,
    checkpoint: dict[str, Any],
    checkpoint_path: str,
    spec: TokenSpec,
    guidance_scale: float,
    data_strategy: str | None = None,
    summary: dict[str, Any] | None = None,
    summary_path: str | None = None,
) -> str:
    """Markdown model card: base model, post-training config, data, evaluation, generation defaults."""
    hparams = {k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not k.startswith("_")}
    data_hparams = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    base = hparams.get("model", "unknown")
    data_lines = [f"Data strategy: {data_strategy}" if data_strategy else "Data strategy: not recorded."]
    if "_class_path" in data_hparams:
        data_lines += ["", f"Data module: `{data_hparams['_class_path']}`"]
    data_hparams = {k: v for k, v in data_hparams.items() if not k.startswith("_")}
    if data_hparams:
        data_lines += ["", "Data module hyper-parameters:", "", _yaml_block(data_hparams)]
    return "\n".join([
        "---", "library_name: transformers", "pipeline_tag: any-to-any", "tags: [unigen, janus, text-to-image]",
        "---", "", f"# {name}", "",
        f"A unified text-image model post-trained with unigen from `{base}`: it writes "
        "reasoning text, emits its own begin-of-image token and then draws the image tokens.", "",
        "## Use (stock transformers)", "", USAGE.format(name=name), "",
        "## Base model", "", f"`{base}`", "",
        "## Post-training", "",
        f"From checkpoint `{checkpoint_path}` (epoch {checkpoint.get('epoch', '?')}, global step "
        f"{checkpoint.get('global_step', '?')}, Lightning {checkpoint.get('pytorch-lightning_version', '?')}).", "",
        _yaml_block(hparams), "",
        "## Data", "", *data_lines, "",
        "## Evaluation", "", evaluation_section(summary, summary_path), "",
        "## Generation defaults", "",
        f"- classifier-free guidance scale: {guidance_scale}",
        f"- image: {spec.image.size} px, {spec.image.grid[0]}x{spec.image.grid[1]} = {spec.image.num_tokens} "
        f"tokens from a {spec.image.codebook_size}-code VQ codebook",
        f"- special ids: bos {spec.bos_id}, eos {spec.eos_id}, pad {spec.pad_id}, begin-of-image {spec.boi_id}, "
        f"end-of-image {spec.eoi_id}",
        f"- prompt template: `{spec.prompt_template!r}` (the processor's chat template renders it)", "",
    ])
