"""Faults during a search: a worker process killed mid-trial, a candidate that raises, runs out of memory or
diverges (NaN loss), and early stopping that cannot work where the trials run (refused before the run)."""

import collections

import pytest

import nas.testing.faults  # noqa: F401  (registers the _faulty evaluator)
from nas.backends import get_backend
from nas.backends.training import NonFiniteLoss, TrainConfig
from nas.cli.config import compose
from nas.cli.main import main
from nas.core.space import SPACES
from nas.data.base import load_dataset
from nas.runner.executors import Job, ProcessPoolExecutor
from nas.runner.journal import read_events
from nas.runner.run import search
from nas.testing.faults import killed_pids


def faulty_config(run_dir, marks, faults, overrides=()):
    """A random search over NB201 (small) scored by the ``_faulty`` evaluator."""
    config = compose(["space=nb201", "space.preset=small", "searcher=random", f"run_dir={run_dir}", *overrides])
    config["evaluator"] = {"name": "_faulty", "faults": faults, "marks": str(marks), "seconds": 0.2}
    return config


def events_of(run_dir, kind):
    return [e for e in read_events(run_dir / "trials.jsonl") if e["event"] == kind]


@pytest.mark.timeout(90)
def test_pool_retries_a_killed_worker_fails_a_trial_that_always_dies_and_completes_the_budget(tmp_path):
    run_dir, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    faults = {1: "kill_once", 3: "kill", 4: "raise", 5: "memory"}
    config = faulty_config(run_dir, marks, faults, ["runner.workers=2", "budget.trials=8"])
    assert config["runner"]["max_retries"] == 2  # the default
    summary = search(config, progress=False)

    finished = {e["trial"]: e for e in events_of(run_dir, "finished")}
    assert len(events_of(run_dir, "finished")) == 8 and sorted(finished) == list(range(8))  # budget, no duplicate
    assert collections.Counter(e["trial"] for e in events_of(run_dir, "started")) == {t: 1 for t in range(8)}
    assert finished[1]["state"] == "complete"  # killed on its first attempt, then retried
    assert int(finished[1]["worker"].rsplit(":", 1)[1]) != killed_pids(marks)[1]
    assert finished[3]["state"] == "failed"
    assert finished[3]["error"] == "worker process killed by SIGKILL while running this trial (3 attempts)"
    assert finished[4]["state"] == "failed" and finished[4]["error"] == "RuntimeError: candidate 4 crashed"
    assert finished[5]["state"] == "failed" and finished[5]["error"] == "MemoryError"
    assert all(finished[t]["state"] == "complete" for t in (0, 2, 6, 7))
    retried = [(e["trial"], e["attempt"], e["reason"]) for e in events_of(run_dir, "retried")]
    assert retried == [(1, 1, "worker process killed by SIGKILL"), (3, 1, "worker process killed by SIGKILL"),
                       (3, 2, "worker process killed by SIGKILL")]
    assert summary.best is not None and summary.best.trial in (0, 1, 2, 6, 7)


@pytest.mark.timeout(60)
def test_a_dead_worker_is_replaced_and_only_its_trial_is_run_again(tmp_path):
    spec = {"name": "_faulty", "faults": {0: "kill_once", 1: "kill"}, "marks": str(tmp_path), "seconds": 0.3}
    retries = []
    pool = ProcessPoolExecutor(spec, workers=2, threads=1, max_retries=1,
                               on_retry=lambda job, attempt, reason: retries.append((job.trial, attempt, reason)))
    try:
        first = {w.process.pid for w in pool._workers}
        for trial in range(4):
            pool.submit(Job(trial, SPACES.get("nb201")(preset="small").sample(trial), trial))
        outcomes = []
        while len(outcomes) < 4:
            outcomes += pool.wait()
        by_trial = {o.trial: o for o in outcomes}
        assert sorted(o.trial for o in outcomes) == [0, 1, 2, 3]  # each trial once: none lost, none twice
        assert by_trial[0].state.value == "complete" and by_trial[2].state.value == by_trial[3].state.value
        assert by_trial[1].state.value == "failed"
        assert by_trial[1].error == "worker process killed by SIGKILL while running this trial (2 attempts)"
        assert sorted(retries) == [(0, 1, "worker process killed by SIGKILL"),
                                   (1, 1, "worker process killed by SIGKILL")]
        now = [w.process for w in pool._workers]
        assert len(now) == 2 and all(p.is_alive() for p in now)  # the pool is back to full strength
        assert killed_pids(tmp_path)[0] not in {p.pid for p in now} and {p.pid for p in now} != first
    finally:
        pool.shutdown()
    assert all(p.exitcode is not None for p in now)  # shutdown stopped every worker


def test_in_process_candidates_that_raise_or_run_out_of_memory_fail_with_the_reason(tmp_path):
    run_dir = tmp_path / "run"
    search(faulty_config(run_dir, tmp_path, {0: "raise", 2: "memory"}, ["budget.trials=4"]), progress=False)
    finished = {e["trial"]: e for e in events_of(run_dir, "finished")}
    assert sorted(finished) == [0, 1, 2, 3]
    assert (finished[0]["state"], finished[0]["error"]) == ("failed", "RuntimeError: candidate 0 crashed")
    assert (finished[2]["state"], finished[2]["error"]) == ("failed", "MemoryError")
    assert finished[1]["state"] == finished[3]["state"] == "complete"


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_diverging_training_loss_raises_non_finite_loss(backend):
    space = SPACES.get("nb201")(preset="small", input_shape=[1, 8, 8], num_classes=10)
    arch = space.decode(space.sample(0))
    data = load_dataset("digits")
    config = TrainConfig(epochs=1, lr=1e30, batch_size=32, max_steps_per_epoch=4, seed=0)
    with pytest.raises(NonFiniteLoss, match=r"training loss is (nan|inf|-inf) at epoch 1, step \d"):
        get_backend(backend).train(arch, data, config)


def test_a_diverging_candidate_is_failed_with_the_reason_and_the_search_goes_on(tmp_path):
    run_dir = tmp_path / "run"
    search(compose(["space.preset=small", "evaluator.epochs=1", "evaluator.max_steps_per_epoch=4",
                    "evaluator.lr=1e30", "searcher=random", "budget.trials=2", f"run_dir={run_dir}"]), progress=False)
    finished = events_of(run_dir, "finished")
    assert len(finished) == 2 and all(e["state"] == "failed" for e in finished)
    assert all(e["error"].startswith("NonFiniteLoss: training loss is nan at epoch 1, step ") for e in finished)


@pytest.mark.parametrize("args, message", [
    (["searcher=optuna", "runner.workers=2"],
     "searcher.pruner=median prunes in-process trials only, not with runner.workers=2"),
    (["searcher=optuna", "searcher.pruner=halving", "runner=ray"],
     "searcher.pruner=halving prunes in-process trials only, not with runner=ray"),
    (["searcher=ray_tune", "runner.workers=2"], "searcher=ray_tune runs its trials on Ray, not in runner.workers"),
])
def test_pruning_where_it_cannot_act_is_refused_before_the_run(args, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    small = ["budget.trials=1", "evaluator.epochs=1", "evaluator.max_steps_per_epoch=1"]  # fast if it did run
    assert main(["search", *args, *small, f"run_dir={run_dir}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not run_dir.exists()  # refused before anything ran


def test_pruning_settings_that_work_are_accepted(tmp_path):
    """No pruner, or an evaluator without per-epoch reports, runs in the pool (and in process with a pruner)."""
    from nas.runner.run import check_pruning

    for args in (["searcher=optuna", "searcher.pruner=none", "runner.workers=2"],
                 ["searcher=optuna", "searcher.pruner._target_=none", "runner.workers=2"],
                 ["searcher=optuna", "searcher.pruner._target_=optuna.pruners.NopPruner", "runner.workers=2"],
                 ["searcher=optuna", "evaluator=cost", "runner.workers=2"],
                 ["searcher=optuna", "runner.workers=1"], ["searcher=ray_tune", "runner=ray"]):
        check_pruning(compose(args))
