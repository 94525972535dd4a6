"""The image seam (issue 30 item 1): the image spec, the family's unconditional rule and its image
head are what data, training, sampling and rewards go through, and Janus through them computes
what it computes by hand (the VQ head's loss, its ids, its pixels)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unigen.data.batch import collate
from unigen.data.sequence import BadSample, build_example
from unigen.data.synthesize import synthetic_trajectories
from unigen.data.trajectory import Trajectory, Turn
from unigen.generation import SamplingConfig, sample
from unigen.generation.rollouts import decode_pngs
from unigen.generation.sampler import prompt_batch
from unigen.losses import IGNORE
from unigen.models.image import CodebookHead, ImageBlock, ImagePayloadError, ImageSpec
from unigen.rewards.images import pil_images, with_decoded_png


def test_janus_image_spec_and_head(micro_model):
    spec = micro_model.spec
    assert spec.image == ImageSpec(kind="tokens", shape=(16,), dtype="int64", grid=(4, 4), size=16, codebook_size=64)
    assert spec.image.num_tokens == 16
    head = micro_model.image_head
    assert isinstance(head, CodebookHead) and head is spec.image_head and head.attention == "causal"
    assert (head.begin_id, head.end_id) == (spec.boi_id, spec.eoi_id)


@pytest.mark.parametrize("fields,message", [
    (dict(kind="pixels"), "kind 'pixels'"),
    (dict(shape=(15,)), "grid's 4x4 = 16"),
    (dict(codebook_size=None), "`tokens` are"),
    (dict(dtype="float32"), "`tokens` are"),
    (dict(kind="latents"), "`latents` a float payload"),
])
def test_image_spec_refuses_inconsistent_fields(fields, message):
    good = dict(kind="tokens", shape=(16,), dtype="int64", grid=(4, 4), size=16, codebook_size=64)
    with pytest.raises(ValueError, match=message):
        ImageSpec(**{**good, **fields})
    latents = ImageSpec(kind="latents", shape=(16, 64), dtype="float32", grid=(4, 4), size=32)
    assert latents.num_tokens == 16


def test_codebook_block_layout_and_payload_checks(micro_model):
    spec = micro_model.spec
    block = spec.image_head.block(np.arange(16) * 3 % 64, switch_target=spec.boi_id)
    ids = (np.arange(16) * 3 % 64).tolist()
    assert block == ImageBlock(ids=[spec.boi_id, *ids, spec.eoi_id], image=[False] + [True] * 16 + [False],
                               text_targets=[spec.boi_id] + [IGNORE] * 16 + [spec.eoi_id],
                               image_targets=[IGNORE, *ids, IGNORE], positions=list(range(18)))
    for payload, reason in ((np.zeros(15, np.int64), "image_token_count"), (np.full(16, 64), "image_id_range"),
                            (np.full(16, -1), "image_id_range")):
        with pytest.raises(ImagePayloadError) as error:
            spec.image_head.check(payload)
        assert error.value.reason == reason


def _trajectories(spec, n: int = 4) -> list[Trajectory]:
    trajs = synthetic_trajectories(n, spec.image.num_tokens, spec.image.codebook_size, seed=3)
    trajs[-1].turns = [Turn("look again", np.arange(spec.image.num_tokens) % spec.image.codebook_size)]
    return trajs


@pytest.mark.parametrize("pack", [None, 200])
def test_image_loss_through_the_head_equals_a_hand_computation(module, pack):
    """The trainer's image loss (the head) = per-token CE of Janus' generation head over the codebook,
    times each token's sample weight, summed in token order; the text head is untouched by the seam."""
    spec, net = module.spec, module.net
    examples = [build_example(t, spec, "unified", drop_condition=i == 1) for i, t in enumerate(_trajectories(spec))]
    batch = collate(examples, spec.pad_id, pack)
    batch.set_weights("image", torch.linspace(1.5, 0.25, batch.num_samples))
    with torch.no_grad():
        text, image = module.heads(batch)
        hidden = net.hf.model.language_model(
            inputs_embeds=net.hf.get_input_embeddings()(batch.input_ids.masked_fill(batch.image_mask, spec.pad_id))
            .index_put((batch.image_mask,), net.hf.prepare_embeddings_for_image_generation(batch.input_ids[batch.image_mask])),
            attention_mask=None if batch.packed else batch.attention_mask,
            position_ids=batch.position_ids, use_cache=False).last_hidden_state  # no cache: packed rows stay apart
        supervised = batch.image_labels != IGNORE
        logits = net.hf.model.generation_head(hidden[supervised]).float()
        ce = F.cross_entropy(logits, batch.image_labels[supervised], reduction="none")
        expected = (ce * batch.image_weight[batch.sample_index][supervised]).sum()
    assert int(image.tokens) == int(supervised.sum()) == 16 * 5
    assert abs(float(image.weighted_loss) - float(expected)) < 1e-9 * max(1.0, abs(float(expected)))
    assert image.predictions is None and text.predictions is not None


def _marking_rule(ids: torch.Tensor, spec) -> torch.Tensor:
    """A stand-in family rule: keep BOS, write eos everywhere else (no Janus rule would)."""
    return ids.masked_fill(ids != spec.bos_id, spec.eos_id)


def test_condition_dropout_and_sampler_rows_use_the_family_rule(micro_model):
    """Both users of the unconditional form call the adapter's rule, not a rule of their own."""
    janus = micro_model.spec
    ids = torch.tensor([[janus.bos_id, 5, 6, janus.boi_id, 7]])
    assert micro_model.unconditional(ids).tolist() == [[janus.bos_id, janus.pad_id, janus.pad_id, janus.boi_id,
                                                         janus.pad_id]]
    micro_model.spec = spec = replace(janus, unconditional_rule=_marking_rule)
    traj = _trajectories(spec, 1)[0]
    dropped = build_example(traj, spec, "unified", drop_condition=True)
    last = max(i for i, image in enumerate(dropped.image_mask) if image)
    text = [t for t, image in zip(dropped.input_ids[:last], dropped.image_mask[:last]) if not image]
    assert text == [spec.bos_id] + [spec.eos_id] * (len(text) - 1)
    rows, _ = prompt_batch(micro_model, ["a red circle"], SamplingConfig(mode="direct", cfg=3.0))
    assert torch.equal(rows[1], _marking_rule(rows[0], spec))


class _FixedHead(CodebookHead):
    """A Janus head whose sampling phase always picks id 7 and whose decoder paints one colour."""

    def sample_step(self, model, hidden, guidance, pick):
        return torch.full((hidden.shape[0] // (2 if guidance != 1.0 else 1),), 7, dtype=torch.long)

    def decode(self, model, payload):
        return torch.full((payload.shape[0], 3, self.spec.size, self.spec.size), 0.5)


def test_sampler_and_decoders_go_through_the_head(micro_model):
    spec = micro_model.spec
    micro_model.spec = replace(spec, image_head=_FixedHead(spec.image, spec.boi_id, spec.eoi_id))
    results = sample(micro_model, ["a red circle", "two squares"], SamplingConfig(mode="direct", cfg=3.0), seeds=[0, 1])
    assert [r.image_tokens.tolist() for r in results] == [[7] * 16] * 2
    traj = Trajectory("p", 0, "a red circle", image_tokens=results[0].image_tokens)
    for png in (with_decoded_png([traj], micro_model)[0].png, decode_pngs(micro_model, [results[0].image_tokens])[0]):
        pixels = np.asarray(pil_images([replace(traj, png=png)])[0])
        assert pixels.shape == (16, 16, 3) and (pixels == 191).all()  # (0.5 + 1) * 127.5, rounded


def test_decoding_refuses_a_payload_of_another_model(micro_model):
    traj = Trajectory("p", 0, "x", image_tokens=np.zeros(64, dtype=np.int64))  # janus-tiny's 8x8 ids
    with pytest.raises(ValueError, match=r"trajectory 'p_0': 64 image ids, the model draws 16"):
        with_decoded_png([traj], micro_model)
