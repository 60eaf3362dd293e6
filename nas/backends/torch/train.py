"""Train and evaluate a torch network on an ``ArrayDataset``: the loop of the ``train`` evaluator."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from nas.backends.torch.builder import build
from nas.backends.torch.device import torch_device
from nas.backends.torch.schedules import set_drop_path_progress
from nas.backends.training import MAIN_HEAD, Pruned, Reporter, TrainConfig, cosine_lr, epoch_batches
from nas.core.ir import ArchSpec
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


def main_output(out: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """The main head of a network's output (the tensor itself for single-head networks)."""
    return out[MAIN_HEAD] if isinstance(out, dict) else out


def loss_of(out: torch.Tensor | dict[str, torch.Tensor], y: torch.Tensor, aux_weight: float) -> torch.Tensor:
    """Cross-entropy of the main head plus ``aux_weight`` times that of every auxiliary head."""
    if not isinstance(out, dict):
        return nn.functional.cross_entropy(out, y)
    loss = nn.functional.cross_entropy(out[MAIN_HEAD], y)
    for head, logits in out.items():
        if head != MAIN_HEAD:
            loss = loss + aux_weight * nn.functional.cross_entropy(logits, y)
    return loss


def train(arch: ArchSpec, data: ArrayDataset, config: TrainConfig, report: Reporter | None = None,
          device: str = "cpu") -> dict[str, float]:
    """Train from scratch under ``config.seed``; per-epoch validation accuracy goes to ``report``.

    Auxiliary heads add ``config.aux_weight`` times their loss; drop-path modules get the training
    progress (step / total steps) before each step, for scheduled drop-path. Returns the final
    ``valid_accuracy``, ``test_accuracy``, ``train_loss`` and ``steps_per_second``; raises ``Pruned``
    when the reporter asks to stop.
    """
    device = torch_device(device)
    torch.manual_seed(config.seed)
    model = build(arch, seed=config.seed).to(device)
    params_decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    params_other = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": params_decay, "weight_decay": config.weight_decay},
                                 {"params": params_other, "weight_decay": 0.0}],
                                lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    rng = np.random.default_rng(config.seed)
    train_x = torch.from_numpy(data.train_x)
    train_y = torch.from_numpy(data.train_y)
    steps_per_epoch = len(epoch_batches(len(data.train_x), config.batch_size, rng, config.max_steps_per_epoch))
    total = steps_per_epoch * config.epochs
    step, train_seconds, loss_sum = 0, 0.0, 0.0
    has_drop_path = any(n.op == "drop_path" for n in arch.nodes)
    metrics: dict[str, float] = {}
    for epoch in range(1, config.epochs + 1):
        model.train()
        start = time.perf_counter()
        loss_sum, batches = 0.0, 0
        for idx in epoch_batches(len(data.train_x), config.batch_size, rng, config.max_steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(config.lr, step, total)
            if has_drop_path:
                set_drop_path_progress(model, step / max(total, 1))
            index = torch.from_numpy(idx)
            xb, yb = train_x[index].to(device), train_y[index].to(device)
            loss = loss_of(model(xb), yb, config.aux_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach())
            batches += 1
            step += 1
        train_seconds += time.perf_counter() - start
        metrics = {"train_loss": loss_sum / max(batches, 1),
                   "valid_accuracy": accuracy(model, data.valid_x, data.valid_y, config.eval_batch_size, device)}
        if report is not None and report(epoch, dict(metrics)):
            raise Pruned(epoch, metrics)
    metrics["test_accuracy"] = accuracy(model, data.test_x, data.test_y, config.eval_batch_size, device)
    metrics["steps_per_second"] = step / max(train_seconds, 1e-9)
    return metrics
