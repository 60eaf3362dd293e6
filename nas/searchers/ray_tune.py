"""``searcher=ray_tune``: the search driven by ``ray.tune.Tuner``, each trial journalled as ours.

Tune proposes (Optuna TPE through ``OptunaSearch``, random variants, or any search algorithm of
``ray.tune.search`` named by ``_target_``) and schedules (ASHA, none, or any applicable scheduler of
``ray.tune.schedulers`` named by ``_target_``; ``nas.searchers.targets`` resolves the classes under those modules
only, as for searcher=optuna's samplers). Each Tune trial runs the run's evaluator through ``evaluate_job`` in a
function trainable and reports its per-epoch metrics with ``tune.report``, so a scheduler stops the weak ones
early. The search space comes from the space spec: a define-by-run function that reuses the Optuna searcher's
``suggest`` (conditional decisions are asked only when active) for ``search_alg=optuna``, and one Tune domain
per decision (``tune_space``) for random and every ``_target_`` algorithm, where a conditional decision is drawn
always and dropped when inactive.

A callback in the driver turns every ended Tune trial into a ``Result``: complete when the trainable
returned, pruned when the scheduler stopped it (metrics of its last reported epoch), failed on an error. The
trial's last epoch goes to Tune together with its final metrics, so a completed trial makes exactly
``epochs`` Tune reports. Tune's own files go under ``<run_dir>/tune/``.

Resume: trials already journalled count against the budget and are added to the Optuna study as
finished trials (random search and ``_target_`` algorithms do not learn from them); trials that were running
when the run was killed are not in the journal and are run afresh. Tune's experiment itself is not restored.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.core.decisions import Choice, FloatRange, IntRange, SpaceSpec
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.core.space import SearchSpace
from nas.searchers.base import SEARCHERS, Drive, DrivingSearcher, MultiObjective
from nas.searchers.optuna_search import _plain, suggest, trial_params
from nas.searchers.targets import build, check_arguments, resolve_class, split_target

SEARCH_ALGS = ("optuna", "random")  # short names: Optuna TPE over the space (define-by-run), random variants
SCHEDULERS = ("asha", "none")
SEARCH_ROOT, SCHEDULER_ROOT = "ray.tune.search", "ray.tune.schedulers"  # the only modules a _target_ may name
NESTED_ROOTS = (SEARCH_ROOT, SCHEDULER_ROOT, "optuna.samplers")  # a keyword's _target_ (a limiter's searcher,
# OptunaSearch's sampler)
LIBRARIES = {  # Ray's wrapper module -> (the modules it needs, the pip package that has them)
    "ray.tune.search.ax": (("ax",), "ax-platform"),
    "ray.tune.search.bayesopt": (("bayes_opt",), "bayesian-optimization"),
    "ray.tune.search.bohb": (("hpbandster", "ConfigSpace"), "hpbandster ConfigSpace"),
    "ray.tune.search.hebo": (("hebo",), "HEBO"),
    "ray.tune.search.hyperopt": (("hyperopt",), "hyperopt"),
    "ray.tune.search.nevergrad": (("nevergrad",), "nevergrad"),
    "ray.tune.search.optuna": (("optuna",), "optuna"),
    "ray.tune.search.zoopt": (("zoopt",), "zoopt"),
}
NOT_APPLICABLE = ("PopulationBasedTraining", "PopulationBasedTrainingReplay", "PB2", "ResourceChangingScheduler")
FILLED = ("metric", "mode", "seed", "random_state_seed", "random_state", "time_attr", "max_t", "max_concurrent")
PAYLOAD = "nas"  # the key of the JSON bookkeeping each report carries besides the objective metric


def tune_space(spec: SpaceSpec) -> dict[str, Any]:
    """One Tune domain per decision: a choice by value (plain scalars) or by index, an integer range
    uniform over its steps, a float range uniform or log-uniform. Conditional decisions are included."""
    from ray import tune

    space: dict[str, Any] = {}
    for decision in spec:
        if isinstance(decision, Choice):
            space[decision.label] = tune.choice(list(decision.options) if _plain(decision.options)
                                                else list(range(decision.size)))
        elif isinstance(decision, IntRange):
            space[decision.label] = (tune.randint(decision.low, decision.high + 1) if decision.step == 1 else
                                     tune.choice(list(range(decision.low, decision.high + 1, decision.step))))
        elif isinstance(decision, FloatRange):
            space[decision.label] = (tune.loguniform if decision.log else tune.uniform)(decision.low, decision.high)
    return space


class OptunaSpace:
    """The define-by-run function ``OptunaSearch`` calls with each Optuna trial (a class: Tune pickles it)."""

    def __init__(self, spec: SpaceSpec) -> None:
        self.spec = spec

    def __call__(self, trial: Any) -> None:
        suggest(trial, self.spec)


def values_from_config(spec: SpaceSpec, config: Mapping[str, Any]) -> dict[str, Any]:
    """Decision values from a Tune trial config: inactive decisions dropped, indices mapped back to
    options, numpy scalars made plain Python values."""
    values: dict[str, Any] = {}
    for decision in spec:
        if decision.label not in config or not spec.is_active(decision, values):
            continue
        raw = config[decision.label]
        if isinstance(decision, Choice):
            index = decision.options.index(raw) if _plain(decision.options) else int(raw)
            values[decision.label] = decision.options[index]
        elif isinstance(decision, IntRange):
            values[decision.label] = int(raw)
        else:
            values[decision.label] = float(raw)
    return values


def genotype_of(space: SearchSpace, config: Mapping[str, Any]) -> Genotype:
    """The genotype a Tune trial config stands for."""
    return space.make(values_from_config(space.spec(), config))


def make_trainable(space: SearchSpace, evaluator_spec: Mapping[str, Any], metric: str, max_t: int,
                   run_seed: int) -> Callable[[dict[str, Any]], None]:
    """The function trainable: evaluate the config's genotype, one ``tune.report`` per epoch.

    The last epoch is held back and reported with the final metrics. Every report carries the
    objective ``metric`` (NaN when a trial failed) and a JSON payload under ``PAYLOAD``. The trial's
    seed comes from the run seed and the genotype's fingerprint (Tune's trial ids are random), so a run
    is reproducible when its trials run one at a time.
    """
    spec = dict(evaluator_spec)

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        from nas.runner.executors import Job, evaluate_job
        from nas.runner.loop import trial_seed

        genotype = genotype_of(space, config)
        job = Job(-1, genotype, trial_seed(run_seed, int(genotype.fingerprint()[:8], 16)))
        worker, started = f"{os.uname().nodename}:{os.getpid()}", time.time()

        def live(trial: int, epoch: int, metrics: dict[str, float]) -> bool:
            if epoch < max_t and metric in metrics:
                payload = {"epoch": epoch, "metrics": metrics, "worker": worker, "seed": job.seed, "started": started}
                tune.report({metric: float(metrics[metric]), PAYLOAD: json.dumps(payload)})
            return False

        try:
            outcome = evaluate_job(spec, job, live)
        except UserError as exc:
            tune.report({metric: math.nan, PAYLOAD: json.dumps({"final": True, "user_error": str(exc)})})
            return
        payload = {"final": True, "state": outcome.state.value, "metrics": outcome.metrics, "epochs": outcome.epochs,
                   "reports": outcome.reports, "error": outcome.error, "worker": outcome.worker, "seed": job.seed,
                   "started": outcome.started, "finished": outcome.finished}
        tune.report({metric: float(outcome.metrics.get(metric, math.nan)), PAYLOAD: json.dumps(payload)})

    return trainable


class _Recorder:
    """Driver-side bookkeeping of Tune trials -> journalled ``Result``s (used by a Tune ``Callback``)."""

    def __init__(self, drive: Drive, space: SearchSpace) -> None:
        self.drive = drive
        self.space = space
        self.epochs: dict[str, dict[int, dict[str, Any]]] = {}
        self.finals: dict[str, dict[str, Any]] = {}
        self.user_error = ""

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (with this, through the callback) for restoring; the journal stays."""
        return {k: v for k, v in self.__dict__.items() if k != "drive"}

    def result(self, trial_id: str, payload: dict[str, Any]) -> None:
        if payload.get("user_error"):
            self.user_error = self.user_error or payload["user_error"]
        elif payload.get("final"):
            self.finals[trial_id] = payload
        else:
            self.epochs.setdefault(trial_id, {})[int(payload["epoch"])] = payload  # a retried trial overwrites

    def ended(self, trial_id: str, config: Mapping[str, Any], error: str = "") -> None:
        """Journal one ended Tune trial (and then its per-epoch reports, in order)."""
        final = self.finals.pop(trial_id, None)
        seen = self.epochs.pop(trial_id, {})
        if self.user_error and final is None and not seen:
            return
        genotype = genotype_of(self.space, config)
        last = seen[max(seen)] if seen else {}
        now = time.time()
        if final is not None:
            state, metrics, reports = TrialState(final["state"]), final["metrics"], final["reports"]
            source, epochs, error, finished = final, int(final["epochs"]), final["error"], float(final["finished"])
        else:
            state = TrialState.FAILED if error else TrialState.PRUNED
            reports = [(epoch, seen[epoch]["metrics"]) for epoch in sorted(seen)]
            metrics, source, epochs, finished = dict(last.get("metrics", {})), last, len(reports), now
        started = float(source.get("started", now))
        result = self.drive.record(Result(
            trial=-1, genotype=genotype, state=state, metrics=metrics, seconds=finished - started, epochs=epochs,
            seed=int(source.get("seed", 0)), worker=str(source.get("worker", "ray")), started=started,
            finished=finished, error=error[:500], tags={"tune_trial": trial_id}))
        for epoch, epoch_metrics in reports:
            self.drive.report(result.trial, int(epoch), epoch_metrics)


def _callback(recorder: _Recorder) -> Any:
    """A Tune ``Callback`` feeding ``recorder`` (built here so Ray is imported only when used)."""
    from ray.tune import Callback

    class Record(Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if PAYLOAD in result:
                recorder.result(trial.trial_id, json.loads(result[PAYLOAD]))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.ended(trial.trial_id, trial.config)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            message = (trial.error_message or "Tune trial error").strip().splitlines()
            recorder.ended(trial.trial_id, trial.config, error=message[-1] if message else "Tune trial error")

    return Record()


def _stopper(recorder: _Recorder) -> Any:
    """Stops the whole experiment once a trial hit a configuration error (retrying cannot help)."""
    from ray.tune.stopper import Stopper

    class StopOnUserError(Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return bool(recorder.user_error)

        def stop_all(self) -> bool:
            return bool(recorder.user_error)

    return StopOnUserError()


def _choices(kind: str) -> str:
    """The short names and the classes a ``_target_`` may name for ``kind`` (search_alg or scheduler): Tune's own
    and, for search algorithms, those of its optional libraries that are installed."""
    import ray.tune.schedulers as schedulers
    import ray.tune.search as search

    if kind == "scheduler":
        names = [n for n in schedulers.__all__ if n not in ("TrialScheduler", *NOT_APPLICABLE)]
        return f"valid choices: {', '.join(SCHEDULERS)}, or searcher.scheduler._target_={SCHEDULER_ROOT}.<Class> " \
               f"({', '.join(sorted(names))})"
    names = sorted(n for n in search.__all__ if n not in ("SearchAlgorithm", "Searcher", "SearchGenerator")
                   and isinstance(getattr(search, n), type))
    for module, (needs, _) in LIBRARIES.items():
        if _installed(needs):
            wrapper = importlib.import_module(module)
            names += [f"{module.rsplit('.', 1)[1]}.{n}" for n in getattr(wrapper, "__all__", ())]
    return f"valid choices: {', '.join(SEARCH_ALGS)}, or searcher.search_alg._target_={SEARCH_ROOT}.<Class> " \
           f"({', '.join(names)})"


def _installed(modules: tuple[str, ...]) -> bool:
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def _component(value: Any, kind: str) -> tuple[str, type | None, dict[str, Any]]:
    """(name, class, keyword arguments) of ``searcher.search_alg`` or ``searcher.scheduler``; a short name has
    no class here (its settings are the searcher's own options) and takes no keyword arguments."""
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import SearchAlgorithm, Searcher

    root = SEARCH_ROOT if kind == "search_alg" else SCHEDULER_ROOT
    name, kwargs = split_target(value, kind, root)
    short = SEARCH_ALGS if kind == "search_alg" else SCHEDULERS
    if name in short:
        if kwargs:
            raise ValueError(f"searcher.{kind}={name} takes no keyword arguments (its settings are searcher options); "
                             f"name the class with searcher.{kind}._target_={root}.<Class> to pass them")
        return name, None, {}
    if "." not in name:
        raise ValueError(f"unknown Ray Tune {kind} {name!r}; {_choices(kind)}")
    library = next((m for m in LIBRARIES if name.startswith(m + ".")), None)
    if library is not None and not _installed(LIBRARIES[library][0]):
        package = LIBRARIES[library][1]
        raise ValueError(f"searcher.{kind}: {name} needs {package}, which is not installed: pip install {package}")
    try:
        cls = resolve_class(name, (root,), import_submodules=True)
    except ValueError as exc:
        raise ValueError(f"{exc}; {_choices(kind)}") from None
    bases = (SearchAlgorithm, Searcher) if kind == "search_alg" else (TrialScheduler,)
    if not issubclass(cls, bases) or cls in (SearchAlgorithm, Searcher, TrialScheduler):
        what = "search algorithm" if kind == "search_alg" else "scheduler"
        raise ValueError(f"{name!r} is not a Ray Tune {what}; {_choices(kind)}")
    if cls.__name__ in NOT_APPLICABLE:
        raise ValueError(f"searcher.scheduler: {cls.__name__} does not apply to nas trials (it changes running "
                         "trials' configs or resources and restores them from Tune checkpoints; a trial evaluates "
                         "one fixed architecture and saves none): use ASHAScheduler, HyperBandScheduler, "
                         "MedianStoppingRule or FIFOScheduler")
    check_arguments(cls, kwargs, f"searcher.{kind}", NESTED_ROOTS, import_submodules=True, filled=FILLED)
    return name, cls, kwargs


@SEARCHERS.register("ray_tune")
class RayTuneSearcher(DrivingSearcher):
    """Ray Tune as the search driver.

    ``search_alg``: optuna (TPE, ``startup_trials`` random first) or random, or a mapping
    ``{_target_: ray.tune.search.<Class>, <keyword>: <value>, ...}`` naming any search algorithm of
    ``ray.tune.search`` (``ray.tune.search.hyperopt.HyperOptSearch``, a ``ConcurrencyLimiter`` wrapping another
    by a nested ``_target_``) whose library is installed. ``scheduler``: asha (``grace_period`` epochs before a
    trial may be stopped, keeping 1/``reduction_factor`` at each rung), none, or
    ``{_target_: ray.tune.schedulers.<Class>, ...}`` (ASHA, HyperBand, median stopping, FIFO; population based
    training does not apply to fixed architectures and is refused). A class is given the objective as
    ``metric``/``mode``, the run's seed, ``time_attr=training_iteration`` (one iteration per epoch), the epochs
    as ``max_t`` and the concurrency as ``max_concurrent`` when it takes them and they are not set.
    ``max_concurrent`` trials at once (default: cluster CPUs / ``cpus_per_trial``); ``max_failures`` retries of
    a trial whose worker died. The cluster is ``runner.address`` when ``runner=ray``, else a local one on
    127.0.0.1 started (and stopped) here.
    """

    counts_budget = True

    def __init__(self, search_alg: str | Mapping[str, Any] = "optuna", scheduler: str | Mapping[str, Any] = "asha",
                 grace_period: int = 1, reduction_factor: float = 2, max_concurrent: int | None = None,
                 cpus_per_trial: float = 1, startup_trials: int = 10, max_failures: int = 2) -> None:
        try:
            self.search_alg, self.search_alg_class, self.search_alg_kwargs = _component(search_alg, "search_alg")
            self.scheduler, self.scheduler_class, self.scheduler_kwargs = _component(scheduler, "scheduler")
        except ImportError:
            raise UserError("searcher=ray_tune needs Ray Tune: pip install 'nas[ray]'") from None
        if grace_period < 1 or reduction_factor <= 1:
            raise UserError("searcher.grace_period must be >= 1 and searcher.reduction_factor > 1")
        self.grace_period = int(grace_period)
        self.reduction_factor = float(reduction_factor)
        self.max_concurrent = max_concurrent
        self.cpus_per_trial = float(cpus_per_trial)
        self.startup_trials = int(startup_trials)
        self.max_failures = int(max_failures)

    def setup(self, space: SearchSpace, seed: int = 0, objective: Any = None) -> None:
        """Also builds the configured classes once with the objective, so a bad keyword value stops the run
        before its directory exists."""
        super().setup(space, seed, objective)
        if isinstance(self.objective, MultiObjective):
            return
        try:
            self._search_alg(self.objective.metric, self.objective.mode, [], 1)
            self._scheduler(self.objective.metric, self.objective.mode, 1)
        except (TypeError, ValueError, AssertionError) as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(f"bad option for searcher 'ray_tune': {text}") from None

    def _defaults(self, metric: str, mode: str, seed: int, max_t: int, concurrent: int) -> dict[str, Any]:
        return {"metric": metric, "mode": mode, "seed": seed, "random_state_seed": seed, "random_state": seed,
                "time_attr": "training_iteration", "max_t": max_t, "max_concurrent": concurrent}

    def _search_alg(self, metric: str, mode: str, history: list[Result], concurrent: int) -> Any:
        from nas.runner.loop import trial_seed

        seed = trial_seed(self.seed, len(history))  # a resumed run does not replay the first run's draws
        if self.search_alg_class is not None:
            return build(self.search_alg_class, self.search_alg_kwargs, NESTED_ROOTS,
                         self._defaults(metric, mode, seed, 1, concurrent), import_submodules=True)
        if self.search_alg == "random":
            from ray.tune.search.basic_variant import BasicVariantGenerator

            return BasicVariantGenerator(max_concurrent=concurrent, random_state=seed)
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage, name = optuna.storages.InMemoryStorage(), "nas"
        study = optuna.create_study(storage=storage, study_name=name,
                                    direction="maximize" if mode == "max" else "minimize")
        spec = self.space.spec()
        for result in history:  # a resumed run: the sampler learns the journalled trials
            value = result.metrics.get(metric)
            if result.ok and value is not None and not math.isnan(float(value)):
                params, distributions = trial_params(spec, result.genotype)
                study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                          value=float(value)))
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.startup_trials)
        return OptunaSearch(OptunaSpace(spec), metric=metric, mode=mode, sampler=sampler, storage=storage,
                            study_name=name)

    def _scheduler(self, metric: str, mode: str, max_t: int) -> Any:
        if self.scheduler_class is not None:
            return build(self.scheduler_class, self.scheduler_kwargs, NESTED_ROOTS,
                         self._defaults(metric, mode, self.seed, max_t, 1), import_submodules=True)
        if self.scheduler == "none":
            return None
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(metric=metric, mode=mode, grace_period=min(self.grace_period, max_t), max_t=max_t,
                             reduction_factor=self.reduction_factor)

    def drive(self, drive: Drive) -> None:
        if isinstance(self.objective, MultiObjective):
            raise UserError("searcher=ray_tune optimises one objective; use objective=<metric>:max|min")
        remaining = drive.budget - len(drive.results)
        if remaining <= 0:
            return
        metric, mode = self.objective.metric, self.objective.mode
        max_t = max(1, int(drive.evaluator_spec.get("epochs") or 1))
        os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # relative paths (tables, data) keep working
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's older reporter is silent at verbose=0
        import ray
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter, Searcher

        from nas.runner.ray_executor import connect

        runner = dict(drive.config.get("runner") or {})
        is_ray = runner.get("name") == "ray"
        started = connect(runner.get("address") if is_ray else None, runner.get("num_cpus") if is_ray else None)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            concurrent = int(self.max_concurrent or max(1, cpus // max(self.cpus_per_trial, 1)))
            recorder = _Recorder(drive, self.space)
            trainable = make_trainable(self.space, drive.evaluator_spec, metric, max_t, self.seed)
            storage = Path(drive.run_dir).resolve() / "tune"
            search_alg = self._search_alg(metric, mode, drive.results, concurrent)
            drive.log(f"ray_tune: {self.search_alg} + {self.scheduler}, {remaining} trials, {concurrent} at a time; "
                      f"Tune files in {storage}")
            define_by_run = self.search_alg == "optuna"  # the short name: its space is OptunaSpace, not a param space
            limit = isinstance(search_alg, Searcher) and not isinstance(search_alg, ConcurrencyLimiter)
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": self.cpus_per_trial}),
                param_space=None if define_by_run else tune_space(self.space.spec()),
                tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=self._scheduler(metric, mode, max_t),
                                            num_samples=remaining, max_concurrent_trials=concurrent if limit else None,
                                            reuse_actors=True),
                run_config=tune.RunConfig(name=f"tune-{len(drive.results)}", storage_path=str(storage), verbose=0,
                                          callbacks=[_callback(recorder)], stop=_stopper(recorder),
                                          failure_config=tune.FailureConfig(max_failures=self.max_failures)))
            tuner.fit()
        finally:
            if started:
                ray.shutdown()
        if recorder.user_error:
            raise UserError(recorder.user_error)

