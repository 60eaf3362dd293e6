"""The primitive ops every backend implements. Composite ops (sep-conv, MBConv, attention blocks)
are expanded into these by the spaces, once, in the IR."""

from __future__ import annotations

import math

from nas.ops.base import OpDef, conv_out, define, pair, spatial_pads

ACTIVATIONS = ("relu", "relu6", "silu", "sigmoid", "hardswish", "hardsigmoid", "gelu", "tanh")


def _same(ins, p):
    return ins[0]


# ``init`` of conv2d and linear: how the weights (and biases) are drawn, as a space's reference network does by
# default. Fans follow torch: fan_in = in/groups * kh * kw, fan_out = out * kh * kw (linear: in, out), except
# where a scheme names TF's (per group: out/groups * kh * kw, as a depthwise kernel [kh, kw, in, multiplier]).
INITS: dict[str, str] = {
    "default": "torch's layer default: weight and bias U(-b, b), b = 1/sqrt(fan_in)",
    "kaiming_normal_fan_out": "weight N(0, 2/fan_out) (He, ReLU gain, fan-out; timm ResNets); bias as default",
    "tf_variance_scaling": "weight truncated at 2 std of a normal whose truncated std is sqrt(1/fan_in) (TF1 "
                           "variance_scaling_initializer() defaults: scale 1, fan-in); bias 0",
    "xavier_uniform_relu": "weight U(-b, b), b = sqrt(2) * sqrt(6/(fan_in + fan_out)) (Glorot, ReLU gain); "
                           "bias as default",
    "normal_0.01": "weight N(0, 0.01^2), bias 0 (TF classifier heads)",
    "tf_slim_fan_out": "weight N(0, 2.6/fan_out) truncated at 2 of its std (TF-Slim "
                       "variance_scaling_initializer(mode='FAN_OUT'): factor 2, std sqrt(1.3 * factor / n)); "
                       "TF's fans: fan_out = out/groups * kh * kw (a depthwise kernel's is multiplier * kh * kw); "
                       "bias 0",
}


def _check_init(op: str, p) -> None:
    if p["init"] not in INITS:
        raise ValueError(f"{op} init must be one of {', '.join(INITS)}, got {p['init']!r}")


def _conv_shape(ins, p):
    _check_init("conv2d", p)
    c, h, w = ins[0]
    kh, kw = pair(p["kernel"])
    sh, sw = pair(p["stride"])
    top, bottom, left, right = spatial_pads(ins[0], p)
    dh, dw = pair(p["dilation"])
    if c % p["groups"] or p["out_channels"] % p["groups"]:
        raise ValueError(f"conv2d groups={p['groups']} does not divide {c} -> {p['out_channels']}")
    return (p["out_channels"], conv_out(h, kh, sh, top, dh, bottom), conv_out(w, kw, sw, left, dw, right))


def _conv_weights(ins, p, out):
    kh, kw = pair(p["kernel"])
    return out[0] * (ins[0][0] // p["groups"]) * kh * kw


define(OpDef(
    "conv2d",
    {"out_channels": None, "kernel": 3, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": False,
     "init": "default"},
    shape=_conv_shape,
    params=lambda ins, p, out: _conv_weights(ins, p, out) + (out[0] if p["bias"] else 0),
    macs=lambda ins, p, out: _conv_weights(ins, p, out) * out[1] * out[2],
))

define(OpDef(
    "batchnorm", {"affine": True, "eps": 1e-5, "momentum": 0.1, "zero_init": False},
    shape=_same, params=lambda ins, p, out: 2 * out[0] if p["affine"] else 0,
))

define(OpDef("act", {"fn": "relu"}, shape=_same))
define(OpDef("identity", {}, shape=_same))
# ``dropout`` zeroes each value with probability ``rate`` in train mode and scales the rest by 1/(1 - rate);
# ``channelwise`` draws one keep/drop per (example, channel) of a (C, H, W) map and applies it to the whole
# map (torch's ``Dropout2d``); on a vector each element is its own channel, so both kinds agree there.
define(OpDef("dropout", {"rate": 0.0, "channelwise": False}, shape=_same))


def _pool_shape(ins, p):
    c, h, w = ins[0]
    kh, kw = pair(p["kernel"])
    sh, sw = pair(p["stride"])
    top, bottom, left, right = spatial_pads(ins[0], p)
    return (c, conv_out(h, kh, sh, top, end=bottom), conv_out(w, kw, sw, left, end=right))


# ``padding`` of conv2d and the pools: an int or (h, w) pair (both sides) or "same" (TensorFlow's SAME,
# asymmetric on strided windows: ``nas.ops.base.spatial_pads``). Max pooling pads with -inf; average
# pooling divides by the real cells of each window unless ``count_include_pad``.
define(OpDef("avg_pool", {"kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False}, shape=_pool_shape))
define(OpDef("max_pool", {"kernel": 3, "stride": 1, "padding": 1}, shape=_pool_shape))


def _zero_shape(ins, p):
    c, h, w = ins[0]
    s = p["stride"]
    return (p["out_channels"] or c, math.ceil(h / s), math.ceil(w / s))


define(OpDef("zero", {"stride": 1, "out_channels": None}, shape=_zero_shape))

def _global_pool_shape(ins, p):
    return (ins[0][0], 1, 1) if p["keepdims"] else (ins[0][0],)


define(OpDef("global_avg_pool", {"keepdims": False}, shape=_global_pool_shape))
define(OpDef("global_max_pool", {"keepdims": False}, shape=_global_pool_shape))


def _linear_shape(ins, p):
    _check_init("linear", p)
    if len(ins[0]) != 1:
        raise ValueError(f"linear expects a vector input, got shape {ins[0]}")
    return (p["out_features"],)


define(OpDef(
    "linear", {"out_features": None, "bias": True, "init": "default"},
    shape=_linear_shape,
    params=lambda ins, p, out: ins[0][0] * out[0] + (out[0] if p["bias"] else 0),
    macs=lambda ins, p, out: ins[0][0] * out[0],
))


def _add_shape(ins, p):
    if any(s != ins[0] for s in ins):
        raise ValueError(f"add needs equal shapes, got {ins}")
    return ins[0]


define(OpDef("add", {}, shape=_add_shape, arity=None))


def _concat_shape(ins, p):
    if any(s[1:] != ins[0][1:] for s in ins):
        raise ValueError(f"concat needs equal spatial shapes, got {ins}")
    return (sum(s[0] for s in ins), *ins[0][1:])


define(OpDef("concat", {}, shape=_concat_shape, arity=None))


def _channel_slice_shape(ins, p):
    c, *rest = ins[0]
    start, stop = p["start"], p["stop"]
    if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= c):
        raise ValueError(f"channel_slice needs 0 <= start < stop <= {c} channels, got start={start} stop={stop}")
    return (stop - start, *rest)


# Channels [start, stop) of the input: one conv computes several heads' outputs at once (e.g. a
# detector's class, box and centerness maps) and slices hand each head its part.
define(OpDef("channel_slice", {"start": 0, "stop": None}, shape=_channel_slice_shape))


def _broadcast_shape(ins, p):
    a, b = ins
    if len(a) != len(b) or any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise ValueError(f"mul cannot broadcast {a} with {b}")
    return tuple(max(x, y) for x, y in zip(a, b))


# Elementwise product with broadcasting of size-1 axes (squeeze-and-excitation gates).
define(OpDef("mul", {}, shape=_broadcast_shape, arity=2))


# Stochastic depth / drop-path: in training, zero a whole example's path with probability ``rate``
# (``scheduled=False``: stochastic depth, timm's DropPath, constant over training) or ``rate * progress``
# (``scheduled=True``: NASNet's ScheduledDropPath, where ``progress`` in 0..1 is the share of training
# done, set by the training loops) and scale the kept ones by 1/keep; identity in evaluation.
define(OpDef("drop_path", {"rate": 0.0, "scheduled": False}, shape=_same))


def _pad_shape(ins, p):
    c, h, w = ins[0]
    left, right, top, bottom = p["pads"]
    return (c, h + top + bottom, w + left + right)


# Zero padding of the spatial axes as (left, right, top, bottom); negative values crop (the
# one-pixel shift of NASNet's factorized reduction is pads=(-1, 1, -1, 1)).
define(OpDef("pad", {"pads": (0, 0, 0, 0)}, shape=_pad_shape))


def _upsample_shape(ins, p):
    c, h, w = ins[0]
    return (c, h * p["scale"], w * p["scale"])


# Nearest-neighbour upsampling by an integer factor (multi-resolution fusion, dense heads).
define(OpDef("upsample", {"scale": 2}, shape=_upsample_shape))


def _mhsa_shape(ins, p):
    c, h, w = ins[0]
    inner = p["heads"] * p["dim_head"]
    if c != 3 * inner:
        raise ValueError(f"mhsa with heads={p['heads']}, dim_head={p['dim_head']} needs {3 * inner} channels, got {c}")
    return (inner, h, w)


# Multi-head self-attention over the H*W positions (BoTNet / BossNAS ResAtt). The input stacks q, k and
# v along channels, each (heads, dim_head) head-major, as one bias-free 1x1 conv produces them; per head
# out = v @ softmax(q^T k * dim_head**-0.5)^T (softmax over keys, the standard form). MACs: the two
# position-by-position matmuls, 2 * heads * dim_head * (H*W)^2, which the BossNAS analytic calculator
# counts too (its "attention logit" and "v accumulation" terms); the q, k, v projection is a conv2d.
define(OpDef(
    "mhsa", {"heads": None, "dim_head": None},
    shape=_mhsa_shape,
    macs=lambda ins, p, out: 2 * p["heads"] * p["dim_head"] * (out[1] * out[2]) ** 2,
))
