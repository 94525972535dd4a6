"""Weighting schemes on hand-computed cases, grouping, missing rewards."""

import math
import warnings

import pytest
import torch

from callbacks.reward_weighting import apply_weights
from unigen.data.batch import Batch, collate
from unigen.data.sequence import Example
from unigen.rewards.weighting import ModalityWeighting, combined_reward, scheme_weights, weight_stats

NAN = math.nan


def w(values, prompt_ids=None, **cfg):
    cfg.setdefault("rewards", {"image/r": 1.0})
    return scheme_weights(torch.tensor(values, dtype=torch.float64), ModalityWeighting(**cfg), prompt_ids).tolist()


def test_off_and_zero_ignore_rewards():
    assert w([0.1, NAN, 3.0], scheme="off") == [1.0, 1.0, 1.0]
    assert w([0.1, NAN, 3.0], scheme="zero") == [0.0, 0.0, 0.0]


def test_filter_top_fraction_and_threshold():
    # top 50% of 4 rated = 2 highest: 0.9 and 0.7
    assert w([0.2, 0.9, 0.7, 0.1], scheme="filter", top_fraction=0.5) == [0, 1, 1, 0]
    assert w([0.2, 0.9, 0.7, 0.1], scheme="filter", threshold=0.5) == [0, 1, 1, 0]
    # both: threshold 0.8 leaves only 0.9 out of the top 2
    assert w([0.2, 0.9, 0.7, 0.1], scheme="filter", threshold=0.8, top_fraction=0.5) == [0, 1, 0, 0]
    # ties broken by batch order; ceil(0.34 * 3) = 2
    assert w([0.5, 0.5, 0.5], scheme="filter", top_fraction=0.34) == [1, 1, 0]


def test_rwr_normalised_per_batch():
    got = w([0.0, 1.0], scheme="rwr", beta=0.5)
    e = math.exp(2.0)
    assert got == pytest.approx([2 / (1 + e), 2 * e / (1 + e)])
    assert w([0.0, 1.0], scheme="rwr", beta=0.5, normalize=False) == pytest.approx([1.0, e])


def test_rwr_clip():
    got = w([0.0, 1.0], scheme="rwr", beta=0.5, max_weight=1.5)
    assert got == pytest.approx([2 / (1 + math.exp(2)), 1.5])


def test_rwr_per_prompt_groups():
    ids = ["a", "b", "a", "b"]
    got = w([0.0, 5.0, 1.0, 5.0], ids, scheme="rwr", group="prompt")
    e = math.e
    assert got == pytest.approx([2 / (1 + e), 1.0, 2 * e / (1 + e), 1.0])
    # the same rewards over the whole batch give different weights
    assert w([0.0, 5.0, 1.0, 5.0], ids, scheme="rwr")[1] != pytest.approx(1.0)


def test_advantage_per_prompt():
    ids = ["a", "a", "b", "b", "c"]
    got = w([1.0, 3.0, 2.0, 2.0, 7.0], ids, scheme="advantage", group="prompt", eps=0.0)
    # group a: mean 2, std 1 -> A = -1, +1; group b: std 0 -> A = 0; group c: single -> A = 0
    assert got == pytest.approx([math.exp(-1), math.exp(1), 1.0, 1.0, 1.0])
    assert w([1.0, 3.0], ["a", "a"], scheme="advantage", group="prompt", beta=2.0, eps=0.0) == pytest.approx(
        [math.exp(-0.5), math.exp(0.5)])


def test_linear():
    assert w([0.25, -1.0, 0.5], scheme="linear") == [0.25, 0.0, 0.5]
    assert w([0.25, 0.75], scheme="linear", normalize=True) == [0.5, 1.5]


def test_missing_rewards_left_out_of_statistics():
    # the rated pair is normalised on its own; the unrated sample gets the `missing` treatment
    e = math.e
    base = [2 / (1 + e), 2 * e / (1 + e)]
    assert w([0.0, NAN, 1.0], scheme="rwr") == pytest.approx([base[0], 0.0, base[1]])
    assert w([0.0, NAN, 1.0], scheme="rwr", missing="one") == pytest.approx([base[0], 1.0, base[1]])
    assert w([0.0, NAN, 1.0], scheme="rwr", missing="mean") == pytest.approx([base[0], 1.0, base[1]])
    assert w([0.2, NAN, 0.9], scheme="filter", top_fraction=0.5, missing="mean") == pytest.approx([0, 0.5, 1])
    assert w([NAN, NAN], scheme="rwr") == [0.0, 0.0]


def test_combined_reward_renormalises_over_present():
    rewards = {"image/a": torch.tensor([1.0, NAN, NAN]), "image/b": torch.tensor([0.0, 0.5, NAN])}
    got = combined_reward(rewards, {"image/a": 3.0, "image/b": 1.0, "image/absent": 5.0}, 3)
    assert got[:2].tolist() == [0.75, 0.5] and math.isnan(got[2])


def test_config_errors():
    with pytest.raises(ValueError, match="needs `rewards`"):
        ModalityWeighting(scheme="rwr")
    with pytest.raises(ValueError, match="top_fraction"):
        ModalityWeighting(scheme="filter", rewards={"image/y": 1.0})
    with pytest.raises(ValueError, match="<image|text>/<name>"):
        ModalityWeighting(scheme="rwr", rewards={"vqa": 1.0})
    with pytest.raises(ValueError, match="prompt_ids"):
        scheme_weights(torch.tensor([1.0]), ModalityWeighting(scheme="rwr", rewards={"image/x": 1}, group="prompt"))


def test_weight_stats_ess():
    s = weight_stats(torch.tensor([1.0, 1.0, 0.0, 2.0]))
    assert s["ess"] == pytest.approx(16 / 6) and s["ess_fraction"] == pytest.approx(4 / 6)
    assert s["zero_fraction"] == 0.25 and s["max"] == 2.0


def rated_batch(rewards: list[dict[str, float]]) -> Batch:
    """A padded batch of two-token samples of prompt ``p`` with the given rewards."""
    return collate([Example([1, 2], [False, False], [2, -100], [-100, -100], [0, 1], [0, 0], None, f"p_{i}", "p", [(0, r)])
                    for i, r in enumerate(rewards)], pad_id=0)


def test_apply_weights_sets_both_modalities():
    batch = rated_batch([{"image/vqa": 0.2, "text/match": 1.0}, {"image/vqa": 0.8}])
    stats = apply_weights(batch, ModalityWeighting(scheme="filter", rewards={"text/match": 1.0}, threshold=0.5),
                          ModalityWeighting(scheme="linear", rewards={"image/vqa": 1.0}))
    assert batch.text_weight.tolist() == [1.0, 0.0]
    assert batch.image_weight.tolist() == pytest.approx([0.2, 0.8])
    assert stats["text"]["rated_fraction"] == 0.5


def test_callback_warns_once_about_an_absent_reward():
    from callbacks.reward_weighting import RewardWeighting

    callback = RewardWeighting(image=ModalityWeighting(scheme="rwr", rewards={"image/vqa_typo": 1.0}))
    batch = rated_batch([{"image/vqa": 0.5}])
    with pytest.warns(UserWarning, match=r"'image/vqa_typo' is not in this batch \(it has \['image/vqa'\]\)"):
        callback._warn_absent(batch)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        callback._warn_absent(batch)
    assert not again  # once per name
    assert callback._warned == {"image/vqa_typo"}
