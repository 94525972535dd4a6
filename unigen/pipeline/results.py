"""The loop's results, typed: per seed its rounds and its evaluations, each of one phase (the base or
a round's post-trained model) in one mode; written as ``results.json``.

``<out>/seed-<s>/results.json`` holds one :class:`SeedResults`; ``<out>/results.json`` a
:class:`LoopResults` (every seed's, the intervals and the report's table). A ``results.json``
written before typed results (no ``schema``) is refused by name: rerun that loop, which reuses every
finished stage and writes it afresh.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = "results.json"
SCHEMA = 2
"""The ``results.json`` layout of this module (1: the untyped one before it)."""


def results_path(folder: str | Path) -> Path:
    """A loop's (or one seed's) ``results.json`` in its output ``folder``."""
    return Path(folder) / RESULTS


@dataclass(frozen=True)
class Phase:
    """A model of the loop: the base (round 0) or round ``round``'s post-trained model."""

    round: int = 0

    @property
    def name(self) -> str:
        """Its folders' name: ``base``, ``post`` (round 1), ``post<r>`` (round r > 1)."""
        if self.round == 0:
            return "base"
        return "post" if self.round == 1 else f"post{self.round}"

    @property
    def label(self) -> str:
        """Its name in the report: ``base``, ``post-trained``, ``post-trained (round <r>)``."""
        if self.round == 0:
            return "base"
        return "post-trained" if self.round == 1 else f"post-trained (round {self.round})"

    def key(self, mode: str, benchmark: str | None = None) -> str:
        """The name of its evaluation in ``mode`` on ``benchmark`` (None: the targeted one), its folder
        under ``eval/`` and among the intervals: ``base_explicit``, ``post2_unified``,
        ``post_unified_dpg_bench``."""
        return f"{self.name}_{mode}" + (f"_{benchmark}" if benchmark else "")


@dataclass
class Evaluation:
    """One evaluate stage run of the loop: a phase's model in one mode on one benchmark."""

    round: int
    """Its phase's round (0: the base)."""
    mode: str
    """Generation mode."""
    benchmark: str | None
    """Short name of an ``also_evaluate`` benchmark; None: the targeted one."""
    reward: str
    """Name of the reward that scored its samples (its headline metric)."""
    folder: str
    """The evaluate stage's output folder."""
    summary: dict[str, Any]
    """The evaluate stage's ``summary.json`` (``unigen.evals.summary``)."""

    @property
    def phase(self) -> Phase:
        return Phase(self.round)

    @property
    def key(self) -> str:
        """Its name: :meth:`Phase.key`."""
        return self.phase.key(self.mode, self.benchmark)

    @property
    def label(self) -> str:
        """Its name in the report: ``base, explicit``, ``post-trained (round 2), unified``."""
        return f"{self.phase.label}, {self.mode}" + (f", {self.benchmark}" if self.benchmark else "")


@dataclass
class Round:
    """One round of generate -> score -> (reflect) -> fit."""

    round: int
    mode: str
    """Mode its trajectories were generated in."""
    cfg: float | None
    """Guidance scale they were generated at."""
    trajectories: int
    """Trajectories scored."""
    rewards: dict[str, dict[str, float]]
    """The score stage's statistics per reward (``count``, ``missing``, ``mean``, ...)."""

    @property
    def phase(self) -> Phase:
        """The model it fits."""
        return Phase(self.round)


@dataclass
class SeedResults:
    """One seed's pass of the loop."""

    seed: int
    strategy: str
    """The target stage's strategy."""
    fit_config: list[str]
    budget: dict[str, int]
    """Training prompts per category."""
    rounds: list[Round]
    evaluations: list[Evaluation]
    """In order: the base's (first the targeted benchmark in the first base mode), then each round's."""
    guidance: list[float]
    """Guidance scale chosen for each phase's model (index: its round); empty without a guidance search."""

    @property
    def base(self) -> Evaluation:
        """The base in its first mode on the targeted benchmark (what the gains are measured from)."""
        return self.evaluations[0]

    @property
    def result(self) -> Evaluation:
        """The method's result: the last round's model in its first mode on the targeted benchmark."""
        return self.of(self.rounds[-1].phase)[0]

    def of(self, phase: Phase) -> list[Evaluation]:
        """``phase``'s evaluations on the targeted benchmark, in the order of its modes."""
        return [e for e in self.evaluations if e.phase == phase and e.benchmark is None]

    def same(self, evaluation: Evaluation) -> Evaluation:
        """This seed's evaluation of the same phase, mode and benchmark as ``evaluation`` (another seed's)."""
        return next(e for e in self.evaluations if e.key == evaluation.key)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeedResults:
        fields = {k: v for k, v in data.items() if k != "schema"}
        return cls(**{**fields, "rounds": [Round(**r) for r in data["rounds"]],
                      "evaluations": [Evaluation(**e) for e in data["evaluations"]]})


@dataclass
class LoopResults:
    """Every seed's results, the report's intervals (name -> category -> value/low/high) and table."""

    runs: list[SeedResults]
    intervals: dict[str, dict[str, dict[str, float]]]
    table: str

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "runs": [r.to_json() for r in self.runs], "intervals": self.intervals,
                "table": self.table}

    @classmethod
    def read(cls, folder: str | Path) -> LoopResults:
        """The ``results.json`` of a finished loop's output ``folder``."""
        path = results_path(folder)
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise ValueError(f"'{path}' has results schema {data.get('schema', 1)}, this unigen reads {SCHEMA}: "
                             "rerun that loop (it reuses every finished stage) to rewrite it")
        return cls([SeedResults.from_json(r) for r in data["runs"]], data["intervals"], data["table"])
