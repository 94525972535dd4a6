"""Paired bootstrap intervals: exact on constant data, paired gains tighter than the scores."""

import numpy as np
import pytest

from unigen.evals.bootstrap import paired_bootstrap

CATS = ["a"] * 6 + ["b"] * 6


def test_constant_scores_have_zero_width_and_geneval_averaging():
    base = np.zeros((2, 12, 8))
    base[:, :6] = 1.0  # category a always right, b always wrong
    out = paired_bootstrap({"base": base}, CATS, replicates=200)
    assert out["base"]["overall"].value == out["base"]["overall"].low == out["base"]["overall"].high == 0.5
    assert (out["base"]["a"].value, out["base"]["b"].value) == (1.0, 0.0)


def test_paired_gain_interval_is_tighter_than_the_scores_it_compares():
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0.05, 0.7, size=12)  # prompts differ a lot
    base = (rng.random((3, 12, 32)) < difficulty[None, :, None]).astype(float)
    post = (rng.random((3, 12, 32)) < (difficulty + 0.25)[None, :, None]).astype(float)
    out = paired_bootstrap({"base": base, "post": post}, CATS, differences={"gain": ("post", "base")})
    gain, scores = out["gain"]["overall"], out["base"]["overall"]
    assert gain.value == pytest.approx(out["post"]["overall"].value - scores.value)
    assert gain.low < gain.value < gain.high and 0.15 < gain.low and gain.high < 0.35
    assert gain.high - gain.low < 0.6 * (scores.high - scores.low)  # pairing removes prompt difficulty


def test_mismatched_stages_are_refused():
    with pytest.raises(ValueError, match="share"):
        paired_bootstrap({"x": np.zeros((1, 12, 4)), "y": np.zeros((2, 12, 4))}, CATS)


def _scores(seeds: int = 1, samples: int = 16) -> np.ndarray:
    """0/1 scores of 12 prompts of varied difficulty, (seeds, 12, samples)."""
    rng = np.random.default_rng(0)
    return (rng.random((seeds, 12, samples)) < rng.uniform(0.2, 0.8, 12)[None, :, None]).astype(float)


def test_a_lower_level_gives_a_narrower_interval_inside_the_wider_one():
    scores = {"s": _scores()}
    wide = paired_bootstrap(scores, CATS, replicates=400, level=0.95)["s"]["overall"]
    narrow = paired_bootstrap(scores, CATS, replicates=400, level=0.5)["s"]["overall"]
    assert wide.value == narrow.value
    assert wide.low < narrow.low < narrow.value < narrow.high < wide.high
    assert narrow.high - narrow.low < 0.5 * (wide.high - wide.low)


def test_nan_samples_are_left_out_of_the_means():
    scores = np.ones((2, 12, 4))
    scores[:, 6:] = 0.0
    scores[0, 0, 0] = np.nan  # prompt 0: 7 scored samples, all 1 (1, not 7/8)
    scores[0, 7] = [np.nan, 1.0, 0.0, 0.0]  # prompt 7: 7 scored samples, one of them 1 (1/7, not 1/8)
    out = paired_bootstrap({"s": scores}, CATS, replicates=200)["s"]
    assert out["a"].value == 1.0 and out["b"].value == pytest.approx((1 / 7) / 6)
    assert out["overall"].value == pytest.approx((1.0 + 1 / 42) / 2)
    assert all(np.isfinite([i.low, i.high]).all() and i.low <= i.value <= i.high for i in out.values())


def test_a_replicate_drawing_only_unscored_samples_of_a_prompt_keeps_finite_bounds():
    """Prompt 7 has one scored sample in seed 1 and none in seed 0's copy drawn twice: replicates that
    draw no scored sample of it leave it out instead of turning the interval into NaN."""
    scores = np.ones((2, 12, 4))
    scores[:, 6:] = 0.0
    scores[1, 7, 1:] = np.nan
    out = paired_bootstrap({"s": scores}, CATS, replicates=400)["s"]
    assert out["overall"].value == 0.5
    assert all(np.isfinite([i.low, i.high]).all() and i.low <= i.value <= i.high for i in out.values())


def test_seeds_that_differ_systematically_widen_the_interval():
    """Seed resampling: three seeds scoring -0.2 / 0 / +0.2 around the same samples give the same point
    as three identical seeds, and a wider interval (the seed-to-seed spread is part of the uncertainty)."""
    one = _scores()
    same = paired_bootstrap({"s": np.concatenate([one, one, one])}, CATS, replicates=400)["s"]["overall"]
    spread = paired_bootstrap({"s": np.concatenate([one - 0.2, one, one + 0.2])}, CATS, replicates=400)["s"]["overall"]
    assert spread.value == pytest.approx(same.value)
    assert (spread.high - spread.low) > (same.high - same.low) + 0.1, (spread, same)


def test_the_resampling_seed_reproduces_and_changes_only_the_bounds():
    scores = {"s": _scores(seeds=2)}
    first, again, other = (paired_bootstrap(scores, CATS, replicates=200, seed=s)["s"]["overall"] for s in (0, 0, 1))
    assert first == again
    assert other.value == first.value and (other.low, other.high) != (first.low, first.high)
