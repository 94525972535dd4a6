"""The loop: the whole method as a composition of the stages, for any model, benchmark, prompt
source, rewards and fit configs named in YAML.

Per seed, under ``<out>/seed-<s>/``: with ``guidance``, choose the base's guidance scale on
validation prompts (``guidance/base``, :mod:`unigen.pipeline.guidance`) -> evaluate the base in each
of ``base_modes`` (``eval/base_<mode>``, and ``eval/base_<mode>_<name>`` for each of
``also_evaluate``) -> target the weak categories of the first (``prompts.jsonl``) -> per round r:
generate K trajectories per prompt (``generated/``, seed ``s + r`` so they differ from the
evaluation's samples; round 1 with the base in the ``generate`` settings' mode, round r > 1 with
round r-1's model in ``post_modes[0]``) -> score them (``scored/``) -> with ``reflect``, turn them
into interleaved training trajectories (``reflect/``) -> fit from the previous round's model or,
with ``fit_from: base``, from the base, on them (with ``accumulate``, on every round's so far)
(``fit/``, the model in ``fit/model``) -> with ``guidance``, choose its scale, no larger than its
start model's (``guidance/post``) ->
evaluate the fitted model in each of ``post_modes`` (``eval/post_<mode>``; rounds r > 1 under
``round-<r>/``) -> report with paired bootstrap intervals. Every stage reuses its finished output
and refuses changed settings, so a killed loop resumes where it stopped, and a finished loop
extended by more rounds or post modes runs only what is new. With ``share``, the outputs that depend
only on the base model and their stage's settings (the validation prompts, the base's guidance
choice and evaluations, round 1's generated and scored data) live in one folder keyed by those
settings (the targeted prompts by content) and the base's files (names, sizes, modification
times), so runs that differ only in the fit (a weighting ablation) compute them once, and a base
rewritten in place is never mistaken for the old one.

Run by every task of an allocation (``srun`` of N tasks, torchrun; ``configs/slurm/loop.sbatch``),
every stage splits its work over the tasks and returns once its output is complete, the fit spans
them all, and rank 0 alone writes what is made once (prompts, reports); docs/cluster.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, is_dataclass, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from unigen.data.shards import shard_pattern
from unigen.evals.summary import read_summary, summary_path
from unigen.files import file_sha256
from unigen.registry import Spec, spec_value
from unigen.pipeline.evaluate import EvaluateSettings, evaluate
from unigen.pipeline.fit import FitSettings, data_mode, fit
from unigen.pipeline.generate import GenerateSettings, generate
from unigen.pipeline.guidance import GuidanceSearch, at_scale, select_guidance
from unigen.pipeline.reflect import ReflectSettings, reflect
from unigen.pipeline.report.files import write_report, write_seed_table
from unigen.pipeline.report.judges import reward_judges
from unigen.pipeline.results import Evaluation, Phase, Round, SeedResults
from unigen.pipeline.score import ScoreSettings, rewards_path, score
from unigen.pipeline.stage import as_dict
from unigen.pipeline.target import TargetSettings, plan_path, target
from unigen.scale.ranks import barrier, current

Mode = Literal["unified", "explicit", "direct", "interleaved"]


@dataclass
class LoopSettings:
    """The stages' settings; the loop fills in each stage's inputs, outputs, model and seed."""

    model: str
    """The base model: a transformers folder, a preset, an architecture YAML or a ``.ckpt``."""
    evaluate: EvaluateSettings
    """The targeted benchmark: benchmark, reward, samples and sampling of its evaluations (the loop sets
    model, outdir, mode, seed)."""
    score: ScoreSettings
    """Rewards of the self-generated trajectories (the loop sets input and output)."""
    fit: FitSettings
    """The reward-weighted fit: ``run.py fit`` configs (the loop sets out, model, train_shards, seed)."""
    reflect: ReflectSettings | None = None
    """Turn the scored trajectories into interleaved ones (``run.py reflect``: look, reflect, redraw;
    the loop sets input, output, the round's model as the tokenizer and ``evaluate``'s
    ``max_reasoning_tokens`` as the reflection's budget) and fit on those instead: post-training
    for ``interleaved`` generation. None: off."""
    target: TargetSettings = field(default_factory=TargetSettings)
    """Strategy, budget and prompt source (the loop sets out, summaries, benchmark, seed)."""
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    """K, batching and sampling (mode included) of self-generation (the loop sets prompts, out_dir, model, seed)."""
    also_evaluate: list[dict[str, Any]] = field(default_factory=list)
    """Further benchmarks evaluated beside it in the same modes (reported, not targeted): each the
    ``evaluate`` settings that differ from the targeted one's (``benchmark``, ``reward``, ...)."""
    out: str = "outputs/loop"
    """Output folder: ``seed-<s>/`` per seed, ``report.md`` and ``results.json`` over all seeds."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """One full pass per seed; several seeds give mean and spread."""
    base_modes: list[Mode] = field(default_factory=lambda: ["explicit", "unified"])
    """Modes the base model is evaluated in; targeting reads the first."""
    post_modes: list[Mode] = field(default_factory=lambda: ["unified"])
    """Modes the fitted model is evaluated in; the first is the method's result (and round r > 1
    generates in it). ``[unified, direct]`` adds the reasoning ablation: the same model drawing
    without its reasoning."""
    rounds: int = 1
    """Rounds of generate -> score -> fit; round r > 1 generates with round r-1's model."""
    fit_from: Literal["previous", "base"] = "previous"
    """What round r > 1 fits from: round r-1's model (``previous``), or the base (``base``, as in
    ReST-EM: every round is one fit of the base on the newest model's samples, so a fit never builds
    on a fitted model's drift)."""
    accumulate: bool = False
    """Round r fits on the training shards (scored, or reflect's when on) of rounds 1..r (round 1's
    are the base's samples), not only round r's."""
    share: str | None = None
    """Folder of outputs shared by runs (see the module docstring); None: every run keeps its own."""
    report_rewards: dict[str, Spec] = field(default_factory=dict)
    """Further rewards the report applies to every evaluation's images, as extra columns (e.g. a
    lenient judge beside a strict ``evaluate.reward``)."""
    guidance: GuidanceSearch | None = None
    """Choose every model's classifier-free guidance scale on validation prompts (base and each
    round's fitted model, in its first mode) and evaluate and generate with it; None: every model
    samples at ``evaluate.sampling.cfg`` / ``generate.sampling.cfg``."""
    compare_with: str | None = None
    """Another finished loop's ``out`` folder (same seeds and benchmark, e.g. single-pass post-training
    at the same sample budget): the report adds the paired difference of the two method results."""


def run_seed(s: LoopSettings, seed: int) -> SeedResults:
    """One full pass of the method (every stage resumable); returns the seed's results."""
    if s.rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {s.rounds}")
    run_dir = Path(s.out) / f"seed-{seed}"
    evaluating = _Evaluations(s, seed, _validation_prompts(s, run_dir, seed) if s.guidance else None)
    evaluating.of(s.model, Phase(0), s.base_modes, None if s.share else run_dir)
    prompts = zero_first(target, replace(s.target, out=str(run_dir / "prompts.jsonl"), seed=seed,
                                         benchmark=s.evaluate.benchmark,
                                         summaries=[str(summary_path(evaluating.done[0].folder))]))
    model, rounds, earlier = s.model, [], []
    for r in range(1, s.rounds + 1):
        where = run_dir if r == 1 else run_dir / f"round-{r}"
        model, record, shards = _round(s, seed, r, prompts, model, evaluating.scale(Phase(r - 1)), where, earlier)
        if s.accumulate:
            earlier += shards
        evaluating.of(model, Phase(r), s.post_modes, where, Phase(0 if s.fit_from == "base" else r - 1))
        rounds.append(record)
    results = SeedResults(seed, s.target.strategy, s.fit.config, json.loads(plan_path(prompts).read_text())["budgets"],
                          rounds, evaluating.done, evaluating.scales)
    if current().is_zero:
        write_report(run_dir, results, s.report_rewards,
                     reward_judges(s.fit.config, s.score.rewards, s.evaluate.reward))
    barrier()
    return results


class _Evaluations:
    """One seed's evaluations (``done``) and the guidance scale chosen for each phase's model
    (``scales``, index: its round)."""

    def __init__(self, s: LoopSettings, seed: int, validation: Path | None):
        self.s, self.seed, self.validation = s, seed, validation
        self.done: list[Evaluation] = []
        self.scales: list[float] = []

    def scale(self, phase: Phase) -> float | None:
        """The guidance scale chosen for ``phase``'s model; None without a guidance search."""
        return self.scales[phase.round] if phase.round < len(self.scales) else None

    def of(self, model: str, phase: Phase, modes: list[str], where: Path | None, start: Phase | None = None) -> None:
        """Choose ``model``'s guidance scale (with ``guidance``; capped at the scale of the ``start``
        phase, the model it was fitted from, with ``cap_at_start``), then evaluate it in each mode on
        the targeted benchmark and each of ``also_evaluate``; ``where`` None: in the shared folder."""
        s = self.s
        if s.guidance:
            chosen = replace(s.evaluate, model=model, mode=modes[0], seed=self.seed)
            out = (where / "guidance" / phase.name if where
                   else _shared(s, "guidance", chosen, s.guidance, str(self.validation)))
            ceiling = self.scale(start) if start is not None and s.guidance.cap_at_start else None
            self.scales.append(select_guidance(s.guidance, chosen, self.validation, out, ceiling))
        for mode in modes:
            for benchmark, settings in ((None, s.evaluate), *((_name(e["benchmark"]), _merged(s.evaluate, e))
                                                             for e in s.also_evaluate)):
                chosen = replace(settings, model=model, mode=mode, seed=self.seed)
                if self.scale(phase) is not None:
                    chosen = at_scale(chosen, self.scale(phase))
                outdir = where / "eval" / phase.key(mode, benchmark) if where else _shared(s, "eval", chosen)
                folder = evaluate(replace(chosen, outdir=str(outdir)))
                reward = "unscored" if settings.reward is None else _name(settings.reward)
                self.done.append(Evaluation(phase.round, mode, benchmark, reward, str(folder), read_summary(folder)))


def _round(s: LoopSettings, seed: int, r: int, prompts: Path, model: str, cfg: float | None,
           where: Path, earlier: list[str]) -> tuple[str, Round, list[str]]:
    """Round ``r``: generate with ``model`` (at guidance scale ``cfg`` when chosen) -> score ->
    (reflect) -> fit from ``model`` or, with ``fit_from: base``, the base, on these and the
    ``earlier`` shards; returns the fitted model, the round's record and its own shards."""
    generating = replace(s.generate, prompts=[str(prompts)], model=model, seed=seed + r)
    if r > 1:
        generating = replace(generating, sampling=replace(generating.sampling, mode=s.post_modes[0]))
    if cfg is not None:
        generating = at_scale(generating, cfg)
    shared = r == 1 and s.share is not None
    shards = generate(replace(generating, out_dir=str(_shared(s, "generated", *_by_content(generating)) if shared
                                                      else where / "generated")))
    scoring = replace(s.score, input=str(shards))
    scored = score(replace(scoring, output=str(_shared(s, "scored", scoring) if shared else where / "scored")))
    train_shards = [str(scored / shard_pattern(s.score.prefix))]
    if s.reflect is not None:
        reflected = reflect(replace(s.reflect, input=str(scored), output=str(where / "reflect"), tokenizer=model,
                                    max_text_tokens=s.evaluate.sampling.max_reasoning_tokens))
        train_shards = [str(reflected / shard_pattern(s.reflect.prefix))]
    start = s.model if s.fit_from == "base" else model
    fitted = str(fit(replace(s.fit, out=str(where / "fit"), model=start, seed=seed,
                             train_shards=earlier + train_shards)))
    stats = json.loads(rewards_path(scored, s.score.prefix).read_text())
    return fitted, Round(r, generating.sampling.mode, generating.sampling.cfg, _count(stats), stats), train_shards


def _by_content(generating: GenerateSettings) -> list:
    """Round 1's generation settings as a share key: the prompt files by content, not path (every
    run writes the same targeted prompts into its own ``seed-<s>/prompts.jsonl``)."""
    return [replace(generating, prompts=[]), [file_sha256(path) for path in generating.prompts]]


def _shared(s: LoopSettings, stage: str, *inputs) -> Path:
    """``<share>/<stage>-<hash of the inputs and the base's files>``: one folder per distinct stage
    input (settings dataclasses, or plain JSON values) and base (:func:`model_files`)."""
    data = [as_dict(x) if is_dataclass(x) else x for x in inputs] + [model_files(s.model)]
    digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    return Path(s.share) / f"{stage}-{digest}"


def model_files(model: str) -> list[list] | None:
    """A local model folder's files as [name, size, modification time]: a model rewritten in place
    (a base retrained into the same folder) gets new shared outputs instead of the old model's.
    None for a preset or hub name."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    return [[str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns]
            for f in sorted(folder.rglob("*")) if f.is_file()]


VALIDATION_SEED = 1_000_003
"""Added to the seed of the validation draw, so it is not the training prompts' draw."""


def _validation_prompts(s: LoopSettings, run_dir: Path, seed: int) -> Path:
    """The guidance search's validation prompts: the benchmark's category mix drawn from the training
    prompt source (never a benchmark prompt)."""
    drawing = replace(s.target, strategy="benchmark_aligned", budget=s.guidance.prompts, summaries=[], out="",
                      benchmark=s.evaluate.benchmark, seed=seed + VALIDATION_SEED)
    folder = _shared(s, "validation", drawing) if s.share else run_dir / "validation"
    return zero_first(target, replace(drawing, out=str(folder / "prompts.jsonl")))


Settings = TypeVar("Settings")


def zero_first(stage: Callable[[Settings], Path], settings: Settings) -> Path:
    """A single-process stage in a world of N: rank 0 runs it, then the others (which reuse its output)."""
    ranks = current()
    if ranks.is_zero:
        out = stage(settings)
    barrier()
    return out if ranks.is_zero else stage(settings)


def _merged(settings: EvaluateSettings, changes: dict[str, Any]) -> EvaluateSettings:
    """``settings`` with ``changes`` (``sampling`` merged key by key)."""
    changes = dict(changes)
    if "sampling" in changes:
        changes["sampling"] = replace(settings.sampling, **changes["sampling"])
    return replace(settings, **changes)


def _name(spec) -> str:
    """A benchmark's short name from its spec (``dpg_bench``, or the last part of an import path)."""
    spec = spec_value(spec)
    return (spec["class_path"] if isinstance(spec, dict) else spec).rpartition(".")[2]


def _count(stats: dict[str, dict]) -> int:
    """Trajectories scored (any reward's count + missing)."""
    first = next(iter(stats.values()), {"count": 0, "missing": 0})
    return first["count"] + first["missing"]


def loop(settings: LoopSettings) -> Path:
    """The whole method: evaluate -> target -> generate -> score -> fit -> evaluate, per seed.

    Returns the output folder ``out``; the table over seeds is printed and in its ``report.md``, the
    results in its ``results.json`` (:mod:`unigen.pipeline.results`)."""
    if settings.reflect is not None and data_mode(settings.fit) != "unified":
        raise ValueError(f"reflect: reflect-and-redraw trajectories train only in data mode 'unified', but the fit "
                         f"(configs {settings.fit.config}, args {settings.fit.args}) sets data.init_args.mode "
                         f"'{data_mode(settings.fit)}': every one of them would be skipped")
    runs = [run_seed(settings, seed) for seed in settings.seeds]
    if current().is_zero:
        write_seed_table(Path(settings.out), runs, settings.report_rewards, settings.compare_with,
                         reward_judges(settings.fit.config, settings.score.rewards, settings.evaluate.reward))
    barrier()
    return Path(settings.out)
