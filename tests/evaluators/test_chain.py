"""The ``chain`` evaluator: proxy -> short training -> full training, cut online by running quantiles.

Trainings are a few optimiser steps on digits (NB201 small preset), so accuracies are near chance but real.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas
from nas.backends.training import Pruned
from nas.cli.main import main
from nas.core.result import Result, TrialState
from nas.evaluators import EvalContext, make_evaluator
from nas.evaluators.chain import StagePool

SPACE = nas.space("nb201", preset="small", input_shape=[1, 8, 8])
TINY = dict(dataset={"name": "digits"}, batch_size=32, lr=0.05, max_steps_per_epoch=3, short_epochs=1, epochs=2)
TIMING = ("train_seconds", "steps_per_second", "short_train_seconds", "short_steps_per_second")


def evaluate(evaluator: Any, genotypes: list, first_trial: int = 0) -> list[tuple[TrialState, dict, list]]:
    """Each genotype in turn (trial id = seed = its index): (state, metrics, reports) as the runner sees them."""
    out = []
    for trial, genotype in enumerate(genotypes, start=first_trial):
        reports: list = []
        ctx = EvalContext(trial=trial, seed=trial, report=lambda e, m, r=reports: r.append((e, dict(m))) or False)
        try:
            out.append((TrialState.COMPLETE, evaluator(genotype, ctx), reports))
        except Pruned as pruned:
            out.append((TrialState.PRUNED, dict(pruned.metrics), reports))
    return out


def sample(count: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [SPACE.sample(rng) for _ in range(count)]


def untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING}


def test_pool_keeps_the_running_top_fraction():
    """After the warm-up, a candidate passes when fewer than keep of those seen (itself included) are better."""
    rng = np.random.default_rng(0)
    for keep, columns in ((0.25, 1), (0.4, 2)):
        pool = StagePool(keep, warmup=20)
        passed = [pool.decide(rng.normal(size=columns))[0] for _ in range(1000)]
        assert all(passed[:20])
        assert abs(np.mean(passed[20:]) - keep) < 0.03, (keep, np.mean(passed[20:]))
    pool = StagePool(0.5, warmup=3)
    decisions = [pool.decide(np.array([float(-k)])) for k in range(8)]  # each worse than all before
    assert [d[0] for d in decisions] == [True] * 3 + [False] * 5
    assert [d[2] for d in decisions] == list(range(8)) and decisions[-1][1] == pytest.approx(7 / 8)
    assert all(StagePool(1.0, 0).decide(np.array([float(-k)]))[0] for k in range(5))  # keep=1 never cuts
    two = StagePool(0.5, 0)  # rank-sum: scale does not count, a row best on both columns is best
    for row in ([1e30, 0.1], [1.0, 0.2], [1e-3, 0.3]):
        two.decide(np.array(row))
    assert two.better_fraction(np.array([1e31, 0.4])) == 0.0
    assert two.better_fraction(np.array([1e-4, 0.0])) == 3 / 4
    assert two.better_fraction(np.array([1e-4, 0.35])) == 0.0  # last on one, first on the other: all tie at 5


def test_cut_candidates_never_train_and_stages_are_reported(monkeypatch):
    """Training runs exactly for the candidates a stage passed on; each stage's cut follows its own keep."""
    import nas.backends.torch as torch_backend

    calls: list[tuple[int, int]] = []  # (epochs, seed) of every training
    real = torch_backend.train

    def counting(arch, data, config, *args, **kwargs):
        calls.append((config.epochs, config.seed))
        return real(arch, data, config, *args, **kwargs)

    monkeypatch.setattr(torch_backend, "train", counting)
    keep, warmup = (0.6, 0.2), 3
    evaluator = make_evaluator("chain", proxies=["synflow", "naswot"], keep=list(keep), warmup=warmup, **TINY)
    runs = evaluate(evaluator, sample(16))
    stage = [int(m["chain_stage"]) for _, m, _ in runs]
    assert sorted(s for e, s in calls if e == 1) == [t for t, s in enumerate(stage) if s >= 1]
    assert sorted(s for e, s in calls if e == 2) == [t for t, s in enumerate(stage) if s == 2]
    assert stage.count(0) and stage.count(1) and stage.count(2), stage  # every stage cut or passed someone
    between = [(m["chain_proxy_better"], m.get("chain_short_better")) for _, m, _ in runs]
    assert any(keep[1] <= p < keep[0] for p, _ in between) and any(s is not None and keep[1] <= s < keep[0]
                                                                   for _, s in between)  # the two keeps differ here
    for trial, (state, metrics, reports) in enumerate(runs):
        assert (state is TrialState.COMPLETE) == (stage[trial] == 2)
        assert {"zc_synflow", "zc_naswot", "params", "macs", "chain_proxy_better"} <= set(metrics)
        passed_proxy = metrics["chain_proxy_seen"] < warmup or metrics["chain_proxy_better"] < keep[0]
        assert passed_proxy == (stage[trial] >= 1)
        assert ("short_valid_accuracy" in metrics) == (stage[trial] >= 1)
        assert ("valid_accuracy" in metrics) == (stage[trial] == 2)  # no accuracy is reported for a short run
        if stage[trial] >= 1:
            passed_short = metrics["chain_short_seen"] < warmup or metrics["chain_short_better"] < keep[1]
            assert passed_short == (stage[trial] == 2)
        # per-epoch reports: the short run's metrics prefixed, then the full run's, epochs counted on
        expected = {0: [], 1: [(1, "short_valid_accuracy")],
                    2: [(1, "short_valid_accuracy"), (2, "valid_accuracy"), (3, "valid_accuracy")]}[stage[trial]]
        assert [(e, "valid_accuracy" if "valid_accuracy" in m else "short_valid_accuracy") for e, m in reports] \
            == expected


def test_kept_fraction_matches_keep():
    """Over many candidates the proxy stage passes on about keep[0] of them after the warm-up."""
    keep, warmup = 0.3, 4
    evaluator = make_evaluator("chain", proxies=["synflow"], keep=[keep, 1.0], warmup=warmup,
                               **{**TINY, "max_steps_per_epoch": 1})
    runs = evaluate(evaluator, sample(64, seed=1))
    passed = [m["chain_stage"] >= 1 for _, m, _ in runs][warmup:]
    expected = np.mean([math.ceil(keep * m) / m for m in range(warmup + 1, 65)])  # a < keep*m, m = seen + 1
    assert abs(np.mean(passed) - expected) < 0.1, (np.mean(passed), expected)
    assert all(m["chain_stage"] == 2 for _, m, _ in runs if m["chain_stage"] >= 1)  # keep[1] = 1 cuts nobody


def test_full_stage_is_what_the_train_evaluator_reports():
    """A candidate that passes both stages gets exactly evaluator=train's metrics (same recipe and seed)."""
    genotype = sample(1, seed=2)[0]
    chain = make_evaluator("chain", proxies=["params"], keep=[1.0, 1.0], **TINY)
    (state, metrics, _), = evaluate(chain, [genotype], first_trial=5)
    recipe = {k: v for k, v in TINY.items() if k not in ("short_epochs", "epochs")}
    for epochs, prefix in ((1, "short_"), (2, "")):
        train = make_evaluator("train", epochs=epochs, **recipe)(genotype, EvalContext(trial=5, seed=5))
        for key in ("valid_accuracy", "test_accuracy", "train_loss", "params"):
            assert metrics[prefix + key] == pytest.approx(train[key], abs=1e-9)
    assert state is TrialState.COMPLETE and metrics["chain_stage"] == 2


def test_same_seed_same_decisions_and_begin_rebuilds_the_pools():
    """Two evaluators decide alike on the same stream; ``begin`` with the first trials' results continues
    exactly as the uninterrupted evaluator did, and an empty ``begin`` forgets everything."""
    options = dict(proxies=["synflow", "naswot"], keep=[0.5, 0.5], warmup=2, **TINY)
    genotypes = sample(8, seed=3)
    first = evaluate(make_evaluator("chain", **options), genotypes)
    again = evaluate(make_evaluator("chain", **options), genotypes)
    assert [(s, untimed(m)) for s, m, _ in first] == [(s, untimed(m)) for s, m, _ in again]
    resumed = make_evaluator("chain", **options)
    history = [Result(trial=t, genotype=g, state=s, metrics=m) for t, (g, (s, m, _)) in
               enumerate(zip(genotypes[:4], first[:4], strict=True))]
    resumed.begin(reversed(history))  # a decision depends on the set seen, not its order
    rest = evaluate(resumed, genotypes[4:], first_trial=4)
    assert [(s, untimed(m)) for s, m, _ in rest] == [(s, untimed(m)) for s, m, _ in first[4:]]
    resumed.begin([])
    (_, metrics, _), = evaluate(resumed, genotypes[:1])
    assert metrics["chain_proxy_seen"] == 0 and untimed(metrics) == untimed(first[0][1])


def finished(run: Path) -> list[dict]:
    events = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "finished"]


CLI = ["search", "space.preset=small", "evaluator=chain", "searcher=random", "budget.trials=6", "evaluator.warmup=2",
       "evaluator.epochs=2", "evaluator.max_steps_per_epoch=3", "evaluator.keep=[0.5,0.5]"]


def decisions(run: Path) -> list[tuple]:
    return [(e["trial"], e["state"], e["metrics"]["chain_stage"], e["metrics"]["chain_proxy_better"],
             e["metrics"]["chain_proxy_seen"]) for e in sorted(finished(run), key=lambda e: e["trial"])]


def test_cli_search_writes_chain_stages(tmp_path):
    """A search completes; cut trials are pruned with their stage, best.json is a fully trained one; a second
    identical search in the same process decides alike (its cached evaluator starts empty), and so does one
    stopped after 3 trials and resumed (the pools are refilled from the journal)."""
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        assert main([*CLI, f"run_dir={run}"]) == 0
    assert main([*CLI[:4], "budget.trials=3", *CLI[5:], f"run_dir={tmp_path / 'c'}"]) == 0
    assert main(["search", f"resume={tmp_path / 'c'}", "budget.trials=6"]) == 0
    assert decisions(tmp_path / "c") == decisions(runs[0])
    trials = finished(runs[0])
    assert len(trials) == 6 and all("chain_stage" in e["metrics"] for e in trials)
    assert all((e["state"] == "complete") == (e["metrics"]["chain_stage"] == 2) for e in trials)
    assert {e["state"] for e in trials} == {"complete", "pruned"}
    best = json.loads((runs[0] / "best.json").read_text())
    assert best["metrics"]["chain_stage"] == 2
    assert [(e["state"], e["metrics"]["chain_stage"]) for e in trials] == \
        [(e["state"], e["metrics"]["chain_stage"]) for e in finished(runs[1])]


@pytest.mark.slow  # two spawned workers importing torch: ~17 s
def test_workers_decide_against_their_own_candidates(tmp_path):
    """With runner.workers=2 each worker process keeps its own pools: the candidates seen before a trial count
    only that worker's earlier trials (docs/evaluators.md says so)."""
    run = tmp_path / "w"
    assert main([*CLI, "evaluator.proxies=[synflow]", "runner.workers=2", f"run_dir={run}"]) == 0
    seen: dict[str, list[float]] = defaultdict(list)
    for event in sorted(finished(run), key=lambda e: e["started"]):
        seen[event["worker"]].append(event["metrics"]["chain_proxy_seen"])
    assert len(seen) == 2 and all(values == list(range(len(values))) for values in seen.values()), seen


@pytest.mark.parametrize("args, message", [
    (["evaluator.keep=[0,0.5]"], "evaluator.keep fractions must be numbers in (0, 1]"),
    (["evaluator.keep=[0.5,1.5]"], "evaluator.keep fractions must be numbers in (0, 1]"),
    (["evaluator.keep=[0.5]"], "evaluator.keep must be two fractions"),
    (["evaluator.short_epochs=3", "evaluator.epochs=3"], "evaluator.short_epochs must be below evaluator.epochs"),
    (["evaluator.proxies=[synflow,bogus]"],
     "unknown proxy 'bogus'; valid choices: synflow, params, macs, snip, grad_norm, fisher, jacob_cov, naswot"),
    (["evaluator.proxies=[vote]"], "evaluator.proxies: 'vote' scores a candidate against others"),
    (["evaluator.warmup=-1"], "evaluator.warmup must be an integer >= 0"),
    (["evaluator.proxy_batch_size=0"], "evaluator.proxy_batch_size must be an integer >= 1"),
])
def test_bad_options_stop_before_the_run_directory(args, message, capsys, tmp_path):
    assert main(["search", "evaluator=chain", *args, f"run_dir={tmp_path / 'run'}"]) == 2
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
