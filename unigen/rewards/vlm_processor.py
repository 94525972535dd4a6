"""A judge's processor from a local folder, without torchvision where the model reads images only.

Qwen2-VL, Qwen2.5-VL and Qwen3-VL processors hold a video processor that transformers builds only
with torchvision, so ``AutoProcessor.from_pretrained`` fails without it (and the torchvision wheel
from the package index does not load beside a CPU torch build). A VQAScore judge never sees a
video: :func:`load_processor` then loads the same processor class without its video processor,
with the image processor transformers offers without torchvision (its PIL backend).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from transformers import AutoConfig, AutoProcessor, ProcessorMixin
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.utils import is_torchvision_available


def load_processor(path: str) -> Any:
    """The processor saved in ``path``; image-only (no video processor) where torchvision is missing."""
    config = AutoConfig.from_pretrained(path)
    cls = PROCESSOR_MAPPING.get(type(config), None)
    if cls is None or is_torchvision_available() or "video_processor" not in cls.get_attributes():
        return AutoProcessor.from_pretrained(path)
    return images_only(cls).from_pretrained(path)


@cache
def images_only(cls: type[ProcessorMixin]) -> type[ProcessorMixin]:
    """``cls`` with its ``video_processor`` attribute removed (its ``__call__`` handles images and text)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        cls.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return type(f"{cls.__name__}ImagesOnly", (cls,), {"__init__": __init__, "__module__": __name__})
