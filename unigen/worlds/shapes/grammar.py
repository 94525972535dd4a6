"""ShapesWorld prompts: GenEval's six categories over the world vocabulary, and a held-out split.

Every prompt carries GenEval-style metadata, exactly the fields of a line of GenEval's
``evaluation_metadata.jsonl``: ``{"tag", "include": [{"class", "count", "color"?, "position"?}],
"exclude"? (counting), "prompt"}``. The prompt space of each category is finite and enumerated;
the held-out split (the benchmark) is chosen per category by hashing a canonical *content* key,
so two phrasings of the same scene ("a circle and a square" / "a square and a circle") always
fall on the same side and benchmark prompts never appear in training data. The held-out contents
are picked in hash order under per-value quotas, so each category's benchmark is balanced over
shapes (and colours, counts, relations).
"""

from __future__ import annotations

import hashlib
import json
import random
from functools import lru_cache
from itertools import permutations
from typing import Any

from unigen.data.prompts import PromptRecord
from unigen.worlds.shapes.vocab import CATEGORIES, COLORS, COUNT_WORDS, PLURALS, RELATIONS, SHAPES

HELDOUT_PROMPTS = {"single_object": 6, "two_object": 6, "counting": 6, "colors": 6, "position": 6, "color_attr": 6}
"""Held-out contents per category (the benchmark: one prompt each): every shape equally often in each category, and
every colour / count / relation equally often where the category has them. ``single_object`` has
only six contents, so it is benchmark-only (its shapes are trained through ``colors``)."""
SPLITS = ("train", "heldout", "pretrain")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _obj(shape: str, count: int = 1, color: str | None = None, position: list | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"class": shape, "count": count}
    if color is not None:
        out["color"] = color
    if position is not None:
        out["position"] = position
    return out


def _line(tag: str, prompt: str, include: list[dict], exclude: list[dict] | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"tag": tag, "include": include}
    if exclude:
        line["exclude"] = exclude
    line["prompt"] = prompt
    return line


def _enumerate(category: str) -> list[dict[str, Any]]:
    """Every metadata line of one category (deterministic order)."""
    pairs = list(permutations(SHAPES, 2))
    if category == "single_object":
        return [_line(category, f"a photo of a {s}", [_obj(s)]) for s in SHAPES]
    if category == "two_object":
        return [_line(category, f"a photo of a {a} and a {b}", [_obj(a), _obj(b)]) for a, b in pairs]
    if category == "counting":
        return [_line(category, f"a photo of {COUNT_WORDS[n]} {PLURALS[s]}", [_obj(s, n)], [_obj(s, n + 1)])
                for s in SHAPES for n in (2, 3, 4)]
    if category == "colors":
        return [_line(category, f"a photo of a {c} {s}", [_obj(s, color=c)]) for s in SHAPES for c in COLORS]
    if category == "position":
        # "a photo of a B <rel> a A": A is include[0], B is include[1] placed relative to it.
        return [_line(category, f"a photo of a {b} {rel} a {a}", [_obj(a), _obj(b, position=[rel, 0])])
                for a, b in pairs for rel in RELATIONS]
    if category == "color_attr":
        return [_line(category, f"a photo of a {ca} {a} and a {cb} {b}", [_obj(a, color=ca), _obj(b, color=cb)])
                for a, b in pairs for ca, cb in permutations(COLORS, 2)]
    raise ValueError(f"unknown ShapesWorld category '{category}'; known: {CATEGORIES}")


def content_key(metadata: dict[str, Any]) -> str:
    """Order-free description of what a prompt asks for (position normalised to left of / above)."""
    include = metadata["include"]
    if metadata["tag"] == "position":
        a, b = include[0]["class"], include[1]["class"]
        rel = include[1]["position"][0]
        if rel in ("right of", "below"):
            a, b, rel = b, a, INVERSE[rel]
        return f"position|{b} {rel} {a}"
    parts = sorted(f"{o['class']}:{o['count']}:{o.get('color', '')}" for o in include)
    return f"{metadata['tag']}|" + ",".join(parts)


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _features(metadata: dict[str, Any]) -> list[str]:
    """The values a balanced benchmark spreads evenly: each object's shape and colour, the count
    (counting) and the normalised relation (position)."""
    out = []
    for obj in metadata["include"]:
        out.append(f"shape:{obj['class']}")
        if "color" in obj:
            out.append(f"color:{obj['color']}")
    if metadata["tag"] == "counting":
        out.append(f"count:{metadata['include'][0]['count']}")
    if metadata["tag"] == "position":
        out.append("relation:" + content_key(metadata).split(" ", 1)[1].rsplit(" ", 1)[0])
    return out


@lru_cache(maxsize=None)
def _heldout_keys(category: str) -> frozenset[str]:
    """``HELDOUT_PROMPTS[category]`` contents, greedily in SHA-1 order under per-value quotas.

    A value kind (shape, colour, count, relation) with ``v`` values filling ``s`` slots over the
    held-out prompts may take each value at most ``ceil(s / v)`` times. If the greedy pass gets
    stuck, the next salt of the hash order is tried (deterministic).
    """
    features = {content_key(m): _features(m) for m in _enumerate(category)}
    n = HELDOUT_PROMPTS[category]
    kinds: dict[str, set[str]] = {}
    for values in features.values():
        for value in values:
            kinds.setdefault(value.split(":")[0], set()).add(value)
    sample = next(iter(features.values()))
    quota = {kind: -(-n * sum(v.startswith(kind + ":") for v in sample) // len(values))
             for kind, values in kinds.items()}
    for salt in range(1000):
        used: dict[str, int] = {}
        chosen = []
        for key in sorted(features, key=lambda k: _hash(f"{salt}|{k}")):
            counts = {v: features[key].count(v) for v in set(features[key])}
            if all(used.get(v, 0) + c <= quota[v.split(":")[0]] for v, c in counts.items()):
                chosen.append(key)
                for v, c in counts.items():
                    used[v] = used.get(v, 0) + c
                if len(chosen) == n:
                    return frozenset(chosen)
    raise RuntimeError(f"no balanced held-out set of {n} for '{category}'")


def split_of(metadata: dict[str, Any]) -> str:
    """``heldout`` for benchmark contents, ``train`` otherwise (depends on the content only)."""
    return "heldout" if content_key(metadata) in _heldout_keys(metadata["tag"]) else "train"


def category_pool(category: str, split: str) -> list[dict[str, Any]]:
    """All metadata lines of ``category`` on one side of the split; ``pretrain`` (the base's
    pretraining set): ``train``, or every content of a category with no train side (``single_object``)."""
    if split not in SPLITS:
        raise ValueError(f"split '{split}' is not one of {SPLITS}")
    if split == "pretrain":  # the base's world knowledge: the train side, or all of a benchmark-only category
        return category_pool(category, "train") or _enumerate(category)
    return [m for m in _enumerate(category) if split_of(m) == split]


def _record(prompt_id: str, metadata: dict[str, Any]) -> PromptRecord:
    return PromptRecord(prompt_id, metadata["prompt"], metadata["tag"], json.loads(json.dumps(metadata)))


def sample_prompts(n: int, seed: int, weights: dict[str, float] | None = None, split: str = "train",
                   id_prefix: str = "shapes") -> list[PromptRecord]:
    """``n`` prompts drawn (with replacement) from ``split``; categories drawn by ``weights``.

    ``weights`` maps category -> relative weight (missing categories get 0; default uniform over
    the categories with prompts on ``split``).
    """
    weights = weights or {c: 1.0 for c in CATEGORIES if category_pool(c, split)}
    unknown = set(weights) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)} in weights; known: {CATEGORIES}")
    cats = [c for c in CATEGORIES if weights.get(c, 0) > 0]
    if not cats:
        raise ValueError("category weights are all zero")
    rng = random.Random(seed)
    pools = {c: category_pool(c, split) for c in cats}
    empty = [c for c in cats if not pools[c]]
    if empty:
        raise ValueError(f"categories {empty} have no '{split}' prompts (single_object is benchmark-only); "
                         "give them weight 0")
    picks = rng.choices(cats, [weights[c] for c in cats], k=n)
    return [_record(f"{id_prefix}-{split}-{i:06d}", rng.choice(pools[c])) for i, c in enumerate(picks)]


def benchmark_prompts(per_category: int | None = None, seed: int = 0) -> list[PromptRecord]:
    """The held-out benchmark: one prompt per held-out content (its phrasing picked by hash), or a
    seeded subset of ``per_category`` of them (for quick runs; no longer balanced)."""
    rng = random.Random(seed)
    records = []
    for cat in CATEGORIES:
        phrasings: dict[str, dict[str, Any]] = {}
        for m in sorted(category_pool(cat, "heldout"), key=lambda m: _hash(m["prompt"])):
            phrasings.setdefault(content_key(m), m)
        pool = [phrasings[k] for k in sorted(phrasings)]
        if per_category is not None and len(pool) > per_category:
            pool = rng.sample(pool, per_category)
        records += [_record(f"shapes-bench-{cat}-{i:03d}", m) for i, m in enumerate(pool)]
    return records
