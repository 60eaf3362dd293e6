"""Predictor-guided evolution: mutants of the best results, ranked by a Gaussian process fitted on every result.

It starts with ``init_samples`` random genotypes, a design spread over the whole space: restarts and the ranking
of unexplored regions rely on it (fitted on a few random and many local-search results, the process ranked
NB201's best cell below most of the space, and a third of the runs ended in another basin). Then each ask draws
``candidates`` mutants of the best results of the current local search (plus a share of fresh samples), drops
every candidate whose canonical form was already evaluated or is in flight (no query is spent on a revisit,
isomorphic cells included) and evaluates the one with the highest upper confidence bound of a Gaussian process
on one-hot decision features. Scores enter the process as normal scores of their ranks (a Gaussian copula), so
a few very bad cells do not flatten the top. The kernel's length scale and noise are chosen by marginal
likelihood over a small grid every few results. When ``patience`` results in a row bring no new best of the
current local search, it restarts: the next parents come from a GP-picked fresh sample, while the process keeps
learning from everything told. Only the space's own operators are used (``sample``, ``mutate``, ``encode``,
``canonical``), so any space works.

Options beyond the defaults: a warm start (``searcher.warm_start``, see ``nas.runner.warm_start``) puts a
proxy's best candidates first in the random design; ``proxy_features`` adds zero-cost proxy scores of each
genotype to the process's features (each as its rank among the told and candidate genotypes, scaled so that
its whole range weighs as much as one changed decision), computed by the runner's ``ProxyScorer``.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from nas.core.decisions import Choice, FloatRange
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.evaluators.zero_cost.catalog import PROXIES, VOTE
from nas.searchers.base import SEARCHERS, Searcher

LENGTH_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)  # in units of changed decisions (a Hamming-distance kernel)
NOISES = (1e-3, 1e-2, 1e-1)  # of the standardised scores
FRESH_TRIES = 200  # samples drawn to find a genotype not evaluated yet before accepting a revisit
PROXY_SCALE = math.sqrt(2.0)  # a proxy feature's full range: the distance of one changed one-hot decision


def feature_proxies(names: Any) -> tuple[str, ...]:
    """``proxy_features`` as plain proxy names (``zc_`` prefix optional); a one-line ``UserError`` otherwise."""
    if names is None:
        return ()
    items = [names] if isinstance(names, str) else list(names)
    out = []
    for item in items:
        name = str(item)[3:] if str(item).startswith("zc_") else str(item)
        if name not in PROXIES or name == VOTE:
            raise UserError(f"predictor_evolution: unknown proxy feature {item!r}; valid choices: "
                            f"{', '.join(p for p in PROXIES if p != VOTE)}")
        if name not in out:
            out.append(name)
    return tuple(out)


@SEARCHERS.register("predictor_evolution")
class PredictorEvolution(Searcher):
    """``candidates`` mutants (1..``mutations`` changes) of the ``parents`` best results of the current local
    search, a share ``explore`` of them fresh samples; the GP's mean + ``beta`` * std picks the one to evaluate.
    """

    supports_warm_start = True

    def __init__(self, init_samples: int = 30, parents: int = 5, candidates: int = 50, mutations: int = 2,
                 explore: float = 0.1, beta: float = 1.0, patience: int = 25,
                 proxy_features: list[str] | None = None) -> None:
        for name, value in (("init_samples", init_samples), ("parents", parents), ("candidates", candidates),
                            ("mutations", mutations)):
            if value < 1:
                raise UserError(f"predictor_evolution: {name} must be at least 1, got {value}")
        if not 0.0 <= explore <= 1.0:
            raise UserError(f"predictor_evolution: explore must be in [0, 1], got {explore}")
        if beta < 0 or patience < 0:
            raise UserError("predictor_evolution: beta and patience must not be negative")
        self.init_samples = init_samples
        self.parents = parents
        self.candidates = candidates
        self.mutations = mutations
        self.explore = explore
        self.beta = beta
        self.patience = patience
        self.proxy_features = feature_proxies(proxy_features)
        self.scorer = None  # a ProxyScorer; the runner attaches one with the run's dataset when features are on

    def setup(self, space, seed=0, objective=None) -> None:
        super().setup(space, seed, objective)
        self.seen: dict[str, Result] = {}  # canonical form -> the first result told for it, in telling order
        self.pending: set[str] = set()  # canonical forms asked and not told yet
        self._rows: dict[str, list[float]] = {}  # features of the told genotypes
        self._refit_at = 0
        self._hyper = (1.0, NOISES[0])

    # --- ask / tell ---------------------------------------------------------------------------
    def ask(self) -> Genotype | None:
        scored = [(self.objective.score(r), key) for key, r in self.seen.items()]
        scored = [(s, key) for s, key in scored if math.isfinite(s)]
        if len(self.seen) + len(self.pending) < self.init_samples or len(scored) < 2:
            return self._propose(self._fresh())
        ordered = list(self.seen.values())
        local = [(self.objective.score(r), r) for r in ordered[self._segment_start(ordered):]]
        local = sorted(((s, r) for s, r in local if math.isfinite(s)), key=lambda pair: -pair[0])
        pool = self._candidates([r for _, r in local[:self.parents]])
        if not pool:
            return self._propose(self._fresh())
        ucb = self._acquisition([key for _, key in scored], [s for s, _ in scored], pool)
        return self._propose(pool[int(np.argmax(ucb))])

    def tell(self, genotype: Genotype, result: Result) -> None:
        super().tell(genotype, result)
        key = self.space.canonical(genotype)
        self.pending.discard(key)
        if key not in self.seen:
            self.seen[key] = result
            self._rows[key] = self._row(genotype)

    def recover(self, history) -> None:
        super().recover(history)
        self.pending.clear()

    def _segment_start(self, ordered: list[Result]) -> int:
        """Where the current local search began: a restart follows ``patience`` results without a new best
        of its own. A function of the results alone, so a replayed journal restarts at the same points."""
        start, best, stall = 0, -math.inf, 0
        for i, result in enumerate(ordered):
            score = self.objective.score(result)
            best, stall = (score, 0) if score > best else (best, stall + 1)
            if self.patience and stall >= self.patience:
                start, best, stall = i + 1, -math.inf, 0
        return start

    # --- proposals ----------------------------------------------------------------------------
    def _propose(self, genotype: Genotype) -> Genotype:
        self.pending.add(self.space.canonical(genotype))
        return genotype

    def _fresh(self) -> Genotype:
        """The next warm-start candidate not evaluated yet, else a random one (a revisit only when none turns up:
        a nearly exhausted space)."""
        while self.warm:
            genotype = self.warm.popleft()
            key = self.space.canonical(genotype)
            if key not in self.seen and key not in self.pending:
                return genotype
        for _ in range(FRESH_TRIES):
            genotype = self.space.sample(self.rng)
            key = self.space.canonical(genotype)
            if key not in self.seen and key not in self.pending:
                return genotype
        return genotype

    def _candidates(self, parents: list[Result]) -> list[Genotype]:
        """Distinct unseen mutants of the parents and fresh samples (only fresh ones right after a restart)."""
        pool: dict[str, Genotype] = {}
        fresh = round(self.candidates * self.explore) if parents else self.candidates
        for i in range(self.candidates):
            if i < fresh:
                genotype = self.space.sample(self.rng)
            else:
                parent = parents[i % len(parents)].genotype
                genotype = self.space.mutate(parent, self.rng, n=self.rng.randint(1, self.mutations))
            key = self.space.canonical(genotype)
            if key not in pool and key not in self.seen and key not in self.pending:
                pool[key] = genotype
        return list(pool.values())

    # --- the predictor ------------------------------------------------------------------------
    def _row(self, genotype: Genotype) -> list[float]:
        """One-hot choices, ranges scaled to [0, 1] (log ranges in log space), zeros when inactive."""
        row: list[float] = []
        values = genotype.values
        for decision, value in zip(self.space.spec(), self.space.encode(genotype)):
            if isinstance(decision, Choice):
                row.extend(1.0 if value == k else 0.0 for k in range(decision.size))
            elif values.get(decision.label) is None:
                row.append(0.0)
            elif isinstance(decision, FloatRange) and decision.log:
                row.append(math.log(value / decision.low) / math.log(decision.high / decision.low))
            else:
                row.append((value - decision.low) / ((decision.high - decision.low) or 1.0))
        return row

    @staticmethod
    def _gram(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
        """exp(-d / scale), d = half the squared distance (the number of differing choices for one-hots)."""
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.exp(-np.maximum(sq, 0.0) / (2.0 * scale))

    def _evidence(self, x: np.ndarray, y: np.ndarray, scale: float) -> list[tuple[float, float, float]]:
        """(log marginal likelihood up to a constant, scale, noise) of the scores for each noise level."""
        values, vectors = np.linalg.eigh(self._gram(x, x, scale))
        values, projected = np.maximum(values, 0.0), (vectors.T @ y) ** 2
        return [(float(-0.5 * (projected / (values + noise)).sum() - 0.5 * np.log(values + noise).sum()),
                 scale, noise) for noise in NOISES]

    def _proxy_columns(self, told: list[Genotype], pool: list[Genotype]) -> tuple[np.ndarray, np.ndarray]:
        """Each proxy feature as the rank of its score among the told and pool genotypes, in [0, PROXY_SCALE]."""
        from scipy.stats import rankdata

        if self.scorer is None:
            from nas.evaluators.zero_cost.scorer import ProxyScorer

            self.scorer = ProxyScorer(self.space, None, self.seed)  # data-free proxies only
        raw = np.asarray([[self.scorer(g, self.proxy_features)[p] for p in self.proxy_features]
                          for g in told + pool], dtype=float)
        ranked = np.column_stack([rankdata(column) - 1.0 for column in raw.T]) / max(len(raw) - 1, 1) * PROXY_SCALE
        return ranked[:len(told)], ranked[len(told):]

    def _acquisition(self, keys: list[str], scores: list[float], pool: list[Genotype]) -> np.ndarray:
        """Upper confidence bound of each pool genotype under the GP fitted on the told results' features."""
        x = np.asarray([self._rows[key] for key in keys], dtype=float)
        z = np.asarray([self._row(g) for g in pool], dtype=float)
        if self.proxy_features:
            told, new = self._proxy_columns([self.seen[key].genotype for key in keys], pool)
            x, z = np.hstack([x, told]), np.hstack([z, new])
        ranks = np.argsort(np.argsort(np.asarray(scores), kind="stable"), kind="stable")
        y = np.asarray([NormalDist().inv_cdf((r + 0.5) / len(scores)) for r in ranks])
        y = (y - y.mean()) / (y.std() or 1.0)
        if len(y) >= self._refit_at:  # hyperparameters by evidence every few results, reused in between
            self._hyper = max(e for scale in LENGTH_SCALES for e in self._evidence(x, y, scale))[1:]
            self._refit_at = len(y) + max(5, len(y) // 5)
        scale, noise = self._hyper
        values, vectors = np.linalg.eigh(self._gram(x, x, scale))
        values = np.maximum(values, 0.0) + noise
        cross = self._gram(z, x, scale) @ vectors
        mean = cross @ ((vectors.T @ y) / values)
        std = np.sqrt(np.maximum(1.0 - (cross**2 / values).sum(1), 0.0))
        return mean + self.beta * std
