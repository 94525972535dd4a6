"""Sampling filters and guidance (``unigen.generation.pick``) against hand-made logits and
independent references: top-k (ties included), top-p, temperature, the frequencies Gumbel-max
sampling draws with the real per-row noise, and cfg = 1."""

from __future__ import annotations

import math

import pytest
import torch

from unigen.generation.pick import (IMAGE_STREAM, TEXT_STREAM, NoiseBlocks, choose, row_keys, top_k_filter,
                                    top_p_filter)
from unigen.models.image import guide

NEG = float("-inf")


def kept(filtered: torch.Tensor) -> list[set[int]]:
    """Per row, the ids a filter left finite."""
    return [set(torch.isfinite(row).nonzero().flatten().tolist()) for row in filtered]


def nucleus(probs: list[float], p: float) -> set[int]:
    """Reference top-p: the fewest most-probable ids whose total probability reaches p."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    total, out = 0.0, set()
    for i in order:
        out.add(i)
        total += probs[i]
        if total >= p:
            break
    return out


# ---------------------------------------------------------------- top-k


@pytest.mark.parametrize("k, expected", [(1, {3}), (2, {3, 1}), (3, {3, 1, 4}), (4, {3, 1, 4, 0})])
def test_top_k_keeps_the_k_largest_logits_unchanged(k: int, expected: set[int]):
    logits = torch.tensor([[0.1, 2.0, -1.0, 3.0, 0.5]])
    out = top_k_filter(logits, k)
    assert kept(out) == [expected]
    assert torch.equal(out[torch.isfinite(out)], logits[torch.isfinite(out)])
    assert (out[~torch.isfinite(out)] == NEG).all()


def test_top_k_off_values_return_the_logits():
    logits = torch.randn(3, 5)
    for k in (0, -1, 5, 9):
        assert torch.equal(top_k_filter(logits, k), logits)


def test_top_k_ties_keep_every_id_equal_to_the_kth_value():
    """Current behaviour, pinned: ids tied with the k-th largest value all stay (more than k ids)."""
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0],
                           [2.0, 1.0, 1.0, 1.0, 0.0]])
    assert kept(top_k_filter(logits, 2)) == [{1, 2, 4}, {0, 1, 2, 3}]
    assert kept(top_k_filter(logits, 1)) == [{1, 2, 4}, {0}]


def test_top_k_matches_a_sort_reference_row_by_row():
    torch.manual_seed(0)
    logits = torch.randn(32, 11)  # no ties
    for k in range(1, 11):
        reference = [set(row.argsort(descending=True)[:k].tolist()) for row in logits]
        assert kept(top_k_filter(logits, k)) == reference, k


# ---------------------------------------------------------------- top-p

PROBS = [0.1, 0.5, 0.04, 0.3, 0.06]  # ids by probability: 1, 3, 0, 4, 2


@pytest.mark.parametrize("p, expected", [(1e-6, {1}), (0.45, {1}), (0.7, {1, 3}), (0.85, {1, 3, 0}),
                                         (0.93, {1, 3, 0, 4}), (0.99, {0, 1, 2, 3, 4})])
def test_top_p_keeps_the_smallest_set_reaching_p(p: float, expected: set[int]):
    logits = torch.tensor([PROBS]).log() + 1.5  # a constant shift changes no probability
    out = top_p_filter(logits, p)
    assert kept(out) == [expected] == [nucleus(PROBS, p)]
    assert torch.equal(out[torch.isfinite(out)], logits[torch.isfinite(out)])


def test_top_p_one_returns_the_logits():
    logits = torch.randn(2, 7)
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_top_p_matches_the_reference_on_random_rows():
    torch.manual_seed(1)
    logits = torch.randn(64, 9) * 2
    probs = logits.softmax(-1)
    for p in (0.2, 0.5, 0.75, 0.9, 0.97):
        out = kept(top_p_filter(logits, p))
        for row, got in zip(probs.tolist(), out):
            cumulative = sorted(row, reverse=True)
            sums = [sum(cumulative[: i + 1]) for i in range(len(row))]
            if min(abs(s - p) for s in sums) < 1e-4:
                continue  # too close to the boundary for float32 to decide
            assert got == nucleus(row, p), (row, p)


# ---------------------------------------------------------------- temperature and sampled frequencies


def noise_draws(rows: int, steps: int):
    """Real per-row Gumbel noise: ``rows`` row seeds x ``steps`` decoding steps."""
    noise = NoiseBlocks(row_keys(list(range(rows)), "cpu"))
    return noise, [(step, TEXT_STREAM if step % 2 else IMAGE_STREAM) for step in range(steps)]


def test_choose_divides_the_logits_by_the_temperature():
    torch.manual_seed(2)
    logits = torch.randn(256, 8) * 3
    noise, draws = noise_draws(256, 4)
    for temperature in (0.3, 1.0, 2.5):
        for step, stream in draws:
            expected = (logits / temperature + noise.at(step, stream, 8)).argmax(-1)
            assert torch.equal(choose(logits, noise, step, stream, False, temperature), expected)
    assert torch.equal(choose(logits, noise, 0, IMAGE_STREAM, True, 0.01, 1, 0.1), logits.argmax(-1))  # greedy


def test_temperature_applies_before_the_nucleus():
    """At T = 1 the 0.55-nucleus of (0.6, 0.3, 0.1) is one id; at T = 4 the flatter distribution needs two."""
    logits = torch.tensor([[0.6, 0.3, 0.1]]).log().expand(2000, 3)
    noise, _ = noise_draws(2000, 1)
    assert set(choose(logits, noise, 0, IMAGE_STREAM, False, 1.0, top_p=0.55).tolist()) == {0}
    assert set(choose(logits, noise, 0, IMAGE_STREAM, False, 4.0, top_p=0.55).tolist()) == {0, 1}


LOGITS = [2.0, 1.0, 0.5, 0.0, -1.0, -3.0]
ROWS, STEPS = 400, 50  # 20,000 draws


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (2.0, 0, 1.0), (0.5, 0, 1.0), (1.0, 3, 1.0),
                                                       (1.0, 0, 0.8), (2.0, 4, 0.8)])
def test_sampled_frequencies_match_the_filtered_softmax(temperature: float, top_k: int, top_p: float):
    """Frequencies of 20,000 Gumbel-max draws (400 row seeds x 50 steps, both streams) against
    softmax(logits / T) restricted to the top-k / nucleus ids (filtered ids: never drawn). Each id's
    frequency is within 5 binomial standard deviations sqrt(q (1 - q) / n) of its probability q."""
    scaled = [x / temperature for x in LOGITS]
    allowed = set(range(len(LOGITS))) if top_k == 0 else set(sorted(range(6), key=lambda i: -scaled[i])[:top_k])
    base = [math.exp(scaled[i]) if i in allowed else 0.0 for i in range(6)]
    base = [b / sum(base) for b in base]
    allowed &= nucleus(base, top_p)
    weights = [math.exp(scaled[i]) if i in allowed else 0.0 for i in range(6)]
    expected = torch.tensor([w / sum(weights) for w in weights], dtype=torch.float64)

    noise, draws = noise_draws(ROWS, STEPS)
    logits = torch.tensor(LOGITS).expand(ROWS, 6)
    ids = torch.cat([choose(logits, noise, step, stream, False, temperature, top_k, top_p) for step, stream in draws])
    n = ids.numel()
    freq = torch.bincount(ids, minlength=6).double() / n
    bound = 5 * (expected * (1 - expected) / n).sqrt()
    assert (freq[expected == 0] == 0).all(), (freq, expected)
    assert ((freq - expected).abs() <= bound).all(), f"frequencies {freq.tolist()} vs {expected.tolist()} (+- {bound.tolist()})"


# ---------------------------------------------------------------- guidance


def test_guide_at_cfg_one_returns_the_conditional_rows_untouched():
    """With cfg = 1 the sampler stacks no unconditional rows: every row is conditional and kept as is."""
    cond = torch.randn(4, 5)
    assert torch.equal(guide(cond, 1.0), cond)


def test_guide_mixes_conditional_and_unconditional_rows():
    cond, uncond = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 3.0]])
    assert torch.equal(guide(torch.cat([cond, uncond]), 3.0), torch.tensor([[2.0, 0.0]]))  # u + 3 (c - u)
    torch.testing.assert_close(guide(torch.cat([cond, uncond]), 1.0 + 1e-6), cond)  # continuous at 1
