"""The FBNetV5 supernet as an ordered list of small ArchSpec fragments (units), and their composition.

A ``Unit`` is one block, fusion output, stem or head: its ``kept`` fragment has ``len(inputs)`` input
nodes (in the order of ``inputs``, which name earlier units or the plan's image input) and one output
``out`` (a head unit has one output per head name). A block unit is gated by a binary ``decision``;
when the mask is 0 its ``skipped`` fragment is used instead (``None``: identity). ``compose`` inlines
the chosen fragments into one ArchSpec; the space's ``decode`` is exactly that, so a weight-sharing
supernet built from the same fragments and the decoded network are one description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError
from nas.core.ir import ArchSpec, GraphBuilder, Shape


@dataclass(frozen=True)
class Unit:
    """One fragment of the supernet (see the module docstring)."""

    name: str
    inputs: tuple[str, ...]
    kept: ArchSpec
    skipped: ArchSpec | None
    decision: str | None

    def chosen(self, masks: Mapping[str, Any]) -> ArchSpec | None:
        """The fragment used under ``masks`` (``None``: this unit is the identity)."""
        if self.decision is None:
            return self.kept
        if self.decision not in masks:
            raise GenotypeError(f"no mask for decision {self.decision!r}")
        return self.kept if int(masks[self.decision]) else self.skipped


@dataclass(frozen=True)
class Plan:
    """Ordered units, the image input (name and shape) and head name -> (unit name, fragment output)."""

    input: str
    input_shape: Shape
    units: tuple[Unit, ...]
    outputs: Mapping[str, tuple[str, str]]
    _index: dict[str, Unit] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {u.name: u for u in self.units})

    def unit(self, name: str) -> Unit:
        return self._index[name]

    @property
    def decisions(self) -> tuple[str, ...]:
        """The mask decisions that gate units of this plan, in unit order."""
        return tuple(u.decision for u in self.units if u.decision is not None)


def _inline(g: GraphBuilder, fragment: ArchSpec, sources: list[str]) -> dict[str, str]:
    mapping = dict(zip(fragment.inputs, sources))
    for node in fragment.nodes:
        if node.op != "input":
            mapping[node.name] = g.add(node.op, *(mapping[i] for i in node.inputs), name=node.name, **node.p)
    return {head: mapping[name] for head, name in fragment.outputs}


def compose(plan: Plan, masks: Mapping[str, Any]) -> ArchSpec:
    """The network chosen by ``masks``: every unit's chosen fragment inlined under the unit's name."""
    g = GraphBuilder()
    values: dict[tuple[str, str], str] = {(plan.input, "out"): g.input(plan.input_shape, name=plan.input)}
    for unit in plan.units:
        sources = [values[(name, "out")] for name in unit.inputs]
        fragment = unit.chosen(masks)
        if fragment is None:
            values[(unit.name, "out")] = sources[0]
            continue
        with g.scope(unit.name):
            for out, node in _inline(g, fragment, sources).items():
                values[(unit.name, out)] = node
    return g.build({head: values[ref] for head, ref in plan.outputs.items()})


def fragment_cost(fragment: ArchSpec | None) -> dict[str, int]:
    """Params and MACs of a whole fragment, every output included (``None``, the identity, costs zero)."""
    if fragment is None:
        return {"params": 0, "macs": 0}
    cost = arch_cost(fragment)
    return {"params": cost.get("params_with_aux", cost["params"]), "macs": cost.get("macs_with_aux", cost["macs"])}


def unit_cost(plan: Plan) -> dict[str, dict[str, dict[str, int]]]:
    """Per unit: ``{"kept": cost, "skipped": cost}`` of its fragments (for a searcher's FLOPs term)."""
    return {u.name: {"kept": fragment_cost(u.kept), "skipped": fragment_cost(u.skipped)} for u in plan.units}
