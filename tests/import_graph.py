"""The import graph of unigen's packages, read from the source (``ast``), every import counted
(module level and function-local alike).

A *module* is a ``.py`` file; a *room* is what a newcomer opens as one place: a top-level module of
``unigen`` (``unigen.module``), a first-level sub-package with everything below it (``unigen.models``
holds ``unigen.models.janus``), ``callbacks`` or ``datamodules``. A room's *floor* is the length of
the longest chain of rooms it imports (0: imports no other room). The house is walkable when both
graphs have no circle: then every import runs from a higher floor to a lower one.

``python tests/import_graph.py`` prints the floors and any circle.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOTS = ("unigen", "callbacks", "datamodules")
REPO = Path(__file__).resolve().parents[1]


def modules(repo: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``ROOTS`` (a package is its ``__init__``)."""
    out = {}
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            parts = path.relative_to(repo).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_names(path: Path, package: str) -> set[str]:
    """Every dotted name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``), relative ones resolved."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def module_graph(repo: Path = REPO) -> dict[str, set[str]]:
    """Module -> the project modules it imports (the longest known prefix of each imported name)."""
    known = modules(repo)

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = {owner(imported) for imported in imported_names(path, package)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def room(module: str) -> str:
    """``unigen.models.janus.adapter`` -> ``unigen.models``; ``callbacks.rng`` -> ``callbacks``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "unigen" else parts[0]


def room_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Room -> the other rooms its modules import."""
    rooms: dict[str, set[str]] = {room(m): set() for m in graph}
    for module, targets in graph.items():
        rooms[room(module)].update(room(t) for t in targets if room(t) != room(module))
    return rooms


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def floors(rooms: dict[str, set[str]]) -> dict[str, int]:
    """Room -> its floor (only defined when the room graph has no circle)."""

    @cache
    def floor(name: str) -> int:
        return 1 + max((floor(t) for t in rooms[name]), default=-1)

    return {name: floor(name) for name in rooms}


def crossings(graph: dict[str, set[str]], rooms: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, imported module) pairs that join the rooms of a room circle (what to cut)."""
    tangled = {r for circle in circles(rooms) for r in circle}
    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if room(m) != room(t) and room(m) in tangled and room(t) in tangled)


def main() -> None:
    graph = module_graph()
    rooms = room_graph(graph)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports; "
          f"{len(rooms)} rooms, {sum(map(len, rooms.values()))} room arrows")
    print("module circles:", circles(graph) or "none")
    print("room circles:", circles(rooms) or "none")
    if circles(rooms):
        for module, target in crossings(graph, rooms):
            print(f"  {module} -> {target}")
        return
    by_floor: dict[int, list[str]] = {}
    for name, level in floors(rooms).items():
        by_floor.setdefault(level, []).append(name)
    for level in sorted(by_floor, reverse=True):
        print(f"floor {level}: {', '.join(sorted(by_floor[level]))}")


if __name__ == "__main__":
    main()
