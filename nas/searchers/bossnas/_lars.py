"""LARS (You et al. 2017), the optimiser of the released BossNAS search (OpenSelfSup's ``LARS``).

Per parameter tensor, the step is ``lr * trust * (g + wd * w)`` with ``trust = eta * |w| / (|g| + wd * |w|)``,
then heavy-ball momentum; BN and bias tensors (``exclude``) take plain ``lr`` steps without weight decay, as
the released config's ``lars_exclude``. The trust ratio bounds each step to about ``lr * eta`` of the
tensor's norm, which matters here: BYOL's cosine loss gives gradients of size 1/|q|, and the predictor's
outputs start tiny (normal(0, 0.01) weights), so plain SGD takes huge first steps and the predictor
collapses to one constant direction (measured: every prediction within cos 0.9999 of one vector).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class LARS(torch.optim.Optimizer):
    """LARS with momentum; a param group with ``exclude=True`` skips the trust ratio and weight decay."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001, exclude: bool = False) -> None:
        if lr < 0 or eta <= 0 or weight_decay < 0:
            raise ValueError(f"LARS needs lr >= 0, eta > 0, weight_decay >= 0; got {lr}, {eta}, {weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                                  "exclude": exclude})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's Optimizer signature
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["exclude"]:
                    update = g * group["lr"]
                else:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    denominator = g_norm + group["weight_decay"] * w_norm
                    trust = torch.where((w_norm > 0) & (denominator > 0), group["eta"] * w_norm / denominator,
                                        torch.ones_like(w_norm))
                    update = (g + group["weight_decay"] * p) * (group["lr"] * trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = update.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.sub_(state["momentum_buffer"])
        return loss
