"""The reasoning plan: what to draw where, its text form, parser and check against metadata.

Text form: ``plan: red circle top left; blue square bottom right.`` -- one item per object,
``<color> <shape> <cell>``, items in the order of the prompt's ``include`` list; cells are the
canvas quadrants (``vocab.CELLS``). A scene rendered from a plan satisfies the prompt.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from unigen.worlds.shapes.geometry import relative_position
from unigen.worlds.shapes.vocab import CELLS, COLORS, SHAPES

_ITEM = re.compile(rf"^({'|'.join(COLORS)}) ({'|'.join(SHAPES)}) ({'|'.join(CELLS)})$")
_SIDE = {"left of": ("col", 0, 1), "right of": ("col", 1, 0), "above": ("row", 0, 1), "below": ("row", 1, 0)}
"""relation of B to A -> (axis that differs, B's index on it, A's index on it)."""


class PlanError(ValueError):
    """The text is not a well-formed plan."""


@dataclass(frozen=True)
class PlanItem:
    color: str
    shape: str
    cell: str

    @property
    def row_col(self) -> tuple[int, int]:
        return divmod(CELLS.index(self.cell), 2)

    def text(self) -> str:
        return f"{self.color} {self.shape} {self.cell}"


def format_plan(items: list[PlanItem]) -> str:
    return "plan: " + "; ".join(item.text() for item in items) + "."


def parse_plan(text: str) -> list[PlanItem]:
    """Parse a plan; raises :class:`PlanError` naming the offending part."""
    text = text.strip()
    if not text.startswith("plan: ") or not text.endswith("."):
        raise PlanError(f"a plan reads 'plan: <item>; <item>.', got {text[:60]!r}")
    items = []
    for part in text[len("plan: "):-1].split("; "):
        match = _ITEM.match(part)
        if match is None:
            raise PlanError(f"plan item {part!r} is not '<color> <shape> <cell>'")
        items.append(PlanItem(*match.groups()))
    return items


def _position_cells(relation: str, rng: random.Random) -> tuple[int, int]:
    """Cells (index into CELLS) for (A, B) with B ``relation`` A, sharing a row or column."""
    axis, b_side, a_side = _SIDE[relation]
    other = rng.randrange(2)
    if axis == "col":
        return other * 2 + a_side, other * 2 + b_side
    return a_side * 2 + other, b_side * 2 + other


def make_plan(metadata: dict[str, Any], rng: random.Random) -> list[PlanItem]:
    """A random plan that satisfies ``metadata`` (unspecified colours drawn at random)."""
    objects: list[tuple[str, str]] = []
    for req in metadata["include"]:
        for _ in range(req["count"]):
            objects.append((req.get("color") or rng.choice(list(COLORS)), req["class"]))
    if len(objects) > len(CELLS):
        raise ValueError(f"{len(objects)} objects do not fit the {len(CELLS)} plan cells: {metadata}")
    positioned = [i for i, req in enumerate(metadata["include"]) if "position" in req]
    if positioned:
        if len(metadata["include"]) != 2 or positioned != [1] or any(r["count"] != 1 for r in metadata["include"]):
            raise ValueError(f"position prompts need two single objects, the second positioned: {metadata}")
        cells = list(_position_cells(metadata["include"][1]["position"][0], rng))
    else:
        cells = rng.sample(range(len(CELLS)), len(objects))
    return [PlanItem(color, shape, CELLS[cell]) for (color, shape), cell in zip(objects, cells)]


def cell_box(item: PlanItem) -> tuple[float, float, float, float]:
    row, col = item.row_col
    return (col, row, col + 1, row + 1)


def plan_checks(items: list[PlanItem], metadata: dict[str, Any]) -> list[bool]:
    """One pass/fail per requirement: each ``include`` (count, colour, relation by GenEval's rule
    on cell boxes), each ``exclude``, and one for distinct cells (a drawable plan)."""
    checks, groups = [], []
    for req in metadata["include"]:
        found = [it for it in items if it.shape == req["class"] and it.color == req.get("color", it.color)]
        ok = len(found) >= req["count"]
        if ok and "position" in req:
            relation, target = req["position"]
            anchors = groups[target] if target < len(groups) else None
            ok = bool(anchors) and all(relation in relative_position(cell_box(a), cell_box(b))
                                       for a in found for b in anchors)
        checks.append(ok)
        groups.append(found if ok else None)
    for req in metadata.get("exclude", []):
        checks.append(sum(it.shape == req["class"] for it in items) < req["count"])
    checks.append(len({it.cell for it in items}) == len(items))
    return checks


def last_plan(text: str) -> str:
    """The text from its last ``plan: `` on (all of it when it has none)."""
    return text[max(text.rfind("plan: "), 0):]


def plan_score(text: str, metadata: dict[str, Any]) -> float:
    """1.0 when the plan parses and passes every check; the passed share of checks otherwise
    (partial credit); 0.0 when it does not parse."""
    try:
        items = parse_plan(text)
    except PlanError:
        return 0.0
    checks = plan_checks(items, metadata)
    return sum(checks) / len(checks)
