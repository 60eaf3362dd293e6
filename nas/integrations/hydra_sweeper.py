"""Our searchers as a Hydra sweeper: ``python train.py -m hydra/sweeper=nas hydra.sweeper.searcher=evolution``.

The sweep's parameters (``hydra.sweeper.params`` and the command line's sweep overrides: ``choice(..)``,
``a,b,c``, ``range(..)``, ``interval(..)`` (floats; ``int(interval(..))`` integers), ``tag(log, interval(..))``)
are mapped to Optuna distributions as hydra-optuna-sweeper maps them (a range keeps Hydra's exclusive stop), and
those to a search space of ours by ``OptunaSpace`` (the Optuna integration's mapping, so both integrations make
the same decisions). The searcher asks for ``n_jobs`` genotypes at a time; each becomes one job's overrides,
launched through the configured Hydra launcher (basic, joblib, ...); each job's return value (a number) is the
objective, told to the searcher. A proposal equal to an earlier one is told that trial's result without running
it again. ``optimization_results.yaml`` in the sweep directory holds the best parameters and value. The Hydra
plugin class is ``hydra_plugins.nas_sweeper.nas_sweeper.NasSweeper`` (Hydra instantiates plugins only from
``hydra_plugins``); this module does its work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEARCHER_NAMES = ("evolution", "predictor_evolution", "random")  # the Optuna sampler's: ask/tell on any space
MAX_DUPLICATE_STREAK = 1000  # proposals in a row already evaluated: the space is exhausted (as the runner's)


class SweepError(ValueError):
    """A sweep the NAS sweeper cannot run (no searched parameter, an unsupported sweep, a bad option)."""


@dataclass
class SearchedParams:
    """The sweep's parameters as a space of ours, and the overrides every job gets unchanged."""

    space: Any  # nas.integrations.optuna.OptunaSpace
    fixed: list[str]
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # choice param -> override text -> value

    def overrides(self, genotype: Any) -> list[str]:
        """A job's overrides: the fixed ones, then ``name=value`` for every searched parameter."""
        return self.fixed + [f"{name}={value}" for name, value in self.space.to_params(genotype).items()]

    def values_of(self, genotype: Any) -> dict[str, Any]:
        """The searched parameters' values (a choice's own value, not its override text)."""
        params = self.space.to_params(genotype)
        return {name: self.values[name][value] if name in self.values else value for name, value in params.items()}


def _distribution(override: Any) -> tuple[Any, dict[str, Any] | None]:
    """The Optuna distribution of a sweep override, and for a choice its override texts -> values."""
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep, Transformer, ValueType
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    name = override.get_key_element()
    if override.value_type is ValueType.GLOB_CHOICE_SWEEP:  # a glob over a config group's options
        raise SweepError(f"{name}: {override.input_line} is not supported by the nas sweeper (use choice, a,b,c, "
                         "range or interval)")
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        texts = list(override.sweep_iterator(transformer=Transformer.str))
        raw = list(override.sweep_iterator(transformer=Transformer.identity))
        values = dict(zip(texts, raw))
        return CategoricalDistribution(list(values)), values
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        points = list(override.sweep_iterator(transformer=Transformer.identity))
        if not points:
            raise SweepError(f"{override.input_line}: the range is empty")
        if all(isinstance(p, int) for p in points) and value.step > 0:
            return IntDistribution(points[0], points[-1], step=int(value.step)), None
        if value.step > 0:
            return FloatDistribution(float(points[0]), float(points[-1]), step=float(value.step)), None
        texts = [Transformer.str(p) for p in points]
        return CategoricalDistribution(texts), dict(zip(texts, points))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log = "log" in value.tags
        if value.start >= value.end:
            raise SweepError(f"{override.input_line}: an interval needs start < end")
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log), None
        return FloatDistribution(float(value.start), float(value.end), log=log), None
    raise SweepError(f"{name}: {override.input_line} is not supported by the nas sweeper (use choice, a,b,c, "
                     "range or interval)")


def searched_params(arguments: Sequence[str], params: Mapping[str, Any] | None) -> SearchedParams:
    """``hydra.sweeper.params`` (key -> override text), then the command line's overrides (which win):
    sweeps become the space's decisions, the rest are passed to every job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer

    from nas.integrations.optuna import OptunaSpace

    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    parsed = OverridesParser.create().parse_overrides(lines)
    by_key: dict[str, Any] = {}
    for override in parsed:
        by_key.pop(override.get_key_element(), None)
        by_key[override.get_key_element()] = override
    distributions, values, fixed = {}, {}, []
    for key, override in by_key.items():
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        distribution, choices = _distribution(override)
        if distribution.single():
            text = next(iter(choices)) if choices else Transformer.str(distribution.low)
            fixed.append(f"{key}={text}")
            continue
        distributions[key] = distribution
        if choices is not None:
            values[key] = choices
    if not distributions:
        raise SweepError("the nas sweeper has nothing to search: give hydra.sweeper.params or sweep overrides "
                         "such as x=choice(1,2,3) or lr=interval(0.001,0.1)")
    return SearchedParams(OptunaSpace(distributions), fixed, values)


def objective_value(job: Any) -> tuple[float | None, str]:
    """A finished Hydra job's return value as the objective, or None and why it is not one."""
    from hydra.core.utils import JobStatus

    if job.status is not JobStatus.COMPLETED:
        error = job._return_value  # the property re-raises the job's exception
        return None, f"{type(error).__name__}: {error}"
    value = job.return_value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"the task returned {value!r}, not a finite number"
    return float(value), ""


@dataclass
class SweepOptions:
    """The NAS sweeper's settings (``hydra.sweeper.*``)."""

    searcher: str = "evolution"
    direction: str = "minimize"
    n_trials: int = 20
    n_jobs: int = 1
    seed: int | None = None
    searcher_options: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None

    def check(self) -> None:
        if self.searcher not in SEARCHER_NAMES:
            raise SweepError(f"unknown searcher {self.searcher!r}; valid choices: {', '.join(SEARCHER_NAMES)}")
        if self.direction not in ("minimize", "maximize"):
            raise SweepError(f"direction must be minimize or maximize, got {self.direction!r}")
        if self.n_trials < 1 or self.n_jobs < 1:
            raise SweepError(f"n_trials and n_jobs must be at least 1, got {self.n_trials} and {self.n_jobs}")


def run_sweep(options: SweepOptions, arguments: Sequence[str], launcher: Any, sweep_dir: str | Path,
              log: Any = None) -> list[Any]:
    """Search with ``options.searcher``: batches of ``n_jobs`` jobs through ``launcher`` until ``n_trials``
    trials have run (or the space is exhausted). Writes ``optimization_results.yaml``; returns the batches'
    ``JobReturn`` lists."""
    import yaml

    from nas.core.result import Result, TrialState
    from nas.searchers.base import SEARCHERS, Objective

    options.check()
    searched = searched_params(arguments, options.params)
    searcher = SEARCHERS.get(options.searcher)(**dict(options.searcher_options))
    objective = Objective("value", "min" if options.direction == "minimize" else "max")
    searcher.setup(searched.space, 0 if options.seed is None else options.seed, objective)
    seen: dict[str, Result] = {}
    trials: list[Result] = []
    returns, streak, exhausted = [], 0, False
    while len(trials) < options.n_trials and not exhausted:
        batch: list[Any] = []
        repeats: list[Any] = []  # proposals equal to one in this batch: told its result afterwards
        while len(batch) < min(options.n_jobs, options.n_trials - len(trials)):
            genotype = searcher.ask()
            if genotype is None or streak > MAX_DUPLICATE_STREAK:
                exhausted = True
                break
            fingerprint = genotype.fingerprint()
            if fingerprint in seen:
                streak += 1
                searcher.tell(genotype, seen[fingerprint])
            elif any(g.fingerprint() == fingerprint for g in batch):
                streak += 1
                repeats.append(genotype)
            else:
                streak = 0
                batch.append(genotype)
        if not batch:
            break
        overrides = [searched.overrides(g) for g in batch]
        if log is not None:
            log.info(f"nas sweeper: trials {len(trials)}..{len(trials) + len(batch) - 1} of {options.n_trials}")
        results = launcher.launch(overrides, initial_job_idx=len(trials))
        returns.append(results)
        for genotype, job in zip(batch, results):
            value, error = objective_value(job)
            state = TrialState.COMPLETE if value is not None else TrialState.FAILED
            result = Result(trial=len(trials), genotype=genotype, state=state,
                            metrics={} if value is None else {"value": value}, error=error)
            trials.append(result)
            seen[genotype.fingerprint()] = result
            searcher.tell(genotype, result)
            if log is not None and error:
                log.warning(f"nas sweeper: trial {result.trial} failed: {error}")
        for genotype in repeats:
            searcher.tell(genotype, seen[genotype.fingerprint()])
    done = [t for t in trials if t.ok]
    if not done:
        raise SweepError(f"none of the {len(trials)} trials returned a number; the first: {trials[0].error}"
                         if trials else "the searcher proposed nothing")
    best = max(done, key=objective.score)
    results = {"name": "nas", "searcher": options.searcher, "direction": options.direction,
               "best_params": searched.values_of(best.genotype), "best_value": best.metrics["value"],
               "best_trial": best.trial, "n_trials": len(trials), "n_failed": len(trials) - len(done)}
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    (Path(sweep_dir) / "optimization_results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))
    if log is not None:
        log.info(f"nas sweeper: best value {results['best_value']} with {results['best_params']}")
    return returns
