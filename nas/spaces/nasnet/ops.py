"""The 13 NASNet operations, expanded into ``nas.ops`` primitives as the TF-Slim reference builds them.

Every op maps its input (any channel count) to ``channels`` outputs at ``stride``; convolutions are
bias-free and followed by batch norm. Order per op (reference ``nasnet_utils``; NDS for the ops the
reference does not implement):

- ``identity``: nothing, unless it must stride or change channels: ReLU -> 1x1 conv (stride) -> BN.
- ``sep_conv_KxK``: (ReLU -> depthwise KxK -> pointwise 1x1 -> BN) twice; only the first unit strides.
- ``conv_1x1`` / ``conv_3x3``: ReLU -> conv -> BN.
- ``conv_1xK_Kx1``: ReLU -> conv (1,K) stride (1,s) -> conv (K,1) stride (s,1) -> BN.
- ``dil_conv_3x3``: ReLU -> depthwise 3x3 dilation 2 -> pointwise 1x1 -> BN.
- pools (average excludes the padding): a 1x1 conv + BN follows when channels differ.

Every convolution and pool pads as TF's ``SAME`` (``padding="same"``): symmetric at stride 1, but a strided
window on an even map pads one pixel more at the end (3x3: 0/1, 5x5: 1/2, 7x7: 2/3), so reduction cells read
the same grid as the reference. Every op but ``identity`` ends in a ``drop_path`` node when its rate is
positive, marked ``scheduled`` (ScheduledDropPath: the loops ramp it with training progress).
"""

from __future__ import annotations

from nas.core.ir import GraphBuilder

OP_NAMES: tuple[str, ...] = (
    "identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5",
    "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
)

_SEP = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7}
_POOL = {"avg_pool_3x3": ("avg_pool", 3), "max_pool_3x3": ("max_pool", 3), "max_pool_5x5": ("max_pool", 5),
         "max_pool_7x7": ("max_pool", 7)}
_CONV = {"conv_1x1": 1, "conv_3x3": 3}
_FACTORIZED = {"conv_1x3_3x1": 3, "conv_1x7_7x1": 7}


def conv_bn(g: GraphBuilder, x: str, channels: int, kernel: int = 1, stride: int = 1, relu: bool = True) -> str:
    """(ReLU ->) KxK conv (TF SAME padding) -> BN: the reference's 1x1 adapters and plain convs."""
    if relu:
        x = g.add("act", x, fn="relu", name="relu")
    x = g.add("conv2d", x, out_channels=channels, kernel=kernel, stride=stride, padding="same", name="conv")
    return g.add("batchnorm", x, name="bn")


def factorized_reduction(g: GraphBuilder, x: str, channels: int, stride: int = 2) -> str:
    """Halve the resolution without losing pixels: two shifted stride-2 1x1 convs, concatenated, BN.

    Path 1 subsamples and projects to ``channels // 2``; path 2 first shifts by one pixel (pad right
    and bottom, crop the first row and column) and projects to the rest. ``stride=1`` is a 1x1 conv.
    """
    if stride == 1:
        return conv_bn(g, x, channels, relu=False)
    half = channels // 2
    a = g.add("conv2d", x, out_channels=half, kernel=1, stride=2, name="path1_conv")
    shifted = g.add("pad", x, pads=(-1, 1, -1, 1), name="path2_shift")
    b = g.add("conv2d", shifted, out_channels=channels - half, kernel=1, stride=2, name="path2_conv")
    x = g.add("concat", a, b, name="concat")
    return g.add("batchnorm", x, name="bn")


def _separable(g: GraphBuilder, x: str, channels: int, kernel: int, stride: int, dilation: int = 1) -> str:
    x = g.add("act", x, fn="relu", name="relu")
    c_in = g.shape(x)[0]
    x = g.add("conv2d", x, out_channels=c_in, kernel=kernel, stride=stride, padding="same", dilation=dilation,
              groups=c_in, name="depthwise")
    x = g.add("conv2d", x, out_channels=channels, kernel=1, name="pointwise")
    return g.add("batchnorm", x, name="bn")


def apply_op(g: GraphBuilder, x: str, op: str, channels: int, stride: int, drop_rate: float = 0.0) -> str:
    """Apply NASNet op ``op`` to node ``x`` (inside the caller's scope); returns the output node."""
    c_in = g.shape(x)[0]
    if op == "identity":
        if stride > 1 or c_in != channels:
            return conv_bn(g, x, channels, 1, stride)
        return x
    if op in _SEP:
        with g.scope("unit1"):
            x = _separable(g, x, channels, _SEP[op], stride)
        with g.scope("unit2"):
            x = _separable(g, x, channels, _SEP[op], 1)
    elif op == "dil_conv_3x3":
        x = _separable(g, x, channels, 3, stride, dilation=2)
    elif op in _CONV:
        x = conv_bn(g, x, channels, _CONV[op], stride)
    elif op in _FACTORIZED:
        k = _FACTORIZED[op]
        x = g.add("act", x, fn="relu", name="relu")
        x = g.add("conv2d", x, out_channels=channels, kernel=(1, k), stride=(1, stride), padding="same",
                  name="conv_1xk")
        x = g.add("conv2d", x, out_channels=channels, kernel=(k, 1), stride=(stride, 1), padding="same",
                  name="conv_kx1")
        x = g.add("batchnorm", x, name="bn")
    elif op in _POOL:
        kind, k = _POOL[op]
        params = {"count_include_pad": False} if kind == "avg_pool" else {}
        x = g.add(kind, x, kernel=k, stride=stride, padding="same", name="pool", **params)
        if c_in != channels:
            with g.scope("adapt"):
                x = conv_bn(g, x, channels, relu=False)
    else:
        raise ValueError(f"unknown NASNet op {op!r}; valid: {', '.join(OP_NAMES)}")
    if drop_rate > 0:
        x = g.add("drop_path", x, rate=drop_rate, scheduled=True, name="drop_path")
    return x
