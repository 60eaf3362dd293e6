"""Our searchers inside Optuna: ``Sampler(searcher="evolution")`` drives any Optuna study.

Optuna's define-by-run trials reveal the search space as they run. The sampler samples *relatively* over the
parameters that every finished trial has, with the same distribution (Optuna's ``IntersectionSearchSpace``,
as TPE and CMA-ES do). That space becomes a search space of ours, ``OptunaSpace``, whose decisions are the
distributions: a categorical is a ``Choice`` of its choice indices, an integer an ``IntRange`` (a log-scaled
one a log ``FloatRange``, rounded), a stepped float an ``IntRange`` of step counts, any other float a
``FloatRange``; our searcher samples, mutates and models it like any space of ours. Before each ask the
searcher is told every finished trial of the study it has not seen (complete, pruned or failed, in order of
completion, whichever process or sampler ran it). A parameter outside that space (every parameter of the
first trial, a conditional one, one whose range changed) is sampled independently at random. When the space
changes, the searcher starts again on the new space and is told the study's trials again.
"""

from __future__ import annotations

import datetime
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from nas.core.decisions import Choice, Decision, FloatRange, IntRange, SpaceSpec
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.core.space import SearchSpace
from nas.searchers.base import SEARCHERS, MultiObjective, Objective, Searcher

SEARCHER_NAMES = ("evolution", "predictor_evolution", "random")  # ask/tell searchers that work on any space
STATES = {OptunaState.COMPLETE: TrialState.COMPLETE, OptunaState.PRUNED: TrialState.PRUNED,
          OptunaState.FAIL: TrialState.FAILED}


def _decision(name: str, distribution: BaseDistribution) -> Decision:
    """The decision of ours that stands for an Optuna distribution."""
    if isinstance(distribution, CategoricalDistribution):
        return Choice(name, tuple(range(len(distribution.choices))))
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            return FloatRange(name, float(distribution.low), float(distribution.high), log=True)
        return IntRange(name, distribution.low, distribution.high, distribution.step)
    if isinstance(distribution, FloatDistribution):
        if distribution.step is not None:
            return IntRange(name, 0, round((distribution.high - distribution.low) / distribution.step))
        return FloatRange(name, distribution.low, distribution.high, log=distribution.log)
    raise TypeError(f"unknown Optuna distribution {distribution!r}")


def _only_value(distribution: BaseDistribution) -> Any:
    """The value of a single-valued distribution."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[0]
    return int(distribution.low) if isinstance(distribution, IntDistribution) else float(distribution.low)


class OptunaSpace(SearchSpace):
    """A search space made of Optuna distributions (parameter name -> distribution), none of them single-valued.

    Not registered and not a network: ``decode`` refuses. ``to_params`` and ``from_params`` convert between a
    genotype and Optuna parameter values."""

    name = "optuna"
    version = 1

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        super().__init__()
        self.distributions = dict(distributions)

    def build_spec(self) -> SpaceSpec:
        return SpaceSpec(tuple(_decision(name, d) for name, d in self.distributions.items()))

    def decode(self, genotype: Genotype) -> Any:
        raise TypeError("an Optuna search space holds parameters, not a network: it cannot be decoded")

    def to_params(self, genotype: Genotype) -> dict[str, Any]:
        """Optuna parameter values (plain Python numbers or the categorical's own choices) of a genotype."""
        values, params = genotype.values, {}
        for name, d in self.distributions.items():
            value = values[name]
            if isinstance(d, CategoricalDistribution):
                params[name] = d.choices[int(value)]
            elif isinstance(d, IntDistribution):
                params[name] = int(min(max(round(value), d.low), d.high))
            elif d.step is not None:
                params[name] = float(min(max(d.low + int(value) * d.step, d.low), d.high))
            else:
                params[name] = float(value)
        return params

    def from_params(self, params: Mapping[str, Any]) -> Genotype:
        """The genotype of a trial's parameter values (each of this space's distribution)."""
        values: dict[str, Any] = {}
        for name, d in self.distributions.items():
            value = params[name]
            if isinstance(d, CategoricalDistribution):
                values[name] = int(d.to_internal_repr(value))
            elif isinstance(d, IntDistribution):
                values[name] = float(value) if d.log else int(value)
            elif d.step is not None:
                values[name] = round((value - d.low) / d.step)
            else:
                values[name] = float(value)
        return self.make(values)

    def holds(self, trial: FrozenTrial) -> bool:
        """Whether a trial has every parameter of this space, with the same distribution."""
        return all(trial.distributions.get(name) == d for name, d in self.distributions.items())


@dataclass
class _Run:
    """One searcher on one relative search space of one study, and what it was told and asked."""

    study: tuple[int, int]
    space: OptunaSpace
    searcher: Searcher
    told: set[int] = field(default_factory=set)
    asked: dict[int, Genotype] = field(default_factory=dict)  # trial number -> the genotype proposed for it


class Sampler(optuna.samplers.BaseSampler):
    """An Optuna sampler that proposes with one of our searchers (``evolution``, ``predictor_evolution``,
    ``random``); ``options`` are the searcher's own (e.g. ``population_size=20``).

    Relative sampling over the study's intersection search space (see the module's doc); other parameters
    at random (Optuna's ``RandomSampler``). Several objectives work with the searchers that rank by all of
    them (evolution: non-dominated rank, then crowding distance; random); predictor_evolution takes one.
    """

    def __init__(self, searcher: str = "evolution", seed: int | None = None, **options: Any) -> None:
        if searcher not in SEARCHER_NAMES:
            raise ValueError(f"unknown searcher {searcher!r} for Optuna; valid choices: {', '.join(SEARCHER_NAMES)}")
        self.searcher_name = searcher
        self.options = options
        self._cls = SEARCHERS.get(searcher)
        self._cls(**options)  # its options are checked now, not at the first trial
        self._seeds = random.Random(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._intersection = IntersectionSearchSpace(include_pruned=True)
        self._run: _Run | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]  # a lock does not pickle; the copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def reseed_rng(self) -> None:
        self._seeds = random.Random()
        self._random.reseed_rng()

    def _check(self, study: optuna.Study) -> None:
        if len(study.directions) > 1 and not self._cls.multi_objective:
            raise ValueError(f"searcher {self.searcher_name!r} optimises one objective; this study has "
                             f"{len(study.directions)} (use evolution or random)")

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        self._check(study)
        with self._lock:
            space = self._intersection.calculate(study)
        return {name: d for name, d in space.items() if not d.single()}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self._check(study)
        fixed = {name: _only_value(d) for name, d in search_space.items() if d.single()}
        free = {name: d for name, d in search_space.items() if not d.single()}
        if not free:
            return fixed
        with self._lock:
            run = self._run_for(study, free)
            self._tell_finished(study, run)
            genotype = run.searcher.ask()
            if genotype is None:
                return fixed
            run.asked[trial.number] = genotype
        return {**fixed, **run.space.to_params(genotype)}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        self._check(study)
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # --- the searcher behind it -------------------------------------------------------------------
    def _objective(self, study: optuna.Study) -> Objective | MultiObjective:
        modes = ["max" if d == optuna.study.StudyDirection.MAXIMIZE else "min" for d in study.directions]
        if len(modes) == 1:
            return Objective("value", modes[0])
        return MultiObjective(tuple(Objective(f"value_{i}", mode) for i, mode in enumerate(modes)))

    def _run_for(self, study: optuna.Study, distributions: dict[str, BaseDistribution]) -> _Run:
        """The searcher of this study and space: a new one, told nothing yet, when either changed."""
        key = (id(study._storage), study._study_id)
        run = self._run
        if run is None or run.study != key or run.space.distributions != distributions:
            space = OptunaSpace(distributions)
            searcher = self._cls(**self.options)
            searcher.setup(space, self._seeds.randrange(2**31), self._objective(study))
            run = self._run = _Run(key, space, searcher)
        return run

    def _tell_finished(self, study: optuna.Study, run: _Run) -> None:
        """Tell the searcher every finished trial of the study it has not been told, in order of completion."""
        finished = [t for t in study.get_trials(deepcopy=False, states=tuple(STATES)) if t.number not in run.told]
        finished.sort(key=lambda t: (t.datetime_complete or datetime.datetime.max, t.number))
        for trial in finished:
            run.told.add(trial.number)
            asked = run.asked.pop(trial.number, None)
            if run.space.holds(trial):
                genotype = run.space.from_params(trial.params)
                state = STATES[trial.state]
            elif asked is not None:  # proposed, but the trial did not take the proposal: a failure of it
                genotype, state = asked, TrialState.FAILED
            else:
                continue
            values = trial.values if state is TrialState.COMPLETE else None
            metrics = {} if values is None else ({"value": values[0]} if len(values) == 1
                                                 else {f"value_{i}": v for i, v in enumerate(values)})
            run.searcher.tell(genotype, Result(trial=trial.number, genotype=genotype, state=state, metrics=metrics))
