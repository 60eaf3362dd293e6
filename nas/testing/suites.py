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
from nas.core.decisions import Choice, IntRange
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


def values_from_encoding(space: SearchSpace, vector: list[float]) -> dict:
    """The decision values ``SearchSpace.encode`` describes: option index for choices, the value for ranges,
    -1 for an inactive decision."""
    values: dict = {}
    for decision, number in zip(space.spec(), vector, strict=True):
        if number == -1.0 and decision.condition is not None and not space.spec().is_active(decision, values):
            continue
        if isinstance(decision, Choice):
            assert number == int(number) and 0 <= number < len(decision.options), (decision.label, number)
            values[decision.label] = decision.options[int(number)]
        elif isinstance(decision, IntRange):
            assert number == int(number), (decision.label, number)
            values[decision.label] = int(number)
        else:
            values[decision.label] = float(number)
    return values


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

    def test_encoding_round_trips(self, space: SearchSpace) -> None:
        """One finite number per decision, from which the genotype is rebuilt exactly."""
        for seed in SEEDS:
            g = space.sample(seed)
            vector = space.encode(g)
            assert len(vector) == len(space.spec()) and all(math.isfinite(v) for v in vector)
            assert space.make(values_from_encoding(space, vector)) == g

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
        mode (1e-4, relative to the head's largest value above 1: randomized running statistics can blow
        up a TF-initialised network's logits) and the round trip gives back every tensor exactly."""
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
            want = expected[head].numpy()
            scale = max(1.0, float(np.abs(want).max()))
            assert np.abs(np.asarray(got[head]) - want).max() <= 1e-4 * scale, head
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
    """The ask/tell contract of one registered searcher, on the dummy space with a known score.

    Set ``learns = False`` for a searcher whose proposals do not depend on the results told (random search).
    """

    searcher_name: str = ""
    searcher_options: dict = {}
    learns: bool = True

    def make(self, seed: int = 0) -> Searcher:
        searcher = SEARCHERS.get(self.searcher_name)(**self.searcher_options)
        searcher.setup(DummySpace(), seed, Objective("valid_accuracy", "max"))
        return searcher

    def drive(self, searcher: Searcher, n: int, start: int = 0, fail_every: int = 0,
              score=dummy_score, history: list[Result] | None = None) -> list[Genotype]:
        """``n`` sequential ask/tell rounds (trial ids from ``start``); the results go to ``history``."""
        asked = []
        for t in range(start, start + n):
            g = searcher.ask()
            assert g is not None
            asked.append(g)
            failed = fail_every and t % fail_every == 0
            result = _result(t, g, score(g), TrialState.FAILED if failed else TrialState.COMPLETE)
            searcher.tell(g, result)
            if history is not None:
                history.append(result)
        return asked

    def test_asks_valid_and_varied_genotypes(self) -> None:
        space = DummySpace()
        asked = self.drive(self.make(), 30)
        for g in asked:
            space.validate(g)
        assert len({g.fingerprint() for g in asked}) >= 10, "the searcher keeps proposing the same genotypes"

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
        searcher = self.make()
        assert len(self.drive(searcher, 30, fail_every=3)) == 30
        assert searcher.told == 30

    def test_tells_shape_the_proposals(self) -> None:
        """Told the opposite scores, a learning searcher proposes differently (one that drops results does not)."""
        if not self.learns:
            return
        assert self.drive(self.make(2), 30) != self.drive(self.make(2), 30, score=lambda g: -dummy_score(g))

    def test_resume_matches_an_uninterrupted_run(self) -> None:
        """Recovered from the first ``k`` results, the searcher proposes what the uninterrupted one did next and
        ends in the same state (same next proposals, counters and random stream)."""
        k, n = 12, 24
        whole = self.make(5)
        uninterrupted = self.drive(whole, n, fail_every=5)
        history: list[Result] = []
        self.drive(self.make(5), k, fail_every=5, history=history)
        resumed = self.make(5)
        resumed.recover(history)
        assert self.drive(resumed, n - k, start=k, fail_every=5) == uninterrupted[k:]
        assert resumed.told == whole.told == n
        assert resumed.rng.getstate() == whole.rng.getstate()
        assert self.drive(resumed, 6, start=n) == self.drive(whole, 6, start=n)

    def test_resume_with_a_trial_in_flight(self) -> None:
        """Stopped with trial ``k`` asked but not told, recovered from ``k`` results plus that trial's ask
        (``recover_in_flight``), then told its result: the searcher goes on as the uninterrupted one did."""
        k, n = 7, 16
        whole = self.make(6)
        uninterrupted = self.drive(whole, n)
        history: list[Result] = []
        first = self.make(6)
        self.drive(first, k, history=history)
        cut_off = first.ask()
        assert cut_off == uninterrupted[k]
        resumed = self.make(6)
        resumed.recover(history)
        resumed.recover_in_flight([cut_off])
        resumed.tell(cut_off, _result(k, cut_off, dummy_score(cut_off)))
        assert self.drive(resumed, n - k - 1, start=k + 1) == uninterrupted[k + 1:]
        assert resumed.rng.getstate() == whole.rng.getstate()
