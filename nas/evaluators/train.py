"""The ``train`` evaluator: train a candidate for a few epochs with the chosen backend.

Reports per-epoch validation accuracy (through ``ctx.report``, which may prune), then the final
``valid_accuracy``, ``test_accuracy``, ``params``, ``macs``, ``train_seconds`` and steps/s.
"""

from __future__ import annotations

import time
from typing import Any

from nas.backends import get_backend
from nas.backends.training import TrainConfig
from nas.core.cost import arch_cost
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.evaluators.base import EVALUATORS, EvalContext, LoadsDataset
from nas.spaces.resolve import space_of


def _number(key: str, value: Any, kind: type, minimum: float, strict: bool = False) -> Any:
    """``value`` as ``kind`` (int or float), at least ``minimum`` (above it when ``strict``); else a one-line
    ``UserError`` naming ``evaluator.<key>``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if ok and (value > minimum if strict else value >= minimum):
        return kind(value)
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    raise UserError(f"evaluator.{key} must be {'an integer' if kind is int else 'a number'} {bound}, got {value!r}")


@EVALUATORS.register("train")
class TrainEvaluator(LoadsDataset):
    """Proxy training from scratch; the dataset is loaded once per process and reused."""

    reports_epochs = True  # per-epoch metrics go to ctx.report (a searcher's pruner may stop the trial)

    def __init__(self, backend: str = "torch", dataset: dict[str, Any] | None = None, epochs: int = 3,
                 batch_size: int = 128, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 max_steps_per_epoch: int | None = None, device: str | None = None, threads: int | None = None,
                 **_: object) -> None:
        self.backend_name = backend
        self.backend = get_backend(backend)
        self.dataset_options = dict(dataset or {"name": "digits"})
        self.recipe = dict(epochs=_number("epochs", epochs, int, 1),
                           batch_size=_number("batch_size", batch_size, int, 1),
                           lr=_number("lr", lr, float, 0.0, strict=True),
                           momentum=_number("momentum", momentum, float, 0.0),
                           weight_decay=_number("weight_decay", weight_decay, float, 0.0),
                           max_steps_per_epoch=None if max_steps_per_epoch is None
                           else _number("max_steps_per_epoch", max_steps_per_epoch, int, 1))
        self.device = device
        self.threads = threads

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]:
        arch = space_of(genotype).decode(genotype)
        config = TrainConfig(seed=ctx.seed, **self.recipe)
        if self.threads and self.backend_name == "torch":
            import torch

            torch.set_num_threads(int(self.threads))
        start = time.perf_counter()
        kwargs = {"device": self.device} if self.device else {}
        metrics = self.backend.train(arch, self.data, config, ctx.report, **kwargs)
        metrics["train_seconds"] = time.perf_counter() - start
        metrics.update(arch_cost(arch))
        return metrics
