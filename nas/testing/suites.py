"""Conformance suites every space and searcher must pass (pytest classes; subclass and set a name).

    class TestNB201(SpaceSuite):
        space_name = "nb201"
"""

from __future__ import annotations

import json
import math
import random

import pytest

from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.core.space import SPACES, SearchSpace
from nas.searchers.base import SEARCHERS, Objective, Searcher
from nas.testing.dummy import DummySpace, dummy_score

SEEDS = range(8)


def small_space(name: str) -> SearchSpace:
    """The space ``name`` with its ``small`` preset when it has one (fast to build)."""
    cls = SPACES.get(name)
    return cls(preset="small") if "small" in cls.presets else cls()


class SpaceSuite:
    """Sample/mutate/crossover/encode/decode invariants of one registered space."""

    space_name: str = ""

    @pytest.fixture
    def space(self) -> SearchSpace:
        return small_space(self.space_name)

    def test_sample_is_valid_and_deterministic(self, space: SearchSpace) -> None:
        for seed in SEEDS:
            g = space.sample(seed)
            assert space.validate(g) is g
            assert g == space.sample(seed)
        assert len({space.sample(s).fingerprint() for s in range(40)}) > 1

    def test_json_round_trip(self, space: SearchSpace) -> None:
        for seed in SEEDS:
            g = space.sample(seed)
            again = Genotype.from_json(json.loads(json.dumps(g.to_json())))
            assert again == g and hash(again) == hash(g) and again.fingerprint() == g.fingerprint()

    def test_mutate_changes_and_stays_valid(self, space: SearchSpace) -> None:
        rng = random.Random(0)
        for seed in SEEDS:
            g = space.sample(seed)
            child = space.mutate(g, rng)
            assert child != g
            space.validate(child)

    def test_crossover_takes_values_from_parents(self, space: SearchSpace) -> None:
        rng = random.Random(1)
        for seed in SEEDS:
            a, b = space.sample(seed), space.sample(seed + 100)
            child = space.crossover(a, b, rng)
            space.validate(child)
            for label, value in child.decisions:
                parents = [p.values.get(label) for p in (a, b)]
                assert value in parents or space.spec()[label].condition is not None

    def test_encode_has_one_number_per_decision(self, space: SearchSpace) -> None:
        for seed in SEEDS:
            vector = space.encode(space.sample(seed))
            assert len(vector) == len(space.spec()) and all(math.isfinite(v) for v in vector)

    def test_decode_gives_consistent_shapes_and_cost(self, space: SearchSpace) -> None:
        for seed in SEEDS[:4]:
            arch = space.decode(space.sample(seed))
            names = [n.name for n in arch.nodes]
            assert len(names) == len(set(names))
            seen = set()
            for node in arch.nodes:
                assert all(i in seen for i in node.inputs), f"{node.name} reads a later node"
                seen.add(node.name)
            cost = arch_cost(arch)
            assert cost["params"] > 0 and cost["macs"] >= 0

    def test_weights_convert_between_backends(self, space: SearchSpace) -> None:
        """torch -> Flax -> torch (``nas.training.convert``): the Flax network answers as the torch one in eval
        mode (1e-4) and the round trip gives back every tensor exactly."""
        import jax.numpy as jnp
        import numpy as np
        import torch

        from nas.backends.torch import build
        from nas.testing.parity import randomize_norms
        from nas.training.convert import jax_from_torch, torch_from_jax

        arch = space.decode(space.sample(1))
        rng = np.random.default_rng(0)
        model = build(arch, seed=0)
        randomize_norms(model, rng)
        model.eval()
        network = jax_from_torch(model, arch)
        network.eval()
        shape = [d if d is not None else 64 for d in arch.input_shape]
        x = rng.standard_normal((2, *shape)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x))
        got = network(jnp.asarray(x))
        expected = expected if isinstance(expected, dict) else {"": expected}
        got = got if isinstance(got, dict) else {"": got}
        assert expected.keys() == got.keys()
        for head in expected:
            assert np.abs(np.asarray(got[head]) - expected[head].numpy()).max() <= 1e-4, head
        back = torch_from_jax(network, arch).state_dict()
        for key, value in model.state_dict().items():
            assert torch.equal(back[key], value), key

    def test_foreign_and_stale_genotypes_are_rejected(self, space: SearchSpace) -> None:
        g = space.sample(0)
        with pytest.raises(GenotypeError, match="version"):
            space.validate(Genotype(g.space, g.version + 1, g.decisions, g.macro))
        with pytest.raises(GenotypeError, match="space"):
            space.validate(Genotype("not-" + g.space, g.version, g.decisions, g.macro))
        with pytest.raises(GenotypeError):
            space.validate(Genotype(g.space, g.version, g.decisions[:-1], g.macro))


def _result(trial: int, genotype: Genotype, score: float, state: TrialState = TrialState.COMPLETE) -> Result:
    metrics = {"valid_accuracy": score} if state is TrialState.COMPLETE else {}
    return Result(trial=trial, genotype=genotype, state=state, metrics=metrics)


class SearcherSuite:
    """The ask/tell contract of one registered searcher, on the dummy space with a known score."""

    searcher_name: str = ""
    searcher_options: dict = {}

    def make(self, seed: int = 0) -> Searcher:
        searcher = SEARCHERS.get(self.searcher_name)(**self.searcher_options)
        searcher.setup(DummySpace(), seed, Objective("valid_accuracy", "max"))
        return searcher

    def drive(self, searcher: Searcher, n: int, start: int = 0, fail_every: int = 0) -> list[Genotype]:
        asked = []
        for t in range(start, start + n):
            g = searcher.ask()
            assert g is not None
            asked.append(g)
            failed = fail_every and t % fail_every == 0
            state = TrialState.FAILED if failed else TrialState.COMPLETE
            searcher.tell(g, _result(t, g, dummy_score(g), state))
        return asked

    def test_asks_valid_genotypes(self) -> None:
        space = DummySpace()
        for g in self.drive(self.make(), 30):
            space.validate(g)

    def test_deterministic_under_seed(self) -> None:
        assert self.drive(self.make(3), 25) == self.drive(self.make(3), 25)
        assert self.drive(self.make(3), 25) != self.drive(self.make(4), 25)

    def test_several_in_flight(self) -> None:
        searcher = self.make()
        batch = [searcher.ask() for _ in range(6)]
        assert all(g is not None for g in batch)
        for t, g in reversed(list(enumerate(batch))):
            searcher.tell(g, _result(t, g, dummy_score(g)))
        assert searcher.ask() is not None

    def test_survives_failed_trials(self) -> None:
        assert len(self.drive(self.make(), 30, fail_every=3)) == 30

    def test_recover_then_continue(self) -> None:
        first = self.make(5)
        history = []
        for t in range(15):
            g = first.ask()
            result = _result(t, g, dummy_score(g))
            first.tell(g, result)
            history.append(result)
        resumed = self.make(5)
        resumed.recover(history)
        assert len(self.drive(resumed, 10, start=15)) == 10
        again = self.make(5)
        again.recover(history)
        assert self.drive(again, 10, start=15) == self.drive(self._recovered(history), 10, start=15)

    def _recovered(self, history: list[Result]) -> Searcher:
        searcher = self.make(5)
        searcher.recover(history)
        return searcher
