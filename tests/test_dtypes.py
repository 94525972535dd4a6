"""Dtype names are parsed in one place (unigen.dtypes): each caller keeps its accepted names and a bad
value is a ValueError naming it and them."""

import pytest
import torch

from unigen.dtypes import CAST_NAMES, torch_dtype


def test_any_torch_dtype_name_or_keep():
    assert torch_dtype("bfloat16") is torch.bfloat16 and torch_dtype("float64") is torch.float64
    assert torch_dtype(None) is None and torch_dtype("auto") is None
    for bad in ("bf16", "nn"):
        with pytest.raises(ValueError, match=f"dtype '{bad}' is not a torch dtype name"):
            torch_dtype(bad)


def test_a_caller_narrows_the_accepted_names():
    assert torch_dtype("float16", CAST_NAMES) is torch.float16
    with pytest.raises(ValueError, match=r"dtype 'auto' is not one of \['bfloat16', 'float16', 'float32'\]$"):
        torch_dtype("auto", CAST_NAMES)
    assert torch_dtype(None, (None, *CAST_NAMES)) is None
    with pytest.raises(ValueError, match=r"dtype 'float64' is not one of .* \(or None\)"):
        torch_dtype("float64", (None, *CAST_NAMES))
