"""Lower an ``ArchSpec`` into a ``torch.nn.Module`` that runs its DAG."""

from __future__ import annotations

import torch
from torch import nn

from nas.backends.torch.ops import TORCH_OPS
from nas.core.cost import aux_only_nodes, is_aux_head
from nas.core.ir import ArchSpec


def module_key(node_name: str) -> str:
    """Node names use dots; torch module names cannot."""
    return node_name.replace(".", "/")


def _schedule(arch: ArchSpec, skip: set[str], outputs: tuple[tuple[str, str], ...]) -> list[tuple]:
    """(module key, slot, input slots, slots freed after it) for each node not in ``skip``, in order."""
    index = {n.name: i for i, n in enumerate(arch.nodes)}
    remaining = {n.name: 0 for n in arch.nodes}
    for n in arch.nodes:
        if n.name not in skip:
            for i in n.inputs:
                remaining[i] += 1
    for _, name in outputs:
        remaining[name] += 1
    plan = []
    for i, node in enumerate(arch.nodes):
        if node.op == "input" or node.name in skip:
            continue
        frees = []
        for name in node.inputs:
            remaining[name] -= 1
            if remaining[name] == 0:
                frees.append(index[name])
        plan.append((module_key(node.name), i, tuple(index[n] for n in node.inputs), tuple(frees)))
    return plan


class TorchNetwork(nn.Module):
    """Runs the nodes in order; each value is dropped once its last reader has run.

    ``forward`` returns the tensor of the single output, or a dict of head name -> tensor. Auxiliary
    heads (``aux*``, e.g. NASNet's) serve training only: in eval mode their nodes are not run and the
    dict holds the other heads.
    """

    def __init__(self, arch: ArchSpec) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleDict()
        for node in arch.nodes:
            if node.op != "input":
                self.layers[module_key(node.name)] = TORCH_OPS[node.op](arch.in_shapes(node), node.p, node.shape)
        index = {n.name: i for i, n in enumerate(arch.nodes)}
        self._plan = _schedule(arch, set(), arch.outputs)
        kept = tuple((head, name) for head, name in arch.outputs if not is_aux_head(arch, head))
        has_aux = bool(kept) and len(kept) < len(arch.outputs)
        self._eval_plan = _schedule(arch, aux_only_nodes(arch), kept) if has_aux else None
        self._inputs = tuple(index[n] for n in arch.inputs)
        self._outputs = tuple((head, index[name]) for head, name in arch.outputs)
        self._eval_outputs = tuple((head, index[name]) for head, name in kept)
        self._size = len(arch.nodes)

    def forward(self, *inputs: torch.Tensor):
        plan, outputs = self._plan, self._outputs
        if not self.training and self._eval_plan is not None:
            plan, outputs = self._eval_plan, self._eval_outputs
        values: list[torch.Tensor | None] = [None] * self._size
        for slot, x in zip(self._inputs, inputs):
            values[slot] = x
        layers = self.layers
        for key, slot, reads, frees in plan:
            values[slot] = layers[key](*[values[r] for r in reads])
            for f in frees:
                values[f] = None
        if len(self._outputs) == 1:
            return values[outputs[0][1]]
        return {head: values[slot] for head, slot in outputs}


def build(arch: ArchSpec, seed: int | None = None) -> TorchNetwork:
    """A fresh ``TorchNetwork`` for ``arch`` (weights drawn under ``seed`` when given)."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return TorchNetwork(arch)
    return TorchNetwork(arch)


def count_params(module: nn.Module) -> int:
    """Learnable scalars of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
