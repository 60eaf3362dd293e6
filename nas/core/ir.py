"""``ArchSpec``: the backend-neutral, shape-explicit description of a network.

A DAG of named nodes in topological order; each node names an op of ``nas.ops``, its frozen
parameters, its inputs and its output shape (batch excluded). Nothing in it is a module, tensor or
callable. ``GraphBuilder`` is how spaces write one: each ``add`` checks the op's parameters and
infers the shape, so a space cannot describe a network whose shapes do not fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nas.ops import OPS

Shape = tuple[int, ...]

# Roles a space may declare for outputs (heads) besides the main one; undeclared heads have none.
# ``aux_classifier``: logits over the main head's classes, trained on the same labels (NASNet's ``aux_logits``,
# weighted by the recipe's ``aux_weight``). A head without it (FBNetV5's segmentation and detection maps) gets
# no classification loss from the training loops.
AUX_CLASSIFIER = "aux_classifier"
HEAD_ROLES = (AUX_CLASSIFIER,)


def _frozen(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


@dataclass(frozen=True)
class Node:
    """One op application: ``name`` is unique and stable (backends key weights by it)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: tuple[tuple[str, Any], ...]
    shape: Shape

    @property
    def p(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: nodes in topological order, the input node(s), named outputs (heads) and the
    declared roles of some heads (``HEAD_ROLES``), as (head, role) pairs."""

    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...]
    roles: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n.name: n for n in self.nodes})
        heads = {head for head, _ in self.outputs}
        for head, role in self.roles:
            if head not in heads:
                raise ValueError(f"role {role!r} for {head!r}, which is not an output ({', '.join(sorted(heads))})")
            if role not in HEAD_ROLES:
                raise ValueError(f"unknown head role {role!r}; known: {', '.join(HEAD_ROLES)}")

    def heads_with_role(self, role: str) -> tuple[str, ...]:
        """The heads declared with ``role``, in output order."""
        declared = {head for head, r in self.roles if r == role}
        return tuple(head for head, _ in self.outputs if head in declared)

    def node(self, name: str) -> Node:
        return self._index[name]  # type: ignore[attr-defined]

    @property
    def input_shape(self) -> Shape:
        return self.node(self.inputs[0]).shape

    @property
    def output_shapes(self) -> dict[str, Shape]:
        return {head: self.node(name).shape for head, name in self.outputs}

    def in_shapes(self, node: Node) -> list[Shape]:
        return [self.node(i).shape for i in node.inputs]

    def consumers(self) -> dict[str, int]:
        """How many times each node is read (outputs count once): lets executors free early."""
        counts = {n.name: 0 for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                counts[i] += 1
        for _, name in self.outputs:
            counts[name] += 1
        return counts


class GraphBuilder:
    """Builds an ``ArchSpec`` node by node, inferring shapes from the op rules as it goes."""

    def __init__(self) -> None:
        self._nodes: list[Node] = []
        self._index: dict[str, Node] = {}
        self._inputs: list[str] = []
        self._scope: list[str] = []
        self._counter: dict[str, int] = {}
        self._defaults: dict[str, dict[str, Any]] = {}

    @contextmanager
    def defaults(self, op: str, **params: Any) -> Iterator[None]:
        """Give every ``op`` node added inside these parameters unless it sets them itself.

        How a space applies a setting of its reference to all nodes of a kind (e.g. batch norm's
        ``eps`` and ``momentum``); the values are stored on each node, so backends need no context.
        """
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}")
        OPS[op].normalize(params)
        saved = self._defaults.get(op)
        self._defaults[op] = {**(saved or {}), **params}
        try:
            yield
        finally:
            if saved is None:
                del self._defaults[op]
            else:
                self._defaults[op] = saved

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix node names made inside with ``name.`` (nested scopes join with dots)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def _name(self, name: str | None, op: str) -> str:
        base = name or op
        full = ".".join([*self._scope, base])
        if full in self._index:
            if name is not None:
                raise ValueError(f"node name {full!r} is used twice")
            k = self._counter.get(full, 1)
            while f"{full}{k}" in self._index:
                k += 1
            self._counter[full] = k + 1
            full = f"{full}{k}"
        return full

    def input(self, shape: Shape, name: str = "input") -> str:
        node = Node(self._name(name, "input"), "input", (), (("shape", tuple(shape)),), tuple(shape))
        self._append(node)
        self._inputs.append(node.name)
        return node.name

    def add(self, op: str, *inputs: str, name: str | None = None, **params: Any) -> str:
        """Append ``op`` applied to ``inputs``; returns the new node's name."""
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}")
        opdef = OPS[op]
        if opdef.arity is not None and len(inputs) != opdef.arity:
            raise ValueError(f"op {op!r} takes {opdef.arity} input(s), got {len(inputs)}")
        if not inputs:
            raise ValueError(f"op {op!r} needs at least one input")
        full = opdef.normalize({**self._defaults.get(op, {}), **params})
        in_shapes = [self._index[i].shape for i in inputs]
        shape = tuple(int(s) for s in opdef.shape(in_shapes, full))
        if any(s <= 0 for s in shape):
            raise ValueError(f"op {op!r} on {in_shapes} gives an empty shape {shape}")
        node = Node(self._name(name, op), op, tuple(inputs), _frozen(full), shape)
        self._append(node)
        return node.name

    def _append(self, node: Node) -> None:
        self._nodes.append(node)
        self._index[node.name] = node

    def shape(self, name: str) -> Shape:
        return self._index[name].shape

    def build(self, outputs: Mapping[str, str], roles: Mapping[str, str] | None = None) -> ArchSpec:
        """Finish: keep only nodes the outputs depend on, in order; ``roles`` declares head -> role."""
        needed: set[str] = set()
        stack = list(outputs.values())
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                stack.extend(self._index[name].inputs)
        nodes = tuple(n for n in self._nodes if n.name in needed or n.name in self._inputs)
        return ArchSpec(nodes, tuple(self._inputs), tuple(outputs.items()), tuple((roles or {}).items()))
