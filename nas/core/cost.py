"""Parameter and multiply-accumulate counts computed from an ``ArchSpec`` alone (no framework)."""

from __future__ import annotations

from nas.core.ir import ArchSpec
from nas.ops import OPS


def arch_cost(arch: ArchSpec) -> dict[str, int]:
    """``{"params": learnable scalars, "macs": multiply-accumulates per example}``."""
    params = macs = 0
    for node in arch.nodes:
        if node.op == "input":
            continue
        opdef = OPS[node.op]
        ins, p = arch.in_shapes(node), node.p
        params += opdef.params(ins, p, node.shape)
        macs += opdef.macs(ins, p, node.shape)
    return {"params": int(params), "macs": int(macs)}
