"""ShapesWorld vocabulary: shapes, colours, counts, relations and plan cells."""

from __future__ import annotations

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "tee")
"""Six shapes, so every category has at least six held-out prompts with every shape equally often."""
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses",
           "diamond": "diamonds", "tee": "tees"}
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "yellow": (240, 220, 20),
    "green": (30, 190, 50),
    "blue": (40, 80, 240),
    "purple": (160, 40, 220),
    "white": (245, 245, 245),
}
"""Colour name -> RGB of its flat fill (background is black)."""
BACKGROUND = (0, 0, 0)
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
RELATIONS = ("left of", "right of", "above", "below")
CELLS = ("top left", "top right", "bottom left", "bottom right")
"""Plan locations: the four quadrants of the canvas, as (row, col) = divmod(index, 2)."""
CATEGORIES = ("single_object", "two_object", "counting", "colors", "position", "color_attr")

WORDS = tuple(
    sorted(
        set(SHAPES) | set(PLURALS.values()) | set(COLORS) | set(COUNT_WORDS.values())
        | {w for rel in RELATIONS for w in rel.split()} | {w for cell in CELLS for w in cell.split()}
        | {"a", "photo", "and", "plan"}
    )
)
"""Every word prompts and plans use (the text tokenizer makes each a single token)."""
