"""The HyTra layers in their retraining form (BossNet), expanded into primitive ops on a ``GraphBuilder``.

Each function appends one piece (stem, one ResConv or ResAtt layer, the stand-in of an empty stage,
the classifier) after node ``x`` and returns the new output node, so the space and the BossNAS
supernet lower layers the same way (a one-layer ``ArchSpec`` built with these functions is one layer).

ResConv: 1x1 conv -> depthwise 3x3 "PEG" conv (with bias; carries the stride) -> BN -> act -> 3x3 conv
-> BN -> act -> 1x1 conv -> BN (gamma zero-initialised) -> [squeeze-excitation] -> [drop-path] -> + shortcut
-> act. ResAtt (BoTNet block): 1x1 conv -> PEG (stride) -> BN -> act -> bias-free 1x1 q,k,v conv -> ``mhsa``
-> BN -> act -> 1x1 conv -> BN (zero gamma) -> + shortcut -> act. Shortcuts are the "avg_down" ones: when the
layer downsamples or changes width, a 2x2 stride-2 average pool (downsampling only), 1x1 conv and BN. The
pool is BossNAS's ``AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)``: on an odd map the last
window is cut at the edge and averages only its real cells, which is ``padding="same"`` (one padded row and
column at the end, not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.ir import GraphBuilder
from nas.spaces.hytra.encoding import token_level, token_op


@dataclass(frozen=True)
class LayerConfig:
    """What the layers need from a space's macro settings.

    ``widths``: block output channels per level (1/4 .. 1/32; bottleneck planes = width / 4);
    ``heads``: attention heads per level (attention width = heads x ``dim_head``); ``se``: squeeze-
    excitation in ResConv (timm's SE: 1/16 reduction rounded to a multiple of 8, at least 8, ReLU);
    ``act``: the activation everywhere else (``relu`` | ``silu``).
    """

    widths: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    dim_head: int
    se: bool
    act: str


def _conv(g: GraphBuilder, x: str, out: int, kernel: int, stride: int, name: str, groups: int = 1,
          bias: bool = False) -> str:
    return g.add("conv2d", x, out_channels=out, kernel=kernel, stride=stride, padding=kernel // 2, groups=groups,
                 bias=bias, name=name)


def _shortcut(g: GraphBuilder, x: str, out: int, stride: int) -> str:
    if stride == 1 and g.shape(x)[0] == out:
        return x
    with g.scope("shortcut"):
        if stride == 2:  # the reference's AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
            x = g.add("avg_pool", x, kernel=2, stride=2, padding="same", count_include_pad=False, name="pool")
        x = _conv(g, x, out, 1, 1, "conv")
        return g.add("batchnorm", x, name="bn")


def _entry(g: GraphBuilder, x: str, width: int, stride: int, act: str) -> str:
    """1x1 conv, positional depthwise 3x3 conv (PEG, with bias) carrying the stride, BN, act."""
    y = _conv(g, x, width, 1, 1, "conv1")
    y = _conv(g, y, width, 3, stride, "peg", groups=width, bias=True)
    y = g.add("batchnorm", y, name="bn1")
    return g.add("act", y, fn=act, name="act1")


def _se(g: GraphBuilder, x: str) -> str:
    channels = g.shape(x)[0]
    reduced = max(8, int(channels / 16 + 4) // 8 * 8)
    with g.scope("se"):
        s = g.add("global_avg_pool", x, keepdims=True, name="pool")
        s = g.add("conv2d", s, out_channels=reduced, kernel=1, bias=True, name="fc1")
        s = g.add("act", s, fn="relu", name="relu")
        s = g.add("conv2d", s, out_channels=channels, kernel=1, bias=True, name="fc2")
        s = g.add("act", s, fn="sigmoid", name="gate")
        return g.add("mul", x, s, name="scale")


def res_conv(g: GraphBuilder, x: str, out: int, stride: int, cfg: LayerConfig, drop_rate: float = 0.0) -> str:
    """A ResConv (bottleneck, planes = out / 4) layer from ``x`` to ``out`` channels."""
    planes = out // 4
    shortcut = _shortcut(g, x, out, stride)
    with g.scope("branch"):
        y = _entry(g, x, planes, stride, cfg.act)
        y = g.add("act", g.add("batchnorm", _conv(g, y, planes, 3, 1, "conv2"), name="bn2"), fn=cfg.act, name="act2")
        y = g.add("batchnorm", _conv(g, y, out, 1, 1, "conv3"), zero_init=True, name="bn3")
    if cfg.se:
        y = _se(g, y)
    if drop_rate > 0:
        y = g.add("drop_path", y, rate=drop_rate, name="drop_path")
    return g.add("act", g.add("add", y, shortcut, name="add"), fn=cfg.act, name="act")


def res_att(g: GraphBuilder, x: str, out: int, stride: int, heads: int, cfg: LayerConfig) -> str:
    """A ResAtt (BoTNet-style, positional conv instead of relative logits) layer to ``out`` channels."""
    width = heads * cfg.dim_head
    shortcut = _shortcut(g, x, out, stride)
    with g.scope("branch"):
        y = _entry(g, x, width, stride, cfg.act)
        y = _conv(g, y, 3 * width, 1, 1, "qkv")
        y = g.add("mhsa", y, heads=heads, dim_head=cfg.dim_head, name="mhsa")
        y = g.add("act", g.add("batchnorm", y, name="bn2"), fn=cfg.act, name="act2")
        y = g.add("batchnorm", _conv(g, y, out, 1, 1, "conv3"), zero_init=True, name="bn3")
    return g.add("act", g.add("add", y, shortcut, name="add"), fn=cfg.act, name="act")


def add_layer(g: GraphBuilder, x: str, token: int, stride: int, cfg: LayerConfig, drop_rate: float = 0.0) -> str:
    """One searchable layer: the op and width of ``token`` (its level), from ``x`` with ``stride``.

    Drop-path applies to ResConv only, as in the released models.
    """
    level = token_level(token)
    if token_op(token) == "att":
        return res_att(g, x, cfg.widths[level], stride, cfg.heads[level], cfg)
    return res_conv(g, x, cfg.widths[level], stride, cfg, drop_rate)


def empty_stage(g: GraphBuilder, x: str, out: int, stride: int, act: str) -> str:
    """What replaces a stage without layers: 3x3 conv (to the stage's width) -> BN -> act."""
    y = _conv(g, x, out, 3, stride, "conv")
    return g.add("act", g.add("batchnorm", y, name="bn"), fn=act, name="act")


def stem(g: GraphBuilder, x: str, width: int, act: str) -> str:
    """7x7 stride-2 conv -> BN -> act -> 3x3 stride-2 max-pool: 1/4 resolution."""
    y = g.add("act", g.add("batchnorm", _conv(g, x, width, 7, 2, "conv"), name="bn"), fn=act, name="act")
    return g.add("max_pool", y, kernel=3, stride=2, padding=1, name="pool")


def classifier(g: GraphBuilder, x: str, num_classes: int) -> str:
    """Global average pool -> linear."""
    return g.add("linear", g.add("global_avg_pool", x, name="pool"), out_features=num_classes, name="fc")
