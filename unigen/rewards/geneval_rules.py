"""GenEval's rules over detections (pure functions): presence, count, colour, relative position.

Facts taken from GenEval (Ghosh et al., 2023): an ``include`` item ``{class, count, color?, position?}``
passes when at least ``count`` objects of the class are found, ``count`` of them have ``color``, and
each of them stands in ``position = [relation, index]`` to every object of ``include[index]``; an
``exclude`` item ``{class, count}`` passes when fewer than ``count`` are found. Relations come from
box centres: the centre offset shrunk by 0.1 x the summed box sizes per axis, normalised; a component
below -0.5 / above 0.5 means "left of" / "right of" (x) and "above" / "below" (y).
Colour here: nearest named prototype to the mean RGB of the box's central half (GenEval uses CLIP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

POSITION_MARGIN = 0.1
COLORS = {
    "red": (220, 30, 30), "orange": (245, 140, 20), "yellow": (240, 220, 30), "green": (40, 170, 50),
    "blue": (30, 70, 220), "purple": (130, 50, 170), "pink": (245, 150, 190), "brown": (130, 80, 40),
    "black": (20, 20, 20), "white": (240, 240, 240),
}
"""GenEval's ten colour names with an RGB prototype each."""


@dataclass
class Detection:
    """One detected object: class name, confidence, box (x0, y0, x1, y1) in pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]


def classify_color(image: Image.Image, box: tuple[float, float, float, float]) -> str:
    """Name of the prototype colour nearest to the mean RGB of the box's central half."""
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 4, 0.5), max((y1 - y0) / 4, 0.5)
    crop = image.convert("RGB").crop((math.floor(cx - hw), math.floor(cy - hh), math.ceil(cx + hw), math.ceil(cy + hh)))
    mean = np.asarray(crop, dtype=np.float64).reshape(-1, 3).mean(0)
    return min(COLORS, key=lambda name: float(((mean - np.asarray(COLORS[name])) ** 2).sum()))


def relative_position(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> set[str]:
    """Relations of box ``a`` (x0, y0, x1, y1; y down) relative to box ``b`` by GenEval's rule:
    centre offset, shrunk by ``POSITION_MARGIN`` x the summed box sizes, then its direction."""
    offset = np.array([(a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2])
    size = np.array([a[2] - a[0] + b[2] - b[0], a[3] - a[1] + b[3] - b[1]])
    revised = np.maximum(np.abs(offset) - POSITION_MARGIN * size, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    found = set()
    if dx < -0.5:
        found.add("left of")
    if dx > 0.5:
        found.add("right of")
    if dy < -0.5:
        found.add("above")
    if dy > 0.5:
        found.add("below")
    return found


def relations(a: Detection, b: Detection) -> set[str]:
    """Spatial relations of ``a`` relative to ``b`` (e.g. {"left of", "above"})."""
    return relative_position(a.box, b.box)


def labelled_checks(metadata: dict, detections: list[Detection], colors: list[str]) -> list[tuple[str, bool]]:
    """One (requirement in words, pass) per check of ``metadata`` (include: count, color, position;
    exclude: count), e.g. ``("2 dog", True)``, ``("red dog", False)``, ``("dog left of cat", True)``,
    ``("fewer than 3 dog", False)``.

    ``colors[i]`` is the colour of ``detections[i]``. Detections of a class are taken by score.
    """
    by_class: dict[str, list[int]] = {}
    for i in sorted(range(len(detections)), key=lambda i: -detections[i].score):
        by_class.setdefault(detections[i].label, []).append(i)
    include = metadata.get("include", [])
    checks = []
    for item in include:
        cls, found = item["class"], by_class.get(item["class"], [])
        count = int(item.get("count", 1))
        checks.append((f"{count} {cls}", len(found) >= count))
        if "color" in item:
            checks.append((f"{item['color']} {cls}", sum(colors[i] == item["color"] for i in found) >= count))
        if "position" in item:
            relation, index = item["position"]
            targets = by_class.get(include[index]["class"], [])
            ok = bool(found) and bool(targets) and all(
                relation in relations(detections[i], detections[j]) for i in found[:count] for j in targets if i != j)
            checks.append((f"{cls} {relation} {include[index]['class']}", ok))
    for item in metadata.get("exclude", []):
        count = int(item.get("count", 1))
        checks.append((f"fewer than {count} {item['class']}", len(by_class.get(item["class"], [])) < count))
    return checks


def classes_of(metadata: dict) -> list[str]:
    """Every object class a metadata record names (include and exclude), first-seen order."""
    names = [item["class"] for item in metadata.get("include", []) + metadata.get("exclude", [])]
    return list(dict.fromkeys(names))
