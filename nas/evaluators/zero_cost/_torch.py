"""The proxies in PyTorch, on a ``TorchNetwork`` run node by node over the main head's plan.

Running the plan (not ``forward``) lets a proxy skip batch norm, watch a rectifier's input or a layer's
output, and ignore heads other than the main one. Every function takes a freshly initialised network
and may change it (weights made absolute, dtype, batch statistics): callers pass a copy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nas.backends.torch.builder import module_key
from nas.core.ir import ArchSpec, Node
from nas.evaluators.zero_cost.graph import Plan, Watch, rectifier_nodes, run, weighted_nodes
from nas.evaluators.zero_cost.linalg import jacob_cov_score, logdet_score


def _weights(model: torch.nn.Module, plan: Plan) -> list[torch.Tensor]:
    return [model.layers[module_key(n.name)].weight for n in weighted_nodes(plan)]


def _grads(out: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(out, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads)]


def synflow(model: torch.nn.Module, arch: ArchSpec, plan: Plan) -> float:
    """``sum |w * dR/dw|`` over conv/linear weights, R = sum of the main head for an all-ones input.

    As the reference: batch norm removed (skipped), every parameter made absolute, float64, one input
    of ones; eval mode so dropout and drop-path are off. The data never enters.
    """
    model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *arch.input_shape), dtype=torch.float64)
    weights = _weights(model, plan)
    if not weights:
        return 0.0
    grads = _grads(run(model, arch, plan, ones, skip_bn=True).sum(), weights)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads)))



def batch_statistics_mode(model: torch.nn.Module) -> None:
    """Train mode (batch norm on the batch's statistics, as the proxies' references score a network) with
    dropout and drop-path off: a score must depend on the architecture and weights, not on a random mask."""
    from nas.backends.torch.ops import DropPath

    model.train()
    for module in model.modules():
        if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout2d, DropPath)):
            module.eval()

def _loss(model: torch.nn.Module, arch: ArchSpec, plan: Plan, x: torch.Tensor, y: torch.Tensor,
          watch: Watch | None = None) -> torch.Tensor:
    batch_statistics_mode(model)
    return F.cross_entropy(run(model, arch, plan, x, watch=watch), y)


def snip(model: torch.nn.Module, arch: ArchSpec, plan: Plan, x: torch.Tensor, y: torch.Tensor) -> float:
    """``sum |w * dL/dw|`` over conv/linear weights; L = cross-entropy of the batch, train mode."""
    weights = _weights(model, plan)
    if not weights:
        return 0.0
    grads = _grads(_loss(model, arch, plan, x, y), weights)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads)))


def grad_norm(model: torch.nn.Module, arch: ArchSpec, plan: Plan, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of ``||dL/dW||_2`` (per-layer norms added, as the reference)."""
    weights = _weights(model, plan)
    if not weights:
        return 0.0
    grads = _grads(_loss(model, arch, plan, x, y), weights)
    return float(sum(g.detach().norm() for g in grads))


def fisher(model: torch.nn.Module, arch: ArchSpec, plan: Plan, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear output channels of ``0.5 * mean_n (sum_space a * dL/da)^2``, train mode."""
    acts: list[torch.Tensor] = []

    def keep(node: Node, ins: list[torch.Tensor], out: torch.Tensor) -> None:
        if node.op in ("conv2d", "linear"):
            acts.append(out)

    loss = _loss(model, arch, plan, x, y, keep)
    if not acts:
        return 0.0
    total = 0.0
    for a, g in zip(acts, _grads(loss, acts)):
        g_nk = (a * g).sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a * g
        total += float(0.5 * g_nk.detach().pow(2).mean(0).sum())
    return total


def jacob_cov(model: torch.nn.Module, arch: ArchSpec, plan: Plan, x: torch.Tensor) -> float:
    """Correlation-spectrum score of the per-example input gradients of the summed main head."""
    batch_statistics_mode(model)
    x = x.clone().requires_grad_(True)
    (jac,) = _grads(run(model, arch, plan, x).sum(), [x])
    return jacob_cov_score(jac.reshape(len(x), -1).numpy())


def naswot(model: torch.nn.Module, arch: ArchSpec, plan: Plan, x: torch.Tensor) -> float:
    """``log |K_H|`` of the batch's binary rectifier codes (input > 0), train-mode batch norm."""
    rectifiers = {n.name for n in rectifier_nodes(plan)}
    kernel = np.zeros((len(x), len(x)))

    def code(node: Node, ins: list[torch.Tensor], out: torch.Tensor) -> None:
        if node.name in rectifiers:
            c = (ins[0] > 0).reshape(len(x), -1).float()
            kernel[...] += (c @ c.T + (1 - c) @ (1 - c).T).double().numpy()

    batch_statistics_mode(model)
    with torch.no_grad():
        run(model, arch, plan, x, watch=code)
    return logdet_score(kernel) if rectifiers else float("-inf")
