"""What every backend's training loop takes and reports (framework-free): the recipe and its schedules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nas.core.cost import MAIN_HEAD  # noqa: F401  (re-exported: the train loops import it from here)

# Called after each epoch with (epoch, metrics); returning True asks the loop to stop (pruned).
Reporter = Callable[[int, dict[str, float]], bool]

OPTIMIZERS = ("sgd", "adamw", "adadelta")
BN_CALIBRATION_IMAGES = 1024  # training images whose BN statistics replace stale running ones before evaluating
BN_STALE_WEIGHT = 0.01


def bn_stats_stale(momenta: Iterable[float | None], steps: int) -> bool:
    """Whether a network's running BN statistics after ``steps`` training steps still hold more than 1% of their
    initial 0 / 1: a slow momentum (FBNet's 0.003, NASNet-ImageNet's 3e-4) over a short proxy training. Evaluated
    with them, a network that fits its training data scores at chance (fbnetv3, 2 epochs on digits: 79.6%
    training, 10.1% validation accuracy), so the loops then recompute them on the first
    ``BN_CALIBRATION_IMAGES`` training images (cumulative average, train mode) before each evaluation. A
    momentum of 0.1 passes the threshold after 44 steps, so the usual trainings are left as they are."""
    return any(m is not None and (1.0 - m) ** steps > BN_STALE_WEIGHT for m in momenta)
SCHEDULES = ("cosine", "step", "constant")


@dataclass(frozen=True)
class Augment:
    """Batch data augmentation of a recipe (applied by the backend on the training device).

    ``crop_padding``: random crop of the input size after zero-padding every side by this many pixels;
    ``flip``: horizontal flip with p=0.5; ``cutout``: side in pixels of one zeroed square per image (DeVries &
    Taylor), 0 = off; ``erasing``: random-erasing probability (Zhong et al.), 0 = off; ``color_jitter``:
    brightness/contrast/saturation strength, 0 = off; ``randaugment_layers``/``randaugment_magnitude``:
    RandAugment (Cubuk et al.) with that many ops per image at that magnitude (0-30 scale), 0 = off.
    """

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0
    erasing: float = 0.0
    color_jitter: float = 0.0
    randaugment_layers: int = 0
    randaugment_magnitude: int = 10

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout or self.erasing or self.color_jitter
                    or self.randaugment_layers)


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. The defaults are the proxy recipe of the ``train`` evaluator: SGD with Nesterov
    momentum and a per-step cosine schedule (NB201's recipe), no augmentation."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    seed: int = 0
    max_steps_per_epoch: int | None = None
    eval_batch_size: int = 512
    aux_weight: float = 0.4  # loss weight of aux_classifier heads (NASNet's 0.4); "logits" is the main head
    optimizer: str = "sgd"  # sgd | adamw | adadelta
    schedule: str = "cosine"  # cosine | step | constant, per step
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs
    min_lr: float = 0.0  # the cosine schedule's floor
    milestones: tuple[int, ...] = ()  # step schedule: epochs after which the rate is multiplied by ``gamma``
    gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # clip the global gradient norm to this
    augment: Augment = field(default_factory=Augment)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if isinstance(self.augment, dict):
            object.__setattr__(self, "augment", Augment(**self.augment))
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))


class Pruned(Exception):
    """Raised by a training loop when the reporter asked it to stop early."""

    def __init__(self, epoch: int, metrics: dict[str, float]) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch
        self.metrics = metrics


class NonFiniteLoss(FloatingPointError):
    """Raised by a training loop whose loss became NaN or infinite: the candidate diverged (a failed trial)."""


def check_loss(loss: float, epoch: int, step: int) -> None:
    """Raise ``NonFiniteLoss`` when ``loss`` is NaN or infinite (``step``: the optimiser step, from 0)."""
    if not math.isfinite(loss):
        raise NonFiniteLoss(f"training loss is {loss} at epoch {epoch}, step {step}: the candidate diverged")


class Checkpointer(Protocol):
    """Where a training loop keeps its state between epochs (a training directory, ``nas.training``)."""

    def restore(self) -> dict[str, Any] | None:
        """The loop state saved after the last finished epoch, or None to start from scratch."""

    def save(self, epoch: int, state: dict[str, Any], metrics: dict[str, float]) -> None:
        """Keep ``state`` (everything the loop needs to continue) and this epoch's ``metrics``."""


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator, limit: int | None) -> list[np.ndarray]:
    """Shuffled index batches of one epoch (the last partial batch is dropped, as BN prefers)."""
    order = rng.permutation(n)
    count = max(1, n // batch_size)
    if limit is not None:
        count = min(count, limit)
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(count)]


def steps_per_epoch(n: int, config: TrainConfig) -> int:
    """Optimiser steps in one epoch of ``n`` training images under ``config``."""
    count = max(1, n // config.batch_size)
    return count if config.max_steps_per_epoch is None else min(count, config.max_steps_per_epoch)


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine decay from ``base`` to 0 over ``total`` steps."""
    return 0.5 * base * (1.0 + np.cos(np.pi * min(step, total) / max(total, 1)))


def learning_rate(config: TrainConfig, step: int, per_epoch: int) -> float:
    """The recipe's learning rate at optimiser step ``step`` (linear warm-up, then the schedule)."""
    total = per_epoch * config.epochs
    warmup = int(round(config.warmup_epochs * per_epoch))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        epoch = step // max(per_epoch, 1)
        return config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)
    progress = min(step - warmup, total - warmup) / max(total - warmup, 1)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + math.cos(math.pi * progress))
