"""Regularized (aging) evolution, Real et al. 2019: tournament select, mutate, age out the oldest."""

from __future__ import annotations

from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.searchers.base import SEARCHERS, MultiObjective, Searcher
from nas.searchers.evolution.operators import AgingPopulation, pareto_keys, tournament


@SEARCHERS.register("evolution")
class RegularizedEvolution(Searcher):
    """Random genotypes until the population is full, then mutated tournament winners.

    ``population_size`` and ``sample_size`` default to the values used on NAS-Bench-201 (10, 3).
    Failed trials join the population with the worst score, so they age out like any other. With several
    objectives the tournament compares non-dominated rank, then crowding distance (NSGA-II's order).
    A warm start fills the initial population (its first asks) before random genotypes.
    """

    supports_warm_start = True
    multi_objective = True

    def __init__(self, population_size: int = 10, sample_size: int = 3, mutations: int = 1) -> None:
        if sample_size < 1 or population_size < sample_size:
            raise ValueError("evolution needs 1 <= sample_size <= population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutations = mutations

    def setup(self, space, seed=0, objective=None) -> None:
        super().setup(space, seed, objective)
        self.population = AgingPopulation(self.population_size)
        self.asked = 0

    def ask(self) -> Genotype | None:
        self.asked += 1
        if len(self.population) < self.population_size and self.asked <= self.population_size:
            return self.initial()
        if not len(self.population):
            return self.initial()
        members = list(self.population)
        if isinstance(self.objective, MultiObjective):
            keys = pareto_keys(members, self.objective.vector)
            position = {id(r): i for i, r in enumerate(members)}
            parent = tournament(members, self.sample_size, lambda r: keys[position[id(r)]], self.rng)
        else:
            parent = tournament(members, self.sample_size, self.objective.score, self.rng)
        return self.space.mutate(parent.genotype, self.rng, n=self.mutations)

    def tell(self, genotype: Genotype, result: Result) -> None:
        super().tell(genotype, result)
        self.population.add(result)
