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
