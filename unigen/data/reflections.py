"""Interleaved training trajectories (look, reflect, redraw) from scored single-image samples.

Every input sample comes out once, so the output is the whole training set of the round:

- a *failing* sample (reward below ``accept``, with an image) whose prompt has an *accepted* one
  (reward >= ``accept``) becomes a two-turn trajectory: its first turn as drawn, then the
  reflection, then the accepted sample's image as the redraw. Its partner is the accepted sample
  whose reasoning is most like its own (the redraw changes as little as it must);
- with a judge that *describes* images, an accepted sample gets a closing reflection, the
  description of its image, and ends (the model learns to look at its image before it stops);
- every other sample (and one whose reflection is longer than ``fits`` allows) stays as it was.

The reflection is ``"<observation> <the accepted sample's reasoning>"``: what the judge sees in the
failing image (``describe``) or, from a judge that only explains, what it finds wrong
(``"<finding>; <finding>."``), then the plan the better image was drawn from (so the redraw
follows text it was conditioned on). A two-turn trajectory stores the failing sample's rewards
as ``<name>@0``, the accepted one's as ``<name>@1`` and ``<name>`` (the final image's), the key
scheme of docs/trajectories.md; a described sample's rewards are its own for both turns.

Judge contract (docs/rewards.md): ``explain(trajectories) -> list[list[str] | None]`` names what
is wrong per image ([] when accepted, None when it cannot say, [:data:`UNSPECIFIC`] when it
rejects the image without a reason); optional ``describe(trajectories) -> list[str | None]`` says
what each image shows, in words the model writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

from unigen.data.trajectory import Trajectory, Turn, keyed_by_turn

Explain = Callable[[list[Trajectory]], list[list[str] | None]]
Describe = Callable[[list[Trajectory]], list[str | None]]
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
    """At most this many failing samples per prompt (in sample order) become two-turn
    trajectories, each with the accepted sample whose reasoning is most like its own."""

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
        """(failing, accepted) pairs of one prompt's :meth:`rated` samples; the partner is the
        accepted sample with the most similar reasoning (the first of equals)."""
        failing = [t for t, r in rated if r < self.accept]
        accepted = [t for t, r in rated if r >= self.accept]
        if not accepted:
            return []
        return [(first, max(accepted, key=lambda a: SequenceMatcher(None, first.reasoning, a.reasoning).ratio()))
                for first in failing[:self.pairs_per_prompt]]


def reflection(observation: str, plan: str) -> str:
    """The reflection text: what the judge saw or found, then the plan of the better image."""
    return " ".join(part for part in (observation.strip(), plan.strip()) if part)


def findings_text(findings: list[str]) -> str:
    """A judge's findings as one sentence."""
    return "; ".join(findings) + "." if findings else ""


def reflect_and_redraw(first: Trajectory, second: Trajectory, text: str, findings: list[str]) -> Trajectory:
    """The two-turn trajectory: ``first`` as drawn, the reflection ``text``, ``second``'s image as the redraw."""
    return replace(first, mode="interleaved", rewards=keyed_by_turn([first.rewards, second.rewards]),
                   generation={"built_by": "reflect", "first": first.key, "second": second.key, "findings": findings},
                   turns=[Turn(text, second.image_tokens, second.png)])


def described(sample: Trajectory, description: str) -> Trajectory:
    """``sample`` with a closing reflection: the description of its image, then the end."""
    return replace(sample, mode="interleaved", rewards=keyed_by_turn([sample.rewards, sample.rewards]),
                   generation={"built_by": "reflect", "described": sample.key}, turns=[Turn(description)])


def build_reflections(samples: list[Trajectory], pairing: Pairing, explain: Explain, describe: Describe | None = None,
                      fits: Callable[[str], bool] = lambda text: True) -> tuple[list[Trajectory], dict[str, int]]:
    """Every sample once, as the module docstring says (grouped by prompt id, in sample order), and
    counts: ``prompts``, ``paired_prompts``, ``pairs``, ``described``, ``no_rated`` (prompts
    without a usable sample: :meth:`Pairing.rated`), ``no_accepted`` / ``no_failing`` (prompts with
    rated samples but none accepted / failing), ``unexplained`` (failing samples left single: the
    judge could not say what is wrong), ``unspecific`` (pairs whose only finding is
    :data:`UNSPECIFIC`), ``too_long`` (samples left single: the reflection does not ``fits``)."""
    groups: dict[str, list[Trajectory]] = {}
    for traj in samples:
        groups.setdefault(traj.prompt_id, []).append(traj)
    rated = {pid: pairing.rated(group) for pid, group in groups.items()}
    flat = [pair for found in rated.values() for pair in pairing.pairs(found)]
    firsts = [first for first, _ in flat]
    findings = explain(firsts) if flat else []
    accepted = [t for found in rated.values() for t, r in found if r >= pairing.accept]
    observed = dict(zip([t.key for t in firsts + accepted], describe(firsts + accepted))) if describe else {}
    built: dict[str, Trajectory] = {}
    counts = dict.fromkeys(("pairs", "described", "unexplained", "unspecific", "too_long"), 0)
    for (first, second), said in zip(flat, findings):
        if not said:  # None (cannot say) or [] (the judge accepts it after all)
            counts["unexplained"] += 1
            continue
        text = reflection(observed.get(first.key) or findings_text(said), second.reasoning)
        if not fits(text):
            counts["too_long"] += 1
            continue
        built[first.key] = reflect_and_redraw(first, second, text, said)
        counts["pairs"] += 1
        counts["unspecific"] += said == [UNSPECIFIC]
    for sample in accepted:
        description = observed.get(sample.key)
        if description and fits(description):
            built[sample.key] = described(sample, description)
            counts["described"] += 1
        elif description:
            counts["too_long"] += 1
    values = [[r for _, r in found] for found in rated.values()]
    return [built.get(t.key, t) for group in groups.values() for t in sorted(group, key=lambda t: t.sample_idx)], {
        "prompts": len(groups),
        "paired_prompts": len({t.prompt_id for t in built.values() if t.turns and t.turns[0].has_image}),
        **counts,
        "no_rated": sum(not rs for rs in values),
        "no_accepted": sum(bool(rs) and all(r < pairing.accept for r in rs) for rs in values),
        "no_failing": sum(bool(rs) and all(r >= pairing.accept for r in rs) for rs in values),
    }
