"""The house is walkable: no import runs from a lower floor back up, no circle, and the model
adapters and worlds stay free of the Lightning glue and the pipeline (``tests/import_graph.py``)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO
from tests.import_graph import circles, floors, imported_names, module_graph, room_graph

GLUE = ("callbacks", "datamodules", "lightning", "unigen.module", "unigen.lightning_cli", "unigen.pipeline",
        "unigen.cli")


def test_no_module_imports_in_a_circle():
    assert circles(module_graph()) == []


def test_rooms_form_floors_every_import_runs_down():
    rooms = room_graph(module_graph())
    assert circles(rooms) == []
    level = floors(rooms)
    upward = [(a, b) for a, targets in rooms.items() for b in targets if level[b] >= level[a]]
    assert upward == []
    # The ground the rest stands on: model adapters below data, data below the loss-weighting and
    # training glue, the pipeline and the command line on top.
    assert level["unigen.models"] < level["unigen.data"] < level["unigen.rewards"] < level["unigen.pipeline"]
    assert level["unigen.module"] < level["unigen.lightning_cli"] < level["unigen.cli"]


def test_the_graph_sees_a_circle_and_an_upward_import(tmp_path):
    """The checks above can fail: a planted circle between two rooms is found."""
    for package, body in {"unigen": "", "unigen/low": "from unigen.high.b import B\n",
                          "unigen/high": "from unigen.low import A\n"}.items():
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text(body)
    (tmp_path / "unigen" / "high" / "b.py").write_text("B = 1\n")
    for root in ("callbacks", "datamodules"):
        (tmp_path / root).mkdir()
    graph = module_graph(tmp_path)
    assert graph["unigen.low"] == {"unigen.high.b"} and graph["unigen.high"] == {"unigen.low"}
    assert circles(room_graph(graph)) == [["unigen.high", "unigen.low"]]


@pytest.mark.parametrize("package", ["worlds", "models"])
def test_models_and_worlds_import_no_lightning_glue(package):
    """An adapter or a world is imported by the training glue and the pipeline, never the reverse."""
    offenders = []
    for path in sorted((REPO / "unigen" / package).rglob("*.py")):
        names = imported_names(path, ".".join(path.parent.relative_to(REPO).parts))
        offenders += [f"{path.relative_to(REPO)}: {n}" for n in sorted(names)
                      if any(n == g or n.startswith(g + ".") for g in GLUE)]
    assert offenders == []


def test_the_floor_table_in_extending_md_is_true():
    """docs/extending.md's floor table lists every room on the floor the import graph puts it."""
    documented = {}
    for line in (REPO / "docs" / "extending.md").read_text().splitlines():
        cells = line.split("|")
        if len(cells) == 4 and cells[1].strip().isdigit():
            for path in re.findall(r"`([\w/.]+)`", cells[2]):
                if path.endswith(".py") or path.endswith("/"):
                    documented[path.removesuffix(".py").strip("/").replace("/", ".")] = int(cells[1])
    level = floors(room_graph(module_graph()))
    assert documented == {name: n for name, n in level.items() if name != "unigen"}
