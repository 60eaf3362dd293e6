"""Train and evaluate a torch network on an ``ArrayDataset`` under a recipe (``TrainConfig``).

The one torch training loop: the ``train`` evaluator calls it for proxy training, ``nas train`` with a
recipe and a ``Checkpointer`` (a training directory) that keeps the loop's whole state after every epoch,
so a killed run continues exactly where the last finished epoch left it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from nas.backends.torch.augment import BatchAugment
from nas.backends.torch.builder import build
from nas.backends.torch.device import torch_device
from nas.backends.torch.schedules import set_drop_path_progress
from nas.backends.training import (
    BN_CALIBRATION_IMAGES,
    MAIN_HEAD,
    Checkpointer,
    Pruned,
    Reporter,
    TrainConfig,
    bn_stats_stale,
    check_loss,
    epoch_batches,
    learning_rate,
    steps_per_epoch,
)
from nas.core.ir import AUX_CLASSIFIER, ArchSpec
from nas.data.base import ArrayDataset


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int, device: str = "cpu") -> float:
    """Top-1 accuracy in percent, eval mode, no gradients."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[i:i + batch_size]).to(device)
            logits = main_output(model(xb))
            correct += int((logits.argmax(1).cpu().numpy() == y[i:i + batch_size]).sum())
    return 100.0 * correct / max(len(x), 1)


def calibrate_stale_bn(model: nn.Module, train_x: np.ndarray, steps: int, batch_size: int,
                       device: str | torch.device = "cpu") -> bool:
    """Recompute the BN running statistics on the first training images when ``bn_stats_stale`` says the
    running ones still hold their initial values (torch's ``update_bn``); whether it did."""
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bn_stats_stale(momenta, steps):
        return False
    images = train_x[:BN_CALIBRATION_IMAGES]
    batches = [torch.from_numpy(images[i:i + batch_size]).to(device) for i in range(0, len(images), batch_size)]
    with torch.no_grad():
        update_bn(batches, model)
    return True


def main_output(out: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """The main head of a network's output (the tensor itself for single-head networks)."""
    return out[MAIN_HEAD] if isinstance(out, dict) else out


def loss_of(out: torch.Tensor | dict[str, torch.Tensor], y: torch.Tensor, aux_weight: float,
            label_smoothing: float = 0.0, aux_heads: Collection[str] = ()) -> torch.Tensor:
    """Cross-entropy of the main head plus ``aux_weight`` times that of each head in ``aux_heads`` (the
    arch's ``aux_classifier`` heads: classifiers of the same labels); other heads add nothing."""
    def ce(logits: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, y, label_smoothing=label_smoothing)

    if not isinstance(out, dict):
        return ce(out)
    loss = ce(out[MAIN_HEAD])
    for head in aux_heads:
        loss = loss + aux_weight * ce(out[head])
    return loss


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The recipe's optimiser; weight decay only on tensors with ``ndim > 1`` (not BN or biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    if config.optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=config.lr, rho=0.9, eps=1e-3)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0)


def _rng_state(rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    state = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any], device: torch.device) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(arch: ArchSpec, data: ArrayDataset, config: TrainConfig, report: Reporter | None = None,
          device: str = "cpu", checkpoint: Checkpointer | None = None,
          model: nn.Module | None = None) -> dict[str, float]:
    """Train from scratch under ``config.seed``; per-epoch metrics go to ``report`` and ``checkpoint``.

    Auxiliary classifiers (heads with role ``aux_classifier``) add ``config.aux_weight`` times their loss, other
    extra heads nothing; scheduled drop-path modules get the training progress (step / total steps) before each
    step; constant ones keep their rate. With a ``checkpoint`` that holds a saved state the loop continues
    after its epoch. ``model``, when given, is the network to train (built from ``arch`` under the seed
    otherwise), so the caller keeps the trained weights. Returns the final
    ``valid_accuracy``, ``test_accuracy``, ``train_loss``, ``train_accuracy`` and ``steps_per_second``;
    raises ``Pruned`` when the reporter asks to stop.
    """
    device = torch_device(device)
    torch.manual_seed(config.seed)
    model = (model if model is not None else build(arch, seed=config.seed)).to(device)
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    augment = BatchAugment(config.augment, data.train_x).to(device) if config.augment.active else None
    train_x, train_y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    per_epoch = steps_per_epoch(len(data.train_x), config)
    total = per_epoch * config.epochs
    has_drop_path = any(n.op == "drop_path" and n.p["scheduled"] for n in arch.nodes)
    aux_heads = arch.heads_with_role(AUX_CLASSIFIER)
    first_epoch, step, train_seconds = 1, 0, 0.0
    metrics: dict[str, float] = {}
    saved = checkpoint.restore() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        _set_rng_state(rng, saved["rng"], device)
        first_epoch, step, train_seconds = saved["epoch"] + 1, saved["step"], saved["train_seconds"]
        metrics = dict(saved["metrics"])
    for epoch in range(first_epoch, config.epochs + 1):
        model.train()
        start = time.perf_counter()
        loss_sum, correct, seen, batches = 0.0, 0, 0, 0
        for idx in epoch_batches(len(data.train_x), config.batch_size, rng, config.max_steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, per_epoch)
            if has_drop_path:
                set_drop_path_progress(model, step / max(total, 1))
            index = torch.from_numpy(idx)
            xb, yb = train_x[index].to(device), train_y[index].to(device)
            if augment is not None:
                xb = augment(xb)
            out = model(xb)
            loss = loss_of(out, yb, config.aux_weight, config.label_smoothing, aux_heads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            value = float(loss.detach())
            check_loss(value, epoch, step)
            loss_sum += value
            correct += int((main_output(out).detach().argmax(1) == yb).sum())
            seen += len(idx)
            batches += 1
            step += 1
        seconds = time.perf_counter() - start
        train_seconds += seconds
        calibrate_stale_bn(model, data.train_x, step, config.eval_batch_size, device)
        metrics = {"train_loss": loss_sum / max(batches, 1), "train_accuracy": 100.0 * correct / max(seen, 1),
                   "valid_accuracy": accuracy(model, data.valid_x, data.valid_y, config.eval_batch_size, device)}
        if checkpoint is not None:
            state = {"epoch": epoch, "step": step, "train_seconds": train_seconds, "metrics": metrics,
                     "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "rng": _rng_state(rng, device)}
            checkpoint.save(epoch, state, {**metrics, "lr": learning_rate(config, max(step - 1, 0), per_epoch),
                                           "seconds": seconds})
        if report is not None and report(epoch, dict(metrics)):
            raise Pruned(epoch, metrics)
    metrics["test_accuracy"] = accuracy(model, data.test_x, data.test_y, config.eval_batch_size, device)
    metrics["steps_per_second"] = step / max(train_seconds, 1e-9)
    return metrics
