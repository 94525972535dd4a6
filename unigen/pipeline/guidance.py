"""Guidance selection: each model's classifier-free guidance scale, chosen on validation prompts.

Reward-weighted fitting sharpens a model's conditional distribution towards what its reward accepts,
much as guidance does, so the scale that suits the base over-sharpens the post-trained model (on
ShapesWorld, guidance 2 breaks the post-trained model's single objects that it draws cleanly at
1-1.5; docs/shapes-history.md). The loop therefore picks every model's scale the same way: evaluate
it at each candidate scale on a validation prompt set drawn from the training prompt source in the
benchmark's category mix (never a benchmark prompt), scored by the benchmark's reward, and keep the
best.

A fitted model's search is capped at the scale of the model it was fitted from (``cap_at_start``):
fitting sharpens, so it should not need more guidance, and validation prompts cannot see what more
breaks. On ShapesWorld they hold no single_object prompt (a benchmark-only category) and only
trained colour-shape pairs; an uncapped search chose guidance 2 for a round-4 model (validation
0.694 against 0.663 at 1) that scores 0.595 on the benchmark at 2 and 0.679 at 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from unigen.evals.summary import read_summary
from unigen.files import atomic_write_text
from unigen.pipeline.evaluate import EvaluateSettings, evaluate


@dataclass
class GuidanceSearch:
    """Candidate scales and the validation set they are compared on."""

    scales: list[float] = field(default_factory=lambda: [1.0, 1.5, 2.0, 3.0])
    """Candidate classifier-free guidance scales (1: no guidance); ties go to the one listed first."""
    prompts: int = 48
    """Validation prompts, drawn like ``target.strategy: benchmark_aligned`` from the training prompt source."""
    samples_per_prompt: int = 4
    """Samples per validation prompt and scale."""
    cap_at_start: bool = True
    """A fitted model's candidates are the scales no larger than its start model's chosen scale."""

    def __post_init__(self) -> None:
        if not self.scales or any(scale < 1 for scale in self.scales):
            raise ValueError(f"guidance scales must be a non-empty list of values >= 1, got {self.scales}")


Sampled = TypeVar("Sampled")
"""Stage settings with a ``sampling`` field (:class:`EvaluateSettings`, ``GenerateSettings``)."""


def at_scale(settings: Sampled, scale: float) -> Sampled:
    """``settings`` sampling at guidance ``scale``."""
    return replace(settings, sampling=replace(settings.sampling, cfg=scale))


def select_guidance(search: GuidanceSearch, evaluating: EvaluateSettings, validation: Path, out: Path,
                    ceiling: float | None = None) -> float:
    """Evaluate ``evaluating`` (model, mode, reward, sampling) at every scale of ``search`` (those up to
    ``ceiling`` when given) on the ``validation`` prompt file, under ``out/cfg-<scale>/``; write
    ``out/guidance.json`` (each scale's overall score and the choice) and return the best scale.
    Finished evaluations are reused."""
    candidates = [scale for scale in search.scales if ceiling is None or scale <= ceiling]
    if not candidates:
        raise ValueError(f"no guidance scale of {search.scales} is at most the ceiling {ceiling}")
    scores = {}
    for scale in candidates:
        folder = evaluate(replace(
            at_scale(evaluating, scale), benchmark={"class_path": "prompts", "init_args": {"path": str(validation)}},
            samples_per_prompt=search.samples_per_prompt, prompts=None, max_prompts=None,
            outdir=str(out / f"cfg-{scale:g}")))
        scores[scale] = read_summary(folder)["overall"]
    chosen = max(candidates, key=lambda scale: scores[scale])
    atomic_write_text(out / "guidance.json", json.dumps(
        {"model": evaluating.model, "mode": evaluating.mode, "validation": str(validation),
         "scores": {f"{scale:g}": value for scale, value in scores.items()}, "chosen": chosen}, indent=1))
    print(f"guidance for {evaluating.model} ({evaluating.mode}): " +
          ", ".join(f"{scale:g} -> {value:.3f}" for scale, value in scores.items()) + f"; chose {chosen:g}")
    return chosen
