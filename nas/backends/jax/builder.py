"""Lower an ``ArchSpec`` into a Flax NNX module that runs its DAG (NCHW, like the torch backend)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import nnx

from nas.backends.jax.ops import JAX_OPS
from nas.core.ir import ArchSpec


def module_key(node_name: str) -> str:
    """The same key the torch backend uses for a node (dots become slashes)."""
    return node_name.replace(".", "/")


class JaxNetwork(nnx.Module):
    """Runs the nodes in order; each value is dropped once its last reader has run.

    ``__call__`` returns the array of the single output, or a dict of head name -> array.
    ``train()`` / ``eval()`` switch batch norm and dropout between batch and running behaviour.
    """

    def __init__(self, arch: ArchSpec, rng: np.random.Generator) -> None:
        self.arch = arch
        layers: dict[str, nnx.Module] = {}
        index = {n.name: i for i, n in enumerate(arch.nodes)}
        remaining = dict(arch.consumers())
        plan = []
        for i, node in enumerate(arch.nodes):
            if node.op == "input":
                continue
            key = module_key(node.name)
            layers[key] = JAX_OPS[node.op](arch.in_shapes(node), node.p, node.shape, rng)
            frees = []
            for name in node.inputs:
                remaining[name] -= 1
                if remaining[name] == 0:
                    frees.append(index[name])
            plan.append((key, i, tuple(index[n] for n in node.inputs), tuple(frees)))
        self.layers = nnx.Dict(layers)
        self._plan = tuple(plan)
        self._inputs = tuple(index[n] for n in arch.inputs)
        self._outputs = tuple((head, index[name]) for head, name in arch.outputs)
        self._size = len(arch.nodes)

    def __call__(self, *inputs: jax.Array) -> jax.Array | dict[str, jax.Array]:
        values: list[jax.Array | None] = [None] * self._size
        for slot, x in zip(self._inputs, inputs):
            values[slot] = x
        for key, slot, reads, frees in self._plan:
            values[slot] = self.layers[key](*[values[r] for r in reads])
            for f in frees:
                values[f] = None
        if len(self._outputs) == 1:
            return values[self._outputs[0][1]]
        return {head: values[slot] for head, slot in self._outputs}


def build(arch: ArchSpec, seed: int = 0) -> JaxNetwork:
    """A fresh ``JaxNetwork`` for ``arch`` in train mode, weights drawn under ``seed``."""
    return JaxNetwork(arch, np.random.default_rng(seed))


def count_params(module: nnx.Module) -> int:
    """Learnable scalars (``nnx.Param``) of an NNX module; batch statistics are not counted."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(module, nnx.Param))))


def load_torch_weights(jax_module: JaxNetwork, torch_module: Any) -> JaxNetwork:
    """Copy every parameter and buffer of a ``TorchNetwork`` into ``jax_module`` by node name.

    Torch keys are ``layers.<module_key>.<name>``; each must exist in the NNX module with the same
    shape, and every NNX parameter and batch statistic must be covered. Returns ``jax_module``.
    """
    filled: set[tuple[str, str]] = set()
    for full_key, tensor in torch_module.state_dict().items():
        prefix, rest = full_key.split(".", 1)
        key, name = rest.rsplit(".", 1)
        if prefix != "layers" or key not in jax_module.layers:
            raise KeyError(f"torch entry {full_key!r} has no node in the JAX network")
        variable = getattr(jax_module.layers[key], name, None)
        if not isinstance(variable, nnx.Variable):
            raise KeyError(f"torch entry {full_key!r} has no variable {name!r} in the JAX network")
        value = tensor.detach().cpu().numpy().copy()  # jnp.asarray may alias; torch updates in place
        old = variable[...]
        if tuple(value.shape) != tuple(old.shape):
            raise ValueError(f"{full_key}: torch shape {tuple(value.shape)} != JAX shape {tuple(old.shape)}")
        variable[...] = jax.device_put(value.astype(old.dtype))
        filled.add((key, name))
    for path, value in nnx.iter_graph(jax_module):
        if isinstance(value, (nnx.Param, nnx.BatchStat)) and (path[1], path[-1]) not in filled:
            raise KeyError(f"JAX variable {'/'.join(map(str, path))} has no torch counterpart")
    return jax_module


def torch_state(jax_module: JaxNetwork) -> dict[str, np.ndarray]:
    """Every parameter and batch statistic of ``jax_module`` under its ``TorchNetwork`` state-dict key
    (``layers.<module_key>.<name>``): the inverse of ``load_torch_weights``."""
    state: dict[str, np.ndarray] = {}
    for path, value in nnx.iter_graph(jax_module):
        if isinstance(value, (nnx.Param, nnx.BatchStat)):
            state[f"layers.{path[1]}.{path[-1]}"] = np.asarray(value[...]).copy()
    return state
