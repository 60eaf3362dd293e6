"""Synflow and NASWOT in JAX, on a ``JaxNetwork`` run node by node over the main head's plan.

The same definitions as the torch module (``_torch.py``): synflow in float64 (``jax.enable_x64``) with
batch norm skipped and absolute parameters; NASWOT from the rectifiers' input signs, train-mode batch norm.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nas.backends.jax.builder import module_key
from nas.core.ir import ArchSpec, Node
from nas.evaluators.zero_cost.graph import Plan, rectifier_nodes, run, weighted_nodes
from nas.evaluators.zero_cost.linalg import logdet_score


def synflow(model: nnx.Module, arch: ArchSpec, plan: Plan) -> float:
    """``sum |w * dR/dw|`` over conv/linear weights, R = sum of the main head for an all-ones input."""
    weighted = weighted_nodes(plan)
    if not weighted:
        return 0.0
    with jax.enable_x64(True):
        model.eval()
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        params = jax.tree.map(lambda p: jnp.abs(jnp.asarray(p, jnp.float64)), params)
        rest = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64) if jnp.issubdtype(v.dtype, jnp.floating)
                            else v, rest)
        ones = jnp.ones((1, *arch.input_shape), jnp.float64)

        def total(p: nnx.State) -> jax.Array:
            return jnp.sum(run(nnx.merge(graphdef, p, rest), arch, plan, ones, skip_bn=True))

        # Not jitted: XLA's fused float64 program returned NaN gradients through HyTra's attention
        # softmax (huge logits of absolute weights) where the op-by-op gradient and torch are finite.
        grads = nnx.merge(graphdef, jax.grad(total)(params), rest)
        values = nnx.merge(graphdef, params, rest)
        score = sum(float(jnp.sum(jnp.abs(values.layers[module_key(n.name)].weight[...]
                                          * grads.layers[module_key(n.name)].weight[...]))) for n in weighted)
    return float(score)



def batch_statistics_mode(model: nnx.Module) -> None:
    """Train-mode batch norm with dropout and drop-path deterministic (as ``_torch.batch_statistics_mode``)."""
    from nas.backends.jax.ops import DropPath

    model.train()
    for _, module in nnx.iter_modules(model):
        if isinstance(module, (nnx.Dropout, DropPath)):
            module.deterministic = True

def naswot(model: nnx.Module, arch: ArchSpec, plan: Plan, x: np.ndarray) -> float:
    """``log |K_H|`` of the batch's binary rectifier codes (input > 0), train-mode batch norm."""
    rectifiers = {n.name for n in rectifier_nodes(plan)}
    if not rectifiers:
        return float("-inf")
    batch_statistics_mode(model)
    graphdef, state = nnx.split(model)

    @jax.jit
    def agreements(state: nnx.State, x: jax.Array) -> jax.Array:
        kernels = []

        def code(node: Node, ins: list[jax.Array], out: jax.Array) -> None:
            if node.name in rectifiers:
                c = (ins[0] > 0).reshape(len(x), -1).astype(jnp.int32)
                kernels.append(c @ c.T + (1 - c) @ (1 - c).T)

        run(nnx.merge(graphdef, state), arch, plan, x, watch=code)
        return sum(kernels)

    return logdet_score(np.asarray(agreements(state, jnp.asarray(x)), dtype=np.float64))
