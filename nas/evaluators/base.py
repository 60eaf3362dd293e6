"""Evaluators turn a genotype into metrics. The runner wraps what they return into a ``Result``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nas.core.genotype import Genotype
from nas.core.registry import Registry
from nas.data.base import ArrayDataset, load_dataset

EVALUATORS: Registry = Registry("evaluator", package="nas.evaluators")


@dataclass
class EvalContext:
    """What an evaluation knows besides the genotype: its trial id, seed, and where to report."""

    trial: int = 0
    seed: int = 0
    worker: str = "local"
    report: Callable[[int, dict[str, float]], bool] = field(default=lambda epoch, metrics: False)


class Evaluator(Protocol):
    """``evaluator(genotype, ctx) -> metrics``; raise ``Pruned`` to stop early, anything else fails."""

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]: ...


class LoadsDataset:
    """For evaluators that read data: ``data`` loads ``dataset_options`` (the run's ``dataset`` group) once per
    process and keeps it for every later candidate."""

    dataset_options: dict[str, Any]
    _data: ArrayDataset | None = None
    backends: tuple[str, ...] = ("torch", "jax")  # they get the run's backend (evaluators without it run no network)

    @property
    def data(self) -> ArrayDataset:
        if self._data is None:
            options = dict(self.dataset_options)
            self._data = load_dataset(options.pop("name"), **options)
        return self._data


def make_evaluator(name: str, **options: Any) -> Evaluator:
    """Build the evaluator registered as ``name`` with its options."""
    return EVALUATORS.get(name)(**options)
