"""Janus answering yes/no questions about an image through its understanding branch (the
``unified`` backend of :class:`unigen.rewards.vqa.VQAScore`): SigLIP encoder + aligner fill the
``<image_placeholder>`` positions between ``<begin_of_image>`` and ``<end_of_image>``, as Janus'
processor writes them."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from unigen.data.packing import left_pad
from unigen.models.unified import UnifiedModel
from unigen.rewards.vqa import _dtype, answer_token


class UnifiedJudge:
    """A unified model answering through its understanding branch (Janus ``pixel_values`` path)."""

    def __init__(self, model: UnifiedModel | str, device: str = "cpu", dtype: str | None = None, answer: str = "Yes"):
        if isinstance(model, str):
            from unigen.checkpoints import load_unified

            model = load_unified(model, device=device, dtype=_dtype(dtype), option="judge")
        if not hasattr(getattr(getattr(model, "hf", None), "model", None), "get_image_features"):
            raise TypeError(f"{type(model).__name__} has no understanding branch (expected a Janus adapter)")
        self.model = model
        self.spec = model.spec
        tokenizer = self.spec.tokenizer
        vision = model.hf.config.vision_config
        self.side = vision.image_size
        self.num_image_tokens = (vision.image_size // vision.patch_size) ** 2
        # as Janus' processor writes an image: <begin_of_image> <image_placeholder> x patches <end_of_image>
        self.image_text = tokenizer.boi_token + tokenizer.image_token * self.num_image_tokens + tokenizer.eoi_token
        self.yes_id = answer_token(tokenizer, answer)

    def _pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """Resize to the vision encoder's input side, scale to [-1, 1] (Janus' 0.5 mean / 0.5 std)."""
        arrays = [np.asarray(im.convert("RGB").resize((self.side, self.side), Image.BICUBIC)) for im in images]
        pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1
        param = next(self.model.hf.model.vision_model.parameters())
        return pixels.to(param.device, param.dtype)

    @torch.no_grad()
    def p_yes(self, images: list[Image.Image], questions: list[str]) -> torch.Tensor:
        rows = [self.spec.encode_prompt(self.image_text + "\n" + q) for q in questions]
        ids, mask = left_pad(rows, self.spec.pad_id)  # the answer position is the last one
        device = self.model.hf.device
        ids, mask = ids.to(device), mask.to(device)
        out = self.model.hf(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                            pixel_values=self._pixels(images), logits_to_keep=1)
        return out.logits[:, -1].float().softmax(-1)[:, self.yes_id].cpu()
