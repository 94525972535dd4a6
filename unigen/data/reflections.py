"""Reflect-and-redraw training trajectories from scored single-image samples of the same prompt.

For a prompt with K scored samples, a *failing* sample (reward below ``accept``, with an image)
becomes the first turn as it was drawn; the judge's findings on its image become the reflection;
an *accepted* sample (reward >= ``accept``) of the same prompt becomes the redraw. The reflection
text is ``"<finding>; <finding>. <the accepted sample's reasoning>"``: what was wrong, then the
plan the better image was drawn from (so the redraw follows text it was conditioned on). The
rewards of the first sample are stored as ``<name>@0``, the accepted one's as ``<name>@1`` and as
``<name>`` (the final image's), the key scheme of docs/trajectories.md.

A judge that explains itself has ``explain(trajectories) -> list[list[str] | None]``: per
trajectory, short phrases naming what is wrong with its image ([] when accepted, None when it
cannot say, [:data:`UNSPECIFIC`] when it rejects the image without a reason); docs/rewards.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from unigen.data.trajectory import Trajectory, Turn, keyed_by_turn

Explain = Callable[[list[Trajectory]], list[list[str] | None]]
UNSPECIFIC = "the picture does not match"
"""The finding of a judge that rejects an image but cannot name what is wrong; pairs explained by
it alone are kept and counted (``unspecific``)."""


@dataclass
class Pairing:
    """How a prompt's samples are paired."""

    reward: str = "image/shapes_strict"
    """"<modality>/<name>" of the stored reward that decides failing / accepted."""
    accept: float = 1.0
    """A sample is accepted when that reward is >= this, failing when below."""
    pairs_per_prompt: int = 1
    """At most this many (failing, accepted) pairs per prompt; failing samples in sample order,
    each with the next accepted sample (round robin)."""

    def __post_init__(self) -> None:
        if "/" not in self.reward:
            raise ValueError(f"reward must read '<modality>/<name>', got '{self.reward}'")
        if self.pairs_per_prompt < 1:
            raise ValueError(f"pairs_per_prompt must be >= 1, got {self.pairs_per_prompt}")

    def value(self, traj: Trajectory) -> float | None:
        modality, _, name = self.reward.partition("/")
        return traj.rewards.get(modality, {}).get(name)

    def rated(self, samples: list[Trajectory]) -> list[tuple[Trajectory, float]]:
        """The samples a pair may use, in sample order, with their reward: single-image, with an
        image, rated by :attr:`reward`."""
        return [(t, self.value(t)) for t in sorted(samples, key=lambda t: t.sample_idx)
                if not t.turns and t.has_image and self.value(t) is not None]

    def pairs(self, rated: list[tuple[Trajectory, float]]) -> list[tuple[Trajectory, Trajectory]]:
        """(failing, accepted) pairs of one prompt's :meth:`rated` samples."""
        failing = [t for t, r in rated if r < self.accept]
        accepted = [t for t, r in rated if r >= self.accept]
        if not accepted:
            return []
        return [(first, accepted[i % len(accepted)]) for i, first in enumerate(failing[:self.pairs_per_prompt])]


def reflection(findings: list[str], plan: str) -> str:
    """The reflection text: the findings, then the plan of the better image."""
    said = "; ".join(findings) + "." if findings else ""
    return " ".join(part for part in (said, plan.strip()) if part)


def reflect_and_redraw(first: Trajectory, second: Trajectory, findings: list[str], index: int) -> Trajectory:
    """The two-turn trajectory: ``first`` as drawn, the reflection, ``second``'s image as the redraw."""
    return Trajectory(
        prompt_id=first.prompt_id, sample_idx=index, prompt=first.prompt, reasoning=first.reasoning,
        image_tokens=first.image_tokens, png=first.png, category=first.category, metadata=first.metadata,
        mode="interleaved", model=first.model,
        generation={"built_by": "reflect", "first": first.key, "second": second.key, "findings": findings},
        rewards=keyed_by_turn([first.rewards, second.rewards]),
        turns=[Turn(reflection(findings, second.reasoning), second.image_tokens, second.png)],
    )


def build_reflections(samples: list[Trajectory], pairing: Pairing, explain: Explain) -> tuple[list[Trajectory], dict[str, int]]:
    """Reflect-and-redraw trajectories from scored samples (any order; grouped by prompt id) and
    counts: ``prompts``, ``paired_prompts``, ``no_rated`` (prompts without a usable sample:
    :meth:`Pairing.rated`), ``no_accepted`` / ``no_failing`` (prompts with rated samples but none
    accepted / failing), ``unexplained`` (pairs dropped: the judge could not say what is wrong),
    ``unspecific`` (pairs kept whose only finding is :data:`UNSPECIFIC`)."""
    groups: dict[str, list[Trajectory]] = {}
    for traj in samples:
        groups.setdefault(traj.prompt_id, []).append(traj)
    rated = {pid: pairing.rated(group) for pid, group in groups.items()}
    flat = [pair for found in rated.values() for pair in pairing.pairs(found)]
    findings = explain([first for first, _ in flat]) if flat else []
    out, unexplained, counter = [], 0, {}
    for (first, second), said in zip(flat, findings):
        if not said:  # None (cannot say) or [] (the judge accepts it after all)
            unexplained += 1
            continue
        counter[first.prompt_id] = counter.get(first.prompt_id, -1) + 1
        out.append(reflect_and_redraw(first, second, said, counter[first.prompt_id]))
    values = [[r for _, r in found] for found in rated.values()]
    return out, {
        "prompts": len(groups),
        "paired_prompts": len(counter),
        "no_rated": sum(not rs for rs in values),
        "no_accepted": sum(bool(rs) and all(r < pairing.accept for r in rs) for rs in values),
        "no_failing": sum(bool(rs) and all(r >= pairing.accept for r in rs) for rs in values),
        "unexplained": unexplained,
        "unspecific": sum(t.generation["findings"] == [UNSPECIFIC] for t in out),
    }
