"""``OpDef``: one op of the vocabulary with its parameter schema, shape rule and cost rule.

Shapes exclude the batch dimension: images are ``(C, H, W)``, vectors ``(F,)``. Costs are counted
per example: ``params`` (learnable scalars) and ``macs`` (multiply-accumulates of convolutions and
linear layers, the convention of the NAS papers; other ops count zero).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, ...]
Params = Mapping[str, Any]


@dataclass(frozen=True)
class OpDef:
    """An op name, the parameters it accepts (with defaults), and its shape and cost rules."""

    name: str
    defaults: Mapping[str, Any]
    shape: Callable[[list[Shape], Params], Shape]
    params: Callable[[list[Shape], Params, Shape], int] = lambda ins, p, out: 0
    macs: Callable[[list[Shape], Params, Shape], int] = lambda ins, p, out: 0
    arity: int | None = 1

    def normalize(self, params: Params) -> dict[str, Any]:
        """Fill defaults and reject unknown parameters."""
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"op {self.name!r} has no parameters {sorted(unknown)}")
        return {**self.defaults, **params}


OPS: dict[str, OpDef] = {}


def define(op: OpDef) -> OpDef:
    """Add an op to the vocabulary (backends must implement every op defined here)."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} defined twice")
    OPS[op.name] = op
    return op


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; pairs stay pairs."""
    if isinstance(value, (tuple, list)):
        a, b = value
        return int(a), int(b)
    return int(value), int(value)


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
