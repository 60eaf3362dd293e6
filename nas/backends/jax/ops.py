"""The JAX (Flax NNX) op table: one factory per op of ``nas.ops``, NCHW like the torch backend.

Weights keep torch's layouts and names (``weight`` as (O, I/groups, kH, kW) or (out, in), ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``) so copying a torch state dict is a
name-for-name assignment, and initial weights follow the distributions the torch backend draws (each node's
``init``, ``nas.ops.INITS``; torch's defaults unless a space sets another).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nas.ops import pair, spatial_pads

Shape = tuple[int, ...]

ACT: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "silu": jax.nn.silu,
    "sigmoid": jax.nn.sigmoid,
    "hardswish": lambda x: x * jax.nn.relu6(x + 3.0) / 6.0,
    "hardsigmoid": lambda x: jax.nn.relu6(x + 3.0) / 6.0,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "tanh": jnp.tanh,
}


def _uniform(rng: np.random.Generator, shape: Shape, bound: float) -> jax.Array:
    return jax.device_put(rng.uniform(-bound, bound, shape).astype(np.float32))


def _const(value: float, shape: Shape, dtype: type = np.float32) -> jax.Array:
    return jax.device_put(np.full(shape, value, dtype))


# Std of a unit normal truncated at +-2: TF's truncated variance scaling widens its normal by 1/this.
TRUNCATED_STD = 0.87962566103423978


def _truncated_normal(rng: np.random.Generator, shape: Shape, std: float) -> np.ndarray:
    """Normal draws of ``std`` redrawn until each lies within two ``std`` of zero."""
    x = rng.normal(0.0, std, shape)
    out = np.abs(x) > 2 * std
    while out.any():
        x[out] = rng.normal(0.0, std, int(out.sum()))
        out = np.abs(x) > 2 * std
    return x


def init_params(rng: np.random.Generator, shape: Shape, bias: bool, init: str,
                groups: int = 1) -> tuple[jax.Array, jax.Array | None]:
    """Weight of torch layout ``shape`` ((O, I/groups, kH, kW) or (out, in)) and bias as ``init`` names
    (``nas.ops.INITS``), with torch's fans (the TF-Slim scheme's fan-out is per group); ``default`` draws
    both as torch's layers do."""
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    bound = 1.0 / math.sqrt(fan_in)
    if init == "default":
        weight = _uniform(rng, shape, bound)
    elif init == "kaiming_normal_fan_out":
        weight = jax.device_put(rng.normal(0.0, math.sqrt(2.0 / fan_out), shape).astype(np.float32))
    elif init == "xavier_uniform_relu":
        weight = _uniform(rng, shape, math.sqrt(2.0) * math.sqrt(6.0 / (fan_in + fan_out)))
    elif init == "tf_variance_scaling":
        std = math.sqrt(1.0 / fan_in) / TRUNCATED_STD
        weight = jax.device_put(_truncated_normal(rng, shape, std).astype(np.float32))
    elif init == "normal_0.01":
        weight = jax.device_put(rng.normal(0.0, 0.01, shape).astype(np.float32))
    elif init == "tf_slim_fan_out":
        std = math.sqrt(1.3 * 2.0 / (fan_out // groups))
        weight = jax.device_put(_truncated_normal(rng, shape, std).astype(np.float32))
    else:
        raise ValueError(f"unknown init {init!r}")
    if not bias:
        return weight, None
    if init in ("tf_variance_scaling", "normal_0.01", "tf_slim_fan_out"):
        return weight, _const(0.0, (shape[0],))
    return weight, _uniform(rng, (shape[0],), bound)


@partial(jax.jit, static_argnames=("stride", "padding", "dilation", "groups"))
def conv2d(x: jax.Array, weight: jax.Array, bias: jax.Array | None, *, stride: tuple[int, int],
           padding: tuple[tuple[int, int], ...], dilation: tuple[int, int], groups: int) -> jax.Array:
    """NCHW convolution with an OIHW kernel (one compiled program per shape when run eagerly)."""
    y = jax.lax.conv_general_dilated(x, weight, stride, padding, rhs_dilation=dilation,
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups)
    return y if bias is None else y + bias[None, :, None, None]


def _normalize(x: jax.Array, mean: jax.Array, var: jax.Array, weight: jax.Array | None,
               bias: jax.Array | None, eps: float) -> jax.Array:
    view = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(view)) * jax.lax.rsqrt(var.reshape(view) + eps)
    return y if weight is None else y * weight.reshape(view) + bias.reshape(view)


@partial(jax.jit, static_argnames=("eps",))
def batch_norm(x: jax.Array, mean: jax.Array, var: jax.Array, weight: jax.Array | None,
               bias: jax.Array | None, *, eps: float) -> jax.Array:
    """Batch norm with given statistics (eval mode)."""
    return _normalize(x, mean, var, weight, bias, eps)


@partial(jax.jit, static_argnames=("eps", "momentum"))
def batch_norm_train(x: jax.Array, running_mean: jax.Array, running_var: jax.Array, count: jax.Array,
                     weight: jax.Array | None, bias: jax.Array | None, *, eps: float,
                     momentum: float | None) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Batch norm with batch statistics; returns the output and torch's updated running statistics
    (momentum ``None``: cumulative average) and batch count."""
    axes = (0, *range(2, x.ndim))
    view = (1, -1) + (1,) * (x.ndim - 2)
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - mean.reshape(view)), axis=axes)
    n = x.size // x.shape[1]
    count = count + 1
    m = 1.0 / count if momentum is None else momentum
    new_mean = (1 - m) * running_mean + m * jax.lax.stop_gradient(mean)
    new_var = (1 - m) * running_var + m * jax.lax.stop_gradient(var) * (n / max(n - 1, 1))
    return _normalize(x, mean, var, weight, bias, eps), new_mean, new_var, count


class Conv2d(nnx.Module):
    """``torch.nn.Conv2d`` on NCHW input with an OIHW kernel (explicit padding, dilation, groups)."""

    def __init__(self, in_shape: Shape, p: dict, rng: np.random.Generator) -> None:
        in_channels = in_shape[0]
        kh, kw = pair(p["kernel"])
        groups = p["groups"]
        weight, bias = init_params(rng, (p["out_channels"], in_channels // groups, kh, kw), p["bias"], p["init"],
                                   groups)
        self.weight = nnx.Param(weight)
        self.bias = nnx.Param(bias) if bias is not None else None
        self.stride = pair(p["stride"])
        top, bottom, left, right = spatial_pads(in_shape, p)
        self.padding = ((top, bottom), (left, right))
        self.dilation = pair(p["dilation"])
        self.groups = groups

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.bias[...] if self.bias is not None else None
        return conv2d(x, self.weight[...], bias, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups)


class BatchNorm(nnx.Module):
    """``torch.nn.BatchNorm1d/2d``: batch statistics in train mode (running stats updated with
    torch's momentum and the unbiased variance), running statistics in eval mode."""

    def __init__(self, channels: int, p: dict) -> None:
        gamma = 0.0 if p.get("zero_init") else 1.0
        self.weight = nnx.Param(_const(gamma, (channels,))) if p["affine"] else None
        self.bias = nnx.Param(_const(0.0, (channels,))) if p["affine"] else None
        self.running_mean = nnx.BatchStat(_const(0.0, (channels,)))
        self.running_var = nnx.BatchStat(_const(1.0, (channels,)))
        self.num_batches_tracked = nnx.BatchStat(_const(0, (), np.int32))
        self.eps = float(p["eps"])
        self.momentum = None if p["momentum"] is None else float(p["momentum"])
        self.use_running_average = False

    def __call__(self, x: jax.Array) -> jax.Array:
        weight = self.weight[...] if self.weight is not None else None
        bias = self.bias[...] if self.bias is not None else None
        if self.use_running_average:
            return batch_norm(x, self.running_mean[...], self.running_var[...], weight, bias, eps=self.eps)
        y, mean, var, count = batch_norm_train(x, self.running_mean[...], self.running_var[...],
                                               self.num_batches_tracked[...], weight, bias, eps=self.eps,
                                               momentum=self.momentum)
        self.running_mean[...], self.running_var[...], self.num_batches_tracked[...] = mean, var, count
        return y


@jax.jit
def linear(x: jax.Array, weight: jax.Array, bias: jax.Array | None) -> jax.Array:
    """``x @ weight.T + bias`` with torch's (out, in) weight."""
    y = x @ weight.T
    return y if bias is None else y + bias


class Linear(nnx.Module):
    """``torch.nn.Linear`` with its (out, in) weight."""

    def __init__(self, in_features: int, p: dict, rng: np.random.Generator) -> None:
        weight, bias = init_params(rng, (p["out_features"], in_features), p["bias"], p["init"])
        self.weight = nnx.Param(weight)
        self.bias = nnx.Param(bias) if bias is not None else None

    def __call__(self, x: jax.Array) -> jax.Array:
        return linear(x, self.weight[...], self.bias[...] if self.bias is not None else None)


@partial(jax.jit, static_argnames=("kind", "window", "strides", "padding", "include_pad"))
def pool2d(x: jax.Array, *, kind: str, window: tuple[int, ...], strides: tuple[int, ...],
           padding: tuple[tuple[int, int], ...], include_pad: bool) -> jax.Array:
    """Max (``-inf`` padding) or average pooling; the average divides by the window, or by its
    unpadded part when ``include_pad`` is false, as torch does."""
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, padding)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, padding)
    if include_pad:
        return total / (window[2] * window[3])
    ones = jnp.ones((1, 1, *x.shape[2:]), x.dtype)
    return total / jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, padding)


class Pool(nnx.Module):
    """Average or max pooling over NCHW windows, padded as the node says (``-inf`` for max; TF's SAME
    pads one more pixel at the end on strided windows)."""

    def __init__(self, in_shape: Shape, p: dict, kind: str) -> None:
        self.kind = kind
        self.window = (1, 1, *pair(p["kernel"]))
        self.strides = (1, 1, *pair(p["stride"]))
        top, bottom, left, right = spatial_pads(in_shape, p)
        self.padding = ((0, 0), (0, 0), (top, bottom), (left, right))
        self.include_pad = bool(p.get("count_include_pad", True))

    def __call__(self, x: jax.Array) -> jax.Array:
        return pool2d(x, kind=self.kind, window=self.window, strides=self.strides, padding=self.padding,
                      include_pad=self.include_pad)


class Fn(nnx.Module):
    """A parameter-free op given by a function of the input arrays."""

    def __init__(self, fn: Callable[..., jax.Array]) -> None:
        self.fn = fn

    def __call__(self, *xs: jax.Array) -> jax.Array:
        return self.fn(*xs)


def _add(*xs: jax.Array) -> jax.Array:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _zero(shape: Shape) -> Callable[[jax.Array], jax.Array]:
    def zero(x: jax.Array) -> jax.Array:
        return jnp.zeros((x.shape[0], *shape), x.dtype)

    return zero


def _dropout(p: dict, out: Shape, rng: np.random.Generator) -> nnx.Module:
    """Element-wise dropout, or one draw per (example, channel) broadcast over H and W when ``channelwise``
    on a (C, H, W) map (torch's ``Dropout2d``)."""
    rate = float(p["rate"])
    broadcast = (2, 3) if p["channelwise"] and len(out) == 3 else ()
    return nnx.Dropout(rate, broadcast_dims=broadcast,
                       rngs=nnx.Rngs(dropout=int(rng.integers(2**31))) if rate > 0 else None)


def _identity(x: jax.Array) -> jax.Array:
    return x


def _global_pool(kind: str, keepdims: bool) -> Callable[[jax.Array], jax.Array]:
    reduce = jnp.mean if kind == "avg" else jnp.max

    def pool(x: jax.Array) -> jax.Array:
        return reduce(x, axis=(2, 3), keepdims=keepdims)

    return pool


def _mul(a: jax.Array, b: jax.Array) -> jax.Array:
    return a * b


def _pad(pads: tuple[int, int, int, int]) -> Callable[[jax.Array], jax.Array]:
    left, right, top, bottom = (int(v) for v in pads)
    config = ((0, 0, 0), (0, 0, 0), (top, bottom, 0), (left, right, 0))

    def pad(x: jax.Array) -> jax.Array:
        return jax.lax.pad(x, jnp.array(0, x.dtype), config)

    return pad


def _upsample(scale: int) -> Callable[[jax.Array], jax.Array]:
    def upsample(x: jax.Array) -> jax.Array:
        return jnp.repeat(jnp.repeat(x, scale, axis=2), scale, axis=3)

    return upsample


class Progress(nnx.Variable):
    """Training progress in [0, 1] read by drop-path (state, so a compiled step sees updates)."""


class DropPath(nnx.Module):
    """Per-example path dropping like the torch ``DropPath``: ``rate``, times ``progress`` when
    ``scheduled``; off when deterministic."""

    def __init__(self, rate: float, rng: np.random.Generator, scheduled: bool = False) -> None:
        self.rate = float(rate)
        self.scheduled = bool(scheduled)
        self.progress = Progress(jnp.asarray(1.0, jnp.float32))
        self.deterministic = False
        self.rngs = nnx.Rngs(dropout=int(rng.integers(2**31))) if rate > 0 else None

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.deterministic or self.rate <= 0.0 or self.rngs is None:
            return x
        keep = 1.0 - (self.rate * self.progress[...] if self.scheduled else self.rate)
        mask = jax.random.bernoulli(self.rngs.dropout(), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
        # keep may be 0 (rate 1): every path is dropped, zeros rather than 0 / 0 (timm's drop_path)
        kept = x * mask.astype(x.dtype) / jnp.where(keep > 0, keep, 1.0)  # same rounding as torch's x * mask / keep
        return jnp.where(keep > 0, kept, jnp.zeros_like(x))


def _mhsa(heads: int, dim_head: int) -> Callable[[jax.Array], jax.Array]:
    """Multi-head self-attention on stacked (q, k, v) channels; see ``mhsa`` in ``nas.ops.primitives``."""

    def mhsa(x: jax.Array) -> jax.Array:
        b, _, h, w = x.shape
        qkv = x.reshape(b, 3, heads, dim_head, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        attn = jax.nn.softmax(jnp.swapaxes(q, -2, -1) @ k * dim_head ** -0.5, axis=-1)
        return (v @ jnp.swapaxes(attn, -2, -1)).reshape(b, heads * dim_head, h, w)

    return mhsa


def _concat(*xs: jax.Array) -> jax.Array:
    return jnp.concatenate(xs, axis=1)


def _channel_slice(start: int, stop: int) -> Callable[[jax.Array], jax.Array]:
    def channel_slice(x: jax.Array) -> jax.Array:
        return x[:, start:stop]

    return channel_slice


Factory = Callable[[list[Shape], dict, Shape, np.random.Generator], nnx.Module]

JAX_OPS: dict[str, Factory] = {
    "conv2d": lambda ins, p, out, rng: Conv2d(ins[0], p, rng),
    "batchnorm": lambda ins, p, out, rng: BatchNorm(out[0], p),
    "act": lambda ins, p, out, rng: Fn(ACT[p["fn"]]),
    "identity": lambda ins, p, out, rng: Fn(_identity),
    "dropout": lambda ins, p, out, rng: _dropout(p, out, rng),
    "avg_pool": lambda ins, p, out, rng: Pool(ins[0], p, "avg"),
    "max_pool": lambda ins, p, out, rng: Pool(ins[0], p, "max"),
    "zero": lambda ins, p, out, rng: Fn(_zero(tuple(out))),
    "global_avg_pool": lambda ins, p, out, rng: Fn(_global_pool("avg", p["keepdims"])),
    "global_max_pool": lambda ins, p, out, rng: Fn(_global_pool("max", p["keepdims"])),
    "mul": lambda ins, p, out, rng: Fn(_mul),
    "drop_path": lambda ins, p, out, rng: DropPath(p["rate"], rng, p["scheduled"]),
    "pad": lambda ins, p, out, rng: Fn(_pad(p["pads"])),
    "upsample": lambda ins, p, out, rng: Fn(_upsample(p["scale"])),
    "linear": lambda ins, p, out, rng: Linear(ins[0][0], p, rng),
    "add": lambda ins, p, out, rng: Fn(_add),
    "concat": lambda ins, p, out, rng: Fn(_concat),
    "channel_slice": lambda ins, p, out, rng: Fn(_channel_slice(int(p["start"]), int(p["stop"]))),
    "mhsa": lambda ins, p, out, rng: Fn(_mhsa(int(p["heads"]), int(p["dim_head"]))),
}
