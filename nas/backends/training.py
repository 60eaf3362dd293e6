"""What every backend's training loop takes and reports (framework-free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nas.core.cost import MAIN_HEAD  # noqa: F401  (re-exported: the train loops import it from here)

# Called after each epoch with (epoch, metrics); returning True asks the loop to stop (pruned).
Reporter = Callable[[int, dict[str, float]], bool]


@dataclass(frozen=True)
class TrainConfig:
    """Proxy-training recipe: SGD with Nesterov momentum and a cosine schedule (NB201's recipe)."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    seed: int = 0
    max_steps_per_epoch: int | None = None
    eval_batch_size: int = 512
    aux_weight: float = 0.4  # weight of auxiliary heads' losses (NASNet's 0.4); "logits" is the main head



class Pruned(Exception):
    """Raised by a training loop when the reporter asked it to stop early."""

    def __init__(self, epoch: int, metrics: dict[str, float]) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch
        self.metrics = metrics


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator, limit: int | None) -> list[np.ndarray]:
    """Shuffled index batches of one epoch (the last partial batch is dropped, as BN prefers)."""
    order = rng.permutation(n)
    count = max(1, n // batch_size)
    if limit is not None:
        count = min(count, limit)
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(count)]


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine decay from ``base`` to 0 over ``total`` steps."""
    return 0.5 * base * (1.0 + np.cos(np.pi * min(step, total) / max(total, 1)))
