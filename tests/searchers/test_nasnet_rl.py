"""The NASNet RL controller: learns on a known reward, works on the NASNet space, recovers exactly."""

from __future__ import annotations

import statistics
import subprocess
import sys

import torch

from nas.core.result import Result, TrialState
from nas.searchers.base import Objective
from nas.searchers.nasnet_rl import NASNetRL
from nas.spaces.nasnet import NASNetSpace
from nas.testing.dummy import DummySpace, dummy_score


def _result(trial: int, genotype, score: float) -> Result:
    return Result(trial=trial, genotype=genotype, state=TrialState.COMPLETE, metrics={"valid_accuracy": score})


def _searcher(space, seed: int = 0, **options) -> NASNetRL:
    searcher = NASNetRL(**{"hidden_size": 32, **options})
    searcher.setup(space, seed, Objective("valid_accuracy", "max"))
    return searcher


def test_mean_reward_improves_after_updates() -> None:
    searcher = _searcher(DummySpace(), lr=0.02, batch_size=10)
    before = statistics.mean(dummy_score(searcher.ask()) for _ in range(40))
    for t in range(150):
        g = searcher.ask()
        searcher.tell(g, _result(t, g, dummy_score(g)))
    after = statistics.mean(dummy_score(searcher.ask()) for _ in range(40))
    assert searcher.updates == 15
    assert after > before + 0.5


def test_emits_the_fifty_nasnet_decisions() -> None:
    space = NASNetSpace(preset="small")
    searcher = _searcher(space, batch_size=3)
    assert len(searcher.choices) == 50
    params = [p.detach().clone() for p in searcher.net.parameters()]
    for t in range(3):
        g = searcher.ask()
        space.validate(g)
        assert len(searcher.actions(g)) == 50
        searcher.tell(g, _result(t, g, float(t)))
    assert searcher.updates == 1
    assert any(not torch.equal(a, b) for a, b in zip(params, searcher.net.parameters()))


def test_recover_reaches_the_live_controller_state() -> None:
    live = _searcher(DummySpace(), seed=2, batch_size=4)
    history = []
    for t in range(10):
        g = live.ask()
        result = _result(t, g, dummy_score(g) if t != 3 else float("nan"))
        live.tell(g, result)
        history.append(result)
    resumed = _searcher(DummySpace(), seed=2, batch_size=4)
    resumed.recover(history)
    assert resumed.updates == live.updates == 2 and resumed.baseline == live.baseline
    for a, b in zip(live.net.parameters(), resumed.net.parameters()):
        assert torch.allclose(a, b)


def test_importing_the_searcher_does_not_import_torch() -> None:
    code = "import sys, nas, nas.searchers.nasnet_rl; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
