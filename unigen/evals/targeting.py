"""Weakness targeting: per-category prompt budgets and prompt sources (``run.py target`` uses them).

Allocation rule (``allocate``), for a budget ``B`` over ``C`` categories with failure rates
``f_c = 1 - score_c`` and a floor fraction ``phi``:

1. every category first gets ``m = floor(phi * B)`` prompts (so none is dropped, even at f_c = 0);
2. the rest ``R = B - C * m`` is split in proportion to ``f_c`` (uniformly when all f_c are 0),
   rounded by largest remainder (ties: higher failure rate, then name), so the counts sum to ``B``.

Example: B = 100, phi = 0.05, f = {a: 0.5, b: 0.3, c: 0.2, d: 0.0} -> m = 5, R = 80 ->
a = 5 + 40 = 45, b = 5 + 24 = 29, c = 5 + 16 = 21, d = 5.

With several ``summary.json`` files a category's failure rate is the mean over the files that
score it. Strategies: ``targeted`` (the allocation above), ``broad`` (the prompt source's
natural category mix, no summaries needed) and ``benchmark_aligned`` (the benchmark's own
category mix). A prompt source (``PROMPT_SOURCES``: ``templates``, GenEval-style phrasings over a
vocabulary; ``shapes``, ShapesWorld's grammar; or your own class) draws the prompts of each
category. The ``templates`` source never emits a
benchmark prompt: candidates equal to one (after normalising case, punctuation and spaces) are
redrawn, and ``check_no_overlap`` refuses the final set if any remains. When the vocabulary cannot
give a category enough new prompts (GenEval's single-object template has one prompt per object),
``targeted`` stops with an error, while ``broad`` and ``benchmark_aligned`` move the shortfall to
the other categories in proportion to their weights (``<out>.plan.json`` records the final counts).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from unigen.evals.summary import failure_rates
from unigen.evals.templates import CATEGORIES, draw_prompt
from unigen.evals.vocabulary import Vocabulary
from unigen.data.prompts import PromptRecord
from unigen.registry import Registry

STRATEGIES = ("targeted", "broad", "benchmark_aligned")
STYLE = {"targeted": "targeted", "broad": "caption", "benchmark_aligned": "geneval"}
BROAD_MIX = {"single_object": 0.35, "two_object": 0.25, "colors": 0.15, "counting": 0.1, "position": 0.08,
             "color_attr": 0.07}
"""Category mix of the broad set: mostly single objects and pairs in a scene, like photo captions."""
GENEVAL_MIX = {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100, "color_attr": 100}
"""GenEval's prompts per category (the benchmark-aligned mix when no benchmark file is given)."""


def allocate(weights: dict[str, float], budget: int, floor: float = 0.0) -> dict[str, int]:
    """Per-category prompt counts summing to ``budget`` (rule in the module docstring)."""
    if not weights:
        raise ValueError("no categories to allocate a budget over")
    bad = {c: w for c, w in weights.items() if not w >= 0}
    if bad:
        raise ValueError(f"weights must be >= 0, got {bad}")
    base = math.floor(floor * budget)
    rest = budget - base * len(weights)
    if rest < 0:
        raise ValueError(f"floor {floor} x {len(weights)} categories exceeds the budget {budget}")
    total = sum(weights.values())
    shares = {c: rest * (w / total if total > 0 else 1 / len(weights)) for c, w in weights.items()}
    counts = {c: base + math.floor(s) for c, s in shares.items()}
    order = sorted(weights, key=lambda c: (-(shares[c] - math.floor(shares[c])), -weights[c], c))
    for c in order[: budget - sum(counts.values())]:
        counts[c] += 1
    return counts


def merged_failure_rates(summaries: Iterable[str | Path]) -> dict[str, float]:
    """Category -> mean failure rate over the summary files scoring it, worst first."""
    per_cat: dict[str, list[float]] = {}
    for path in summaries:
        try:
            summary = json.loads(Path(path).read_text())
            rates = failure_rates(summary)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"'{path}' is not a unigen summary.json: {err}") from err
        for c, f in rates.items():
            per_cat.setdefault(c, []).append(f)
    if not per_cat:
        raise ValueError("the summaries hold no scored category")
    rates = {c: sum(v) / len(v) for c, v in per_cat.items()}
    return dict(sorted(rates.items(), key=lambda kv: (-kv[1], kv[0])))


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: the form prompts are compared in."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def check_no_overlap(records: list[PromptRecord], benchmark_prompts: Iterable[str], source: str = "benchmark") -> None:
    """Refuse a prompt set sharing any (normalised) prompt with the benchmark."""
    bench = {normalise(p) for p in benchmark_prompts}
    clash = [r.prompt for r in records if normalise(r.prompt) in bench]
    if clash:
        raise ValueError(f"{len(clash)} prompts copy {source} prompts, e.g. {clash[:3]}")


class PromptDrawer:
    """Draws new distinct prompts per category, never one in ``forbidden`` (normalised forms)."""

    def __init__(self, style: str, vocab: Vocabulary, seed: int, id_prefix: str, forbidden: set[str],
                 patience: int = 2000):
        self.style, self.vocab, self.id_prefix, self.patience = style, vocab, id_prefix, patience
        self.rng, self.seen = random.Random(seed), set(forbidden)
        self.made: Counter[str] = Counter()
        self.redrawn = 0

    def draw(self, category: str, n: int) -> list[PromptRecord]:
        """Up to ``n`` prompts; fewer when ``patience`` candidates in a row were all taken (exhausted)."""
        records, misses = [], 0
        while len(records) < n and misses < self.patience:
            text, meta = draw_prompt(category, self.style, self.vocab, self.rng)
            key = normalise(text)
            if key in self.seen:
                self.redrawn, misses = self.redrawn + 1, misses + 1
                continue
            self.seen.add(key)
            records.append(PromptRecord(f"{self.id_prefix}-{category}-{self.made[category]:05d}", text, category, meta))
            self.made[category] += 1
            misses = 0
        return records


def fill(drawer: PromptDrawer, budgets: dict[str, int], weights: dict[str, float], strict: bool) -> list[PromptRecord]:
    """Draw every category's budget. A category the vocabulary cannot fill is an error when
    ``strict``; otherwise its shortfall is re-allocated over the other categories by ``weights``."""
    records: list[PromptRecord] = []
    exhausted: set[str] = set()
    pending = dict(budgets)
    while pending:
        short = 0
        for category, n in pending.items():
            got = drawer.draw(category, n)
            records += got
            if len(got) < n:
                exhausted.add(category)
                short += n - len(got)
        open_weights = {c: weights[c] for c in weights if c not in exhausted}
        if short == 0:
            break
        if strict or not open_weights:
            raise ValueError(f"cannot draw enough distinct new prompts for {sorted(exhausted)} (made "
                             f"{dict(drawer.made)}): the vocabulary is too small; add objects/colors to it")
        pending = {c: k for c, k in allocate(open_weights, short).items() if k}
    return records


class PromptSource(Protocol):
    """Draws training prompts per category (a prompt source; see ``PROMPT_SOURCES``)."""

    categories: list[str]
    """Categories it can draw."""

    def natural_mix(self) -> dict[str, float]:
        """Category -> relative weight of the ``broad`` strategy."""

    def draw(self, budgets: dict[str, int], weights: dict[str, float], strategy: str, seed: int,
             forbidden: set[str]) -> list[PromptRecord]:
        """``budgets[c]`` new prompts of each category, none whose ``normalise``d form is in ``forbidden``."""


class TemplatePrompts:
    """GenEval-style phrasings over a vocabulary (``targeted`` / ``caption`` / ``geneval`` styles by strategy).

    A category the vocabulary cannot fill is an error for ``targeted``; for the other strategies its
    shortfall moves to the other categories by weight."""

    categories = list(CATEGORIES)

    def __init__(self, vocabulary: str | None = None):
        """
        Args:
            vocabulary: YAML/JSON file overriding the object/color/count/relation/scene vocabulary.
        """
        self.vocabulary = Vocabulary.from_file(vocabulary)
        self.redrawn = 0

    def natural_mix(self) -> dict[str, float]:
        return dict(BROAD_MIX)

    def draw(self, budgets: dict[str, int], weights: dict[str, float], strategy: str, seed: int,
             forbidden: set[str]) -> list[PromptRecord]:
        drawer = PromptDrawer(STYLE[strategy], self.vocabulary, seed, strategy, forbidden)
        records = fill(drawer, budgets, weights, strict=strategy == "targeted")
        self.redrawn = drawer.redrawn
        return records


PROMPT_SOURCES = Registry("prompt source", {
    "templates": "unigen.evals.targeting.TemplatePrompts",
    "shapes": "unigen.worlds.shapes.world.ShapesPrompts",
})
"""Short name -> prompt source class."""


def _drawable(weights: dict[str, float], source: PromptSource) -> dict[str, float]:
    """``weights`` without the categories a source lists in its optional ``benchmark_only`` (benchmark
    categories with no training prompts, e.g. ShapesWorld's ``single_object``)."""
    skip = set(getattr(source, "benchmark_only", ()))
    return {c: w for c, w in weights.items() if c not in skip}


def plan_budgets(strategy: str, budget: int, floor: float, summaries: list[str], source: PromptSource,
                 benchmark_categories: list[str] | None) -> tuple[dict[str, int], dict[str, float]]:
    """Per-category budgets for a strategy, and the weights they came from (``floor``: ``targeted`` only)."""
    if strategy == "targeted":
        if not summaries:
            raise ValueError("strategy 'targeted' needs summaries (one or more summary.json)")
        weights = _drawable(merged_failure_rates(summaries), source)
        unknown = sorted(set(weights) - set(source.categories))
        if unknown:
            raise ValueError(f"no prompt generator for categories {unknown}; generators exist for {source.categories}")
        return allocate(weights, budget, floor), weights
    if strategy == "broad":
        weights = source.natural_mix()
        return allocate(weights, budget), weights
    if strategy == "benchmark_aligned":
        weights = _drawable(dict(Counter(benchmark_categories)) if benchmark_categories else GENEVAL_MIX, source)
        return allocate({c: float(w) for c, w in weights.items()}, budget), weights
    raise ValueError(f"unknown strategy '{strategy}'; choose from {STRATEGIES}")
