"""Unified model interface and its adapters."""

from unigen.models.unified import TokenSpec, UnifiedModel
from unigen.models.loading import load_model, load_spec

__all__ = ["TokenSpec", "UnifiedModel", "load_model", "load_spec"]
