"""The static-shape decode step (what CUDA graphs capture) gives the eager loop's ids, has no host
syncs, and replays as CUDA graphs where a GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_generation_sampler import PROMPTS, ScriptedHead
from unigen.generation import SamplingConfig, sample
from unigen.generation.graphs import StaticDecoder
from unigen.models.loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def same_results(a, b) -> bool:
    return all(
        x.reasoning_ids == y.reasoning_ids and np.array_equal(x.image_tokens, y.image_tokens)
        and x.stop == y.stop and x.switched == y.switched
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("mode,cfg", [("unified", 3.0), ("unified", 1.0), ("explicit", 2.0), ("direct", 5.0)])
def test_static_step_gives_the_eager_ids(micro_model, mode, cfg):
    """Rows switch, end and hit the limit at different steps (text and image phases overlap)."""
    spec = micro_model.spec
    config = SamplingConfig(mode=mode, cfg=cfg, max_reasoning_tokens=10, top_k=40, top_p=0.95, image_top_k=30)
    plan = {0: (2, spec.boi_id), 1: (7, spec.boi_id), 3: (3, spec.eos_id)}  # row 2 runs to the limit
    runs = {}
    for decoder in ("eager", "static"):
        hook = ScriptedHead(micro_model, plan)
        runs[decoder] = sample(micro_model, PROMPTS, config, seeds=[11, 12, 13, 14], decoder=decoder)
        hook.handle.remove()
    assert same_results(runs["eager"], runs["static"])
    drew = [r.has_image for r in runs["static"]]
    expected = {"unified": [True, True, False, False], "explicit": [True] * 4, "direct": [True] * 4}[mode]
    assert drew == expected


def test_static_step_has_no_host_sync(micro_model, monkeypatch):
    """Both steps (text + image heads, image head only) trace as one graph each: no value is read
    on the host inside a step, which CUDA graph capture requires."""
    traced = []

    def trace(self, cuda_graphs):
        step = torch.compile(self.step, fullgraph=True, backend="eager")
        step(True)
        step(False)
        traced.append(int(self.step_index))

    monkeypatch.setattr(StaticDecoder, "run", trace)
    with pytest.raises(RuntimeError, match="did not finish"):  # two steps only
        sample(micro_model, PROMPTS[:2], SamplingConfig(mode="unified", max_reasoning_tokens=4, cfg=3.0),
               seeds=[1, 2], decoder="static")
    assert traced == [2]


def test_cuda_graphs_need_a_cuda_device(micro_model):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        sample(micro_model, PROMPTS[:1], SamplingConfig(mode="direct"), decoder="cuda_graphs")
    with pytest.raises(ValueError, match="decoder 'fast'"):
        sample(micro_model, PROMPTS[:1], SamplingConfig(mode="direct"), decoder="fast")


class DeviceScriptedHead:
    """``ScriptedHead`` with its step counter on the device, so a captured graph replays the script."""

    def __init__(self, model, plan: dict[int, tuple[int, int]]):
        device = next(model.parameters()).device
        self.plan, self.calls = plan, torch.zeros((), dtype=torch.long, device=device)
        self.forbidden = torch.tensor([model.spec.boi_id, model.spec.eos_id], device=device)
        self.handle = model.hf.lm_head.register_forward_hook(self)

    def __call__(self, module, inputs, out):
        out = out.index_fill(1, self.forbidden, float("-inf"))
        for row, (at, token) in self.plan.items():
            out[row, token] = torch.where(self.calls >= at, 1e4, out[row, token])
        self.calls.add_(1)
        return out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["unified", "direct"])
def test_cuda_graph_replay_gives_the_static_ids(mode):
    torch.manual_seed(0)
    model = load_model("janus-micro").cuda().eval()
    config = SamplingConfig(mode=mode, cfg=3.0, max_reasoning_tokens=10, top_k=40)
    spec = model.spec
    runs = {}
    for decoder in ("eager", "static", "cuda_graphs"):
        hook = DeviceScriptedHead(model, {0: (2, spec.boi_id), 1: (7, spec.boi_id), 3: (3, spec.eos_id)})
        runs[decoder] = sample(model, PROMPTS, config, seeds=[11, 12, 13, 14], decoder=decoder)
        hook.handle.remove()
    assert same_results(runs["static"], runs["cuda_graphs"])
    assert same_results(runs["eager"], runs["cuda_graphs"])
    if mode == "unified":
        assert [r.stop for r in runs["cuda_graphs"]] == ["image", "image", "limit", "eos"]
