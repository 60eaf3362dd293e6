"""``nas.integrations.tune.Searcher``: our searchers as a Ray Tune search algorithm.

The first tests call the searcher as Tune does (``suggest``/``on_trial_complete``/``save``/``restore``) without a
cluster; the slow ones run real ``tune.Tuner`` experiments on a local Ray (2 CPUs, 127.0.0.1, no dashboard).
"""

from __future__ import annotations

import glob
import json
import math
import os
import pickle
import signal
import statistics
import sys
import time
from types import SimpleNamespace

import pytest

from nas.testing.skips import require_extra

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: every socket on 127.0.0.1
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
require_extra("ray", "ray")

from ray import tune  # noqa: E402

from nas.core.result import TrialState  # noqa: E402
from nas.integrations.tune import Searcher  # noqa: E402

SPACE = {"x": tune.uniform(-10.0, 10.0), "net": {"layers": tune.randint(1, 13), "op": tune.choice(["conv", "skip"])},
         "lr": tune.loguniform(1e-5, 1e-1), "batch": 64, "kernel": tune.choice([3]), "drop": tune.quniform(0, 0.5, 0.1)}


def loss(config: dict) -> float:
    return (config["x"] - 2.0) ** 2 + abs(config["net"]["layers"] - 7) + (0.0 if config["net"]["op"] == "conv" else 5.0)


def run(searcher: Searcher, trials: int, start: int = 0) -> list[float]:
    """Ask and tell ``trials`` trials one after the other, as Tune does; the losses in order."""
    losses = []
    for k in range(start, start + trials):
        config = searcher.suggest(f"t{k}")
        losses.append(loss(config))
        searcher.on_trial_complete(f"t{k}", {"loss": losses[-1], "training_iteration": 3})
    return losses


def test_a_tune_param_space_becomes_decisions_and_proposals_are_configs_of_it():
    searcher = Searcher("random", space=SPACE, metric="loss", mode="min", seed=0)
    assert set(searcher.space.distributions) == {"x", "net/layers", "net/op", "lr", "drop"}  # kernel: one value
    for k in range(30):
        config = searcher.suggest(f"t{k}")
        assert set(config) == {"x", "net", "lr", "kernel", "drop"} and config["kernel"] == 3
        assert -10 <= config["x"] <= 10 and 1e-5 <= config["lr"] <= 1e-1
        assert type(config["net"]["layers"]) is int and 1 <= config["net"]["layers"] <= 12
        assert config["net"]["op"] in ("conv", "skip") and round(config["drop"] * 10, 6) % 1 == 0
    with pytest.raises(ValueError, match="Grid search"):
        Searcher(space={"a": tune.grid_search([1, 2])}, metric="loss", mode="min")


def test_evolution_learns_from_what_it_is_told():
    searcher = Searcher("evolution", space=SPACE, metric="loss", mode="min", seed=0, population_size=20,
                        sample_size=5)
    losses = run(searcher, 200)
    assert statistics.median(losses[-40:]) < statistics.median(losses[:20]) / 3
    assert len(searcher.results) == 200 and all(r.state is TrialState.COMPLETE for r in searcher.results)
    assert searcher.results[-1].metrics == {"loss": losses[-1]}


def test_errors_and_missing_metrics_are_told_as_failures_and_a_restarted_trial_again():
    searcher = Searcher("evolution", space=SPACE, metric="loss", mode="max", seed=1)
    for k in range(4):
        searcher.suggest(f"t{k}")
    searcher.on_trial_complete("t0", error=True)
    searcher.on_trial_complete("t1", {"other": 1.0})
    searcher.on_trial_complete("t2", {"loss": math.nan})
    searcher.on_trial_complete("t3", {"loss": 4.0})
    assert [r.state for r in searcher.results] == [TrialState.FAILED] * 3 + [TrialState.COMPLETE]
    searcher.on_trial_complete("t0", {"loss": 5.0})  # the errored trial run again (Tuner.restore, restart_errored)
    rerun = searcher.results[-1]
    assert rerun.state is TrialState.COMPLETE and rerun.genotype == searcher.results[0].genotype
    searcher.on_trial_complete("unknown", {"loss": 1.0})  # not ours: ignored
    assert len(searcher.results) == 5


def test_save_and_restore_continue_the_same_search_with_its_trials_in_flight(tmp_path):
    first = Searcher("evolution", space=SPACE, metric="loss", mode="min", seed=3, population_size=10)
    run(first, 25)
    in_flight = {f"f{k}": first.suggest(f"f{k}") for k in range(2)}
    first.save(str(tmp_path / "searcher.pkl"))
    restored = Searcher("evolution")  # as Tune builds it before ``restore``: no space, no metric
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.metric == "loss" and restored.mode == "min" and len(restored.results) == 25
    for trial_id, config in in_flight.items():  # the trials running at the save end after the restore
        first.on_trial_complete(trial_id, {"loss": loss(config)})
        restored.on_trial_complete(trial_id, {"loss": loss(config)})
    assert restored.results[-1].genotype == first.results[-1].genotype
    assert run(restored, 15, start=100) == run(first, 15, start=100)  # the same proposals from here on


def test_bad_arguments_and_a_missing_metric_are_refused():
    with pytest.raises(ValueError, match="unknown searcher 'tpe' for Ray Tune; valid choices: evolution"):
        Searcher("tpe")
    with pytest.raises(TypeError):
        Searcher("evolution", population=3)  # evolution has no such option: refused now, not at the first trial
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        Searcher(mode="maximize")
    with pytest.raises(RuntimeError, match="metric"):
        Searcher(space=SPACE).suggest("t0")


def test_points_evaluated_elsewhere_teach_the_searcher():
    searcher = Searcher("evolution", space=SPACE, metric="loss", mode="min", seed=0)
    point = {"x": 2.0, "net": {"layers": 7, "op": "conv"}, "lr": 1e-3, "drop": 0.2}
    searcher.add_evaluated_point(point, 0.0)
    assert searcher.results[0].state is TrialState.COMPLETE
    assert searcher.space.to_params(searcher.results[0].genotype) == {"x": 2.0, "net/layers": 7, "net/op": "conv",
                                                                      "lr": 1e-3, "drop": 0.2}
    with pytest.raises(ValueError, match="parameters lack net/op"):
        searcher.add_evaluated_point({"x": 1.0, "net": {"layers": 2}, "lr": 1e-3, "drop": 0.1}, 1.0)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs, 127.0.0.1, no dashboard) for this module's experiments; stopped after."""
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the trainables below: workers cannot import tests
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def reporting(config: dict) -> None:
    """A trainable reporting three times per trial; only the last report is the trial's result."""
    for step in (3, 2, 1):
        tune.report({"loss": loss(config) * step, "step": step})


def saved_state(experiment) -> SimpleNamespace:
    """The searcher's state as Tune saved it at the end of the experiment in ``experiment`` (its folder), read from
    the file itself (not through ``restore``, which the restored experiment is to prove)."""
    with open(max(glob.glob(os.path.join(str(experiment), "searcher-state-*.pkl"))), "rb") as handle:
        return SimpleNamespace(**pickle.load(handle))


@pytest.mark.slow
def test_a_tuner_with_a_concurrency_limiter_runs_evolution_on_trials_reporting_several_times(local_ray, tmp_path):
    from ray.tune.search import ConcurrencyLimiter

    searcher = Searcher("evolution", seed=0, population_size=8, sample_size=3)
    tuner = tune.Tuner(reporting, param_space=SPACE,
                       tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=2),
                                                   metric="loss", mode="min", num_samples=16, reuse_actors=True),
                       run_config=tune.RunConfig(name="limited", storage_path=str(tmp_path), verbose=0))
    grid = tuner.fit()
    assert len(grid) == 16 and not grid.errors
    finals = {result.metrics["trial_id"]: result.metrics["loss"] for result in grid}
    assert all(result.metrics["step"] == 1 for result in grid)  # each trial's result is its last report
    assert all(result.config["batch"] == 64 and result.config["kernel"] == 3 for result in grid)  # constants kept
    told = saved_state(tmp_path / "limited")
    assert len(told.results) == 16 and all(r.state is TrialState.COMPLETE for r in told.results)
    assert sorted(r.metrics["loss"] for r in told.results) == pytest.approx(sorted(finals.values()))  # last reports
    assert told._metric == "loss" and told._mode == "min" and not told.live


def steady(config: dict) -> None:
    """Two reports per trial; each start is recorded in the folder ``marks`` names."""
    with open(os.path.join(config["marks"], f"{time.time_ns()}.json"), "w") as handle:
        json.dump(config, handle)
    for step in (2, 1):
        tune.report({"loss": loss(config) * step})


class Interrupt(tune.Callback):
    """Interrupts the experiment as Ctrl+C does (Tune's SIGUSR1 handler: state saved, ``fit`` returns) once four
    trials ended, once (the marker file stays for the restored run)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        if sum(t.status == "TERMINATED" for t in trials) >= 4 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.slow
def test_tuner_restore_continues_the_search_the_interrupted_experiment_saved(local_ray, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    space = {**SPACE, "marks": str(marks)}
    searcher = Searcher("evolution", seed=0, population_size=4, sample_size=2)
    tuner = tune.Tuner(steady, param_space=space,
                       tune_config=tune.TuneConfig(search_alg=searcher, metric="loss", mode="min", num_samples=10,
                                                   max_concurrent_trials=1),
                       run_config=tune.RunConfig(name="cut", storage_path=str(tmp_path / "tune"), verbose=0,
                                                 callbacks=[Interrupt(str(tmp_path / "interrupted"))]))
    assert len(tuner.fit()) < 10  # interrupted
    path = str(tmp_path / "tune" / "cut")
    before = saved_state(path)
    assert 4 <= len(before.results) < 10 and all(r.state is TrialState.COMPLETE for r in before.results)
    assert tune.Tuner.can_restore(path)
    grid = tune.Tuner.restore(path, trainable=steady).fit()
    assert len(grid) == 10 and not grid.errors
    after = saved_state(path)
    assert [r.genotype for r in after.results[:len(before.results)]] == [r.genotype for r in before.results]
    assert len(after.results) == 10 and all(r.state is TrialState.COMPLETE for r in after.results)
    assert after.nas_searcher.asked == 10  # one search throughout: a searcher started afresh would have asked fewer
    finals = sorted(result.metrics["loss"] for result in grid)
    assert sorted(r.metrics["loss"] for r in after.results) == pytest.approx(finals)  # one tell per trial, no more
