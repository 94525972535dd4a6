"""The redraw account of an interleaved evaluation (unigen.evals.redraws), checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from unigen.evals.redraws import account, accounts

FIRST = np.array([[1, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
FINAL = np.array([[1, 1, 0, 0], [0, 1, 0, 0]], dtype=float)
REDREW = np.array([[0, 1, 1, 1], [0, 1, 0, 0]], dtype=bool)


def test_account_of_pass_fail_scores():
    a = account(FIRST, FINAL, REDREW)
    assert (a.samples, a.redraws, a.improved, a.worsened, a.after_failed) == (8, 4, 2, 1, 3)
    assert a.redraw_score == pytest.approx(2 / 3)  # after failed firsts: 0 -> 1, 0 -> 0, 0 -> 1
    assert a.new_sample_score == pytest.approx((0.5 + 0.5 + 0.0) / 3)  # their prompts' first-image means
    assert a.ceiling_new_sample == pytest.approx((0.5 * 0.5 + 0.0) / 2)  # p(1 - p) per prompt
    assert a.ceiling_model == pytest.approx(6 * (2 / 3) / 8)  # six failed firsts, each redrawn to 2/3


def test_unscored_samples_are_left_out_and_scores_may_be_graded():
    first = np.array([[0.2, 0.6, np.nan]])
    final = np.array([[0.2, 0.9, 1.0]])
    a = account(first, final, np.array([[False, True, True]]))
    assert (a.samples, a.redraws, a.improved, a.after_failed) == (2, 1, 1, 1)
    # E[max(X, Y)] over (0.2, 0.6) with replacement: (0.2 + 0.6 + 0.6 + 0.6) / 4 = 0.5; minus E[X] = 0.4
    assert a.ceiling_new_sample == pytest.approx(0.1)
    assert a.ceiling_model == pytest.approx(((0.9 - 0.2) + (0.9 - 0.6)) / 2)


def test_no_redraw_after_a_failed_image_leaves_the_model_ceiling_unknown():
    a = account(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0]]), np.array([[False, True]]))
    assert (a.redraws, a.worsened, a.after_failed) == (1, 1, 0)
    assert a.redraw_score is None and a.new_sample_score is None and a.ceiling_model is None


def test_overall_sums_counts_and_averages_ceilings_over_categories():
    first = np.concatenate([FIRST, np.ones((1, 4))])
    final = np.concatenate([FINAL, np.ones((1, 4))])
    redrew = np.concatenate([REDREW, np.zeros((1, 4), dtype=bool)])
    found = accounts(first, final, redrew, ["a", "a", "b"])
    assert list(found) == ["a", "b", "overall"]
    assert found["b"].ceiling_new_sample == 0.0 and found["b"].ceiling_model is None
    overall = found["overall"]
    assert (overall.samples, overall.redraws, overall.improved, overall.worsened) == (12, 4, 2, 1)
    assert overall.ceiling_new_sample == pytest.approx(0.125 / 2)
    assert overall.ceiling_model == pytest.approx(0.5 / 2)  # category b: no redraw needed, counts 0
    assert overall.redraw_score == pytest.approx(2 / 3)
