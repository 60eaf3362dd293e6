"""Small evolution operators: selection and ageing, shared by the evolutionary searchers."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence

from nas.core.pareto import crowding_distance, non_dominated_sort
from nas.core.result import Result


def tournament(population: Sequence[Result], size: int, score: Callable[[Result], object],
               rng: random.Random) -> Result:
    """The best of ``size`` members drawn uniformly without replacement."""
    contenders = rng.sample(list(population), min(size, len(population)))
    return max(contenders, key=score)


def pareto_keys(population: Sequence[Result], vector: Callable[[Result], tuple[float, ...]]) -> dict[int, tuple]:
    """NSGA-II fitness per member (by position): (-front index, crowding distance); larger is better."""
    points = [vector(r) for r in population]
    keys: dict[int, tuple] = {}
    for rank, front in enumerate(non_dominated_sort(points)):
        crowd = crowding_distance([points[i] for i in front])
        for i, c in zip(front, crowd):
            keys[i] = (-rank, c)
    return keys


class AgingPopulation:
    """A FIFO population: adding beyond ``capacity`` removes the oldest member (regularization)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.members: deque[Result] = deque()

    def add(self, result: Result) -> Result | None:
        self.members.append(result)
        if len(self.members) > self.capacity:
            return self.members.popleft()
        return None

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)
