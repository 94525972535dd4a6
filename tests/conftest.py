"""Shared fixtures: tiny real models and paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unigen.models.loading import load_model

REPO = Path(__file__).resolve().parents[1]
MODEL_PRESETS = ("janus-micro",)
"""The smallest preset of each model family: model-agnostic checks (loss scale, sampling) are
parametrized over it, so a new family adds its preset here."""


def shared_dir() -> Path:
    """The ``shared/`` folder beside the checkout (tests only; the product never reads it)."""
    for candidate in (REPO.parent / "shared", Path("/work/shared")):
        if candidate.is_dir():
            return candidate
    pytest.skip("../shared is not present beside this checkout")


@pytest.fixture
def micro_model():
    """A fresh, seeded ``janus-micro`` unified model (16 px images, 16 image ids)."""
    torch.manual_seed(0)
    return load_model("janus-micro")


@pytest.fixture(scope="module")
def module():
    """A seeded ``janus-micro`` LightningModule in eval mode, shared by a test file's tests."""
    from unigen.module import UnifiedLM

    torch.manual_seed(0)
    lm = UnifiedLM(model="janus-micro")
    lm.configure_model()
    return lm.eval()


@pytest.fixture
def one_thread():
    """Tiny models run fastest single-threaded on a shared CPU; restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
