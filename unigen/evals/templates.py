"""Compositional prompt generators: per GenEval category, structured content + a phrasing style.

Each draw picks the content (objects, colors, a count, a relation) from a ``Vocabulary``, writes
GenEval-style metadata for it (``tag``, ``include``, ``exclude``), and phrases it with one of the
style's templates:

- ``targeted``: varied plain phrasings aimed at the skill ("exactly three cups", "a dog placed to
  the left of a bench"), never GenEval's own wording;
- ``geneval``: GenEval's template per category ("a photo of two cups") for the benchmark-aligned
  ablation (verbatim benchmark prompts are refused by the caller);
- ``caption``: caption-like scene descriptions for the broad ablation.
"""

from __future__ import annotations

import random
from typing import Any

from unigen.evals.vocabulary import NUMBER_WORDS, Vocabulary, article, plural

CATEGORIES = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATION_PHRASES = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "targeted": {
        "single_object": ("{A} on a plain background", "a single {a}, centered in the frame",
                          "a close-up picture of {A}", "one {a}, clearly visible"),
        "two_object": ("{A} next to {B}", "{A} and {B} side by side", "a picture containing {A} and {B}"),
        "counting": ("exactly {num} {pa}", "{num} {pa} lined up in a row", "a group of {num} {pa}, no more"),
        "colors": ("{cA} on a plain background", "{A} that is entirely {c1}", "a {c1}-colored {a}"),
        "position": ("{A} placed {relp} {B}", "{A} that is {relp} {B}", "{B} with {A} {relp} it"),
        "color_attr": ("{cA} beside {cB}", "{cA} and {cB} next to each other", "{cB} next to {cA}"),
    },
    "geneval": {
        "single_object": ("a photo of {A}",),
        "two_object": ("a photo of {A} and {B}",),
        "counting": ("a photo of {num} {pa}",),
        "colors": ("a photo of {cA}",),
        "position": ("a photo of {A} {rel} {B}",),
        "color_attr": ("a photo of {cA} and {cB}",),
    },
    "caption": {
        "single_object": ("{A} {scene}", "a photograph of {A} {scene}", "there is {A} {scene}"),
        "two_object": ("{A} and {B} {scene}", "a snapshot of {A} near {B} {scene}"),
        "counting": ("{num} {pa} {scene}", "a photo showing {num} {pa} {scene}"),
        "colors": ("{cA} {scene}", "a photograph of {cA} {scene}"),
        "position": ("{A} {relp} {B} {scene}",),
        "color_attr": ("{cA} and {cB} {scene}",),
    },
}
STYLES = tuple(PHRASES)


def _with_article(*words: str) -> str:
    return f"{article(words[0])} {' '.join(words)}"


def draw_content(category: str, vocab: Vocabulary, rng: random.Random) -> dict[str, Any]:
    """The structured content of one prompt of ``category``."""
    a, b = rng.sample(vocab.objects, 2) if len(vocab.objects) > 1 else (vocab.objects[0], vocab.objects[0])
    c1, c2 = rng.sample(vocab.colors, 2) if len(vocab.colors) > 1 else (vocab.colors[0], vocab.colors[0])
    content = {"a": a, "b": b, "c1": c1, "c2": c2, "n": int(rng.choice(vocab.counts)),
               "rel": rng.choice(vocab.relations), "scene": rng.choice(vocab.scenes)}
    if category in ("two_object", "position", "color_attr") and a == b:
        raise ValueError(f"category '{category}' needs at least two distinct objects in the vocabulary")
    return content


def geneval_metadata(category: str, c: dict[str, Any]) -> dict[str, Any]:
    """GenEval's structured metadata for the content (what its scorer checks)."""
    one = lambda name, **kw: {"class": name, "count": 1, **kw}  # noqa: E731
    include = {
        "single_object": [one(c["a"])],
        "two_object": [one(c["a"]), one(c["b"])],
        "counting": [{"class": c["a"], "count": c["n"]}],
        "colors": [one(c["a"], color=c["c1"])],
        "position": [one(c["b"]), one(c["a"], position=[c["rel"], 0])],
        "color_attr": [one(c["a"], color=c["c1"]), one(c["b"], color=c["c2"])],
    }[category]
    meta: dict[str, Any] = {"tag": category, "include": include}
    if category == "counting":
        meta["exclude"] = [{"class": c["a"], "count": c["n"] + 1}]
    return meta


def phrase(category: str, style: str, c: dict[str, Any], rng: random.Random) -> str:
    """Fill one of the style's templates for the category."""
    if style not in PHRASES:
        raise ValueError(f"unknown template style '{style}'; known: {STYLES}")
    if category not in PHRASES[style]:
        raise ValueError(f"no prompt generator for category '{category}'; known: {CATEGORIES}")
    words = {
        "a": c["a"], "b": c["b"], "A": _with_article(c["a"]), "B": _with_article(c["b"]), "pa": plural(c["a"]),
        "num": NUMBER_WORDS[c["n"]], "c1": c["c1"], "c2": c["c2"], "cA": _with_article(c["c1"], c["a"]),
        "cB": _with_article(c["c2"], c["b"]), "rel": c["rel"], "relp": RELATION_PHRASES.get(c["rel"], c["rel"]),
        "scene": c["scene"],
    }
    return rng.choice(PHRASES[style][category]).format(**words)


def draw_prompt(category: str, style: str, vocab: Vocabulary, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One (prompt text, GenEval-style metadata) pair."""
    content = draw_content(category, vocab, rng)
    return phrase(category, style, content, rng), geneval_metadata(category, content)
