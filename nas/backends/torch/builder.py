"""Lower an ``ArchSpec`` into a ``torch.nn.Module`` that runs its DAG."""

from __future__ import annotations

import torch
from torch import nn

from nas.backends.torch.ops import TORCH_OPS
from nas.core.ir import ArchSpec


def module_key(node_name: str) -> str:
    """Node names use dots; torch module names cannot."""
    return node_name.replace(".", "/")


class TorchNetwork(nn.Module):
    """Runs the nodes in order; each value is dropped once its last reader has run.

    ``forward`` returns the tensor of the single output, or a dict of head name -> tensor.
    """

    def __init__(self, arch: ArchSpec) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleDict()
        index = {n.name: i for i, n in enumerate(arch.nodes)}
        readers = arch.consumers()
        remaining = dict(readers)
        plan = []
        for i, node in enumerate(arch.nodes):
            if node.op == "input":
                continue
            key = module_key(node.name)
            self.layers[key] = TORCH_OPS[node.op](arch.in_shapes(node), node.p, node.shape)
            frees = []
            for name in node.inputs:
                remaining[name] -= 1
                if remaining[name] == 0:
                    frees.append(index[name])
            plan.append((key, i, tuple(index[n] for n in node.inputs), tuple(frees)))
        self._plan = plan
        self._inputs = tuple(index[n] for n in arch.inputs)
        self._outputs = tuple((head, index[name]) for head, name in arch.outputs)
        self._size = len(arch.nodes)

    def forward(self, *inputs: torch.Tensor):
        values: list[torch.Tensor | None] = [None] * self._size
        for slot, x in zip(self._inputs, inputs):
            values[slot] = x
        layers = self.layers
        for key, slot, reads, frees in self._plan:
            values[slot] = layers[key](*[values[r] for r in reads])
            for f in frees:
                values[f] = None
        if len(self._outputs) == 1:
            return values[self._outputs[0][1]]
        return {head: values[slot] for head, slot in self._outputs}


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
