"""The exact ShapesWorld judge: colour segmentation + shape recognition + GenEval's rules, and a
strict mode (exactly the requested objects).

Pixels take the nearest palette colour (or background); each colour's 4-connected components of
at least ``min_area`` pixels are objects; an object's shape is the prototype mask (drawn into its
bounding box) with the highest IoU, if that IoU reaches ``min_iou``. The image then passes a
prompt by GenEval's ``evaluate``: every ``include`` is met (count; colour; relative position of
every object against every object of its anchor group), no ``exclude`` is met. One deliberate
difference: where GenEval colour-checks the detector's top-``count`` boxes of a class, this
judge takes objects of the asked colour first (there is no detector confidence to rank by).

GenEval's rules accept clutter: extra objects are never penalised (outside counting's
``exclude``), so a filter on them trains clutter. The **strict** judge (the world's training
reward and headline metric) also requires exactly the requested objects: the scene holds
exactly ``count`` objects of each requested class (of the requested colour where one is asked)
and nothing else -- no other object, no component of at least ``fragment_area_fraction`` of the
canvas that is not a recognised shape. It rejects an image exactly when :func:`findings` (each
object matched to at most one request) names something wrong, and those findings are its reasons
and the reflection text of ``run.py reflect``: one definition of what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unigen.data.reflections import UNSPECIFIC
from unigen.worlds.shapes.geometry import relative_position, shape_mask
from unigen.worlds.shapes.vocab import BACKGROUND, CELLS, COLORS, COUNT_WORDS, PLURALS, SHAPES

_PALETTE = np.array([BACKGROUND, *COLORS.values()], dtype=np.float32)
_COLOR_NAMES = (None, *COLORS)


@dataclass(frozen=True)
class Detection:
    shape: str | None
    """Recognised shape, None when no prototype fits well enough."""
    color: str
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1), x1/y1 exclusive."""
    area: int
    iou: float


def color_labels(image: np.ndarray) -> np.ndarray:
    """(H, W) palette index per pixel: 0 background, i > 0 the i-th colour of ``COLORS``."""
    pixels = image.reshape(-1, 1, 3).astype(np.float32)
    distance = ((pixels - _PALETTE[None]) ** 2).sum(-1)
    return distance.argmin(-1).reshape(image.shape[:2])


def components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, as boolean masks (min-label propagation)."""
    big = mask.size + 1
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape), big)
    while True:
        nxt = labels.copy()
        nxt[1:] = np.minimum(nxt[1:], labels[:-1])
        nxt[:-1] = np.minimum(nxt[:-1], labels[1:])
        nxt[:, 1:] = np.minimum(nxt[:, 1:], labels[:, :-1])
        nxt[:, :-1] = np.minimum(nxt[:, :-1], labels[:, 1:])
        nxt = np.where(mask, nxt, big)
        if np.array_equal(nxt, labels):
            break
        labels = nxt
    return [labels == value for value in np.unique(labels[mask])]


def classify(mask: np.ndarray) -> tuple[str | None, tuple[int, int, int, int], float]:
    """Best-fitting shape of one component, its box and the IoU of the fit."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = mask[y0:y1, x0:x1]
    best, best_iou = None, 0.0
    for shape in SHAPES:
        proto = shape_mask(shape, y1 - y0, x1 - x0)
        iou = float((crop & proto).sum() / (crop | proto).sum())
        if iou > best_iou:
            best, best_iou = shape, iou
    return best, (int(x0), int(y0), int(x1), int(y1)), best_iou


class ShapesJudge:
    """Detect objects in an image and judge it against GenEval-style metadata."""

    def __init__(self, min_area_fraction: float = 0.02, min_iou: float = 0.5, strict: bool = False,
                 fragment_area_fraction: float = 0.01):
        """
        Args:
            min_area_fraction: components smaller than this share of the canvas are noise.
            min_iou: a component whose best prototype IoU is lower has no shape (not an object).
            strict: also require exactly the requested objects (see the module docstring).
            fragment_area_fraction: strict mode: a component of at least this share of the canvas
                must be a recognised object (smaller ones are decoding specks).
        """
        self.min_area_fraction = min_area_fraction
        self.min_iou = min_iou
        self.strict = strict
        self.fragment_area_fraction = fragment_area_fraction

    def detect(self, image: np.ndarray, min_area_fraction: float | None = None) -> list[Detection]:
        """Components of at least ``min_area_fraction`` (default: the judge's) of an (H, W, 3)
        uint8 image, largest first; those that fit no shape have ``shape`` None."""
        labels = color_labels(image)
        fraction = self.min_area_fraction if min_area_fraction is None else min_area_fraction
        min_area = max(4, round(fraction * labels.size))
        found = []
        for index in range(1, len(_PALETTE)):
            for comp in components(labels == index):
                area = int(comp.sum())
                if area < min_area:
                    continue
                shape, box, iou = classify(comp)
                found.append(Detection(shape if iou >= self.min_iou else None, _COLOR_NAMES[index], box, area, iou))
        return sorted(found, key=lambda d: -d.area)

    def split(self, image: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """(objects, fragments) as the strict mode sees them: recognised shapes of at least the
        minimum area, and the other components of at least ``fragment_area_fraction``."""
        min_area = max(4, round(self.min_area_fraction * image.shape[0] * image.shape[1]))
        found = self.detect(image, min(self.min_area_fraction, self.fragment_area_fraction))
        objects = [d for d in found if d.area >= min_area and d.shape is not None]
        return objects, [d for d in found if d not in objects]

    def describe(self, image: np.ndarray) -> str:
        """What the image shows, in plan words: ``photo: red circle top left; blue blob bottom
        right.`` -- the objects and fragments (:meth:`split`) in reading order of their quadrant
        (the quadrant of the box centre; in one quadrant objects first, then larger first), each as
        colour, shape (``blob`` for a fragment) and quadrant, repeats said once; ``photo:
        nothing.`` for an empty canvas. Reading order, not size, so what comes next depends on the
        picture's layout alone, as a model can read it off the image ids."""
        objects, fragments = self.split(image)
        height, width = image.shape[:2]

        def cell(d: Detection) -> int:
            x0, y0, x1, y1 = d.box
            return 2 * int(y0 + y1 >= height) + int(x0 + x1 >= width)
        found = [(cell(d), 0, -d.area, f"{d.color} {d.shape}") for d in objects]
        found += [(cell(d), 1, -d.area, f"{d.color} blob") for d in fragments]
        items = [f"{what} {CELLS[where]}" for where, *_, what in sorted(found)]
        return "photo: " + ("; ".join(dict.fromkeys(items)) or "nothing") + "."

    def findings(self, image: np.ndarray, metadata: dict[str, Any]) -> list[str]:
        """What is wrong with the image for its prompt, in the world's words; empty when the judge
        accepts it, never empty when it rejects it. The strict judge's findings are its reasons
        (:func:`findings`: one definition of what is wrong); GenEval's rules reject by their own
        matching, so where :func:`findings` sees nothing wrong the finding is :data:`UNSPECIFIC`."""
        correct, reasons = self.judge(image, metadata)
        if correct:
            return []
        return reasons if self.strict else findings(*self.split(image), metadata) or [UNSPECIFIC]

    def judge(self, image: np.ndarray, metadata: dict[str, Any]) -> tuple[bool, list[str]]:
        """(correct, reasons) by GenEval's rules, or, if ``strict``, exactly the requested objects
        (reasons: :func:`findings`); reasons are empty when correct."""
        if not self.strict:
            return evaluate(self.detect(image), metadata)
        reasons = findings(*self.split(image), metadata)
        return not reasons, reasons


def _objects_phrase(count: int, color: str | None, shape: str) -> str:
    words = [COUNT_WORDS.get(count, str(count))] + ([color] if color else []) + [PLURALS[shape] if count > 1 else shape]
    return " ".join(words)


def findings(objects: list[Detection], fragments: list[Detection], metadata: dict[str, Any]) -> list[str]:
    """The differences between the scene and the prompt's ``include`` list, as short phrases in the
    world's words: ``missing two red circles``, ``blue square should be red``, ``circle not left
    of square``, ``extra green tee``, ``stray blue blob``. Requested objects are matched in
    ``include`` order (asked colour first, then the same shape in another colour); every object
    left over is extra."""
    out: list[str] = []
    unused = list(objects)
    groups: list[list[Detection]] = []
    for req in metadata["include"]:
        shape, count, color = req["class"], req["count"], req.get("color")
        mine = [d for d in unused if d.shape == shape and color in (None, d.color)][:count]
        recolor = [d for d in unused if d.shape == shape and d not in mine][:count - len(mine)]
        for d in mine + recolor:
            unused.remove(d)
        out += [f"{d.color} {shape} should be {color}" for d in recolor]
        if count > len(mine) + len(recolor):
            out.append(f"missing {_objects_phrase(count - len(mine) - len(recolor), color, shape)}")
        if "position" in req and mine:
            relation, target = req["position"]
            anchors = groups[target] if target < len(groups) else []
            if anchors and not all(relation in relative_position(d.box, a.box) for d in mine for a in anchors):
                out.append(f"{shape} not {relation} {metadata['include'][target]['class']}")
        groups.append(mine + recolor)
    out += [f"extra {d.color} {d.shape}" for d in unused]
    out += [f"stray {d.color} blob" for d in fragments]
    return out


def evaluate(detections: list[Detection], metadata: dict[str, Any]) -> tuple[bool, list[str]]:
    """GenEval's ``evaluate`` over detections (see the module docstring)."""
    reasons: list[str] = []
    groups: list[list[Detection] | None] = []
    for req in metadata["include"]:
        cls, count, color = req["class"], req["count"], req.get("color")
        of_class = [d for d in detections if d.shape == cls]
        found = sorted(of_class, key=lambda d: d.color != color)[:count]
        ok = len(found) >= count
        if not ok:
            reasons.append(f"expected {cls}>={count}, found {len(of_class)}")
        elif color is not None and sum(d.color == color for d in found) < count:
            ok = False
            reasons.append(f"expected {color} {cls}>={count}, found {sum(d.color == color for d in of_class)}")
        elif "position" in req:
            relation, target = req["position"]
            anchors = groups[target] if target < len(groups) else None
            if not anchors:
                ok = False
                reasons.append(f"no target for {cls} to be {relation}")
            elif not all(relation in relative_position(d.box, a.box) for d in found for a in anchors):
                ok = False
                reasons.append(f"expected {cls} {relation} target")
        groups.append(found if ok else None)
    for req in metadata.get("exclude", []):
        n = sum(d.shape == req["class"] for d in detections)
        if n >= req["count"]:
            reasons.append(f"expected {req['class']}<{req['count']}, found {n}")
    return not reasons, reasons
