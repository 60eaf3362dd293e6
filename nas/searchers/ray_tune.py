"""``searcher=ray_tune``: the search driven by ``ray.tune.Tuner``, each trial journalled as ours.

Tune proposes (Optuna TPE through ``OptunaSearch``, or random variants) and schedules (ASHA, or
none); each Tune trial runs the run's evaluator through ``evaluate_job`` in a function trainable and
reports its per-epoch metrics with ``tune.report``, so ASHA stops the weak ones early. The search
space comes from the space spec: a define-by-run function that reuses the Optuna searcher's
``suggest`` (conditional decisions are asked only when active) for ``search_alg=optuna``, and one Tune
domain per decision (``tune_space``) for ``search_alg=random``, where a conditional decision is
drawn always and dropped when inactive.

A callback in the driver turns every ended Tune trial into a ``Result``: complete when the trainable
returned, pruned when ASHA stopped it (metrics of its last reported epoch), failed on an error. The
trial's last epoch goes to Tune together with its final metrics, so a completed trial makes exactly
``epochs`` Tune reports. Tune's own files go under ``<run_dir>/tune/``.

Resume: trials already journalled count against the budget and are added to the Optuna study as
finished trials (random search does not learn from them); trials that were running when the run was
killed are not in the journal and are run afresh. Tune's experiment itself is not restored.
"""

from __future__ import annotations

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

SEARCH_ALGS = ("optuna", "random")
SCHEDULERS = ("asha", "none")
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


@SEARCHERS.register("ray_tune")
class RayTuneSearcher(DrivingSearcher):
    """Ray Tune as the search driver.

    ``search_alg``: optuna (TPE, ``startup_trials`` random first) or random; ``scheduler``: asha
    (``grace_period`` epochs before a trial may be stopped, keeping 1/``reduction_factor`` at each rung)
    or none. ``max_concurrent`` trials at once (default: cluster CPUs / ``cpus_per_trial``);
    ``max_failures`` retries of a trial whose worker died. The cluster is ``runner.address`` when
    ``runner=ray``, else a local one on 127.0.0.1 started (and stopped) here.
    """

    counts_budget = True

    def __init__(self, search_alg: str = "optuna", scheduler: str = "asha", grace_period: int = 1,
                 reduction_factor: float = 2, max_concurrent: int | None = None, cpus_per_trial: float = 1,
                 startup_trials: int = 10, max_failures: int = 2) -> None:
        if search_alg not in SEARCH_ALGS:
            raise UserError(f"unknown searcher.search_alg {search_alg!r}; valid choices: {', '.join(SEARCH_ALGS)}")
        if scheduler not in SCHEDULERS:
            raise UserError(f"unknown searcher.scheduler {scheduler!r}; valid choices: {', '.join(SCHEDULERS)}")
        if grace_period < 1 or reduction_factor <= 1:
            raise UserError("searcher.grace_period must be >= 1 and searcher.reduction_factor > 1")
        self.search_alg = search_alg
        self.scheduler = scheduler
        self.grace_period = int(grace_period)
        self.reduction_factor = float(reduction_factor)
        self.max_concurrent = max_concurrent
        self.cpus_per_trial = float(cpus_per_trial)
        self.startup_trials = int(startup_trials)
        self.max_failures = int(max_failures)

    def _search_alg(self, metric: str, mode: str, history: list[Result], concurrent: int) -> Any:
        from nas.runner.loop import trial_seed

        seed = trial_seed(self.seed, len(history))  # a resumed run does not replay the first run's draws
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
            drive.log(f"ray_tune: {self.search_alg} + {self.scheduler}, {remaining} trials, {concurrent} at a time; "
                      f"Tune files in {storage}")
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": self.cpus_per_trial}),
                param_space=tune_space(self.space.spec()) if self.search_alg == "random" else None,
                tune_config=tune.TuneConfig(search_alg=self._search_alg(metric, mode, drive.results, concurrent),
                                            scheduler=self._scheduler(metric, mode, max_t), num_samples=remaining,
                                            max_concurrent_trials=None if self.search_alg == "random" else concurrent,
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

