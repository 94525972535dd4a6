"""The reflect stage: scored single-image shards -> interleaved training shards (the same
samples; failing ones paired with a better sample as look-reflect-redraw trajectories, accepted
ones given a closing look where the judge describes images).

One output shard per input shard (same number; ``generate`` puts all K samples of a prompt in one
shard), written atomically, recorded in the index with its counts and, verified, kept on a restart
(``unigen.data.shardmap.map_shards``);
``<prefix>-summary.json`` is rebuilt from the index at the end of every run. Every pair's first
image is explained by the ``judge`` (any reward with ``explain``, and ``describe`` if it has one,
docs/rewards.md); the builder is ``unigen.data.reflections``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from unigen.data.reader import check_policy
from unigen.data.reflections import Pairing, build_reflections
from unigen.data.shardmap import map_shards
from unigen.data.shards import expand_shards, read_index
from unigen.data.trajectory import Trajectory
from unigen.files import atomic_write_text
from unigen.pipeline.stage import as_dict, check_settings
from unigen.registry import Spec
from unigen.rewards import REWARDS
from unigen.rewards.images import with_decoded_png
from unigen.scale.ranks import barrier, join


@dataclass
class ReflectSettings:
    """Which scored shards to turn into reflect-and-redraw trajectories, and how."""

    judge: Spec
    """The explaining judge: a reward with ``explain(trajectories)`` (e.g. ``shapes_strict``)."""
    input: str = "scored"
    """Folder of scored ``*.tar`` shards (single-image samples, K per prompt), or a glob / brace pattern."""
    output: str = "reflect"
    """Output folder: shards ``<prefix>-<n>.tar``, the index, ``<prefix>-summary.json``."""
    pairing: Pairing = field(default_factory=Pairing)
    """Which stored reward splits failing from accepted samples, the threshold, pairs per prompt."""
    decoder: str | None = None
    """Model source whose VQ decoder makes the ``png`` the judge reads where a sample has none."""
    tokenizer: str | None = None
    """Model source whose tokenizer counts a reflection's tokens (with ``max_text_tokens``)."""
    max_text_tokens: int | None = None
    """A sample whose reflection is longer (the sampler would cut it) stays single, counted ``too_long``."""
    prefix: str = "reflect"
    """Output shard prefix."""
    on_bad_sample: str = "skip"
    """``skip`` (count and drop a bad input sample) | ``raise``."""


def within_budget(tokenizer: str | None, limit: int | None) -> Callable[[str], bool]:
    """Whether a text fits ``limit`` tokens of the ``tokenizer`` model source's tokenizer (always, without one)."""
    if tokenizer is None:
        return lambda text: True
    from unigen.models.loading import load_spec  # here: only a token budget needs a tokenizer

    spec = load_spec(tokenizer)
    return lambda text: len(spec.encode_text(text)) <= limit


def reflect(settings: ReflectSettings) -> Path:
    """Interleaved training trajectories (first image as drawn, the judge's observation, a better
    sample of the same prompt) from scored shards, every sample once. Resumable; returns the output
    folder. As N processes, rank r builds the shards i with i % N == r and rank 0 writes the summary."""
    s = settings
    check_policy(s.on_bad_sample)
    ranks = join()
    if (s.tokenizer is None) != (s.max_text_tokens is None):
        raise ValueError(f"tokenizer and max_text_tokens go together, got tokenizer={s.tokenizer!r}, "
                         f"max_text_tokens={s.max_text_tokens!r}")
    shards = expand_shards(s.input, "input", numbered=True)
    out_dir = Path(s.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    judge = REWARDS.build(s.judge)  # judge and decoder first: a wrong one must not leave settings saved
    if not callable(getattr(judge, "explain", None)):
        raise TypeError(f"judge {s.judge.value!r} has no explain(trajectories) method: it cannot say what is wrong")
    model = None
    if s.decoder is not None:
        from unigen.checkpoints import load_unified  # here: only a decoder needs a model

        model = load_unified(s.decoder, option="decoder")
    fits = within_budget(s.tokenizer, s.max_text_tokens)
    check_settings(out_dir / f"{s.prefix}-settings.json", {k: v for k, v in as_dict(s).items() if k != "output"})

    def on_images(method: Callable[[list[Trajectory]], list]) -> Callable[[list[Trajectory]], list]:
        """``method`` reading decoded PNGs where a decoder is given."""
        return method if model is None else lambda trajectories: method(with_decoded_png(trajectories, model))
    explain = on_images(judge.explain)
    describe = on_images(judge.describe) if callable(getattr(judge, "describe", None)) else None

    def reflected(samples: list[Trajectory]) -> tuple[list[Trajectory], dict[str, int]]:
        built, counts = build_reflections(samples, s.pairing, explain, describe, fits)
        return built, {**counts, "trajectories": len(built)}
    names = {p.name for p in map_shards(shards, out_dir, s.prefix, reflected, s.on_bad_sample, "reflect")}
    if ranks.is_zero:  # the summary over every rank's shards
        write_summary(out_dir, s.prefix, names)
    barrier()
    return out_dir


def write_summary(out_dir: Path, prefix: str, names: set[str]) -> None:
    """``<prefix>-summary.json``: the counts of the shards ``names`` from the index, and their total."""
    per_shard = {name: c for name, c in read_index(out_dir, prefix)["counts"].items() if name in names}
    total = {k: sum(c.get(k, 0) for c in per_shard.values()) for k in sorted({k for c in per_shard.values() for k in c})}
    summary_path, text = out_dir / f"{prefix}-summary.json", json.dumps({"total": total, "shards": per_shard}, indent=1)
    if not summary_path.exists() or summary_path.read_text() != text:  # a finished output is left untouched
        atomic_write_text(summary_path, text)
    print("reflect: " + ", ".join(f"{k} {v}" for k, v in total.items()))
