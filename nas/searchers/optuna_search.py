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

from nas.core.decisions import Choice, FloatRange, IntRange, SpaceSpec
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.searchers.base import SEARCHERS, MultiObjective, Objective, Searcher

SAMPLERS = ("auto", "tpe", "random", "nsgaii", "cmaes", "gp", "qmc")
PRUNERS = ("median", "halving", "none")


def _plain(options: tuple) -> bool:
    return all(o is None or isinstance(o, (bool, int, float, str)) for o in options)


def spec_distributions(spec: SpaceSpec) -> dict[str, Any]:
    """The Optuna distribution of every decision: a choice is categorical by value (plain scalars) or
    by index, an integer range an ``IntDistribution``, a float range a ``FloatDistribution``."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for decision in spec:
        if isinstance(decision, Choice):
            choices = decision.options if _plain(decision.options) else tuple(range(decision.size))
            out[decision.label] = d.CategoricalDistribution(choices)
        elif isinstance(decision, IntRange):
            out[decision.label] = d.IntDistribution(decision.low, decision.high, step=decision.step)
        elif isinstance(decision, FloatRange):
            out[decision.label] = d.FloatDistribution(decision.low, decision.high, log=decision.log)
    return out


def suggest(trial: Any, spec: SpaceSpec) -> dict[str, Any]:
    """Decision values drawn through an Optuna trial's ``suggest_*`` calls (define-by-run), asking a
    conditional decision only when it is active. Shared by this searcher and Ray Tune's OptunaSearch."""
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
    return values


def trial_params(spec: SpaceSpec, genotype: Genotype) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, distributions) of a genotype's active decisions, as Optuna's ``create_trial`` takes them."""
    dists = spec_distributions(spec)
    params, active = {}, {}
    for label, value in genotype.decisions:
        if label not in dists:
            continue
        decision = spec[label]
        params[label] = value if not isinstance(decision, Choice) or _plain(decision.options) \
            else decision.options.index(value)
        active[label] = dists[label]
    return params, active


@SEARCHERS.register("optuna")
class OptunaSearcher(Searcher):
    """``sampler``: auto (TPE for one objective, NSGA-II for several), tpe, random, nsgaii, cmaes, gp or qmc.

    ``startup_trials`` random trials come first (TPE, CMA-ES, GP). ``pruner`` (median, halving or none)
    stops trials whose per-epoch objective falls behind, from the reports of in-process runs
    (one objective only; Optuna cannot prune multi-objective studies). A warm start enqueues its candidates
    (``study.enqueue_trial``), so they are the first trials asked, before the start-up trials.
    """

    supports_warm_start = True

    def __init__(self, sampler: str = "auto", startup_trials: int = 10, multivariate: bool = False,
                 pruner: str = "median", pruner_startup_trials: int = 5) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown optuna sampler {sampler!r}; valid choices: {', '.join(SAMPLERS)}")
        if pruner not in PRUNERS:
            raise ValueError(f"unknown optuna pruner {pruner!r}; valid choices: {', '.join(PRUNERS)}")
        self.sampler_name = sampler
        self.startup_trials = startup_trials
        self.multivariate = multivariate
        self.pruner_name = pruner
        self.pruner_startup_trials = pruner_startup_trials

    def setup(self, space, seed: int = 0, objective: Objective | None = None) -> None:
        import optuna

        super().setup(space, seed, objective)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.objectives = (self.objective.objectives if isinstance(self.objective, MultiObjective)
                           else (self.objective,))
        if self.sampler_name == "auto":
            self.sampler_name = "nsgaii" if len(self.objectives) > 1 else "tpe"
        directions = ["maximize" if o.mode == "max" else "minimize" for o in self.objectives]
        self.study = optuna.create_study(directions=directions, sampler=self._sampler(seed), pruner=self._pruner())
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

    def _pruner(self):
        import optuna

        p = optuna.pruners
        if self.pruner_name == "median":
            return p.MedianPruner(n_startup_trials=self.pruner_startup_trials, n_warmup_steps=0)
        if self.pruner_name == "halving":
            return p.SuccessiveHalvingPruner()
        return p.NopPruner()

    def should_prune(self, genotype: Genotype, epoch: int, metrics) -> bool:
        """Report the epoch's objective to the running Optuna trial and ask its pruner."""
        queue = self.pending.get(genotype.fingerprint())
        value = metrics.get(self.objectives[0].metric)
        if not queue or len(self.objectives) > 1 or value is None or self.pruner_name == "none":
            return False
        trial = queue[0]
        trial.report(float(value), step=int(epoch))
        return bool(trial.should_prune())

    def distributions(self) -> dict[str, Any]:
        """The Optuna distribution of every decision (for ``add_trial``)."""
        return spec_distributions(self.space.spec())

    def warm_start(self, genotypes) -> None:
        """Enqueue ``genotypes`` in order: Optuna's next asks fix their parameters to these values."""
        for genotype in genotypes:
            self.study.enqueue_trial(trial_params(self.space.spec(), genotype)[0])

    def ask(self) -> Genotype | None:
        trial = self.study.ask()
        values = suggest(trial, self.space.spec())
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
            params, distributions = trial_params(self.space.spec(), genotype)
            self.study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                           values=value))

    def recover(self, history) -> None:
        import optuna

        super().recover(history)
        for queue in self.pending.values():  # replayed asks whose trial finished with another genotype
            while queue:
                self.study.tell(queue.popleft(), state=optuna.trial.TrialState.FAIL)
