"""``nas.integrations.optuna.Sampler``: Optuna's own sampler conformance suite, shipped in the installed package
(``optuna.testing.pytest_samplers``), for each of our searchers, and a toy study our evolution improves on.

Each test class gets a ``sampler`` fixture returning a factory, as Optuna's tests of its own samplers do.
Evolution and random rank by several objectives, so they run the multi-objective case; predictor_evolution
takes one objective and must refuse a multi-objective study (``SingleOnlySamplerTestCase``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from nas.integrations.optuna import OptunaSpace, Sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = {"evolution": {"population_size": 4, "sample_size": 2},
         "predictor_evolution": {"init_samples": 3, "candidates": 8},
         "random": {}}


def factory(name: str) -> Callable[[], Sampler]:
    return lambda: Sampler(name, seed=0, **SMALL[name])


class TestEvolution(BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], Sampler]:
        return factory("evolution")


class TestRandom(BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], Sampler]:
        return factory("random")


class TestPredictorEvolution(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], Sampler]:
        return factory("predictor_evolution")


# --- beyond the conformance suite -----------------------------------------------------------------------------
def toy(trial: optuna.Trial) -> float:
    """Distance to an optimum in a mixed space (floats, a log float, an int, a stepped float, a categorical)."""
    xs = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(3)]
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    n = trial.suggest_int("n", 0, 20)
    step = trial.suggest_float("step", 0.0, 2.0, step=0.25)
    op = trial.suggest_categorical("op", ["conv", "pool", "skip", "none"])
    return (sum((x - 1.0) ** 2 for x in xs) + (optuna_log10(lr) + 2.0) ** 2 + abs(n - 13) / 2
            + abs(step - 1.5) + (0.0 if op == "skip" else 3.0))


def optuna_log10(value: float) -> float:
    import math

    return math.log10(value)


def test_evolution_learns_from_what_it_is_told():
    """Tells shape the proposals: the later trials of our evolution are far better than its first (random) ones;
    without tells (every trial failed for it) they would be as good as the random ones."""
    study = optuna.create_study(sampler=Sampler("evolution", seed=1, population_size=10, sample_size=4))
    study.optimize(toy, n_trials=120)
    values = [t.value for t in study.trials]
    first, last = statistics.median(values[:11]), statistics.median(values[-30:])
    assert last < first / 3, (first, last)
    assert study.best_value < min(values[:11]) / 2


def test_evolution_ranks_by_every_objective_of_a_study():
    """``b`` only costs the second objective: ranked by non-dominated front, the later proposals drive it down;
    ranked by the first objective alone it would stay uniform (median about 0.5)."""

    def two(trial: optuna.Trial) -> tuple[float, float]:
        a = trial.suggest_categorical("a", [0.0, 0.5, 1.0])
        b = trial.suggest_float("b", 0.0, 1.0)
        return a, 1.0 - a + b

    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=Sampler("evolution", seed=0, population_size=10, sample_size=4))
    study.optimize(two, n_trials=120)
    b = [t.params["b"] for t in study.trials]
    assert statistics.median(b[-40:]) < min(0.25, statistics.median(b[:11]) / 2), b


def test_it_stands_for_the_relative_space_and_falls_back_to_random_elsewhere():
    """The first trial (no space known yet) and a conditional parameter are independent samples; the parameters
    every trial has are proposed by the searcher, and a proposal round-trips through Optuna's parameters."""
    sampler = Sampler("evolution", seed=0, population_size=4, sample_size=2)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        extra = trial.suggest_int(f"extra_{kind}", 0, 3)
        return x + extra

    study.optimize(objective, n_trials=12)
    space = sampler.infer_relative_search_space(study, study.trials[-1])
    assert set(space) == {"x", "kind"}
    run = sampler._run
    assert run is not None and set(run.space.distributions) == {"x", "kind"}
    assert run.told == set(range(11))  # every finished trial but the last, told before the last was asked
    last = study.trials[-1]
    assert run.space.to_params(run.space.from_params(last.params)) == {k: last.params[k] for k in ("x", "kind")}


def test_log_int_and_stepped_float_round_trip():
    dists = {"n": optuna.distributions.IntDistribution(1, 100, log=True),
             "s": optuna.distributions.FloatDistribution(-1.0, 1.0, step=0.1),
             "c": optuna.distributions.CategoricalDistribution([None, True, 1, "1"])}
    space = OptunaSpace(dists)
    for seed in range(50):
        params = space.to_params(space.sample(seed))
        assert all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in params.items()), params
        assert space.to_params(space.from_params(params)) == params


def test_unknown_searcher_and_bad_options_are_refused_at_construction():
    with pytest.raises(ValueError, match="unknown searcher 'bossnas' for Optuna"):
        Sampler("bossnas")
    with pytest.raises(ValueError, match="sample_size"):
        Sampler("evolution", population_size=2, sample_size=3)


def test_a_sampler_of_ours_continues_a_stored_study(tmp_path):
    """Trials another process (or sampler) ran are told too: a study loaded from storage is learnt from."""
    storage = f"sqlite:///{tmp_path / 'toy.db'}"
    first = optuna.create_study(study_name="toy", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    first.optimize(toy, n_trials=15)
    sampler = Sampler("evolution", seed=0, population_size=10)
    study = optuna.load_study(study_name="toy", storage=storage, sampler=sampler)
    study.optimize(toy, n_trials=1)
    assert sampler._run is not None and sampler._run.told == set(range(15))
    assert len(sampler._run.searcher.population) == 10


@pytest.mark.timeout(60)
def test_single_valued_parameters_of_a_given_space_are_fixed_not_searched():
    """A single-valued distribution handed to ``sample_relative`` is returned as is; the searcher only sees the
    others (mutating a one-value decision could never find a new value)."""
    space = {"one": optuna.distributions.IntDistribution(3, 3), "x": optuna.distributions.FloatDistribution(0, 1),
             "c": optuna.distributions.CategoricalDistribution(["only"])}
    sampler = Sampler("evolution", seed=0, population_size=2, sample_size=1)
    study = optuna.create_study(sampler=sampler)
    for _ in range(8):
        trial = study.ask(space)
        study.tell(trial, trial.params["x"])
        params = sampler.sample_relative(study, study._storage.get_trial(study.ask()._trial_id), space)
        assert params["one"] == 3 and params["c"] == "only" and 0 <= params["x"] <= 1
    assert set(sampler._run.space.distributions) == {"x"}


def test_a_pickled_sampler_continues_where_it_was():
    """Samplers travel by pickle (to worker processes): the copy holds the searcher and what it was told."""
    import pickle

    sampler = Sampler("evolution", seed=0, population_size=5)
    study = optuna.create_study(sampler=sampler)
    study.optimize(toy, n_trials=12)
    copy = pickle.loads(pickle.dumps(sampler))
    assert copy._run is not None and copy._run.told == sampler._run.told
    assert len(copy._run.searcher.population) == 5
    study.sampler = copy
    study.optimize(toy, n_trials=3)
    assert copy._run.told == set(range(14))
