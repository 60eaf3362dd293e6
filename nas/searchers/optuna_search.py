"""Optuna samplers as a searcher: TPE by default, through Optuna's ask/tell interface.

The space spec maps onto Optuna distributions decision by decision: a choice is categorical (by value
when the options are plain scalars, else by index), an integer range ``suggest_int``, a float range
``suggest_float`` (log when the decision is). Conditional decisions are asked only when active, which
Optuna's define-by-run trials allow. Results the searcher did not ask for (a resumed run's history, a
duplicate answered from the runner's cache) are added as finished trials so the sampler learns them.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from nas.core.decisions import Choice, FloatRange, IntRange
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.searchers.base import SEARCHERS, MultiObjective, Objective, Searcher

SAMPLERS = ("auto", "tpe", "random", "nsgaii", "cmaes", "gp", "qmc")


def _plain(options: tuple) -> bool:
    return all(o is None or isinstance(o, (bool, int, float, str)) for o in options)


@SEARCHERS.register("optuna")
class OptunaSearcher(Searcher):
    """``sampler``: auto (TPE for one objective, NSGA-II for several), tpe, random, nsgaii, cmaes, gp or qmc.

    ``startup_trials`` random trials come first (TPE, CMA-ES, GP).
    """

    def __init__(self, sampler: str = "auto", startup_trials: int = 10, multivariate: bool = False) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown optuna sampler {sampler!r}; valid choices: {', '.join(SAMPLERS)}")
        self.sampler_name = sampler
        self.startup_trials = startup_trials
        self.multivariate = multivariate

    def setup(self, space, seed: int = 0, objective: Objective | None = None) -> None:
        import optuna

        super().setup(space, seed, objective)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.objectives = (self.objective.objectives if isinstance(self.objective, MultiObjective)
                           else (self.objective,))
        if self.sampler_name == "auto":
            self.sampler_name = "nsgaii" if len(self.objectives) > 1 else "tpe"
        directions = ["maximize" if o.mode == "max" else "minimize" for o in self.objectives]
        self.study = optuna.create_study(directions=directions, sampler=self._sampler(seed))
        self.pending: dict[str, deque] = defaultdict(deque)

    def _sampler(self, seed: int):
        import optuna

        s = optuna.samplers
        if self.sampler_name == "tpe":
            return s.TPESampler(seed=seed, n_startup_trials=self.startup_trials, multivariate=self.multivariate)
        if self.sampler_name == "nsgaii":
            return s.NSGAIISampler(seed=seed)
        if self.sampler_name == "cmaes":
            return s.CmaEsSampler(seed=seed, n_startup_trials=self.startup_trials)
        if self.sampler_name == "gp":
            return s.GPSampler(seed=seed, n_startup_trials=self.startup_trials)
        if self.sampler_name == "qmc":
            return s.QMCSampler(seed=seed)
        return s.RandomSampler(seed=seed)

    def distributions(self) -> dict[str, Any]:
        """The Optuna distribution of every decision (for ``add_trial``)."""
        import optuna.distributions as d

        out: dict[str, Any] = {}
        for decision in self.space.spec():
            if isinstance(decision, Choice):
                choices = decision.options if _plain(decision.options) else tuple(range(decision.size))
                out[decision.label] = d.CategoricalDistribution(choices)
            elif isinstance(decision, IntRange):
                out[decision.label] = d.IntDistribution(decision.low, decision.high, step=decision.step)
            elif isinstance(decision, FloatRange):
                out[decision.label] = d.FloatDistribution(decision.low, decision.high, log=decision.log)
        return out

    def ask(self) -> Genotype | None:
        trial = self.study.ask()
        spec = self.space.spec()
        values: dict[str, Any] = {}
        for decision in spec:
            if not spec.is_active(decision, values):
                continue
            if isinstance(decision, Choice):
                if _plain(decision.options):
                    values[decision.label] = trial.suggest_categorical(decision.label, list(decision.options))
                else:
                    index = trial.suggest_categorical(decision.label, list(range(decision.size)))
                    values[decision.label] = decision.options[index]
            elif isinstance(decision, IntRange):
                values[decision.label] = trial.suggest_int(decision.label, decision.low, decision.high,
                                                           step=decision.step)
            else:
                values[decision.label] = trial.suggest_float(decision.label, decision.low, decision.high,
                                                             log=decision.log)
        genotype = self.space.make(values)
        self.pending[genotype.fingerprint()].append(trial)
        return genotype

    def tell(self, genotype: Genotype, result: Result) -> None:
        import optuna

        super().tell(genotype, result)
        queue = self.pending.get(genotype.fingerprint())
        found = [result.metrics.get(o.metric) for o in self.objectives]
        value = None if any(v is None for v in found) else [float(v) for v in found]
        if queue:
            trial = queue.popleft()
            if result.state is TrialState.COMPLETE and value is not None:
                self.study.tell(trial, value)
            elif result.state is TrialState.PRUNED:
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        if result.state is TrialState.COMPLETE and value is not None:
            self.study.add_trial(optuna.trial.create_trial(params=self._params(genotype),
                                                           distributions=self._active(genotype), values=value))

    def _active(self, genotype: Genotype) -> dict[str, Any]:
        dists = self.distributions()
        return {label: dists[label] for label, _ in genotype.decisions if label in dists}

    def _params(self, genotype: Genotype) -> dict[str, Any]:
        params = {}
        for label, value in genotype.decisions:
            decision = self.space.spec()[label]
            params[label] = value if not isinstance(decision, Choice) or _plain(decision.options) \
                else decision.options.index(value)
        return params

    def recover(self, history) -> None:
        for result in history:
            self.tell(result.genotype, result)
