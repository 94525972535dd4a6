"""Training-step options of UnifiedLM on CPU: chunked head logits, selective activation
checkpointing and per-layer compilation give the plain step's loss and gradients."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.test_packing import examples
from unigen.data.batch import collate
from unigen.module import UnifiedLM

pytestmark = pytest.mark.usefixtures("one_thread")


def step(options: dict, counter: TorchDispatchMode | None = None) -> tuple[float, dict[str, torch.Tensor], UnifiedLM]:
    """Loss and gradients of one training step of a seeded janus-micro with ``options``; ``counter``
    (a dispatch mode) watches the backward."""
    torch.manual_seed(0)
    module = UnifiedLM(model="janus-micro", **options)
    module.configure_model()
    module.train()
    batch = collate(examples(module.spec, n=6), module.spec.pad_id, pack_length=256)
    text, image = module.heads(batch)
    loss = text.weighted_loss / text.tokens + image.weighted_loss / image.tokens
    with counter or contextlib.nullcontext():
        loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return loss.item(), grads, module


def assert_same_step(a, b, tol: float = 1e-5) -> None:
    assert abs(a[0] - b[0]) < tol
    assert a[1].keys() == b[1].keys() and len(a[1]) > 10
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], rtol=tol, atol=tol, msg=name)


@pytest.fixture(scope="module")
def plain():
    return step({})


def test_chunked_logits_give_the_same_loss_and_gradients(plain):
    chunked = step({"logits_chunk_size": 7})
    assert_same_step(plain, chunked)


class CountMatmuls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default):
            self.count += 1
        return func(*args, **(kwargs or {}))


def backward_matmuls(options: dict) -> tuple[tuple, int]:
    """The step, and the matmuls its backward ran (recomputed forward ones included)."""
    counter = CountMatmuls()
    return step(options, counter), counter.count


def test_selective_checkpointing_recomputes_no_matmul():
    none, none_mm = backward_matmuls({})
    full, full_mm = backward_matmuls({"gradient_checkpointing": "full"})
    selective, selective_mm = backward_matmuls({"gradient_checkpointing": "selective"})
    assert_same_step(none, full)
    assert_same_step(none, selective)
    # janus-micro: 2 decoder layers; full checkpointing re-runs 6 of each layer's 7 projections
    # (recomputation stops early: the last projection's output is not needed in backward)
    assert full_mm == none_mm + 2 * 6
    assert selective_mm == none_mm


def test_compiled_layers_give_the_same_step(plain, monkeypatch):
    """Traced through dynamo + AOT autograd (inductor's CPU code generation takes ~2 min here; the
    GPU suite runs inductor: ``benchmarks/mfu.py --compile-layers``)."""
    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compile_module(self, backend="aot_eager", **kw))
    compiled = step({"compile_layers": True})
    layer = compiled[2].net.hf.model.language_model.layers[0]
    assert layer._compiled_call_impl is not None
    assert_same_step(plain, compiled, tol=1e-4)


def test_flex_attention_gets_a_block_diagonal_mask_for_packed_rows(module):
    """FlexAttention (CUDA) receives packed rows without a mask, as SDPA does; transformers turns the
    restarting positions into a BlockMask whose mask function is block-diagonal causal (checked
    element by element here; the kernel itself has no CPU backward)."""
    from transformers.masking_utils import create_causal_mask

    batch = collate(examples(module.spec, n=6), module.spec.pad_id, pack_length=256)
    assert batch.packed and batch.input_ids.shape[0] < 6
    config = module.net.hf.config.text_config
    config._attn_implementation = "flex_attention"
    try:
        row = batch.position_ids[:1]
        mask = create_causal_mask(config=config, inputs_embeds=torch.zeros(1, row.shape[1], 8), attention_mask=None,
                                  cache=None, position_ids=row)
    finally:
        config._attn_implementation = "sdpa"
    assert type(mask).__name__ == "BlockMask"
    n = row.shape[1]
    q, k = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    zero = torch.zeros_like(q)
    got = mask.mask_mod(zero, zero, q, k)
    sample = batch.sample_index[0]
    expected = (sample[:, None] == sample[None, :]) & (q >= k)
    real = batch.attention_mask[0].bool()
    assert torch.equal(got[real][:, real], expected[real][:, real])
    assert int(expected[real][:, real].sum()) < int((q >= k)[real][:, real].sum())  # samples really are apart
