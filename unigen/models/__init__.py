"""Unified model interface, the image seam and the adapters."""

from unigen.models.image import ImageHead, ImageSpec
from unigen.models.unified import TokenSpec, UnifiedModel
from unigen.models.loading import load_model, load_spec

__all__ = ["ImageHead", "ImageSpec", "TokenSpec", "UnifiedModel", "load_model", "load_spec"]
