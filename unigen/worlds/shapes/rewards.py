"""ShapesWorld rewards as plain callables: a list of trajectories in, one float or None each out.

- :class:`ShapesImageReward` (``modality = "image"``): 1.0 when the judge accepts the trajectory's
  image for its prompt metadata, else 0.0 (``explain`` gives the judge's findings,
  ``describe`` what the image shows) -- strict (``shapes_strict``: exactly the requested
  objects; the world's training reward) or by GenEval's rules (``shapes_geneval``); None when there is no image to judge
  (no ``png`` and no decoder given) or the metadata has no ``include`` list.
- :class:`PlanReward` (``modality = "text"``): :func:`unigen.worlds.shapes.plan.plan_score` of the
  reasoning text's last plan (a reflection's new plan) -- 1.0 for a plan that parses and meets every requirement, the passed share of
  the checks otherwise (one per ``include``, one per ``exclude``, one for distinct cells), 0.0
  for text that is not a plan; None when the metadata has no ``include`` list.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from unigen.data.trajectory import Trajectory
from unigen.worlds.shapes.plan import last_plan, plan_score
from unigen.worlds.shapes.render import from_png
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.worlds.shapes.vq import to_images


def model_decoder(model) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A ``decode`` for :class:`ShapesImageReward` from a unified model's VQ decoder."""

    def decode(ids: list[np.ndarray]) -> list[np.ndarray]:
        batch = torch.as_tensor(np.stack(ids), dtype=torch.long)
        return list(to_images(model.decode_images(batch)))

    return decode


class ShapesImageReward:
    """Judge image reward on ShapesWorld renders: strict (``shapes_strict``) or GenEval's rules
    (``shapes_geneval``)."""

    modality = "image"

    def __init__(self, strict: bool = True, min_area_fraction: float = 0.02, min_iou: float = 0.5,
                 decode: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None):
        """
        Args:
            strict: exactly the requested objects (see :class:`ShapesJudge`); else GenEval's rules.
            min_area_fraction: see :class:`ShapesJudge`.
            min_iou: see :class:`ShapesJudge`.
            decode: optional function mapping image-id arrays to uint8 (H, W, 3) images, used for
                trajectories without ``png`` (e.g. a VQ decoder); without it those get None.
        """
        self.judge = ShapesJudge(min_area_fraction, min_iou, strict=strict)
        self.name = "shapes_strict" if strict else "shapes_geneval"
        self.decode = decode

    def _images(self, trajectories: list[Trajectory]) -> list[np.ndarray | None]:
        images: list[np.ndarray | None] = [from_png(t.png) if t.png is not None else None for t in trajectories]
        todo = [i for i, t in enumerate(trajectories) if images[i] is None and t.has_image]
        if todo and self.decode is not None:
            for i, image in zip(todo, self.decode([trajectories[i].image_tokens for i in todo])):
                images[i] = image
        return images

    def explain(self, trajectories: list[Trajectory]) -> list[list[str] | None]:
        """The judge's findings per trajectory (the explaining-judge contract, docs/rewards.md):
        [] when the image is accepted, short phrases naming what is wrong otherwise; None where
        there is no image or no ``include`` metadata."""
        return [self.judge.findings(image, traj.metadata) if image is not None and "include" in traj.metadata else None
                for traj, image in zip(trajectories, self._images(trajectories))]

    def describe(self, trajectories: list[Trajectory]) -> list[str | None]:
        """What each image shows (:meth:`ShapesJudge.describe`, the describing-judge contract,
        docs/rewards.md); None where there is no image."""
        return [None if image is None else self.judge.describe(image) for image in self._images(trajectories)]

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]:
        scores: list[float | None] = []
        for traj, image in zip(trajectories, self._images(trajectories)):
            if "include" not in traj.metadata:
                scores.append(None)
            elif not traj.has_image and traj.png is None:
                scores.append(0.0)  # no image drawn (no switch, or cut off): a failed drawing
            elif image is None:
                scores.append(None)
            else:
                scores.append(float(self.judge.judge(image, traj.metadata)[0]))
        return scores


def shapes_geneval(**kwargs) -> ShapesImageReward:
    """The judge by GenEval's rules (``shapes_geneval``: extra objects are not penalised)."""
    return ShapesImageReward(strict=False, **kwargs)


class PlanReward:
    """Reasoning-plan text reward: does the plan parse and meet the prompt's metadata?"""

    modality = "text"
    name = "shapes_plan"

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]:
        """The plan check of each text's last plan (a reflection says what it saw before it plans)."""
        return [plan_score(last_plan(t.reasoning), t.metadata) if "include" in t.metadata else None for t in trajectories]
