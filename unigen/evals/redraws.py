"""Where an interleaved evaluation's redraws gain and where they lose, and what a perfect
stop-or-redraw decision could reach.

The gain of redrawing (final minus first image) has two factors: *when* the model redraws (its
decision) and *how good* a redraw is. This module separates them per category from each sample's
first score, final score and whether it redrew: how many redraws improved or worsened the first
image, how redraws after a failed first image compare with a new sample of the same prompt, and two
ceilings of a perfect decision (one with a new sample as the redraw, one with this model's redraws).
Scores are rewards in [0, 1]; a first image *failed* when it scored below 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RedrawAccount:
    """One category's (or all categories') redraws."""

    samples: int
    """Samples with a scored first and final image."""
    redraws: int
    """Samples that drew a second image."""
    improved: int
    """Redraws scoring above their first image."""
    worsened: int
    """Redraws scoring below their first image."""
    after_failed: int
    """Redraws after a first image that failed (scored below 1)."""
    redraw_score: float | None
    """Mean score of the redraws after a failed first image (None without any)."""
    new_sample_score: float | None
    """What a new sample of the same prompts scores for those redraws: the mean, over them, of their
    prompt's first-image mean. A redraw that uses what it saw should beat it."""
    ceiling_new_sample: float
    """Gain of a perfect decision whose redraw is a new sample of the model: per prompt E[max(X, Y)] -
    E[X] over its first images' scores X, Y (p(1 - p) for pass/fail scores), mean over prompts."""
    ceiling_model: float | None
    """Gain of a perfect decision with this model's redraws (an estimate: redraws after a failed first
    image taken as representative): every first image scoring below :attr:`redraw_score` is redrawn
    and scores that: the mean of max(0, redraw_score - first)."""


def account(first: np.ndarray, final: np.ndarray, redrew: np.ndarray) -> RedrawAccount:
    """The account of one category from (prompts, samples) arrays of first and final scores (NaN:
    unscored, left out) and redraw flags; with several seeds, their prompts are stacked as rows."""
    scored = ~np.isnan(first) & ~np.isnan(final)
    redrawn = scored & redrew.astype(bool)
    after_failed = redrawn & (first < 1)
    prompt_first = np.array([np.nanmean(row) if (~np.isnan(row)).any() else np.nan for row in first])
    new_sample = np.broadcast_to(prompt_first[:, None], first.shape)
    ceilings = [np.maximum.outer(v, v).mean() - v.mean() for v in (row[~np.isnan(row)] for row in first) if v.size]
    redraw_score = float(final[after_failed].mean()) if after_failed.any() else None
    return RedrawAccount(
        samples=int(scored.sum()), redraws=int(redrawn.sum()), improved=int((final > first)[redrawn].sum()),
        worsened=int((final < first)[redrawn].sum()), after_failed=int(after_failed.sum()), redraw_score=redraw_score,
        new_sample_score=float(new_sample[after_failed].mean()) if after_failed.any() else None,
        ceiling_new_sample=float(np.mean(ceilings)) if ceilings else 0.0,
        ceiling_model=None if redraw_score is None else float(np.maximum(redraw_score - first[scored], 0).mean()))


def accounts(first: np.ndarray, final: np.ndarray, redrew: np.ndarray, categories: list[str]
             ) -> dict[str, RedrawAccount]:
    """Per category (prompt rows by ``categories``) and ``"overall"``: counts and the redraw and
    new-sample scores over every sample, the ceilings the mean over categories (GenEval's overall)."""
    names = np.asarray(categories)
    found = {c: account(first[names == c], final[names == c], redrew[names == c]) for c in dict.fromkeys(categories)}
    pooled = account(first, final, redrew)
    models = [a.ceiling_model for a in found.values()]
    found["overall"] = RedrawAccount(
        **{k: getattr(pooled, k) for k in ("samples", "redraws", "improved", "worsened", "after_failed",
                                           "redraw_score", "new_sample_score")},
        ceiling_new_sample=float(np.mean([a.ceiling_new_sample for a in found.values()])),
        ceiling_model=float(np.mean([m or 0.0 for m in models])) if any(m is not None for m in models) else None)
    return found
