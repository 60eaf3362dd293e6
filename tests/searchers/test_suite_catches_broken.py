"""The conformance suites fail on deliberately broken searchers and spaces (and pass on the real ones)."""

from __future__ import annotations

import pytest

from nas.core.genotype import Genotype
from nas.core.space import SearchSpace
from nas.searchers.base import Objective, Searcher
from nas.searchers.evolution.regularized import RegularizedEvolution
from nas.testing.dummy import DummySpace
from nas.testing.suites import SearcherSuite, SpaceSuite

EVOLUTION = {"population_size": 8, "sample_size": 3}


class NoRecover(RegularizedEvolution):
    """``recover`` that does nothing."""

    def recover(self, history) -> None:
        pass


class DropsResults(RegularizedEvolution):
    """``tell`` counts a result but never adds it to the population."""

    def tell(self, genotype, result) -> None:
        Searcher.tell(self, genotype, result)


class RepeatsLast(RegularizedEvolution):
    """``ask`` proposes its first genotype again and again."""

    def ask(self) -> Genotype | None:
        if not hasattr(self, "_last"):
            self._last = super().ask()
        return self._last


class IgnoresSeed(RegularizedEvolution):
    """``setup`` drops the seed it is given."""

    def setup(self, space, seed=0, objective=None) -> None:
        super().setup(space, 0, objective)


class MutateReturnsInput(DummySpace):
    def mutate(self, genotype, seed=None, n=1) -> Genotype:
        return genotype


class LossyEncoding(DummySpace):
    """Rounds the dropout rate, so two genotypes share a vector and the vector does not give the genotype back."""

    def encode(self, genotype) -> list[float]:
        return [round(v, 1) for v in super().encode(genotype)]


def _checks(suite: type) -> list[str]:
    return sorted(name for name in dir(suite) if name.startswith("test_"))


def _searcher_failures(cls: type[Searcher]) -> list[str]:
    """The names of the ``SearcherSuite`` checks that ``cls`` fails."""

    class Suite(SearcherSuite):
        def make(self, seed: int = 0) -> Searcher:
            searcher = cls(**EVOLUTION)
            searcher.setup(DummySpace(), seed, Objective("valid_accuracy", "max"))
            return searcher

    failed = []
    for name in _checks(SearcherSuite):
        try:
            getattr(Suite(), name)()
        except AssertionError:
            failed.append(name)
    return failed


def _space_failures(space: SearchSpace) -> list[str]:
    """The names of the ``SpaceSuite`` checks that ``space`` fails (weight conversion left out: no backend here)."""
    failed = []
    for name in _checks(SpaceSuite):
        if name == "test_weights_convert_between_backends":
            continue
        try:
            getattr(SpaceSuite(), name)(space)
        except AssertionError:
            failed.append(name)
    return failed


def test_the_real_searcher_passes_every_check() -> None:
    assert _searcher_failures(RegularizedEvolution) == []


@pytest.mark.parametrize("broken, caught_by", [
    (NoRecover, "test_resume_matches_an_uninterrupted_run"),
    (DropsResults, "test_tells_shape_the_proposals"),
    (RepeatsLast, "test_asks_valid_and_varied_genotypes"),
    (IgnoresSeed, "test_deterministic_under_seed"),
])
def test_a_broken_searcher_fails_the_suite(broken: type[Searcher], caught_by: str) -> None:
    assert caught_by in _searcher_failures(broken)


def test_the_dummy_space_passes_every_check() -> None:
    assert _space_failures(DummySpace()) == []


@pytest.mark.parametrize("broken, caught_by", [
    (MutateReturnsInput, "test_mutate_changes_and_stays_valid"),
    (LossyEncoding, "test_encoding_round_trips"),
])
def test_a_broken_space_fails_the_suite(broken: type[SearchSpace], caught_by: str) -> None:
    assert caught_by in _space_failures(broken())


def test_suite_checks_are_not_vacuous_for_a_non_learning_searcher() -> None:
    """``learns = False`` only waives the learning check: a random searcher that drops its seed is still caught."""

    class SeedlessRandom(Searcher):
        def ask(self) -> Genotype | None:
            return self.space.sample(0)

    class Suite(SearcherSuite):
        learns = False

        def make(self, seed: int = 0) -> Searcher:
            searcher = SeedlessRandom()
            searcher.setup(DummySpace(), seed, Objective("valid_accuracy", "max"))
            return searcher

    with pytest.raises(AssertionError):
        Suite().test_deterministic_under_seed()
