"""The unified sampler on a real janus-micro model: per-row switching, modes, seeds, HF parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import MODEL_PRESETS
from unigen.generation import SamplingConfig, sample
from unigen.generation.sampler import prompt_batch
from unigen.models.loading import load_model

PROMPTS = ["a red cat", "two dogs on the green grass", "x", "a blue cube left of a sphere"]


pytestmark = pytest.mark.usefixtures("one_thread")


class ScriptedHead:
    """A forward hook on the real LM head that scripts which text token each row emits when.

    ``plan`` maps row -> (step, token id): from that step the row's logit for the token is raised
    far above the rest; BOI and EOS are otherwise forbidden, so no row switches or ends by chance.
    """

    def __init__(self, model, plan: dict[int, tuple[int, int]]):
        self.spec, self.plan, self.calls = model.spec, plan, 0
        self.handle = model.hf.lm_head.register_forward_hook(self)

    def __call__(self, module, inputs, out):
        step, self.calls = self.calls, self.calls + 1
        out = out.clone()
        out[:, [self.spec.boi_id, self.spec.eos_id]] = float("-inf")
        for row, (at, token) in self.plan.items():
            if row < out.shape[0] and step >= at:
                out[row, token] = 1e4
        return out


def test_rows_switch_independently_in_one_batch(micro_model):
    spec = micro_model.spec
    config = SamplingConfig(mode="unified", max_reasoning_tokens=10, cfg=3.0)
    plan = {0: (2, spec.boi_id), 1: (7, spec.boi_id), 3: (3, spec.eos_id)}  # row 2 never switches
    hook = ScriptedHead(micro_model, plan)
    results = sample(micro_model, PROMPTS, config, seeds=[11, 12, 13, 14])
    hook.handle.remove()

    assert [len(r.reasoning_ids) for r in results] == [2, 7, 10, 3]
    assert [r.switched for r in results] == [True, True, False, False]
    assert [r.stop for r in results] == ["image", "image", "limit", "eos"]
    for r in results[:2]:
        assert r.image_tokens.dtype == np.int64 and r.image_tokens.shape == (spec.image.num_tokens,)
        assert r.image_tokens.min() >= 0 and r.image_tokens.max() < spec.image.codebook_size
        assert spec.boi_id not in r.reasoning_ids
    assert results[2].image_tokens.size == 0 and results[3].image_tokens.size == 0
    assert hook.calls == 11  # text head runs until the last text row leaves text (step 10), not beyond
    assert results[0].reasoning == spec.decode_text(results[0].reasoning_ids)


def test_a_row_does_not_depend_on_its_batch(micro_model):
    spec = micro_model.spec
    config = SamplingConfig(mode="unified", max_reasoning_tokens=8, cfg=3.0)
    hook = ScriptedHead(micro_model, {0: (4, spec.boi_id)})
    alone = sample(micro_model, PROMPTS[1:2], config, seeds=[7])[0]
    hook.calls = 0
    batched = sample(micro_model, PROMPTS[1:2] + PROMPTS[2:], config, seeds=[7, 1, 2])[0]
    hook.handle.remove()
    assert alone.reasoning_ids == batched.reasoning_ids and len(alone.reasoning_ids) == 4
    np.testing.assert_array_equal(alone.image_tokens, batched.image_tokens)


def test_explicit_mode_appends_boi_after_text_or_limit(micro_model):
    spec = micro_model.spec
    config = SamplingConfig(mode="explicit", max_reasoning_tokens=6, cfg=2.0)
    hook = ScriptedHead(micro_model, {0: (4, spec.eos_id), 2: (1, spec.boi_id)})  # row 1 runs to the limit
    results = sample(micro_model, PROMPTS[:3], config, seeds=[1, 2, 3])
    hook.handle.remove()
    assert [len(r.reasoning_ids) for r in results] == [4, 6, 1]
    assert [r.switched for r in results] == [False, False, True]
    assert all(r.stop == "image" and r.image_tokens.shape == (spec.image.num_tokens,) for r in results)
    assert spec.eos_id not in results[0].reasoning_ids


def test_direct_mode_draws_right_after_the_prompt(micro_model):
    hook = ScriptedHead(micro_model, {})
    results = sample(micro_model, PROMPTS, SamplingConfig(mode="direct"), seeds=[1, 2, 3, 4])
    hook.handle.remove()
    assert hook.calls == 0
    assert all(r.reasoning_ids == [] and not r.switched and r.image_tokens.shape == (16,) for r in results)
    assert len({tuple(r.image_tokens) for r in results}) == 4


def test_seeds_reproduce_and_differ(micro_model):
    config = SamplingConfig(mode="explicit", max_reasoning_tokens=5, top_p=0.9, top_k=50, image_top_k=20)
    first = sample(micro_model, PROMPTS, config, seeds=[1, 2, 3, 4])
    again = sample(micro_model, PROMPTS, config, seeds=[1, 2, 3, 4])
    other = sample(micro_model, PROMPTS, config, seeds=[5, 6, 7, 8])
    assert [r.reasoning_ids for r in first] == [r.reasoning_ids for r in again]
    assert all(np.array_equal(a.image_tokens, b.image_tokens) for a, b in zip(first, again))
    assert [r.reasoning_ids for r in first] != [r.reasoning_ids for r in other]
    from_gen = [sample(micro_model, PROMPTS[:2], config, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert [r.reasoning_ids for r in from_gen[0]] == [r.reasoning_ids for r in from_gen[1]]


def conditional_greedy_image(model, prompt: str) -> list[int]:
    """Reference: greedy image ids of one unpadded prompt, conditional only, no KV cache (the
    ``UnifiedModel`` interface: whole-sequence backbone calls, argmax of the image head)."""
    ids = model.spec.encode_prompt(prompt) + [model.spec.boi_id]
    embeds, out = model.embed_text(torch.tensor([ids])), []
    with torch.no_grad():
        for _ in range(model.spec.image.num_tokens):
            length = embeds.shape[1]
            hidden, _ = model.backbone(embeds, torch.ones(1, length, dtype=torch.long), torch.arange(length)[None])
            out.append(int(model.image_logits(hidden[:, -1]).argmax(-1)))
            embeds = torch.cat([embeds, model.embed_image(torch.tensor([out[-1:]]))], dim=1)
    return out


@pytest.mark.parametrize("preset", MODEL_PRESETS)
@pytest.mark.parametrize("decoder", ["eager", "static"])
def test_no_guidance_runs_conditional_rows_only(preset, decoder):
    """cfg = 1: one backbone row per prompt, and exactly the conditional-only image of each prompt."""
    torch.manual_seed(0)
    model = load_model(preset).eval()
    ids, mask = prompt_batch(model, PROMPTS, SamplingConfig(cfg=1.0))
    assert ids.shape[0] == len(PROMPTS)
    rows, backbone = [], model.backbone
    model.backbone = lambda embeds, *args, **kwargs: (rows.append(embeds.shape[0]), backbone(embeds, *args, **kwargs))[1]
    try:
        results = sample(model, PROMPTS, SamplingConfig(mode="direct", cfg=1.0, greedy=True), decoder=decoder)
    finally:
        del model.backbone
    assert set(rows) == {len(PROMPTS)}
    for prompt, result in zip(PROMPTS, results):
        assert result.image_tokens.tolist() == conditional_greedy_image(model, prompt), prompt


def test_unconditional_rows_keep_only_bos_and_boi(micro_model):
    spec = micro_model.spec
    ids, mask = prompt_batch(micro_model, PROMPTS[:2], SamplingConfig(mode="direct", cfg=5.0))
    uncond, cond = ids[2:], ids[:2]
    assert torch.equal(mask[:2], mask[2:])
    kept = uncond[uncond != spec.pad_id].tolist()
    assert kept == [spec.bos_id, spec.boi_id] * 2
    assert (cond[:, -1] == spec.boi_id).all() and (cond[mask[:2] == 0] == spec.pad_id).all()


@pytest.mark.parametrize("cfg,attention,own_masks,decoder", [
    (1.5, "sdpa", True, "eager"), (5.0, "sdpa", True, "eager"), (5.0, "eager", True, "eager"),
    (5.0, "sdpa", False, "eager"), (5.0, "sdpa", True, "static"), (5.0, "sdpa", False, "static"),
])
def test_greedy_direct_matches_transformers_image_generate(cfg, attention, own_masks, decoder, monkeypatch):
    """transformers needs cfg > 1; ``own_masks=False`` exercises the 2D-mask path of other backbones;
    ``static`` is the fixed-shape step that CUDA graphs capture (``unigen.generation.graphs``)."""
    torch.manual_seed(0)
    micro_model = load_model("janus-micro", attn_implementation=attention).eval()
    assert micro_model.accepts_additive_mask()
    if not own_masks:
        monkeypatch.setattr(micro_model, "accepts_additive_mask", lambda: False)
    spec = micro_model.spec
    greedy = SamplingConfig(mode="direct", greedy=True, cfg=cfg)
    ours = np.stack([r.image_tokens for r in sample(micro_model, PROMPTS, greedy, decoder=decoder)])
    ids, mask = prompt_batch(micro_model, PROMPTS, SamplingConfig(mode="direct", cfg=1.0))
    hf = micro_model.hf
    hf.generation_config.generation_kwargs = {"boi_token_id": spec.boi_id}
    hf.generation_config.pad_token_id = spec.pad_id
    hf.generation_config.bos_token_id = spec.bos_id
    with torch.no_grad():
        theirs = hf.generate(ids, attention_mask=mask, generation_mode="image", do_sample=False, guidance_scale=cfg)
    assert mask.min() == 0  # the prompts have different lengths: left padding is exercised
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_budget_beyond_max_seq_len_is_an_error(micro_model):
    with pytest.raises(ValueError, match="max_seq_len"):
        sample(micro_model, PROMPTS[:1], SamplingConfig(max_reasoning_tokens=10_000))


def test_bad_config_values_are_errors():
    with pytest.raises(ValueError, match="mode"):
        SamplingConfig(mode="sideways")
    with pytest.raises(ValueError, match="cfg"):
        SamplingConfig(cfg=0.5)


def test_unconditional_rows_are_what_condition_dropout_trains(micro_model):
    """Guidance steers against the branch condition dropout trains: the embeddings and positions
    the sampler feeds its unconditional row equal the training sequence of the dropped trajectory."""
    from unigen.data.batch import collate
    from unigen.data.sequence import build_example
    from unigen.data.trajectory import Trajectory

    spec, model = micro_model.spec, micro_model
    script = spec.encode_text("plan: red circle top left.") + [spec.boi_id]

    def scripted(module, inputs, out):  # row 0 writes the plan, then switches
        out = out.clone()
        out[:, script[min(len(fed_text), len(script) - 1)]] = 1e4
        fed_text.append(1)
        return out

    fed_text, fed = [], []
    handle = model.hf.lm_head.register_forward_hook(scripted)
    backbone = model.backbone
    model.backbone = lambda embeds, *args, **kwargs: (fed.append((embeds, args[1])), backbone(embeds, *args, **kwargs))[1]
    try:
        result = sample(model, ["a red circle"], SamplingConfig(mode="unified", max_reasoning_tokens=40, cfg=3.0),
                        seeds=[5])[0]
    finally:
        handle.remove()
        del model.backbone
    assert result.switched and result.reasoning_ids == script[:-1]
    embeds = torch.cat([e for e, _ in fed], dim=1)  # (2, fed tokens, H): [cond; uncond]
    positions = torch.cat([p for _, p in fed], dim=1)
    traj = Trajectory("p", 0, "a red circle", result.reasoning, result.image_tokens)
    for row, drop in ((0, False), (1, True)):
        batch = collate([build_example(traj, spec, "unified", drop_condition=drop)], spec.pad_id)
        with torch.no_grad():
            trained = model.embed_mixed(batch.input_ids, batch.image_mask)[0, : embeds.shape[1]]
        torch.testing.assert_close(embeds[row], trained)
        assert positions[row].tolist() == batch.position_ids[0, : embeds.shape[1]].tolist()
    assert embeds.shape[1] == len(spec.encode_prompt("a red circle")) + len(script) + spec.image.num_tokens
