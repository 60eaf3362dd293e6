"""LARS (You et al. 2017), the optimiser of the released BossNAS search, with a trust ratio on every tensor.

Per tensor the step is ``lr * trust * (g + wd * w)`` with ``trust = eta * |w| / (|g| + wd * |w|)``, then
heavy-ball momentum, so each step moves a tensor by about ``lr * eta`` of its norm. The released config
exempts BN and bias tensors (plain ``lr * g`` steps); measured here, that is where the predictor collapses at
small batches: its output bias takes raw steps of the 1/|q|-scaled cosine-loss gradient and grows to norm
~130 in 40 steps. So every tensor gets a trust ratio, and a tensor whose norm is zero (a bias at its zero
initialisation) moves by ``lr * eta`` in norm, as a tensor of unit norm would.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class LARS(torch.optim.Optimizer):
    """LARS with momentum and a trust ratio on every tensor (see the module docstring)."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001) -> None:
        if lr < 0 or eta <= 0 or weight_decay < 0:
            raise ValueError(f"LARS needs lr >= 0, eta > 0, weight_decay >= 0; got {lr}, {eta}, {weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's Optimizer signature
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                scale = torch.where(w_norm > 0, w_norm, torch.ones_like(w_norm))
                trust = torch.where(g_norm > 0, group["eta"] * scale / g_norm, torch.zeros_like(g_norm))
                update = g * (group["lr"] * trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = update.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.sub_(state["momentum_buffer"])
        return loss
