"""VQAScore: P("Yes") that a vision-language judge gives to "Does this image show '{prompt}'?".

Two judges share one interface (``p_yes(images, questions) -> (B,) probabilities``):

- :class:`VLMJudge`: any transformers image-text-to-text model saved in a local folder with its
  processor (``AutoModelForImageTextToText`` + ``AutoProcessor``, e.g. Qwen2.5-VL, LLaVA). The
  question goes through the processor's chat template with one image.
- :class:`UnifiedJudge`: the unified model's own understanding branch, through its adapter's
  ``answer_logits`` (Janus: SigLIP encoder + aligner fill the ``<image_placeholder>`` positions between
  ``<begin_of_image>`` and ``<end_of_image>``, as Janus' processor writes them), a self-reward needing
  no extra weights.

P("Yes") is the softmax probability, over the whole vocabulary, of the first token of ``answer``
at the position where the assistant's answer starts (prompts are left-padded so it is the last).
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from unigen.checkpoints import load_unified
from unigen.data.trajectory import Trajectory
from unigen.dtypes import torch_dtype
from unigen.models.unified import UnifiedModel
from unigen.rewards.images import pil_images

QUESTION = "Does this image show '{prompt}'? Please answer yes or no."


def answer_token(tokenizer: Any, answer: str) -> int:
    """The id of the first token of ``answer`` (as the assistant would start writing it)."""
    ids = tokenizer.encode(answer, add_special_tokens=False)
    if not ids:
        raise ValueError(f"answer {answer!r} encodes to no tokens")
    return ids[0]


class VLMJudge:
    """A transformers image-text-to-text model loaded from a local folder."""

    def __init__(self, path: str, device: str = "cpu", dtype: str | None = None, answer: str = "Yes"):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype(dtype)).to(device).eval()
        self.yes_id = answer_token(self.processor.tokenizer, answer)

    @torch.no_grad()
    def p_yes(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        texts = [
            self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
                add_generation_prompt=True,
            )
            for q in questions
        ]
        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        logits = self.model(**inputs, logits_to_keep=1).logits[:, -1]
        return logits.float().softmax(-1)[:, self.yes_id].cpu()


class UnifiedJudge:
    """A unified model answering through its understanding branch (``UnifiedModel.answer_logits``)."""

    def __init__(self, model: UnifiedModel | str, device: str = "cpu", dtype: str | None = None, answer: str = "Yes"):
        if isinstance(model, str):
            model = load_unified(model, device=device, dtype=torch_dtype(dtype), option="judge")
        if type(model).answer_logits is UnifiedModel.answer_logits:
            raise TypeError(f"{type(model).__name__} has no understanding branch (its adapter has no answer_logits)")
        self.model = model
        self.yes_id = answer_token(model.spec.tokenizer, answer)

    @torch.no_grad()
    def p_yes(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        return self.model.answer_logits(images, questions).softmax(-1)[:, self.yes_id].cpu()


class VQAScore:
    """Image reward: P("Yes") to ``question`` about each trajectory's image; None without an image."""

    modality = "image"

    def __init__(
        self,
        judge: str | UnifiedModel,
        backend: str = "auto",
        question: str = QUESTION,
        batch_size: int = 8,
        device: str = "cpu",
        dtype: str | None = None,
        answer: str = "Yes",
    ):
        """
        Args:
            judge: a folder with a transformers image-text-to-text model and its processor, or a
                unified-model source (preset, unigen folder, ``.ckpt``), or a loaded UnifiedModel.
            backend: ``vlm`` | ``unified`` | ``auto`` (``unified`` for unigen sources, else ``vlm``).
            question: template with ``{prompt}``.
            batch_size: images per judge forward pass.
            device: judge device.
            dtype: judge dtype name (``float32``, ``bfloat16``); None keeps the checkpoint's.
            answer: the answer whose first-token probability is the score.
        """
        if backend == "auto":
            backend = "unified" if _is_unified_source(judge) else "vlm"
        if backend not in ("vlm", "unified"):
            raise ValueError(f"backend must be 'vlm', 'unified' or 'auto', got {backend!r}")
        self.judge = (VLMJudge if backend == "vlm" else UnifiedJudge)(judge, device, dtype, answer)
        self.question, self.batch_size = question, batch_size

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]:
        images = pil_images(trajectories)
        todo = [i for i, im in enumerate(images) if im is not None]
        out: list[float | None] = [None] * len(trajectories)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            questions = [self.question.format(prompt=trajectories[i].prompt) for i in chunk]
            for i, p in zip(chunk, self.judge.p_yes([images[i] for i in chunk], questions).tolist()):
                out[i] = p
        return out


def _is_unified_source(judge: str | UnifiedModel) -> bool:
    if isinstance(judge, UnifiedModel):
        return True
    from pathlib import Path

    from unigen.models.loading import MODELS

    path = Path(judge)
    if path.suffix in {".ckpt", ".yaml", ".yml"} or not path.exists():
        return True
    config = path / "config.json"
    if config.is_file():
        import json

        return json.loads(config.read_text()).get("model_type") in MODELS.short_names
    return False
