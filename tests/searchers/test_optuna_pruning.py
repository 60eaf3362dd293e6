"""Optuna's pruner stops trials from their per-epoch reports (in-process runs)."""

import pytest

from nas.cli.config import compose
from nas.core.result import Result, TrialState
from nas.runner.journal import read_events, replay
from nas.runner.run import search
from nas.searchers.optuna_search import OptunaSearcher
from nas.testing.dummy import DummySpace


def _run_trial(searcher, score_per_epoch, epochs=3):
    genotype = searcher.ask()
    for epoch in range(epochs):
        if searcher.should_prune(genotype, epoch, {"valid_accuracy": score_per_epoch}):
            searcher.tell(genotype, Result(trial=0, genotype=genotype, state=TrialState.PRUNED,
                                           metrics={"valid_accuracy": score_per_epoch}))
            return "pruned"
    searcher.tell(genotype, Result(trial=0, genotype=genotype, state=TrialState.COMPLETE,
                                   metrics={"valid_accuracy": score_per_epoch}))
    return "complete"


def test_median_pruner_stops_a_trial_behind_the_median():
    searcher = OptunaSearcher(pruner="median", pruner_startup_trials=3)
    searcher.setup(DummySpace(), seed=0)
    assert [_run_trial(searcher, 0.9) for _ in range(3)] == ["complete"] * 3
    assert _run_trial(searcher, 0.1) == "pruned"
    assert _run_trial(searcher, 0.95) == "complete"


def test_no_pruner_never_prunes():
    searcher = OptunaSearcher(pruner="none", pruner_startup_trials=0)
    searcher.setup(DummySpace(), seed=0)
    assert [_run_trial(searcher, s) for s in (0.9, 0.8, 0.1, 0.05)] == ["complete"] * 4


def test_unknown_pruner_is_rejected():
    with pytest.raises(ValueError, match="unknown optuna pruner"):
        OptunaSearcher(pruner="bogus")


@pytest.mark.slow
def test_optuna_search_on_nb201_with_training_prunes_trials(tmp_path):
    run_dir = tmp_path / "run"
    search(compose(["space=nb201", "space.preset=small", "searcher=optuna", "searcher.pruner_startup_trials=2",
                    "searcher.startup_trials=2", "evaluator.epochs=3", "evaluator.max_steps_per_epoch=4",
                    "budget.trials=10", f"run_dir={run_dir}"]), progress=False)
    results, _ = replay(read_events(run_dir / "trials.jsonl"))
    states = [r.state for r in results]
    assert len(results) == 10
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert all(r.epochs < 3 for r in results if r.state is TrialState.PRUNED)
