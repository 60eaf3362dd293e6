"""The decisions a search space is made of: what an algorithm sees and varies.

Each decision is frozen, JSON-able and knows which values it admits. A ``SpaceSpec`` is the flat,
ordered list of them; conditional decisions name the decision and values that activate them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Union

Scalar = Union[int, float, str, bool]


@dataclass(frozen=True)
class Condition:
    """The decision is active only when decision ``label`` takes one of ``values``."""

    label: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of options (ops, input indices, kernel sizes ...)."""

    label: str
    options: tuple[Scalar, ...]
    condition: Condition | None = None

    def contains(self, value: Any) -> bool:
        return value in self.options

    def sample(self, rng: random.Random) -> Scalar:
        return rng.choice(self.options)

    def index(self, value: Scalar) -> int:
        return self.options.index(value)

    @property
    def size(self) -> int:
        return len(self.options)


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` (inclusive), optionally stepped."""

    label: str
    low: int
    high: int
    step: int = 1
    condition: Condition | None = None

    def contains(self, value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
                and (value - self.low) % self.step == 0)

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(self.low, self.high + 1, self.step)

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1


@dataclass(frozen=True)
class FloatRange:
    """A float in ``[low, high]``; ``log=True`` samples uniformly in log space."""

    label: str
    low: float
    high: float
    log: bool = False
    condition: Condition | None = None

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    @property
    def size(self) -> float:
        return math.inf


Decision = Union[Choice, IntRange, FloatRange]


@dataclass(frozen=True)
class SpaceSpec:
    """The flat, ordered, labelled decisions of a space; what black-box algorithms see."""

    decisions: tuple[Decision, ...]
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        labels = tuple(d.label for d in self.decisions)
        if len(set(labels)) != len(labels):
            raise ValueError("decision labels must be unique")
        object.__setattr__(self, "labels", labels)

    def __getitem__(self, label: str) -> Decision:
        return self.decisions[self.labels.index(label)]

    def __iter__(self):
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def is_active(self, decision: Decision, values: dict[str, Scalar]) -> bool:
        """Whether a conditional decision is active given the values chosen so far."""
        cond = decision.condition
        return cond is None or values.get(cond.label) in cond.values
