"""Small evolution operators: selection and ageing, shared by the evolutionary searchers."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence

from nas.core.result import Result


def tournament(population: Sequence[Result], size: int, score: Callable[[Result], float],
               rng: random.Random) -> Result:
    """The best of ``size`` members drawn uniformly without replacement."""
    contenders = rng.sample(list(population), min(size, len(population)))
    return max(contenders, key=score)


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
