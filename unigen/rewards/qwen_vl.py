"""Qwen-VL judge folders built offline: a real Qwen2 BPE tokenizer trained on a small corpus, each
family's chat template, the PIL image processor, and a random model at tiny or 7B size.

The folders have the layout of the published checkpoints (``config.json`` + weights, tokenizer
files, ``preprocessor_config.json`` naming ``Qwen2VLImageProcessor``, ``chat_template.jinja``,
``processor_config.json``), so ``VQAScore(judge=<folder>)`` reads them exactly as it reads
``Qwen/Qwen2.5-VL-7B-Instruct`` or ``Qwen/Qwen3-VL-8B-Instruct``. Tests, ``benchmarks/
judge_throughput.py`` and the ShapesWorld learned judge build theirs here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedConfig,
    PreTrainedModel,
    Qwen2Tokenizer,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")

QWEN2_5_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2-VL / Qwen2.5-VL-Instruct's chat template (a default system turn; user images as
``<|vision_start|><|image_pad|><|vision_end|>``; the answer starts after ``<|im_start|>assistant\\n``)."""

QWEN3_VL_TEMPLATE = (
    "{%- macro render_content(content) %}{%- if content is string %}{{- content }}{%- else %}"
    "{%- for item in content %}{%- if 'image' in item or 'image_url' in item or item.type == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{%- elif 'video' in item or item.type == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{%- elif 'text' in item %}{{- item.text }}{%- endif %}"
    "{%- endfor %}{%- endif %}{%- endmacro %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + render_content(message.content) + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""Qwen3-VL-Instruct's chat template without its tool-calling branches (no default system turn)."""

CORPUS = ("Does this image show '{}'? Please answer yes or no.", "Yes", "No", "yes", "no",
          "You are a helpful assistant.", "system", "user", "assistant")

FAMILIES = {"qwen2_5_vl": (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, QWEN2_5_VL_TEMPLATE, 14),
            "qwen3_vl": (Qwen3VLConfig, Qwen3VLForConditionalGeneration, QWEN3_VL_TEMPLATE, 16)}
"""family -> (config class, model class, chat template, published vision patch size)."""


def qwen_tokenizer(words: list[str] = (), vocab_size: int = 600) -> Qwen2Tokenizer:
    """A Qwen2 byte-level BPE (Qwen's pre-tokenizer regex) trained on the judge's question and
    answers plus ``words``, with Qwen's chat and vision special tokens (deterministic, ~0.1 s)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([line.format(w) for w in (*words, "") for line in CORPUS] * 4, trainer)
    trained = json.loads(tok.to_str())["model"]
    vocab = dict(trained["vocab"])
    vocab.update({s: len(vocab) + i for i, s in enumerate(SPECIAL_TOKENS)})
    out = Qwen2Tokenizer(vocab=vocab, merges=[tuple(m) for m in trained["merges"]])
    out.add_tokens([AddedToken(s, special=True) for s in SPECIAL_TOKENS])
    return out


def qwen_vl_config(family: str, tokenizer: Any, size: str = "tiny", **overrides: Any) -> PreTrainedConfig:
    """A ``family`` config: ``tiny`` (32-wide, 2 layers, 4 px patches) or ``7b`` (the published
    7B/8B shapes); ``overrides`` replace text-config fields (``hidden_size``, ...)."""
    config_cls = FAMILIES[family][0]
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    text, vision = (_tiny if size == "tiny" else _full)(family)
    text.update(vocab_size=max(text.get("vocab_size", 0), len(tokenizer)), bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"], **overrides)
    return config_cls(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                      video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                      vision_end_token_id=ids["<|vision_end|>"])


def _tiny(family: str) -> tuple[dict, dict]:
    heads, hidden = 4, 32
    text = dict(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=heads,
                num_key_value_heads=2, initializer_range=0.2)
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4, out_hidden_size=hidden,
                  initializer_range=0.2)
    if family == "qwen2_5_vl":  # head_dim 8: rotary halves split (temporal, height, width)
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}
        vision.update(window_size=16, fullatt_block_indexes=[1])
    else:
        text.update(head_dim=8, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "mrope_section": [2, 1, 1], "mrope_interleaved": True})
        vision.update(num_position_embeddings=64, deepstack_visual_indexes=[0])
    return text, vision


def _full(family: str) -> tuple[dict, dict]:
    if family == "qwen2_5_vl":  # Qwen2.5-VL-7B-Instruct
        text = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                    num_attention_heads=28, num_key_value_heads=4, rope_parameters={
                        "rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]})
        return text, dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                          window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)
    text = dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,  # Qwen3-VL-8B
                num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                                 "mrope_interleaved": True})
    return text, dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                      num_position_embeddings=2304, deepstack_visual_indexes=[8, 16, 24])


def image_processor(family: str, patch_size: int, merge_size: int = 2, min_pixels: int | None = None,
                    max_pixels: int | None = None) -> Qwen2VLImageProcessorPil:
    """The PIL image processor Qwen-VL uses (resize to multiples of ``patch_size * merge_size``;
    ``merge_size`` patches per side become one image token, the vision config's ``spatial_merge_size``)."""
    factor = 2 * patch_size
    size = {"shortest_edge": min_pixels or 4 * factor * factor, "longest_edge": max_pixels or 1280 * factor * factor}
    extra = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3} if family == "qwen3_vl" else {}
    return Qwen2VLImageProcessorPil(patch_size=patch_size, merge_size=merge_size, temporal_patch_size=2, size=size,
                                    **extra)


def save_processor(path: str | Path, family: str, tokenizer: Any, patch_size: int, merge_size: int = 2,
                   **pixels: int) -> None:
    """Tokenizer, image processor, chat template and processor class into ``path``, as published."""
    path = Path(path)
    tokenizer.save_pretrained(path)
    processor = image_processor(family, patch_size, merge_size, **pixels)
    processor.save_pretrained(path)
    config = json.loads((path / "preprocessor_config.json").read_text())
    config["image_processor_type"] = "Qwen2VLImageProcessor"  # the published name; loads its PIL twin
    (path / "preprocessor_config.json").write_text(json.dumps(config, indent=2))
    (path / "chat_template.jinja").write_text(FAMILIES[family][2])
    processor_class = {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}[family]
    (path / "processor_config.json").write_text(json.dumps({"processor_class": processor_class}))


def random_judge(family: str, size: str = "tiny", words: list[str] = (), seed: int = 0,
                 **overrides: Any) -> tuple[PreTrainedModel, Any]:
    """(random model, tokenizer) of ``family`` at ``size``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    tokenizer = qwen_tokenizer(list(words))
    torch.manual_seed(seed)
    return FAMILIES[family][1](qwen_vl_config(family, tokenizer, size, **overrides)), tokenizer


def save_judge(path: str | Path, model: PreTrainedModel, tokenizer: Any, **pixels: int) -> Path:
    """A judge folder (model + processor files) written beside ``path``, then renamed into place
    (an existing folder there is replaced)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    vision = model.config.vision_config
    save_processor(tmp, model.config.model_type, tokenizer, vision.patch_size, vision.spatial_merge_size, **pixels)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path
