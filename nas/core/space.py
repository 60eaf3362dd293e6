"""``SearchSpace``: decisions (``spec``), how a genotype becomes a network (``decode``), presets.

The generic operators (sample, mutate, crossover, encode, size) work on any space from its spec; a
space overrides them where it has structure. A space's macro settings (channels, cells, input
shape, classes) come from a named preset plus overrides and are stored in every genotype it makes,
so ``decode`` reads them from the genotype and a genotype file rebuilds the exact network.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from nas.core.decisions import Choice, FloatRange, IntRange, SpaceSpec
from nas.core.errors import GenotypeError, UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.core.registry import Registry

SPACES: Registry[type[SearchSpace]] = Registry("space", package="nas.spaces")
PUBLISHED: Registry = Registry("published architecture", package="nas.spaces")


def _rng(seed: int | random.Random | None) -> random.Random:
    return seed if isinstance(seed, random.Random) else random.Random(seed)


class SearchSpace(ABC):
    """Base class of every search space; subclasses set ``name``, ``version``, ``presets``."""

    name: ClassVar[str]
    version: ClassVar[int]
    presets: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    default_preset: ClassVar[str] = "default"
    block_supernet: ClassVar[str | None] = None  # the block-wise supernet it declares (BossNAS), if any

    def __init__(self, preset: str | None = None, **overrides: Any) -> None:
        preset = preset or self.default_preset
        if preset not in self.presets:
            raise UserError(f"unknown preset {preset!r} for space {self.name!r}; "
                            f"valid choices: {', '.join(sorted(self.presets))}")
        base = dict(self.presets[preset])
        unknown = set(overrides) - set(base)
        if unknown:
            raise UserError(f"space {self.name!r} has no macro setting {', '.join(sorted(unknown))}; "
                            f"valid: {', '.join(sorted(base))}")
        self.preset = preset
        self.macro: dict[str, Any] = {**base, **overrides}
        self._spec: SpaceSpec | None = None

    # --- what a space defines -------------------------------------------------------------
    @abstractmethod
    def build_spec(self) -> SpaceSpec:
        """The flat, ordered decisions of this space."""

    @abstractmethod
    def decode(self, genotype: Genotype) -> ArchSpec:
        """The network a genotype describes (using the genotype's own macro settings)."""

    # --- generic operators ------------------------------------------------------------------
    def spec(self) -> SpaceSpec:
        if self._spec is None:
            self._spec = self.build_spec()
        return self._spec

    def make(self, values: Mapping[str, Any]) -> Genotype:
        """A genotype of this space from decision values (ordered as the spec), validated."""
        ordered = {label: values[label] for label in self.spec().labels if label in values}
        extra = set(values) - set(ordered)
        if extra:
            raise GenotypeError(f"space {self.name!r} has no decisions {sorted(extra)}")
        genotype = Genotype.make(self.name, self.version, ordered, self.macro)
        self.validate(genotype)
        return genotype

    def validate(self, genotype: Genotype) -> Genotype:
        """Check space, version and every decision; raise ``GenotypeError`` naming the problem."""
        if genotype.space != self.name:
            raise GenotypeError(f"genotype is from space {genotype.space!r}, not {self.name!r}")
        if genotype.version != self.version:
            raise GenotypeError(f"genotype is from {self.name} version {genotype.version}; "
                                f"this build reads version {self.version}")
        values = genotype.values
        for decision in self.spec():
            active = self.spec().is_active(decision, values)
            if decision.label not in values:
                if active:
                    raise GenotypeError(f"genotype lacks decision {decision.label!r}")
                continue
            if active and not decision.contains(values[decision.label]):
                raise GenotypeError(f"decision {decision.label!r}={values[decision.label]!r} is not one of "
                                    f"{_describe(decision)}")
        unknown = set(values) - set(self.spec().labels)
        if unknown:
            raise GenotypeError(f"space {self.name!r} has no decisions {sorted(unknown)}")
        self.check(genotype)
        return genotype

    def check(self, genotype: Genotype) -> None:
        """Space-specific validity beyond single decisions (override where needed)."""

    def sample(self, seed: int | random.Random | None = None) -> Genotype:
        """A uniformly random genotype (per decision) under ``seed``."""
        rng = _rng(seed)
        values: dict[str, Any] = {}
        for decision in self.spec():
            if self.spec().is_active(decision, values):
                values[decision.label] = decision.sample(rng)
        return self.make(values)

    def mutate(self, genotype: Genotype, seed: int | random.Random | None = None, n: int = 1) -> Genotype:
        """Change ``n`` active decisions to a different value each."""
        rng = _rng(seed)
        values = genotype.values
        for _ in range(n):
            active = [d for d in self.spec() if self.spec().is_active(d, values)
                      and not (isinstance(d, Choice) and d.size < 2)]
            decision = rng.choice(active)
            old = values[decision.label]
            new = old
            while new == old:
                new = decision.sample(rng)
            values[decision.label] = new
            values = self._fill_conditionals(values, rng)
        return self.make(values)

    def crossover(self, a: Genotype, b: Genotype, seed: int | random.Random | None = None) -> Genotype:
        """Uniform crossover: each decision from either parent."""
        rng = _rng(seed)
        va, vb = a.values, b.values
        values = {label: (va if rng.random() < 0.5 else vb).get(label, va.get(label, vb.get(label)))
                  for label in self.spec().labels}
        values = {k: v for k, v in values.items() if v is not None}
        return self.make(self._fill_conditionals(values, rng))

    def _fill_conditionals(self, values: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for decision in self.spec():
            if self.spec().is_active(decision, out):
                value = values.get(decision.label)
                out[decision.label] = value if decision.contains(value) else decision.sample(rng)
        return out

    def encode(self, genotype: Genotype) -> list[float]:
        """A numeric vector: option index for choices, the value for ranges, -1 when inactive."""
        values = genotype.values
        vector: list[float] = []
        for decision in self.spec():
            value = values.get(decision.label)
            if value is None:
                vector.append(-1.0)
            elif isinstance(decision, Choice):
                vector.append(float(decision.index(value)))
            else:
                vector.append(float(value))
        return vector

    def size(self) -> int | None:
        """Number of distinct genotypes for finite spaces without conditions; ``None`` otherwise."""
        total = 1
        for decision in self.spec():
            if isinstance(decision, FloatRange) or decision.condition is not None:
                return None
            total *= decision.size
        return total

    def canonical(self, genotype: Genotype) -> str:
        """A key equal for genotypes that build the same function (isomorphic cells); default: fingerprint."""
        return genotype.fingerprint()

    def describe(self, genotype: Genotype) -> str:
        """A compact human-readable form of a genotype."""
        return str(genotype)


def _describe(decision: Any) -> str:
    if isinstance(decision, Choice):
        return "[" + ", ".join(map(str, decision.options)) + "]"
    if isinstance(decision, IntRange):
        return f"integers {decision.low}..{decision.high}"
    return f"[{decision.low}, {decision.high}]"


def log10_size(space: SearchSpace) -> float:
    """log10 of the number of genotypes (for display of large spaces)."""
    size = space.size()
    return math.log10(size) if size else math.inf
