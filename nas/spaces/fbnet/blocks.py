"""FBNetV3 building blocks in the IR: the rounding rule, the IRF block, the stem and the pooled head.

Semantics follow mobile-vision's FBNetV3 definitions as checked in ``spec/fbnetv3a.md``: widths are
multiples of 8 (nearest, +8 when that loses over 5%); an IRF block is 1x1 expand + BN + hard-swish
(left out when the expanded width equals the input width), kxk depthwise + BN + hard-swish, optional
squeeze-and-excitation (hidden width ``mid * 0.25 / expansion``, biases, hard-swish, hard-sigmoid gate),
1x1 project + BN (gamma zero-initialised), and a residual add when the shapes match. All three block
convs are bias-free; the stem conv has a bias (PyTorch's default, kept for exact parameter counts).
Every batch norm uses momentum 0.003 (torch's convention) and torch's default eps 1e-5: mobile-vision's
classification builder passes ``bn_args={"name": "bn", "momentum": 0.003}`` to every block and sets no eps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.core.ir import GraphBuilder

ACT = "hardswish"
BN = {"eps": 1e-5, "momentum": 0.003}  # mobile-vision's bn_args for FBNetV3 (and so FBNetV5)


def divisible(value: float, divisor: int = 8) -> int:
    """mobile-vision's width rule: nearest multiple of ``divisor`` (at least one), +divisor if under 95%."""
    if value % divisor == 0:
        return int(value)
    rounded = max(1, math.floor(value / divisor + 0.5)) * divisor
    return rounded + divisor if rounded < 0.95 * value else rounded


@dataclass(frozen=True)
class Row:
    """One row of a block table: ``repeats`` IRF blocks, only the first with ``stride``."""

    kernel: int
    out: int
    stride: int
    repeats: int
    expansion: float
    se: bool
    dw_pad: int | None = None  # depthwise padding override of the first block (None: kernel // 2)


def conv_bn(g: GraphBuilder, x: str, out: int, kernel: int = 1, stride: int = 1, padding: int | None = None,
            groups: int = 1, act: str | None = ACT, zero_init: bool = False, prefix: str = "") -> str:
    """Bias-free conv + BN (+ activation); node names ``{prefix}conv``, ``{prefix}bn``, ``{prefix}act``."""
    pad = kernel // 2 if padding is None else padding
    x = g.add("conv2d", x, out_channels=out, kernel=kernel, stride=stride, padding=pad, groups=groups,
              name=f"{prefix}conv")
    x = g.add("batchnorm", x, zero_init=zero_init, name=f"{prefix}bn", **BN)
    return g.add("act", x, fn=act, name=f"{prefix}act") if act else x


def squeeze_excite(g: GraphBuilder, x: str, hidden: int) -> str:
    """Global pool, 1x1 reduce (bias) + hard-swish, 1x1 expand (bias) + hard-sigmoid, channel-wise scale."""
    channels = g.shape(x)[0]
    with g.scope("se"):
        s = g.add("global_avg_pool", x, keepdims=True, name="pool")
        s = g.add("conv2d", s, out_channels=hidden, kernel=1, bias=True, name="reduce")
        s = g.add("act", s, fn=ACT, name="reduce_act")
        s = g.add("conv2d", s, out_channels=channels, kernel=1, bias=True, name="expand")
        s = g.add("act", s, fn="hardsigmoid", name="gate")
        return g.add("mul", x, s, name="scale")


def irf_block(g: GraphBuilder, x: str, out: int, kernel: int, stride: int, expansion: float, se: bool,
              dw_pad: int | None = None) -> str:
    """One inverted-residual (IRF) block of FBNetV3 applied to ``x``; returns the output node."""
    channels = g.shape(x)[0]
    mid = divisible(channels * expansion)
    y = x
    if mid != channels:
        y = conv_bn(g, y, mid, prefix="pw.")
    y = conv_bn(g, y, mid, kernel, stride, dw_pad, groups=mid, prefix="dw.")
    if se:
        y = squeeze_excite(g, y, divisible(int(mid * 0.25 / expansion)))
    residual = stride == 1 and channels == out
    y = conv_bn(g, y, out, act=None, zero_init=residual, prefix="pwl.")
    return g.add("add", y, x, name="add") if residual else y


def stem(g: GraphBuilder, x: str, out: int) -> str:
    """3x3 stride-2 conv (with bias) + BN + hard-swish."""
    x = g.add("conv2d", x, out_channels=out, kernel=3, stride=2, padding=1, bias=True, name="conv")
    x = g.add("batchnorm", x, name="bn", **BN)
    return g.add("act", x, fn=ACT, name="act")


def pooled_head(g: GraphBuilder, x: str, width: int, expansion: float, classes: int, dropout: float = 0.0) -> str:
    """FBNetV3's ``ir_pool`` head and classifier: 1x1 expand + BN + hard-swish, global pool, 1x1 to
    ``width`` (no BN) + hard-swish, then a linear classifier (the released 1x1 conv with bias)."""
    mid = divisible(g.shape(x)[0] * expansion)
    x = conv_bn(g, x, mid, prefix="expand.")
    x = g.add("global_avg_pool", x, keepdims=True, name="pool")
    x = g.add("conv2d", x, out_channels=width, kernel=1, name="proj.conv")
    x = g.add("act", x, fn=ACT, name="proj.act")
    x = g.add("global_avg_pool", x, name="flatten")
    if dropout > 0:
        x = g.add("dropout", x, rate=dropout, name="drop")
    return g.add("linear", x, out_features=classes, name="classifier")
