"""The reward contract: a plain callable that rates a batch of trajectories.

A reward is any object with

- ``modality``: ``"image"``, ``"text"`` or ``"both"`` -- which loss head its value is meant for;
- ``__call__(trajectories: list[Trajectory]) -> list[float | None]``: one value per trajectory,
  in order; ``None`` means "cannot judge" (the trajectory is then left out for this reward, it is
  *not* scored 0). Values must be finite (NaN / inf are rejected by the callers, naming the key).

It needs no base class (a :class:`Reward` ``Protocol`` describes it, so a class in any module can
be named by ``class_path`` in YAML). :class:`RewardBase` is an optional convenience base.

Images: an image reward reads ``trajectory.png`` (PNG bytes); :func:`unigen.rewards.images.pil_images`
returns PIL images (``None`` where a trajectory has no image). ``run.py score --decoder <model>`` and
the online callback fill ``png`` from ``image_tokens`` with the model's VQ decoder before calling
rewards, so rewards never need the generator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from unigen.data.trajectory import Trajectory

MODALITIES = ("image", "text", "both")


@runtime_checkable
class Reward(Protocol):
    """Anything with a ``modality`` and ``__call__(list[Trajectory]) -> list[float | None]``."""

    modality: str

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]: ...


class RewardBase:
    """Optional base: set ``modality`` and implement ``score`` for one trajectory, or override ``__call__``."""

    modality: str = "image"

    def score(self, trajectory: Trajectory) -> float | None:
        raise NotImplementedError

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]:
        return [self.score(t) for t in trajectories]


def target_modalities(reward: Reward, name: str = "") -> tuple[str, ...]:
    """The modality keys a reward's values are stored under (``both`` -> image and text)."""
    modality = getattr(reward, "modality", None)
    if modality not in MODALITIES:
        raise ValueError(f"reward '{name}' ({type(reward).__name__}) declares modality {modality!r}; "
                         f"expected one of {MODALITIES}")
    return ("image", "text") if modality == "both" else (modality,)


def checked_values(name: str, trajectories: Sequence[Trajectory], values: Sequence[float | None]) -> list[float | None]:
    """Validate a reward's output: one value per trajectory, finite floats or None (errors name the key)."""
    if len(values) != len(trajectories):
        raise ValueError(f"reward '{name}' returned {len(values)} values for {len(trajectories)} trajectories")
    out: list[float | None] = []
    for traj, value in zip(trajectories, values):
        if value is None:
            out.append(None)
            continue
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"reward '{name}' returned {value} for trajectory '{traj.key}': rewards must be "
                             "finite (return None for 'cannot judge')")
        out.append(value)
    return out


def combine_values(values: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """Weighted mean of the named values that are present; None when none of them is.

    Absent (None / NaN) rewards are left out and the remaining weights renormalised, so a
    trajectory one judge could not rate is combined from the others.
    """
    total = norm = 0.0
    for name, weight in weights.items():
        value = values.get(name)
        if value is None or math.isnan(value):
            continue
        total += weight * value
        norm += weight
    return total / norm if norm else None
