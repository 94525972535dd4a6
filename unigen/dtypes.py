"""Dtype names, as configs and command lines spell them, turned into torch dtypes in one place."""

from __future__ import annotations

from collections.abc import Collection

import torch

CAST_NAMES = ("float32", "bfloat16", "float16")
"""The dtypes a model is loaded in to generate or exported in."""

KEEP = (None, "auto")
"""Values meaning: keep the checkpoint's dtype (``torch_dtype`` returns None)."""


def torch_dtype(name: str | None, accepted: Collection[str | None] | None = None) -> torch.dtype | None:
    """The torch dtype ``name`` spells (``"bfloat16"`` -> ``torch.bfloat16``), None for a ``KEEP`` value.

    Args:
        name: a torch dtype name, or a ``KEEP`` value.
        accepted: the only values this caller takes (e.g. ``CAST_NAMES``, plus None where the
            checkpoint's dtype may be kept); default: ``KEEP`` and every torch dtype name.

    Raises ValueError naming the value and the accepted names.
    """
    if accepted is not None and name not in accepted:
        names = sorted(n for n in accepted if n is not None)
        raise ValueError(f"dtype {name!r} is not one of {names}{' (or None)' if None in accepted else ''}")
    if name in KEEP:
        return None
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype {name!r} is not a torch dtype name (e.g. {', '.join(CAST_NAMES)}) or 'auto'")
    return dtype
