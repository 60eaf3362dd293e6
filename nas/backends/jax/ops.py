"""The JAX (Flax NNX) op table: one factory per op of ``nas.ops``, NCHW like the torch backend.

Weights keep torch's layouts and names (``weight`` as (O, I/groups, kH, kW) or (out, in), ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``) so copying a torch state dict is a
name-for-name assignment, and initial weights follow torch's default distributions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nas.ops import pair

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
    return jnp.asarray(rng.uniform(-bound, bound, shape).astype(np.float32))


def _const(value: float, shape: Shape, dtype: type = np.float32) -> jax.Array:
    return jnp.asarray(np.full(shape, value, dtype))


class Conv2d(nnx.Module):
    """``torch.nn.Conv2d`` on NCHW input with an OIHW kernel (explicit padding, dilation, groups)."""

    def __init__(self, in_channels: int, p: dict, rng: np.random.Generator) -> None:
        kh, kw = pair(p["kernel"])
        groups = p["groups"]
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = nnx.Param(_uniform(rng, (p["out_channels"], in_channels // groups, kh, kw), bound))
        self.bias = nnx.Param(_uniform(rng, (p["out_channels"],), bound)) if p["bias"] else None
        self.stride = pair(p["stride"])
        ph, pw = pair(p["padding"])
        self.padding = ((ph, ph), (pw, pw))
        self.dilation = pair(p["dilation"])
        self.groups = groups

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.lax.conv_general_dilated(
            x, self.weight[...], self.stride, self.padding, rhs_dilation=self.dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=self.groups)
        if self.bias is not None:
            y = y + self.bias[...][None, :, None, None]
        return y


class BatchNorm(nnx.Module):
    """``torch.nn.BatchNorm1d/2d``: batch statistics in train mode (running stats updated with
    torch's momentum and the unbiased variance), running statistics in eval mode."""

    def __init__(self, channels: int, p: dict, ndim: int) -> None:
        self.weight = nnx.Param(_const(1.0, (channels,))) if p["affine"] else None
        self.bias = nnx.Param(_const(0.0, (channels,))) if p["affine"] else None
        self.running_mean = nnx.BatchStat(_const(0.0, (channels,)))
        self.running_var = nnx.BatchStat(_const(1.0, (channels,)))
        self.num_batches_tracked = nnx.BatchStat(_const(0, (), np.int32))
        self.eps = float(p["eps"])
        self.momentum = p["momentum"]
        self.axes = (0, 2, 3) if ndim == 3 else (0,)
        self.use_running_average = False

    def __call__(self, x: jax.Array) -> jax.Array:
        view = (1, -1, 1, 1) if len(self.axes) == 3 else (1, -1)
        if self.use_running_average:
            mean, var = self.running_mean[...], self.running_var[...]
        else:
            mean = jnp.mean(x, axis=self.axes)
            var = jnp.mean(jnp.square(x - mean.reshape(view)), axis=self.axes)
            n = x.size // x.shape[1]
            count = self.num_batches_tracked[...] + 1
            self.num_batches_tracked[...] = count
            m = 1.0 / count if self.momentum is None else float(self.momentum)
            self.running_mean[...] = (1 - m) * self.running_mean[...] + m * mean
            self.running_var[...] = (1 - m) * self.running_var[...] + m * var * (n / max(n - 1, 1))
        y = (x - mean.reshape(view)) * jax.lax.rsqrt(var.reshape(view) + self.eps)
        if self.weight is not None:
            y = y * self.weight[...].reshape(view) + self.bias[...].reshape(view)
        return y


class Linear(nnx.Module):
    """``torch.nn.Linear`` with its (out, in) weight."""

    def __init__(self, in_features: int, p: dict, rng: np.random.Generator) -> None:
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nnx.Param(_uniform(rng, (p["out_features"], in_features), bound))
        self.bias = nnx.Param(_uniform(rng, (p["out_features"],), bound)) if p["bias"] else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x @ self.weight[...].T
        return y + self.bias[...] if self.bias is not None else y


class Pool(nnx.Module):
    """Average or max pooling over NCHW windows, padded as torch pads (``-inf`` for max)."""

    def __init__(self, p: dict, kind: str) -> None:
        self.kind = kind
        self.window = (1, 1, *pair(p["kernel"]))
        self.strides = (1, 1, *pair(p["stride"]))
        ph, pw = pair(p["padding"])
        self.padding = ((0, 0), (0, 0), (ph, ph), (pw, pw))
        self.include_pad = bool(p.get("count_include_pad", True))

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kind == "max":
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, self.window, self.strides, self.padding)
        total = jax.lax.reduce_window(x, 0.0, jax.lax.add, self.window, self.strides, self.padding)
        if self.include_pad:
            return total / (self.window[2] * self.window[3])
        ones = jnp.ones((1, 1, *x.shape[2:]), x.dtype)
        count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, self.window, self.strides, self.padding)
        return total / count


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


def _dropout(p: dict, rng: np.random.Generator) -> nnx.Module:
    rate = float(p["rate"])
    return nnx.Dropout(rate, rngs=nnx.Rngs(dropout=int(rng.integers(2**31))) if rate > 0 else None)


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


class DropPath(nnx.Module):
    """Per-example path dropping like the torch ``DropPath``: rate x ``progress``, off when deterministic."""

    def __init__(self, rate: float, rng: np.random.Generator) -> None:
        self.rate = float(rate)
        self.progress = 1.0
        self.deterministic = False
        self.rngs = nnx.Rngs(dropout=int(rng.integers(2**31))) if rate > 0 else None

    def __call__(self, x: jax.Array) -> jax.Array:
        drop = self.rate * self.progress
        if self.deterministic or drop <= 0.0 or self.rngs is None:
            return x
        keep = 1.0 - drop
        mask = jax.random.bernoulli(self.rngs.dropout(), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
        return x * mask.astype(x.dtype) / keep


def _concat(*xs: jax.Array) -> jax.Array:
    return jnp.concatenate(xs, axis=1)


Factory = Callable[[list[Shape], dict, Shape, np.random.Generator], nnx.Module]

JAX_OPS: dict[str, Factory] = {
    "conv2d": lambda ins, p, out, rng: Conv2d(ins[0][0], p, rng),
    "batchnorm": lambda ins, p, out, rng: BatchNorm(out[0], p, len(out)),
    "act": lambda ins, p, out, rng: Fn(ACT[p["fn"]]),
    "identity": lambda ins, p, out, rng: Fn(_identity),
    "dropout": lambda ins, p, out, rng: _dropout(p, rng),
    "avg_pool": lambda ins, p, out, rng: Pool(p, "avg"),
    "max_pool": lambda ins, p, out, rng: Pool(p, "max"),
    "zero": lambda ins, p, out, rng: Fn(_zero(tuple(out))),
    "global_avg_pool": lambda ins, p, out, rng: Fn(_global_pool("avg", p["keepdims"])),
    "global_max_pool": lambda ins, p, out, rng: Fn(_global_pool("max", p["keepdims"])),
    "mul": lambda ins, p, out, rng: Fn(_mul),
    "drop_path": lambda ins, p, out, rng: DropPath(p["rate"], rng),
    "pad": lambda ins, p, out, rng: Fn(_pad(p["pads"])),
    "upsample": lambda ins, p, out, rng: Fn(_upsample(p["scale"])),
    "linear": lambda ins, p, out, rng: Linear(ins[0][0], p, rng),
    "add": lambda ins, p, out, rng: Fn(_add),
    "concat": lambda ins, p, out, rng: Fn(_concat),
}
