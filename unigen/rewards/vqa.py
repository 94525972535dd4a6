"""VQAScore: P("Yes") that a vision-language judge gives to "Does this image show '{prompt}'?".

Two judges share one interface (``p_yes(images, questions) -> (B,) probabilities``):

- :class:`VLMJudge`: any transformers image-text-to-text model saved in a local folder with its
  processor (``AutoModelForImageTextToText`` + the folder's processor, e.g. Qwen2.5-VL, Qwen3-VL,
  LLaVA; Qwen-VL without torchvision: ``unigen.rewards.vlm_processor``). The question goes through
  the processor's chat template with one image.
- :class:`UnifiedJudge`: the unified model's own understanding branch, through its adapter's
  ``answer_logits`` (Janus: SigLIP encoder + aligner fill the ``<image_placeholder>`` positions between
  ``<begin_of_image>`` and ``<end_of_image>``, as Janus' processor writes them), a self-reward needing
  no extra weights.

P("Yes") is the softmax probability, over the whole vocabulary, of the first token of ``answer``
at the position where the assistant's answer starts (each row's last real token).
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
    """A transformers image-text-to-text model loaded from a local folder (or given loaded: :meth:`loaded`).

    Each question goes through the processor's chat template with one image, as a user turn with the
    assistant's turn opened (``add_generation_prompt``). The answer token is the first token the
    assistant writes for ``answer`` right after that opening (tokenized in context: ``Yes`` after
    Qwen's ``<|im_start|>assistant\\n`` is the single token ``Yes``). Scores do not depend on the
    batch: the processor's attention mask and multimodal token types go to the model (Qwen-VL's
    3D rotary positions skip the padding), and each row is read at its own last real token, so
    ``padding_side`` may be ``left`` or ``right``.
    """

    def __init__(self, path: str, device: str = "cpu", dtype: str | None = None, answer: str = "Yes",
                 padding_side: str = "left"):
        from transformers import AutoModelForImageTextToText

        from unigen.rewards.vlm_processor import load_processor

        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype(dtype)).to(device).eval()
        self._setup(model, load_processor(path), answer, padding_side)

    @classmethod
    def loaded(cls, model: Any, processor: Any, answer: str = "Yes", padding_side: str = "left") -> VLMJudge:
        """A judge over an already loaded model and processor (benchmarks, a judge being trained)."""
        judge = cls.__new__(cls)
        judge._setup(model, processor, answer, padding_side)
        return judge

    def _setup(self, model: Any, processor: Any, answer: str, padding_side: str) -> None:
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.model, self.processor = model, processor
        self.processor.tokenizer.padding_side = padding_side
        self.yes_id = assistant_answer_token(self.processor.tokenizer, self.prompt("?"), answer)

    def prompt(self, question: str) -> str:
        """The chat-templated text of one question about one image, the assistant's turn opened."""
        return self.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
            add_generation_prompt=True,
        )

    def answer_logits(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        """(B, V) logits of the assistant's first answer token, one row per (image, question)."""
        inputs = self.processor(images=images, text=[self.prompt(q) for q in questions], return_tensors="pt",
                                padding=True)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        mask = inputs["attention_mask"]
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # each row's last real token
        keep, row = last.unique(return_inverse=True)
        logits = self.model(**inputs, logits_to_keep=keep).logits
        return logits[torch.arange(len(questions), device=logits.device), row]

    @torch.no_grad()
    def p_yes(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        return self.answer_logits(images, questions).float().softmax(-1)[:, self.yes_id].cpu()


def assistant_answer_token(tokenizer: Any, prompt: str, answer: str) -> int:
    """The first token of ``answer`` written right after ``prompt`` (tokenized in context)."""
    before = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    after = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]
    if len(after) <= len(before) or after[:len(before)] != before:
        raise ValueError(f"answer {answer!r} does not tokenize as a continuation of the judge's prompt {prompt!r}")
    return after[len(before)]


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
        padding_side: str = "left",
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
            padding_side: ``left`` or ``right`` padding of a batch's prompts (``vlm`` judges; the
                scores are the same either way).
        """
        if backend == "auto":
            backend = "unified" if _is_unified_source(judge) else "vlm"
        if backend not in ("vlm", "unified"):
            raise ValueError(f"backend must be 'vlm', 'unified' or 'auto', got {backend!r}")
        self.judge = (VLMJudge(judge, device, dtype, answer, padding_side) if backend == "vlm"
                      else UnifiedJudge(judge, device, dtype, answer))
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

    from unigen.models.loading import MODELS, folder_model_type

    path = Path(judge)
    if path.suffix in {".ckpt", ".yaml", ".yml"} or not path.exists():
        return True
    try:
        return folder_model_type(path) in MODELS.short_names
    except FileNotFoundError:  # neither a transformers folder nor a unified model's release layout
        return False
