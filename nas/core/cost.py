"""Parameter and multiply-accumulate counts computed from an ``ArchSpec`` alone (no framework).

Auxiliary heads (outputs declared with the ``aux_classifier`` role, e.g. NASNet's ``aux_logits``) are
training-time devices the papers leave out of their counts, so ``params``/``macs`` exclude the nodes only
they read; an arch with such heads also gets ``params_with_aux``/``macs_with_aux``, the whole graph as the
backends build it.
Every other output (a classifier, a multitask network's segmentation and detection heads) counts.
"""

from __future__ import annotations

from nas.core.ir import AUX_CLASSIFIER, ArchSpec, Node
from nas.ops import OPS

MAIN_HEAD = "logits"


def main_head(arch: ArchSpec) -> str:
    """The head the network is for: ``logits`` when present, else the first output."""
    heads = dict(arch.outputs)
    return MAIN_HEAD if MAIN_HEAD in heads else arch.outputs[0][0]


def is_aux_head(arch: ArchSpec, head: str) -> bool:
    """Auxiliary (training-only) heads are those the space declares with the ``aux_classifier`` role."""
    return head in arch.heads_with_role(AUX_CLASSIFIER)


def aux_only_nodes(arch: ArchSpec) -> set[str]:
    """Nodes that feed an auxiliary head and no other head (empty without auxiliary heads)."""
    aux = {name for head, name in arch.outputs if is_aux_head(arch, head)}
    kept = {name for head, name in arch.outputs if not is_aux_head(arch, head)}
    if not aux or not kept:
        return set()

    def ancestors(roots: set[str]) -> set[str]:
        seen, stack = set(), list(roots)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(arch.node(name).inputs)
        return seen

    return ancestors(aux) - ancestors(kept)


def node_cost(arch: ArchSpec, node: Node) -> tuple[int, int]:
    """(params, MACs) of one node of ``arch``."""
    opdef = OPS[node.op]
    ins, p = arch.in_shapes(node), node.p
    return opdef.params(ins, p, node.shape), opdef.macs(ins, p, node.shape)


def arch_cost(arch: ArchSpec) -> dict[str, int]:
    """``{"params": learnable scalars, "macs": multiply-accumulates per example}`` of the main network.

    With auxiliary heads, ``params_with_aux`` and ``macs_with_aux`` count the whole graph as well.
    """
    aux = aux_only_nodes(arch)
    params = macs = aux_params = aux_macs = 0
    for node in arch.nodes:
        if node.op == "input":
            continue
        p, m = node_cost(arch, node)
        if node.name in aux:
            aux_params, aux_macs = aux_params + p, aux_macs + m
        else:
            params, macs = params + p, macs + m
    cost = {"params": int(params), "macs": int(macs)}
    if arch.heads_with_role(AUX_CLASSIFIER):
        cost.update(params_with_aux=int(params + aux_params), macs_with_aux=int(macs + aux_macs))
    return cost
