"""searcher=ray_tune: the space spec as Tune's search space, and a real Tune run with ASHA on nb201.

Every Ray socket stays on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_AUTH_MODE=disabled, no
dashboard); the run starts its own local Ray and stops it.
"""

import json
import os
import sys

import numpy as np
import optuna
import pytest

from nas.testing.skips import require_extra

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: every socket on 127.0.0.1
os.environ["RAY_AUTH_MODE"] = "disabled"
require_extra("ray", "ray")

from ray import tune  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402
from ray.tune.search.sample import Categorical, Float, Integer  # noqa: E402

from nas.cli.config import compose  # noqa: E402
from nas.core.errors import UserError  # noqa: E402
from nas.core.result import Result, TrialState  # noqa: E402
from nas.runner.journal import read_events, replay  # noqa: E402
from nas.runner.run import search  # noqa: E402
from nas.searchers.base import Drive, Objective  # noqa: E402
from nas.searchers.ray_tune import OptunaSpace, RayTuneSearcher, genotype_of, tune_space, values_from_config  # noqa: E402
from nas.spaces.nb201 import NB201Space  # noqa: E402
from nas.testing.dummy import DummySpace  # noqa: E402


def test_tune_space_has_one_domain_per_decision():
    spec = DummySpace().spec()
    space = tune_space(spec)
    assert list(space) == list(spec.labels)
    assert isinstance(space["depth"], Integer) and (space["depth"].lower, space["depth"].upper) == (1, 4)
    assert isinstance(space["width"], Categorical) and space["width"].categories == [4, 8, 16]
    assert space["pool_type"].categories == ["avg", "max"]  # conditional: drawn always, dropped when inactive
    assert isinstance(space["dropout"], Float) and (space["dropout"].lower, space["dropout"].upper) == (0.0, 0.5)
    nb201 = tune_space(NB201Space().spec())
    assert len(nb201) == 6 and all(d.categories[0] == "none" for d in nb201.values())


def test_tune_samples_become_valid_genotypes_and_inactive_decisions_are_dropped():
    space = DummySpace()
    domains = tune_space(space.spec())
    rng = np.random.default_rng(0)
    seen_pool = set()
    for _ in range(40):
        config = {label: domain.sample(random_state=rng) for label, domain in domains.items()}
        genotype = genotype_of(space, config)
        values = genotype.values
        seen_pool.add(values["pool"])
        assert ("pool_type" in values) == values["pool"]
        assert type(values["depth"]) is int and type(values["dropout"]) is float
    assert seen_pool == {False, True}
    values = values_from_config(space.spec(), {"depth": np.int64(2), "width": np.int64(8), "kernel": 3,
                                               "pool": np.bool_(False), "pool_type": "max", "dropout": 0.25})
    assert values == {"depth": 2, "width": 8, "kernel": 3, "pool": False, "dropout": 0.25}
    assert type(values["depth"]) is int and type(values["pool"]) is bool


def test_optuna_define_by_run_asks_a_conditional_decision_only_when_active():
    spec = DummySpace().spec()
    without = {"depth": 2, "width": 8, "kernel": 3, "pool": False, "dropout": 0.1}
    OptunaSpace(spec)(optuna.trial.FixedTrial(without))  # FixedTrial raises if pool_type were asked
    with pytest.raises(ValueError):
        OptunaSpace(spec)(optuna.trial.FixedTrial({**without, "pool": True}))
    OptunaSpace(spec)(optuna.trial.FixedTrial({**without, "pool": True, "pool_type": "avg"}))


def test_tunes_optuna_search_proposes_genotypes_of_the_space():
    space = DummySpace()
    search = OptunaSearch(OptunaSpace(space.spec()), metric="score", mode="max", seed=0)
    genotypes = [genotype_of(space, search.suggest(f"t{k}")) for k in range(10)]
    assert len({g.fingerprint() for g in genotypes}) > 5
    assert any(g.values["pool"] for g in genotypes) and all(("pool_type" in g.values) == g.values["pool"]
                                                            for g in genotypes)
    assert isinstance(tune.choice([1, 2]), Categorical)


def test_bad_options_and_several_objectives_are_user_errors(synthetic_nb201_table, tmp_path):
    with pytest.raises(ValueError, match="search_alg 'hyperopt'"):  # the runner makes it a UserError
        RayTuneSearcher(search_alg="hyperopt")
    with pytest.raises(ValueError, match="scheduler"):
        RayTuneSearcher(scheduler="pbt")
    config = compose(["searcher=ray_tune", "evaluator=tabular", f"evaluator.table={synthetic_nb201_table}",
                      "objectives=[valid_accuracy:max,params:min]", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(UserError, match="one objective"):
        search(config, progress=False)


def test_a_resumed_run_runs_only_the_rest_and_teaches_the_sampler_the_journalled_trials(tmp_path):
    space = NB201Space()
    searcher = RayTuneSearcher(startup_trials=2)
    searcher.setup(space, seed=0)
    history = [Result(trial=k, genotype=space.sample(k), state=state, metrics={"valid_accuracy": 50.0 + k})
               for k, state in enumerate([TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE])]
    study = searcher._search_alg("valid_accuracy", "max", history, concurrent=1)._ot_study
    assert [t.value for t in study.trials] == [50.0, 52.0]  # completed trials only: pruned ones lack a final
    assert study.trials[0].params == dict(history[0].genotype.decisions)
    done = Drive(run_dir=tmp_path, config={}, budget=3, results=history, evaluator_spec={"name": "tabular"},
                 evaluate=None, record=None, report=None, log=print)
    searcher.drive(done)  # the budget is already spent: returns without starting Ray or Tune


HYPEROPT = {"_target_": "ray.tune.search.hyperopt.HyperOptSearch", "n_initial_points": 2}


def test_a_target_builds_the_named_class_with_its_keywords_and_the_runs_objective_seed_and_epochs():
    from ray.tune.schedulers import HyperBandScheduler, MedianStoppingRule
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    searcher = RayTuneSearcher(search_alg=HYPEROPT, scheduler={"_target_": "ray.tune.schedulers.MedianStoppingRule",
                                                               "grace_period": 2, "min_samples_required": 4})
    searcher.setup(NB201Space(), seed=5, objective=Objective("valid_accuracy", "min"))
    alg = searcher._search_alg("valid_accuracy", "min", [], concurrent=2)
    assert isinstance(alg, HyperOptSearch) and alg.metric == "valid_accuracy" and alg.mode == "min"
    assert alg.algo.keywords["n_startup_jobs"] == 2 and alg.domain is None  # its space comes from Tune
    scheduler = searcher._scheduler("valid_accuracy", "min", max_t=3)
    assert isinstance(scheduler, MedianStoppingRule) and scheduler._grace_period == 2
    assert scheduler._min_samples_required == 4 and scheduler._time_attr == "training_iteration"
    assert scheduler._metric == "valid_accuracy" and scheduler._mode == "min"
    limited = RayTuneSearcher(search_alg={"_target_": "ray.tune.search.ConcurrencyLimiter", "max_concurrent": 3,
                                          "searcher": {"_target_": "ray.tune.search.optuna.OptunaSearch",
                                                       "sampler": {"_target_": "optuna.samplers.RandomSampler"}}},
                              scheduler={"_target_": "ray.tune.schedulers.HyperBandScheduler"})
    limited.setup(NB201Space(), seed=0)
    alg = limited._search_alg("valid_accuracy", "max", [], concurrent=1)
    assert isinstance(alg, ConcurrencyLimiter) and alg.max_concurrent == 3
    assert isinstance(alg.searcher._sampler, optuna.samplers.RandomSampler) and alg.searcher.metric == "valid_accuracy"
    hyperband = limited._scheduler("valid_accuracy", "max", max_t=6)
    assert isinstance(hyperband, HyperBandScheduler) and hyperband._max_t_attr == 6
    variants = RayTuneSearcher(search_alg={"_target_": "ray.tune.search.BasicVariantGenerator"})
    variants.setup(NB201Space(), seed=0)
    generator = variants._search_alg("valid_accuracy", "max", [], concurrent=2)
    assert isinstance(generator, BasicVariantGenerator) and generator.max_concurrent == 2


@pytest.mark.parametrize(("options", "message"), [
    ({"search_alg": {"_target_": "os.system"}}, "'os.system' is not a class under ray.tune.search; valid choices: "
     "optuna, random, or searcher.search_alg._target_=ray.tune.search.<Class> (BasicVariantGenerator, "
     "ConcurrencyLimiter, Repeater, hyperopt.HyperOptSearch, optuna.OptunaSearch)"),
    ({"search_alg": {"_target_": "ray.tune.search._mock._MockSearcher"}}, "is not a class under ray.tune.search"),
    ({"search_alg": {"_target_": "ray.tune.search.Bogus"}}, "is not a class under ray.tune.search"),
    ({"search_alg": {"_target_": "ray.tune.search.sample.Categorical"}}, "is not a Ray Tune search algorithm"),
    ({"search_alg": {"_target_": "ray.tune.schedulers.ASHAScheduler"}}, "is not a class under ray.tune.search"),
    ({"search_alg": {"_target_": "ray.tune.search.Searcher"}}, "is not a Ray Tune search algorithm"),
    ({"search_alg": {"_target_": "ray.tune.search.bayesopt.BayesOptSearch"}},
     "needs bayesian-optimization, which is not installed: pip install bayesian-optimization"),
    ({"search_alg": {**HYPEROPT, "n_initial": 2}}, "HyperOptSearch does not take these arguments"),
    ({"search_alg": {"_target_": "ray.tune.search.ConcurrencyLimiter", "searcher": {"_target_": "os.system"}}},
     "'os.system' is not a class under"),
    ({"search_alg": {"_target_": "random", "max_concurrent": 2}}, "takes no keyword arguments"),
    ({"scheduler": "hyperband"}, "unknown Ray Tune scheduler 'hyperband'; valid choices: asha, none, or "
     "searcher.scheduler._target_=ray.tune.schedulers.<Class> (ASHAScheduler, AsyncHyperBandScheduler, "
     "FIFOScheduler, HyperBandForBOHB, HyperBandScheduler, MedianStoppingRule)"),
    ({"scheduler": {"_target_": "ray.tune.schedulers.PopulationBasedTraining"}},
     "PopulationBasedTraining does not apply to nas trials"),
    ({"scheduler": {"_target_": "ray.tune.schedulers.pb2.PB2"}}, "PB2 does not apply to nas trials"),
    ({"scheduler": {"_target_": "ray.tune.schedulers.ResourceChangingScheduler"}}, "does not apply to nas trials"),
    ({"scheduler": {"_target_": "ray.tune.schedulers.ASHAScheduler", "grace": 1}}, "does not take these arguments"),
])
def test_bad_targets_are_refused_with_one_line(options, message):
    with pytest.raises(ValueError, match="^[^\n]*$") as error:
        RayTuneSearcher(**options)
    assert message in str(error.value)


def test_a_missing_library_names_its_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "hyperopt", None)
    with pytest.raises(ValueError, match="needs hyperopt, which is not installed: pip install hyperopt"):
        RayTuneSearcher(search_alg=HYPEROPT)


def test_a_bad_keyword_value_is_a_user_error_at_setup():
    searcher = RayTuneSearcher(scheduler={"_target_": "ray.tune.schedulers.ASHAScheduler", "grace_period": -1})
    with pytest.raises(UserError, match="bad option for searcher 'ray_tune': grace_period must be positive"):
        searcher.setup(NB201Space(), seed=0)


@pytest.fixture
def local_ray():
    """A local Ray instance (2 CPUs, 127.0.0.1, no dashboard) for one test, stopped after it (a module-wide one
    outlived these tests into the ASHA test below, which checks that a search stops the Ray it started)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize(("search_alg", "scheduler"), [
    ({"_target_": "ray.tune.search.BasicVariantGenerator"},
     {"_target_": "ray.tune.schedulers.MedianStoppingRule", "grace_period": 1, "min_samples_required": 2}),
    ({"_target_": "ray.tune.search.ConcurrencyLimiter", "max_concurrent": 1, "searcher": HYPEROPT},
     {"_target_": "ray.tune.schedulers.HyperBandScheduler"}),
    ({"_target_": "ray.tune.search.optuna.OptunaSearch", "sampler": {"_target_": "optuna.samplers.TPESampler",
                                                                     "n_startup_trials": 2}},
     {"_target_": "ray.tune.schedulers.ASHAScheduler", "grace_period": 1}),
], ids=["variants-median", "limited-hyperopt-hyperband", "optuna-asha"])
def test_any_tune_search_algorithm_and_scheduler_run_on_the_tabular_evaluator(search_alg, scheduler, local_ray,
                                                                              synthetic_nb201_table, tmp_path, capsys):
    run_dir = tmp_path / "run"
    overrides = _overrides("searcher.search_alg", search_alg) + _overrides("searcher.scheduler", scheduler)
    config = compose(["searcher=ray_tune", "evaluator=tabular", f"evaluator.table={synthetic_nb201_table}",
                      "budget.trials=6", "searcher.max_concurrent=2", f"run_dir={run_dir}", *overrides])
    assert config["searcher"]["search_alg"] == search_alg and config["searcher"]["scheduler"] == scheduler
    summary = search(config, progress=True)
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending and [r.trial for r in results] == list(range(6))
    assert all(r.state is TrialState.COMPLETE and r.metrics["valid_accuracy"] > 0 for r in results)
    assert summary.best.metrics["valid_accuracy"] == max(r.metrics["valid_accuracy"] for r in results)
    assert len({r.tags["tune_trial"] for r in results}) == 6
    assert f"ray_tune: {search_alg['_target_']} + {scheduler['_target_']}, 6 trials" in capsys.readouterr().err


def _overrides(prefix: str, value: dict, new: bool = False) -> list[str]:
    """Hydra overrides of a ``_target_`` mapping: the default ``_target_`` replaced, every other key added (``+``)."""
    out = []
    for key, item in value.items():
        plus = "+" if new or key != "_target_" else ""
        out += _overrides(f"{prefix}.{key}", item, True) if isinstance(item, dict) else [f"{plus}{prefix}.{key}={item}"]
    return out


@pytest.mark.slow
def test_tune_with_asha_on_nb201_journals_pruned_trials(tmp_path):
    run_dir = tmp_path / "run"
    config = compose(["searcher=ray_tune", "searcher.startup_trials=4", "searcher.max_concurrent=1",
                      "runner=ray", "runner.num_cpus=2", "space.preset=small", "evaluator.epochs=3",
                      "evaluator.max_steps_per_epoch=6", "budget.trials=8", f"run_dir={run_dir}"])
    summary = search(config, progress=False)
    events = read_events(run_dir / "trials.jsonl")
    results, pending = replay(events)
    assert not pending and len(results) == 8 and [r.trial for r in results] == list(range(8))
    states = [r.state for r in results]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for result in results:
        reported = [e["epoch"] for e in events if e["event"] == "reported" and e["trial"] == result.trial]
        assert reported == list(range(1, result.epochs + 1))
        if result.state is TrialState.PRUNED:
            assert 1 <= result.epochs < 3 and "valid_accuracy" in result.metrics
            assert "test_accuracy" not in result.metrics  # the last reported epoch's metrics, not a final
        else:
            assert result.epochs == 3 and {"test_accuracy", "params", "macs"} <= set(result.metrics)
        assert result.tags["tune_trial"] and result.worker
    best = json.loads((run_dir / "best.json").read_text())
    assert best["trial"] == summary.best.trial and summary.best.state is TrialState.COMPLETE
    assert (run_dir / "tune" / "tune-0").is_dir()
    import ray

    assert not ray.is_initialized()
