"""Choosing a whole architecture from BossNAS block ratings: greedy chaining, exact DP, evolution.

Ratings are kept per block as an ``EmbeddingTable``: for every rated entry (the level the block starts
at, the block's path of 4 tokens) the normalised predictor outputs of the online network on the two
fixed views and the raw target projections on them. The distance of an entry to a population is
BYOL's loss toward the population's mean target embedding (the "population center"):
``-2 mean cos(pred_1, center_2) - 2 mean cos(pred_2, center_1)``; lower is better.

- ``block_scores``: the released code's rating. The population of a block is every candidate rated
  after the same prefix (same start level); its center is their mean target embedding.
- ``greedy``: the released chaining rule. Block 0's best path from the stem level, then the best path
  of each next block among those starting where the previous winner ended.
- ``dynamic_program``: the exact minimum of the summed block scores over (block, ending level).
  The tables condition each block on one prefix per start level, so the sum over the tables is what
  is minimised; it is never above the greedy chain's sum. Summed across blocks, the scores should be
  ``pooled`` (one center per block): per-prefix centers give each start level its own baseline (a small,
  homogeneous group sits closer to its own center), which a sum would otherwise exploit.
- ``evolved_center``: for candidates rated in every block (a shared path such as an NB201 cell), the center
  evolves with the population as in the paper's population-center search: starting from every candidate,
  each iteration keeps the best-rated fraction (summed block distances) and recenters every block on it.
- ``rank_sum``: several supernets' ratings of one population combined as sums of ranks (their distances
  have different scales).
- ``evolve``: an evolutionary search of whole architectures (the paper mentions one; the released
  code has none): fitness = summed block distance to the center of the *current population's*
  block embeddings, recomputed every generation; tournament selection, mutation of one block with
  repair of later blocks, one-point crossover at a block boundary where the levels match.

Numpy only (no torch): the tables are computed by the rating code and saved with the run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from nas.evaluators.supernet.embeddings import EmbeddingTable, center_distance

Path = tuple[int, ...]
Entry = tuple[int, Path]  # (level the block starts at, the block's tokens)
__all__ = ["EmbeddingTable", "block_scores", "dynamic_program", "evolve", "evolved_center", "greedy", "ranked"]
EndLevel = Callable[[Path], int]


def block_scores(table: EmbeddingTable, pooled: bool = False) -> dict[Entry, float]:
    """Each entry's distance to a population center.

    ``pooled=False``: the released rating, the center of the entries sharing the entry's start level (one
    prefix). ``pooled=True``: the center of every entry of the block, one reference for all start levels,
    so scores after different prefixes are comparable (used to sum scores across blocks).
    """
    groups: dict[int, list[int]] = {}
    for i, (start, _) in enumerate(table.entries):
        groups.setdefault(-1 if pooled else start, []).append(i)
    return {entry: table.distance(entry, groups[-1 if pooled else entry[0]]) for entry in table.entries}


Scores = Mapping[Entry, float]


@dataclass(frozen=True)
class EvolvedCenter:
    """Per-block distances of every candidate to the evolved center, and the candidates forming it."""

    scores: list[dict[Entry, float]]
    members: list[int]
    iterations: int


def evolved_center(tables: Sequence[EmbeddingTable], candidates: Sequence[Sequence[Entry]], top: float,
                   iterations: int) -> EvolvedCenter:
    """Distances of candidates rated in every block to a population center that evolves with the population.

    ``candidates[k][i]`` is candidate i's entry in block k. The population starts as every candidate; each
    iteration keeps the ``top`` fraction with the least summed block distance to the current centers (at
    least 2) and recenters every block on their mean target embedding, until the population stops changing
    or ``iterations`` are done. ``top=1`` (or no iterations) is the fixed center of all candidates. Why: a
    center of random cells sits among the weak ones (pools, skips, dead edges), so distance to it rewards a
    typical cell; the paper's center follows the evolving population instead.
    """
    rows = [np.array([t.index[e] for e in entries]) for t, entries in zip(tables, candidates)]
    n = len(candidates[0])
    keep = max(2, min(n, round(top * n)))
    members = np.arange(n)

    def distances(members: np.ndarray) -> list[np.ndarray]:
        return [t.scores_to(r[members])[r] for t, r in zip(tables, rows)]

    done = 0
    while done < iterations and keep < n:
        total = np.sum(distances(members), axis=0)
        chosen = np.sort(np.argsort(total, kind="stable")[:keep])
        if np.array_equal(chosen, members):
            break
        members, done = chosen, done + 1
    per_block = distances(members)
    return EvolvedCenter([{e: float(d[i]) for i, e in enumerate(entries)} for d, entries in zip(per_block, candidates)],
                         members.tolist(), done)


def rank_sum(totals: Sequence[Sequence[float]]) -> np.ndarray:
    """Per candidate, the sum over raters of its rank (1 = lowest total, ties share their mean rank)."""
    return np.sum([rankdata(np.asarray(t, dtype=float)) for t in totals], axis=0)


def _options(scores: Scores, start: int) -> list[tuple[float, Path]]:
    return sorted((s, path) for (lvl, path), s in scores.items() if lvl == start)


def greedy(tables: Sequence[Scores], end_level: EndLevel, start: int = 0) -> tuple[float, list[Path]]:
    """The released chaining: per block the best-scored path starting where the previous one ended."""
    total, chosen, level = 0.0, [], start
    for k, scores in enumerate(tables):
        options = _options(scores, level)
        if not options:
            raise ValueError(f"block {k} has no rated path starting at level {level}")
        score, path = options[0]
        total += score
        chosen.append(path)
        level = end_level(path)
    return total, chosen


def frontier(tables: Sequence[Scores], end_level: EndLevel, start: int = 0) -> dict[int, tuple[float, list[Path]]]:
    """The DP state after the given blocks: ending level -> (least summed score, the paths reaching it)."""
    best: dict[int, tuple[float, list[Path]]] = {start: (0.0, [])}
    for scores in tables:
        nxt: dict[int, tuple[float, list[Path]]] = {}
        for (level, path), score in sorted(scores.items()):
            if level not in best:
                continue
            total = best[level][0] + score
            end = end_level(path)
            if end not in nxt or total < nxt[end][0]:
                nxt[end] = (total, [*best[level][1], path])
        best = nxt
    return best


def dynamic_program(tables: Sequence[Scores], end_level: EndLevel, start: int = 0) -> tuple[float, list[Path]]:
    """The exact minimum of the summed block scores over chained paths: a DP over (block, ending level)."""
    best = frontier(tables, end_level, start)
    if not best:
        raise ValueError("no chain of rated paths covers every block")
    return min(best.values(), key=lambda item: item[0])


def summed(tables: Sequence[Scores], paths: Sequence[Path], end_level: EndLevel, start: int = 0) -> float | None:
    """A whole architecture's summed block score (``None`` when a block entry was not rated)."""
    total, level = 0.0, start
    for scores, path in zip(tables, paths):
        value = scores.get((level, tuple(path)))
        if value is None:
            return None
        total += value
        level = end_level(path)
    return total


Arch = tuple[Path, ...]


@dataclass
class EvolutionResult:
    """The best architecture, its fitness under the final population, and the best fitness per generation."""

    arch: list[Path]
    fitness: float
    history: list[float]
    initial_best: float


def _random_arch(by_start: list[dict[int, list[Path]]], end_level: EndLevel, rng: random.Random,
                 start: int, prefix: Arch = ()) -> Arch | None:
    arch = list(prefix)
    level = start if not arch else end_level(arch[-1])
    for k in range(len(arch), len(by_start)):
        options = by_start[k].get(level)
        if not options:
            return None
        arch.append(rng.choice(options))
        level = end_level(arch[-1])
    return tuple(arch)


def _sample(by_start, end_level, rng, start, prefix=(), tries: int = 50) -> Arch | None:
    for _ in range(tries):
        arch = _random_arch(by_start, end_level, rng, start, prefix)
        if arch is not None:
            return arch
    return None


def evolve(tables: Sequence[EmbeddingTable], end_level: EndLevel, seed: int = 0, start: int = 0,
           population: int = 32, generations: int = 20, tournament: int = 4, mutation_rate: float = 0.5,
           fixed_center: bool = False) -> EvolutionResult:
    """Evolve whole architectures toward the population center (see the module docstring).

    Each generation: fitness of every member = summed block distance to the current population's
    centers; ``population`` children from tournament winners (crossover with probability
    1 - ``mutation_rate``, else mutation); the next population is the best ``population`` of parents and
    children under the parents' centers. ``fixed_center`` uses each block's whole-table center per start
    level instead (the released rating), which makes the fitness independent of the population.
    """
    if population < 2 or tournament < 1 or generations < 0:
        raise ValueError("evolution needs population >= 2, tournament >= 1, generations >= 0")
    rng = random.Random(seed)
    by_start: list[dict[int, list[Path]]] = []
    for table in tables:
        groups: dict[int, list[Path]] = {}
        for level, path in table.entries:
            groups.setdefault(level, []).append(path)
        by_start.append(groups)
    fixed = [block_scores(t) for t in tables] if fixed_center else None

    def entries(arch: Arch) -> list[Entry]:
        out, level = [], start
        for path in arch:
            out.append((level, path))
            level = end_level(path)
        return out

    def fitness_fn(pop: Sequence[Arch]) -> Callable[[Arch], float]:
        if fixed is not None:
            return lambda arch: sum(fixed[k][e] for k, e in enumerate(entries(arch)))
        rows = [[t.index[e] for e in (entries(a)[k] for a in pop)] for k, t in enumerate(tables)]
        centers = [(t.target1[r].mean(0), t.target2[r].mean(0)) for t, r in zip(tables, rows)]
        cache: dict[Arch, float] = {}

        def fit(arch: Arch) -> float:
            if arch not in cache:
                total = 0.0
                for k, entry in enumerate(entries(arch)):
                    t, i = tables[k], tables[k].index[entry]
                    total += center_distance(t.pred1[i], t.pred2[i], *centers[k])
                cache[arch] = total
            return cache[arch]

        return fit

    members: list[Arch] = []
    for _ in range(population * 20):
        if len(members) == population:
            break
        arch = _sample(by_start, end_level, rng, start)
        if arch is None:
            raise ValueError("the tables hold no chain of paths covering every block")
        members.append(arch)
    fit = fitness_fn(members)
    initial_best = min(fit(a) for a in members)
    history = [initial_best]
    for _ in range(generations):
        fit = fitness_fn(members)

        def pick(members: list[Arch] = members, fit: Callable[[Arch], float] = fit) -> Arch:
            return min(rng.sample(members, min(tournament, len(members))), key=fit)

        children: list[Arch] = []
        while len(children) < population:
            a = pick()
            if rng.random() >= mutation_rate:
                child = _crossover(a, pick(), end_level, start, rng)
            else:
                child = _mutate(a, by_start, end_level, start, rng)
            if child is not None:
                children.append(child)
        pool = list(dict.fromkeys(members + children))
        members = sorted(pool, key=fit)[:population]
        while len(members) < population:
            members.append(rng.choice(members))
        history.append(min(fitness_fn(members)(a) for a in members))
    fit = fitness_fn(members)
    best = min(members, key=fit)
    return EvolutionResult(list(best), fit(best), history, initial_best)


def _mutate(arch: Arch, by_start, end_level: EndLevel, start: int, rng: random.Random) -> Arch | None:
    """Replace one block's path by another starting at the same level; re-draw later blocks that no longer fit."""
    k = rng.randrange(len(arch))
    level = start if k == 0 else end_level(arch[k - 1])
    options = [p for p in by_start[k].get(level, []) if p != arch[k]]
    if not options:
        return None
    out = list(arch[:k]) + [rng.choice(options)]
    for j in range(k + 1, len(arch)):
        level = end_level(out[-1])
        fits = arch[j] in by_start[j].get(level, [])
        if fits:
            out.append(arch[j])
            continue
        return _sample(by_start, end_level, rng, start, tuple(out))
    return tuple(out)


def _crossover(a: Arch, b: Arch, end_level: EndLevel, start: int, rng: random.Random) -> Arch | None:
    """One-point crossover after a block where both parents end at the same level."""
    cuts = [k for k in range(1, len(a)) if end_level(a[k - 1]) == end_level(b[k - 1])]
    if not cuts:
        return None
    k = rng.choice(cuts)
    return tuple(a[:k]) + tuple(b[k:])


def ranked(scores: Mapping[Entry, float]) -> list[tuple[Entry, float, int]]:
    """Entries sorted by score (lower first) with their 1-based rank, ties broken by entry."""
    ordered = sorted(scores.items(), key=lambda item: (item[1] if not math.isnan(item[1]) else math.inf, item[0]))
    return [(entry, score, i + 1) for i, (entry, score) in enumerate(ordered)]
