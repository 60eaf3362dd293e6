"""Scaling search: the two rules of "Revisiting ResNets" (Bello et al. 2021) as an ask/tell strategy.

The searcher walks a space's (depth, width, resolution) grid from its smallest point. From the best
point told so far it proposes one step up each axis, in the order the rules give: **depth first when
the epoch budget is long** (overfitting can occur: ``epochs >= long_epochs``, default 100), **width
first otherwise**; **resolution grows more slowly** than compound scaling: a resolution step is only
proposed once the depth and width steps taken are at least ``resolution_lag`` times the resolution
steps (``lag * res_index <= depth_index + width_index``). Candidates above ``max_macs`` are skipped,
so the walk stops at the compute budget; candidates are ranked by the told objective (proxy accuracy).

The axes are found by decision label (``depth``/``depth_mult``, ``width_mult``/``width``,
``resolution``); other decisions keep one sampled value (or ``base``). On a space without such axes,
or once the grid within budget is exhausted, it falls back to mutating the best genotype (or sampling).
"""

from __future__ import annotations

import math
from typing import Any

from nas.core.cost import arch_cost
from nas.core.decisions import Choice, IntRange
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.searchers.base import SEARCHERS, Searcher

AXES = {"depth": ("depth", "depth_mult"), "width": ("width_mult", "width"), "resolution": ("resolution",)}
FALLBACK_TRIES = 30

Point = tuple[int, ...]


@SEARCHERS.register("scaling")
class ScalingSearcher(Searcher):
    """Depth-first (long training) or width-first (short training) scaling, slow resolution growth.

    Options: ``max_macs`` (compute budget per candidate, None: unbounded), ``epochs`` and
    ``epochs_regime`` (``auto`` | ``long`` | ``short``; auto: long when ``epochs >= long_epochs``,
    short when ``epochs`` is unset, as proxy training is), ``resolution_lag`` (2) and ``base``
    (fixed values of the other decisions).
    """

    def __init__(self, max_macs: float | None = None, epochs: int | None = None, epochs_regime: str = "auto",
                 long_epochs: int = 100, resolution_lag: int = 2, base: dict[str, Any] | None = None) -> None:
        if epochs_regime not in ("auto", "long", "short"):
            raise ValueError(f"epochs_regime must be auto, long or short, got {epochs_regime!r}")
        if resolution_lag < 1:
            raise ValueError("resolution_lag must be at least 1")
        self.max_macs = None if max_macs is None else float(max_macs)
        self.epochs = None if epochs is None else int(epochs)
        self.epochs_regime = epochs_regime
        self.long_epochs = int(long_epochs)
        self.resolution_lag = int(resolution_lag)
        self.base = dict(base or {})

    @property
    def regime(self) -> str:
        """``long`` (scale depth first) or ``short`` (scale width first)."""
        if self.epochs_regime != "auto":
            return self.epochs_regime
        return "long" if self.epochs is not None and self.epochs >= self.long_epochs else "short"

    def setup(self, space, seed=0, objective=None) -> None:
        super().setup(space, seed, objective)
        spec = space.spec()
        self.axes: dict[str, tuple[str, tuple[Any, ...]]] = {}
        for axis, labels in AXES.items():
            for label in labels:
                values = _numeric_options(spec[label]) if label in spec.labels else None
                if values and len(values) > 1:
                    self.axes[axis] = (label, values)
                    break
        first = ["depth", "width"] if self.regime == "long" else ["width", "depth"]
        self.order = [a for a in (*first, "resolution") if a in self.axes]
        unknown = set(self.base) - set(spec.labels)
        if unknown:
            raise UserError(f"scaling searcher: base names unknown decisions {sorted(unknown)}")
        self.others = {**space.sample(self.rng).values, **self.base}
        self.proposed: dict[Point, Genotype | None] = {}
        self.scores: dict[Point, float] = {}
        self.results: dict[Point, Genotype] = {}
        self._macs: dict[str, int] = {}

    # --- grid ------------------------------------------------------------------------------------
    def _index(self, axis: str, point: Point) -> int:
        return point[self.order.index(axis)] if axis in self.order else 0

    def point_of(self, genotype: Genotype) -> Point | None:
        """The grid point of a genotype, or None when its axis values are off the grid."""
        values = genotype.values
        point = []
        for axis in self.order:
            label, options = self.axes[axis]
            if values.get(label) not in options:
                return None
            point.append(options.index(values[label]))
        return tuple(point)

    def genotype_at(self, point: Point) -> Genotype:
        """The genotype of a grid point, other decisions at their base values."""
        values = dict(self.others)
        for axis, i in zip(self.order, point):
            label, options = self.axes[axis]
            values[label] = options[i]
        spec = self.space.spec()
        ordered: dict[str, Any] = {}
        for decision in spec:
            if spec.is_active(decision, ordered):
                value = values.get(decision.label)
                ordered[decision.label] = value if decision.contains(value) else decision.sample(self.rng)
        return self.space.make(ordered)

    def macs(self, genotype: Genotype) -> int:
        """Multiply-accumulates of a genotype (cached by fingerprint)."""
        key = genotype.fingerprint()
        if key not in self._macs:
            self._macs[key] = arch_cost(self.space.decode(genotype))["macs"]
        return self._macs[key]

    def fits(self, genotype: Genotype) -> bool:
        return self.max_macs is None or self.macs(genotype) <= self.max_macs

    def neighbours(self, point: Point) -> list[Point]:
        """One step up each axis in rule order; resolution only when depth and width lead it enough."""
        steps = []
        for k, axis in enumerate(self.order):
            if point[k] + 1 >= len(self.axes[axis][1]):
                continue
            step = point[:k] + (point[k] + 1,) + point[k + 1:]
            if axis != "resolution" or self.lagging(step):
                steps.append(step)
        return steps

    def _next_point(self) -> Point | None:
        """The first untried step from the best told point (then the next best, then points in flight)."""
        if not self.proposed:
            return tuple(0 for _ in self.order)
        told = sorted((p for p in self.scores if math.isfinite(self.scores[p])), key=lambda p: -self.scores[p])
        waiting = [p for p in reversed(self.proposed) if p not in self.scores and self.proposed[p] is not None]
        for source in told + waiting:
            for point in self.neighbours(source):
                if point not in self.proposed:
                    return point
        return None

    # --- ask/tell ----------------------------------------------------------------------------------
    def ask(self) -> Genotype | None:
        while self.order:
            point = self._next_point()
            if point is None:
                break
            genotype = self.genotype_at(point)
            self.proposed[point] = genotype if self.fits(genotype) else None
            if self.proposed[point] is not None:
                return genotype
        return self._fallback()

    def _fallback(self) -> Genotype | None:
        """Past the rule-guided walk: mutate the best genotype told (or sample) within the budget.

        Preference: a new grid point that keeps resolution behind (the lag rule), then any new
        candidate, then any candidate within the budget; None when nothing fits the budget.
        """
        best = max(self.scores, key=lambda p: self.scores[p], default=None)
        parent = self.results.get(best) if best is not None else None
        ranked: list[tuple[int, int, Genotype]] = []
        for k in range(FALLBACK_TRIES):
            child = self.space.mutate(parent, self.rng) if parent is not None else self.space.sample(self.rng)
            if not self.fits(child):
                continue
            point = self.point_of(child) if self.order else None
            new = point is None or point not in self.proposed
            rank = 0 if new and point is not None and self.lagging(point) else (1 if new else 2)
            if rank == 0:
                return child
            ranked.append((rank, k, child))
        return min(ranked, key=lambda r: r[:2])[2] if ranked else None

    def lagging(self, point: Point) -> bool:
        """Whether a point keeps resolution behind depth and width (the second rule)."""
        if "resolution" not in self.order or len(self.order) == 1:
            return True
        grown = self._index("depth", point) + self._index("width", point)
        return self.resolution_lag * self._index("resolution", point) <= grown

    def tell(self, genotype: Genotype, result: Result) -> None:
        super().tell(genotype, result)
        point = self.point_of(genotype) if self.order else ()
        if point is None:
            return
        score = self.objective.score(result)
        self.proposed.setdefault(point, genotype)
        if point not in self.scores or score > self.scores[point]:
            self.scores[point] = score
            self.results[point] = genotype

    def trajectory(self) -> list[dict[str, Any]]:
        """Told grid points with their axis values, MACs and score (best first)."""
        rows = []
        for point, score in sorted(self.scores.items(), key=lambda kv: -kv[1]):
            genotype = self.results[point]
            rows.append({**{self.axes[a][0]: self.axes[a][1][i] for a, i in zip(self.order, point)},
                         "macs": self.macs(genotype), "score": score})
        return rows


def _numeric_options(decision: Any) -> tuple[Any, ...] | None:
    """Ascending options of a numeric choice or integer range; None for anything else."""
    if isinstance(decision, IntRange):
        return tuple(range(decision.low, decision.high + 1, decision.step))
    if isinstance(decision, Choice) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in decision.options):
        return tuple(sorted(decision.options))
    return None
