"""Resume is proven on searcher state: for each ask/tell searcher, a run killed with SIGKILL after ``K`` finished
trials and resumed to ``N`` proposes the genotypes an uninterrupted run does, and ends in the same searcher state.

The uninterrupted run and the resume run in this process, with the runner's ``build_searcher`` wrapped to keep the
live searcher, so their final states are compared as they are, not only as rebuilt; the killed run is a real
``nas search`` in its own session. Trials are the ``_faulty`` test evaluator's (hash scores after a short sleep),
so the kill lands mid-run, usually with a trial in flight, which the resume runs again under its own id.
Each live state is also compared with a searcher rebuilt from the finished journal (config.json + ``recover``),
the way ``nas.runner.run`` resumes, and the live and rebuilt searchers propose the same next genotypes.

Ray Tune (slow) cannot be exact, by design: its resume reseeds the sampler past the journalled trials and does not
restore Tune's experiment; its test checks what a broken recovery would break (only the rest of the budget runs,
the journalled trials stay, the resumed sampler's study holds every completed journalled trial). Out of scope:
BossNAS and FBNetV5 drive their own supernet training (no ask/tell, no ``recover``). With ``dedup=true`` (the
default) duplicate proposals are journalled and replayed too (tested below).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas.testing.faults  # noqa: F401  (registers the _faulty evaluator in this process)
from nas.cli.config import compose
from nas.core.decisions import Choice, FloatRange, IntRange
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.runner import run as run_module
from nas.runner.journal import read_events, replay
from nas.searchers.base import Searcher
from nas.searchers.evolution.operators import AgingPopulation
from nas.testing.skips import require_extra

N, K = 12, 5  # trials of a whole run; finished trials before the kill
SECONDS = 0.05  # per trial: long enough for the kill to land mid-run
COMMON = ["dedup=false", "evaluator=cost", "evaluator.name=_faulty", f"+evaluator.seconds={SECONDS}",
          f"budget.trials={N}", "seed=7"]  # dedup off: see test_dedup_skips_are_not_in_the_journal
NB201 = ["space=nb201", "space.preset=small"]
SEARCHERS = {
    "random": [*NB201, "searcher=random"],
    "evolution": [*NB201, "searcher=evolution", "searcher.population_size=4", "searcher.sample_size=2"],
    "predictor_evolution": [*NB201, "searcher=predictor_evolution", "searcher.init_samples=3",
                            "searcher.candidates=20", "searcher.patience=4"],
    "optuna": [*NB201, "searcher=optuna", "searcher.sampler._target_=tpe", "searcher.startup_trials=3"],
    "nasnet_rl": [*NB201, "searcher=nasnet_rl", "searcher.hidden_size=16", "searcher.batch_size=3",
                  "searcher.ppo_epochs=1"],
    "scaling": ["space=simplenet", "space.preset=small", "searcher=scaling"],
}
SKIPPED = {"space", "scorer", "objective", "objectives", "study_name"}  # the config, a cache, the run dir name


def snapshot(value: Any) -> Any:
    """Plain, comparable data for a piece of searcher state; an unknown type fails (no state is left out)."""
    import optuna
    import torch

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Searcher):
        return {k: snapshot(v) for k, v in sorted(vars(value).items()) if k not in SKIPPED}
    if isinstance(value, Result):
        return (value.trial, value.genotype.fingerprint(), value.state.value, sorted(value.metrics.items()))
    if isinstance(value, Genotype):
        return value.fingerprint()
    if isinstance(value, type):  # an option resolved to a class (Optuna's pruner)
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (Choice, IntRange, FloatRange)):
        return value.label
    if isinstance(value, random.Random):
        return value.getstate()
    if isinstance(value, AgingPopulation):
        return (value.capacity, [snapshot(m) for m in value])
    if isinstance(value, torch.nn.Module):
        return [(k, v.tolist()) for k, v in value.state_dict().items()]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, torch.optim.Optimizer):
        return snapshot(value.state_dict())
    if isinstance(value, optuna.study.Study):
        trials = [(t.number, t.state.name, sorted(t.params.items()), t.values, sorted(t.user_attrs.items()))
                  for t in value.get_trials(deepcopy=False)]
        return trials, sampler_state(value.sampler)
    if isinstance(value, optuna.trial.Trial):
        return value.number
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):  # insertion order is state too (e.g. the order results were told)
        return [(snapshot(k), snapshot(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple, deque)):
        return [snapshot(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(snapshot(v) for v in value)
    raise TypeError(f"no snapshot for searcher state of type {type(value).__name__}")


def sampler_state(sampler: Any) -> dict[str, Any]:
    """The random states of an Optuna sampler and of the samplers inside it (TPE's random sampler)."""
    import optuna

    out: dict[str, Any] = {}
    for name, value in vars(sampler).items():
        if hasattr(value, "rng") and hasattr(value.rng, "get_state"):
            out[name] = snapshot(value.rng.get_state())
        elif isinstance(value, optuna.samplers.BaseSampler):
            out[name] = sampler_state(value)
    return out


def proposals(run_dir: Path) -> list[str]:
    """The genotype (fingerprint) each trial id was started with, in id order; a re-run keeps its genotype."""
    started: dict[int, str] = {}
    for event in read_events(run_dir / "trials.jsonl"):
        if event["event"] == "started":
            first = started.setdefault(int(event["trial"]), event["fingerprint"])
            assert first == event["fingerprint"], f"trial {event['trial']} was re-run with another genotype"
    return [started[t] for t in sorted(started)]


def outcomes(run_dir: Path) -> list[tuple]:
    """(trial, genotype, state, metrics) of every finished trial, by id, times left out."""
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending
    return [snapshot(r) for r in sorted(results, key=lambda r: r.trial)]


def rebuilt(run_dir: Path) -> Searcher:
    """The searcher of a finished run, rebuilt from its config.json and journal as a resume rebuilds it."""
    config = run_module.read_run_config(run_dir)
    space = run_module.SPACES.get(config["space"]["name"])(preset=config["space"].get("preset"),
                                                           **config["space"]["resolved_macro"])
    searcher = run_module.build_searcher(config, space)
    run_module.start_searcher(config, space, run_dir, searcher, progress=False)
    searcher.recover(run_module.read_run_state(run_dir, space).told)
    return searcher


def next_asks(searcher: Searcher, n: int = 3) -> list[str]:
    """``n`` more ask/tell rounds with made-up scores: where two searchers in the same state go next."""
    asked = []
    for t in range(N, N + n):
        genotype = searcher.ask()
        assert genotype is not None
        asked.append(genotype.fingerprint())
        searcher.tell(genotype, Result(trial=t, genotype=genotype, state=TrialState.COMPLETE,
                                       metrics={"valid_accuracy": nas.testing.faults.score(genotype)}))
    return asked


def finished_count(run_dir: Path) -> int:
    return sum(e["event"] == "finished" for e in read_events(run_dir / "trials.jsonl"))


def in_flight_after(run_dir: Path, k: int) -> bool:
    """Whether ``k`` trials finished and the next one started: a kill now cuts a trial off."""
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    return len(results) >= k and bool(pending)


def kill_after(args: list[str], run_dir: Path, k: int, ready: Callable[[Path], bool] | None = None) -> int:
    """Start ``nas search`` in its own session, SIGKILL it once ``ready`` (default: ``k`` trials finished and the
    next one started, which sleeps ``SECONDS``); the finished count at the kill."""
    ready = ready or (lambda d: in_flight_after(d, k))
    cmd = [sys.executable, "-c", nas.testing.faults.CLI, "search", *args, f"run_dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None and not ready(run_dir):
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the search ended before the kill ({proc.returncode}): {err[-2000:]}"
    return finished_count(run_dir)


def live(monkeypatch: pytest.MonkeyPatch, call: Callable[[], Any]) -> Searcher:
    """Run ``call`` (a search or a resume in this process) and return the searcher it built."""
    built: list[Searcher] = []
    original = run_module.build_searcher

    def keep(config: dict[str, Any], space: Any) -> Searcher:
        built.append(original(config, space))
        return built[-1]

    monkeypatch.setattr(run_module, "build_searcher", keep)
    call()
    monkeypatch.setattr(run_module, "build_searcher", original)
    assert len(built) == 1
    return built[0]


# evolution in the default run (a real kill and resume, ~5 s); every other searcher in the slow set (CI runs both)
@pytest.mark.parametrize("name", [name if name == "evolution" else pytest.param(name, marks=pytest.mark.slow)
                                  for name in SEARCHERS])
def test_killed_and_resumed_run_matches_an_uninterrupted_one(name: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Same proposals, same results, same final searcher state (live and rebuilt from the journal)."""
    args = [*SEARCHERS[name], *COMMON]
    whole_dir, cut_dir = tmp_path / "whole", tmp_path / "cut"
    whole = live(monkeypatch, lambda: run_module.search(compose([*args, f"run_dir={whole_dir}"]), progress=False))

    at_kill = kill_after(args, cut_dir, K)
    assert K <= at_kill < N, f"the kill should land mid-run, it came after {at_kill} of {N} trials"
    started = proposals(cut_dir)
    assert len(started) == at_kill + 1, "one trial should have been cut off (one worker)"
    resumed = live(monkeypatch, lambda: run_module.resume(cut_dir, progress=False))

    assert len(proposals(whole_dir)) == N
    assert proposals(cut_dir) == proposals(whole_dir), f"{name}: the resumed run proposed other genotypes"
    assert outcomes(cut_dir) == outcomes(whole_dir)
    state = snapshot(whole)
    assert snapshot(resumed) == state, f"{name}: the resumed searcher ended in another state"
    again, again_cut = rebuilt(whole_dir), rebuilt(cut_dir)
    assert snapshot(again) == state, f"{name}: recover() from the journal does not rebuild the live state"
    assert snapshot(again_cut) == state
    following = next_asks(whole)
    assert next_asks(resumed) == following and next_asks(again_cut) == following


def test_duplicate_proposals_are_journalled_and_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``dedup=true`` the loop answers a duplicate proposal with the earlier trial's result; the journal keeps
    it (``duplicate`` events) so that evolution rebuilt from the journal is in the live run's state."""
    args = [*SEARCHERS["evolution"], *[a for a in COMMON if a != "dedup=false"], "dedup=true"]
    whole = live(monkeypatch, lambda: run_module.search(compose([*args, f"run_dir={tmp_path}"]), progress=False))
    assert whole.asked > N  # duplicates were proposed and answered from the cache
    events = read_events(tmp_path / "trials.jsonl")
    duplicates = [e for e in events if e["event"] == "duplicate"]
    assert len(duplicates) == whole.asked - N  # one worker: every duplicate repeats a finished trial
    finished = {e["trial"] for e in events if e["event"] == "finished"}
    assert all(e["of_trial"] in finished for e in duplicates)
    assert snapshot(rebuilt(tmp_path)) == snapshot(whole)


@pytest.mark.slow
def test_ray_tune_resume_runs_the_rest_and_teaches_its_sampler_the_journal(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          synthetic_nb201_table: Path) -> None:
    """Ray Tune cannot resume exactly: its experiment is not restored and the resumed sampler is seeded past the
    journalled trials (``trial_seed(seed, done)``), and Tune schedules trials in its own threads. What a broken
    recovery would break: a killed ``nas search searcher=ray_tune`` resumed runs only the rest of the budget, keeps
    the journalled trials as they were, and its sampler starts from a study that holds every journalled trial."""
    require_extra("ray", "ray")
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}  # sockets on 127.0.0.1
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from nas.searchers.ray_tune import RayTuneSearcher

    n, k = 6, 2
    args = [*NB201, "searcher=ray_tune", "searcher.max_concurrent=1", "searcher.scheduler=none",
            "searcher.startup_trials=2", "runner=ray", "runner.num_cpus=1", "evaluator=tabular",
            f"evaluator.table={synthetic_nb201_table}", f"budget.trials={n}", "seed=7"]  # Tune's workers know no
    # _faulty (they import only the run's evaluator); a Tune trial takes long enough for the kill to land mid-run
    run_dir = tmp_path / "cut"
    at_kill = kill_after(args, run_dir, k, lambda d: finished_count(d) >= k)  # Tune journals trials as they end
    assert k <= at_kill < n, f"the kill should land mid-run, it came after {at_kill} of {n} trials"
    before = outcomes(run_dir)
    studies: list[list[tuple]] = []
    original = RayTuneSearcher._search_alg

    def keep(self: RayTuneSearcher, metric: str, mode: str, history: list[Result], concurrent: int) -> Any:
        alg = original(self, metric, mode, history, concurrent)
        studies.append([(sorted(t.params.items()), t.value) for t in alg._ot_study.trials])
        return alg

    monkeypatch.setattr(RayTuneSearcher, "_search_alg", keep)
    run_module.resume(run_dir, progress=False)
    after = outcomes(run_dir)
    assert len(after) == n and [r[0] for r in after] == list(range(n))  # only the rest ran, ids continue
    assert after[:at_kill] == before
    journalled = [r for r in replay(read_events(run_dir / "trials.jsonl"))[0] if r.trial < at_kill]
    # the first build is setup's check of the options (no history); the run's own sampler holds the journal
    assert studies[0] == []
    assert studies[1:] == [[(sorted(r.genotype.decisions), r.metrics["valid_accuracy"]) for r in journalled if r.ok]]


def test_optuna_with_a_stored_study_resumes_into_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Optuna with ``searcher.storage`` cannot resume exactly, by design: the stored study already holds the killed
    run's trials and its sampler is seeded past them (so the resume does not repeat their draws). What a broken
    ``recover`` would break: the stored study ends with each journalled trial complete exactly once, under its
    trial id, the trial cut off by the kill marked failed (none left running), and the journal complete."""
    import optuna

    args = [*SEARCHERS["optuna"], *COMMON, f"searcher.storage={tmp_path / 'study.log'}"]
    run_dir = tmp_path / "cut"
    at_kill = kill_after(args, run_dir, K)
    assert K <= at_kill < N and len(proposals(run_dir)) == at_kill + 1
    before = sorted(snapshot(r) for r in replay(read_events(run_dir / "trials.jsonl"))[0])
    resumed = live(monkeypatch, lambda: run_module.resume(run_dir, progress=False))
    after = outcomes(run_dir)
    assert len(after) == N and after[:at_kill] == before
    trials = resumed.study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # the trial the kill cut off
    complete = [t for t in trials if t.state is optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["nas_trial"] for t in complete) == list(range(N))
    by_id = {r.trial: r for r in replay(read_events(run_dir / "trials.jsonl"))[0]}
    for trial in complete:  # each stored trial is its journalled trial: same genotype, same value
        result = by_id[trial.user_attrs["nas_trial"]]
        assert sorted(trial.params.items()) == sorted(result.genotype.decisions)
        assert trial.values == [result.metrics["valid_accuracy"]]
    assert resumed.told == N


def test_optuna_fails_a_replayed_ask_that_proposes_another_genotype() -> None:
    """When the replayed ask of a cut-off trial proposes another genotype (a resume that is not exact), its Optuna
    trial is failed rather than left running; the re-run trial's result is then added as a finished trial."""
    import optuna

    from nas.searchers.optuna_search import OptunaSearcher
    from nas.spaces.nb201 import NB201Space

    def make() -> OptunaSearcher:
        searcher = OptunaSearcher(sampler="tpe", startup_trials=3)
        searcher.setup(NB201Space(preset="small"), 0)
        return searcher

    first = make().ask()
    other = next(g for g in (NB201Space(preset="small").sample(i) for i in range(10)) if g != first)
    searcher = make()
    searcher.recover_in_flight([other])
    assert [t.state for t in searcher.study.trials] == [optuna.trial.TrialState.FAIL]
    searcher.tell(other, Result(trial=0, genotype=other, state=TrialState.COMPLETE, metrics={"valid_accuracy": 1.0}))
    assert [t.state for t in searcher.study.trials][-1] is optuna.trial.TrialState.COMPLETE
    matching = make()
    matching.recover_in_flight([first])  # the exact case: the trial waits for the re-run's result
    assert [t.state for t in matching.study.trials] == [optuna.trial.TrialState.RUNNING]
    assert len(matching.pending[first.fingerprint()]) == 1
