"""A hill-climbing searcher for ``nas``, registered from outside the package (example plugin).

``searcher=hill_climb``: start from a random architecture, propose mutations of the best one found since
the last restart, and restart from a new random architecture after ``patience`` results in a row that did
not improve on it. Asks made before any result is back (parallel workers) are random starting points.
"""

from __future__ import annotations

import math

import nas
from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.searchers.base import Searcher


@nas.register_searcher("hill_climb")
class HillClimbing(Searcher):
    """First-improvement hill climbing with random restarts, ask/tell (``patience``: results without progress)."""

    supports_warm_start = True  # warm-start candidates are the first starting points

    def __init__(self, patience: int = 8, mutations: int = 1, restart: bool = True) -> None:
        if patience < 1 or mutations < 1:
            raise ValueError("hill_climb needs patience >= 1 and mutations >= 1")
        self.patience = patience
        self.mutations = mutations
        self.restart = restart

    def setup(self, space, seed=0, objective=None) -> None:
        super().setup(space, seed, objective)
        self.current: Result | None = None  # the incumbent of this climb
        self.stale = 0  # results in a row that did not beat it
        self.restarts = 0

    def ask(self) -> Genotype | None:
        if self.current is None:  # the first ask, or after a restart: a new random (or warm-start) point
            return self.initial()
        return self.space.mutate(self.current.genotype, self.rng, n=self.mutations)

    def tell(self, genotype: Genotype, result: Result) -> None:
        super().tell(genotype, result)
        score = self.objective.score(result)
        if score == -math.inf:
            self.stale += 1
        elif self.current is None or score > self.objective.score(self.current):
            self.current, self.stale = result, 0
            return
        else:
            self.stale += 1
        if self.restart and self.stale >= self.patience:
            self.current, self.stale = None, 0
            self.restarts += 1
