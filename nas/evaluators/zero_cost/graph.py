"""What the proxies need to know about an ``ArchSpec``, read from the IR alone (no framework).

Proxies score the network the search is for: the main head (``nas.core.cost.main_head``: ``logits`` when
present, else the first output), so only that head's ancestors are run; auxiliary heads (NASNet's
``aux_logits``) and a multitask network's other heads (FBNetV5's segmentation and detection) are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.core.cost import main_head
from nas.core.ir import ArchSpec, Node

WEIGHTED_OPS = ("conv2d", "linear")
# Activations whose input sign is the "linear region" code of NASWOT; gates (sigmoid, hardsigmoid) and
# smooth squashing functions (tanh) are not rectifiers and give no code.
RECTIFIERS = ("relu", "relu6", "hardswish", "silu", "gelu")


@dataclass(frozen=True)
class Plan:
    """The nodes computing the main head, in order, with the slots each step may free afterwards."""

    nodes: tuple[Node, ...]
    frees: tuple[tuple[str, ...], ...]
    output: str


def main_plan(arch: ArchSpec) -> Plan:
    """The ancestors of the main head in topological order (the input nodes excluded)."""
    output = dict(arch.outputs)[main_head(arch)]
    needed, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(arch.node(name).inputs)
    nodes = tuple(n for n in arch.nodes if n.name in needed and n.op != "input")
    remaining = {n.name: 0 for n in arch.nodes}
    for node in nodes:
        for name in node.inputs:
            remaining[name] += 1
    remaining[output] += 1
    frees = []
    for node in nodes:
        done = []
        for name in node.inputs:
            remaining[name] -= 1
            if remaining[name] == 0:
                done.append(name)
        frees.append(tuple(done))
    return Plan(nodes, tuple(frees), output)


def depends_on_input(arch: ArchSpec) -> bool:
    """Whether the main head's value changes with the input: a ``zero`` op cuts the dependence.

    An NB201 cell whose every path to its output passes a ``none`` edge makes the whole network a
    constant function; such a candidate is degenerate and every proxy scores it as the worst.
    """
    live = set(arch.inputs)
    for node in arch.nodes:
        if node.op != "zero" and any(name in live for name in node.inputs):
            live.add(node.name)
    return dict(arch.outputs)[main_head(arch)] in live


def rectifier_nodes(plan: Plan) -> list[Node]:
    """The ``act`` nodes of the plan whose input sign NASWOT reads as a binary code."""
    return [n for n in plan.nodes if n.op == "act" and n.p["fn"] in RECTIFIERS]


def weighted_nodes(plan: Plan) -> list[Node]:
    """The convolutions and linear layers of the plan (the layers whose ``weight`` proxies score)."""
    return [n for n in plan.nodes if n.op in WEIGHTED_OPS]


Watch = Callable[[Node, list[Any], Any], None]


def run(model: Any, arch: ArchSpec, plan: Plan, x: Any, skip_bn: bool = False, watch: Watch | None = None) -> Any:
    """The main head's value for input ``x`` on a torch or JAX network (both keep their layers under
    ``model.layers[module_key(node)]``); ``skip_bn`` treats batch norm as the identity; ``watch`` sees each node's
    inputs and output. Values are dropped as soon as no later node reads them."""
    values: dict[str, Any] = {arch.inputs[0]: x}
    for node, frees in zip(plan.nodes, plan.frees):
        ins = [values[name] for name in node.inputs]
        out = ins[0] if skip_bn and node.op == "batchnorm" else model.layers[node.name.replace(".", "/")](*ins)
        if watch is not None:
            watch(node, ins, out)
        values[node.name] = out
        for name in frees:
            del values[name]
    return values[plan.output]
