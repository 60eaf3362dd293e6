"""The stage table of an architecture: its network (``space.decode``) grouped by top-level scope (stem, stages or
layers, head), with each group's ops, output shape, parameters and MACs. It is the drawing of the scaling spaces
(SimpleNet, ResNet-RS, FBNetV3), whose decisions are depth, width and resolution rather than a graph."""

from __future__ import annotations

from collections import Counter

from nas.core.cost import aux_only_nodes, node_cost
from nas.core.genotype import Genotype
from nas.core.space import SearchSpace
from nas.runner.html.tables import cell


def stage_rows(space: SearchSpace, genotype: Genotype) -> list[dict[str, object]]:
    """One row per top-level scope in network order: name, op counts, output shape, params, MACs."""
    arch = space.decode(genotype)
    aux = aux_only_nodes(arch)
    rows: dict[str, dict[str, object]] = {}
    for node in arch.nodes:
        if node.op == "input":
            continue
        scope = node.name.split(".")[0] + (" (aux)" if node.name in aux else "")
        row = rows.setdefault(scope, {"stage": scope, "ops": Counter(), "shape": (), "params": 0, "macs": 0})
        params, macs = node_cost(arch, node)
        row["ops"][node.op] += 1
        row["shape"] = tuple(node.shape)
        row["params"] += params
        row["macs"] += macs
    return list(rows.values())


def stage_table(space: SearchSpace, genotype: Genotype, opened: bool = True) -> str:
    """The rows as an HTML table inside a ``<details>`` (shown ``opened`` or folded)."""
    rows = stage_rows(space, genotype)
    body = "".join(f"<tr>{cell(r['stage'], False)}{cell(_ops(r['ops']), False)}"
                   f"{cell(' x '.join(str(v) for v in r['shape']), False)}{cell(r['params'])}{cell(r['macs'])}</tr>"
                   for r in rows)
    total_params, total_macs = sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
    shown = " open" if opened else ""
    return (f"<details class=stages{shown}><summary>Stage table ({len(rows)} stages, {total_params:,} params, "
            f"{total_macs:,} MACs)</summary><table class=stage-table><thead><tr><th>stage</th><th>ops</th>"
            f"<th>output shape</th><th>params</th><th>MACs</th></tr></thead><tbody>{body}</tbody></table></details>")


def _ops(counts: Counter) -> str:
    return ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counts.most_common())
