"""searcher=ray_tune: the space spec as Tune's search space, and a real Tune run with ASHA on nb201.

Every Ray socket stays on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_AUTH_MODE=disabled, no
dashboard); the run starts its own local Ray and stops it.
"""

import json
import os

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
from nas.searchers.base import Drive  # noqa: E402
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
    with pytest.raises(UserError, match="search_alg 'hyperopt'"):
        RayTuneSearcher(search_alg="hyperopt")
    with pytest.raises(UserError, match="scheduler"):
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
