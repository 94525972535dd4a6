"""Training sequences: label masks per mode, and the samples that cannot become sequences."""

from __future__ import annotations

import numpy as np
import pytest

from unigen.data.batch import collate
from unigen.data.sequence import BadSample, build_example
from unigen.data.trajectory import Trajectory
from unigen.losses import IGNORE
from unigen.models.loading import load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec("janus-micro")


def trajectory(spec, reasoning="plan: red circle", image=True) -> Trajectory:
    ids = np.arange(spec.image.num_tokens) % spec.image.codebook_size if image else np.zeros(0, dtype=np.int64)
    return Trajectory("p0", 0, "a red circle", reasoning, ids, rewards={"image": {"exact": 1.0}})


def supervised(example, kind):
    labels = getattr(example, f"{kind}_labels")
    return [label for label in labels if label != IGNORE]


def test_unified_supervises_reasoning_switch_image_and_end_tokens(spec):
    ex = build_example(trajectory(spec), spec, "unified")
    prompt_len = len(spec.encode_prompt("a red circle"))
    reasoning = spec.encode_text("plan: red circle")
    assert supervised(ex, "text") == [*reasoning, spec.boi_id, spec.eoi_id, spec.eos_id]
    assert supervised(ex, "image") == list(range(spec.image.num_tokens))
    # labels are next tokens: the position before BOI predicts BOI
    boi_pos = prompt_len + len(reasoning)
    assert ex.input_ids[boi_pos] == spec.boi_id and ex.text_labels[boi_pos - 1] == spec.boi_id
    assert ex.image_mask.count(True) == spec.image.num_tokens
    assert ex.image_labels[boi_pos] == 0  # the first image id is predicted at BOI


def test_explicit_ends_text_with_eos_and_gets_the_switch_token_without_loss(spec):
    explicit = build_example(trajectory(spec), spec, "explicit")
    reasoning = spec.encode_text("plan: red circle")
    assert spec.boi_id in explicit.input_ids and spec.boi_id not in supervised(explicit, "text")
    # today's practice: the model ends its text (EOS), the program appends BOI in its place
    assert supervised(explicit, "text") == [*reasoning, spec.eos_id, spec.eoi_id, spec.eos_id]
    boi_pos = explicit.input_ids.index(spec.boi_id)
    assert explicit.text_labels[boi_pos - 1] == spec.eos_id


def test_direct_drops_reasoning_and_gets_the_switch_token_without_loss(spec):
    direct = build_example(trajectory(spec), spec, "direct")
    assert supervised(direct, "text") == [spec.eoi_id, spec.eos_id]
    assert len(direct.input_ids) == len(spec.encode_prompt("a red circle")) + spec.image.num_tokens + 3


def test_no_image_trajectory_is_kept_as_text_only(spec):
    ex = build_example(trajectory(spec, image=False), spec, "unified")
    assert supervised(ex, "image") == [] and supervised(ex, "text")[-1] == spec.eos_id
    with pytest.raises(BadSample, match="no_image"):
        build_example(trajectory(spec, image=False), spec, "direct")


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda t: setattr(t, "image_tokens", t.image_tokens[:-1]), "image_token_count"),
        (lambda t: setattr(t, "image_tokens", t.image_tokens + 1000), "image_id_range"),
        (lambda t: setattr(t, "reasoning", "x" * 400), "too_long"),
    ],
)
def test_bad_samples_carry_a_reason(spec, change, reason):
    traj = trajectory(spec)
    change(traj)
    with pytest.raises(BadSample) as err:
        build_example(traj, spec, "unified")
    assert err.value.reason == reason


def test_collate_pads_and_maps_tokens_to_samples(spec):
    a = build_example(trajectory(spec), spec, "unified")
    b = build_example(trajectory(spec, reasoning="plan: a much longer plan text here"), spec, "unified")
    batch = collate([a, b], spec.pad_id)
    T = max(len(a.input_ids), len(b.input_ids))
    assert batch.input_ids.shape == (2, T)
    assert batch.attention_mask.sum(1).tolist() == [len(a.input_ids), len(b.input_ids)]
    assert batch.input_ids[0, len(a.input_ids):].eq(spec.pad_id).all()
    assert (batch.text_labels[0, len(a.input_ids):] == IGNORE).all()
    assert batch.sample_index[1].eq(1).all()
    assert batch.rewards["image/exact"].tolist() == [1.0, 1.0]
    assert batch.text_weight.tolist() == [1.0, 1.0]


def test_condition_dropout_keeps_only_bos_boi_and_the_image(spec):
    kept = build_example(trajectory(spec), spec, "unified")
    dropped = build_example(trajectory(spec), spec, "unified", drop_condition=True)
    boi_pos = kept.input_ids.index(spec.boi_id)
    assert dropped.input_ids[0] == spec.bos_id and dropped.input_ids[boi_pos] == spec.boi_id
    assert set(dropped.input_ids[1:boi_pos]) == {spec.pad_id} and boi_pos > 5
    assert dropped.input_ids[boi_pos:] == kept.input_ids[boi_pos:]  # image ids, EOI, EOS unchanged
    assert supervised(dropped, "text") == []  # no text loss on a dropped condition
    assert dropped.image_labels == kept.image_labels and dropped.image_mask == kept.image_mask
    text_only = build_example(trajectory(spec, image=False), spec, "unified", drop_condition=True)
    assert text_only.input_ids == build_example(trajectory(spec, image=False), spec, "unified").input_ids
