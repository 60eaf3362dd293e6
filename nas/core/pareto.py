"""Pareto dominance, non-dominated sorting and crowding distance (NSGA-II), on plain vectors.

Every vector is oriented so that larger is better in each coordinate (a minimised metric is negated
by the caller), which keeps these functions free of objective bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vector = Sequence[float]


def dominates(a: Vector, b: Vector) -> bool:
    """``a`` is at least as good as ``b`` everywhere and strictly better somewhere."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def non_dominated_sort(points: Sequence[Vector]) -> list[list[int]]:
    """Indices of ``points`` by front: front 0 is non-dominated, front 1 is dominated only by front 0, ..."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    counts = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                counts[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                counts[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if counts[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                counts[j] -= 1
                if counts[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def crowding_distance(points: Sequence[Vector]) -> list[float]:
    """NSGA-II crowding distance within one front (boundary points get infinity)."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][k])
        low, high = points[order[0]][k], points[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for rank in range(1, n - 1):
            gap = points[order[rank + 1]][k] - points[order[rank - 1]][k]
            distance[order[rank]] += gap / (high - low)
    return distance


def pareto_indices(points: Sequence[Vector]) -> list[int]:
    """Indices of the non-dominated points."""
    fronts = non_dominated_sort(points)
    return fronts[0] if fronts else []
