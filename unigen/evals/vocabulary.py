"""The object / color / count / relation vocabulary prompt templates draw from (configurable).

The default objects are the 80 COCO classes (what GenEval's detector can check) plus 20 everyday
objects outside COCO (so GenEval's own single-object template still has new prompts to give), the
colors are GenEval's ten, counts 2-4 and the four relations GenEval scores by box centres. A YAML or JSON file
with any of the fields replaces those fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

COCO_OBJECTS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
EXTRA_OBJECTS = (
    "lamp", "guitar", "kettle", "candle", "basket", "pillow", "teapot", "drum", "ladder", "bucket", "globe",
    "hat", "shoe", "balloon", "lantern", "violin", "mirror", "plate", "bell", "helmet",
)
IRREGULAR_PLURALS = {
    "person": "people", "sheep": "sheep", "skis": "pairs of skis", "knife": "knives", "mouse": "mice",
    "computer mouse": "computer mice", "scissors": "pairs of scissors", "bus": "buses", "wine glass": "wine glasses",
    "sandwich": "sandwiches", "couch": "couches", "toothbrush": "toothbrushes", "tie": "ties",
}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass
class Vocabulary:
    """Words the templates combine; every field may be overridden from a file."""

    objects: list[str] = field(default_factory=lambda: [*COCO_OBJECTS, *EXTRA_OBJECTS])
    colors: list[str] = field(default_factory=lambda: ["red", "orange", "yellow", "green", "blue", "purple",
                                                       "pink", "brown", "black", "white"])
    counts: list[int] = field(default_factory=lambda: [2, 3, 4])
    relations: list[str] = field(default_factory=lambda: ["left of", "right of", "above", "below"])
    """GenEval's relation names (``metadata.include[i].position[0]``)."""
    scenes: list[str] = field(default_factory=lambda: [
        "in a kitchen", "on a city street", "in a park", "in a living room", "on a beach", "in an office",
        "at a train station", "in a backyard", "on a wooden floor", "in a garden"])
    """Settings for caption-like (``broad``) prompts."""

    def __post_init__(self) -> None:
        for name in ("objects", "colors", "counts", "relations", "scenes"):
            if not getattr(self, name):
                raise ValueError(f"vocabulary field '{name}' is empty")
        bad = [c for c in self.counts if not 2 <= int(c) < len(NUMBER_WORDS)]
        if bad:
            raise ValueError(f"vocabulary counts {bad} outside 2..{len(NUMBER_WORDS) - 1}")

    @classmethod
    def from_file(cls, path: str | Path | None) -> Vocabulary:
        """Defaults, with the fields found in a YAML/JSON file replacing them."""
        if path is None:
            return cls()
        text = Path(path).read_text()
        raw = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or set(raw) - known:
            raise ValueError(f"vocabulary file '{path}': expected a mapping with keys from {sorted(known)}")
        return cls(**raw)


def plural(noun: str) -> str:
    """English plural of an object name (irregular table, then -s/-es rules)."""
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def article(word: str) -> str:
    """``a`` or ``an`` before a word."""
    return "an" if word[0] in "aeiou" else "a"
