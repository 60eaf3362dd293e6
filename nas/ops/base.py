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


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, end: int | None = None) -> int:
    """Output length of a convolution or pooling window along one axis (``padding`` before, ``end`` after,
    ``end`` defaulting to ``padding``)."""
    end = padding if end is None else end
    return (size + padding + end - dilation * (kernel - 1) - 1) // stride + 1


SAME = "same"


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(begin, end) padding of TensorFlow's ``SAME`` along one axis: the output has ``ceil(size / stride)``
    positions and an odd total puts the extra pixel at the end (e.g. a stride-2 3x3 on an even map pads 0/1)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def spatial_pads(in_shape: tuple[int, ...], p: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding of a conv or pool node with input ``(C, H, W)``.

    ``padding`` is the per-node padding mode: an int or (h, w) pair pads both sides equally (torch's
    convention); ``"same"`` is TensorFlow's ``SAME`` (``same_pads``), asymmetric on strided windows.
    """
    kh, kw = pair(p["kernel"])
    sh, sw = pair(p["stride"])
    dh, dw = pair(p.get("dilation", 1))
    padding = p["padding"]
    if isinstance(padding, str):
        if padding != SAME:
            raise ValueError(f"padding must be an int, an (h, w) pair or {SAME!r}, got {padding!r}")
        return (*same_pads(in_shape[1], kh, sh, dh), *same_pads(in_shape[2], kw, sw, dw))
    ph, pw = pair(padding)
    return ph, ph, pw, pw
