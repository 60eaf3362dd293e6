"""The torch op table: one factory per op of ``nas.ops``, called with input shapes and params."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nas.ops import pair, spatial_pads

ACT = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "hardswish": nn.Hardswish,
       "hardsigmoid": nn.Hardsigmoid, "gelu": nn.GELU, "tanh": nn.Tanh}


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class ChannelSlice(nn.Module):
    """Channels [start, stop) of an (N, C, ...) tensor (a view, no copy)."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]


class Zero(nn.Module):
    """Zeros of the output shape (the ``none`` op); keeps no reference to the input's values."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], *self.shape))


class GlobalPool(nn.Module):
    def __init__(self, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.kind = kind
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=(2, 3), keepdim=self.keepdims)
        return x.amax(dim=(2, 3), keepdim=self.keepdims)


class Mul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class DropPath(nn.Module):
    """Per-example path dropping at ``rate``; when ``scheduled``, ``progress`` (the share of training done,
    set by the training loop, default 1) scales the rate, else it is ignored."""

    def __init__(self, rate: float, scheduled: bool = False) -> None:
        super().__init__()
        self.rate = float(rate)
        self.scheduled = bool(scheduled)
        self.progress = 1.0

    @property
    def drop_rate(self) -> float:
        """The drop probability in effect now."""
        return self.rate * self.progress if self.scheduled else self.rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        drop = self.drop_rate
        if not self.training or drop <= 0.0:
            return x
        keep = 1.0 - drop
        if keep <= 0.0:  # every path dropped (timm's drop_path: zeros, no division by 0)
            return torch.zeros_like(x)
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep


class Pad(nn.Module):
    def __init__(self, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.pads = tuple(int(v) for v in pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, self.pads)


class Upsample(nn.Module):
    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = int(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.scale, dim=2).repeat_interleave(self.scale, dim=3)


class MHSA(nn.Module):
    """Multi-head self-attention on stacked (q, k, v) channels; see ``mhsa`` in ``nas.ops.primitives``."""

    def __init__(self, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = int(heads)
        self.dim_head = int(dim_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = x.reshape(b, 3, self.heads, self.dim_head, h * w).unbind(1)
        attn = torch.softmax(q.transpose(-2, -1) @ k * self.dim_head ** -0.5, dim=-1)
        return (v @ attn.transpose(-2, -1)).reshape(b, self.heads * self.dim_head, h, w)


class AvgPool(nn.Module):
    """Average pooling as a depthwise convolution with a constant kernel, divided by the count of real inputs
    under each window when padding is not counted.

    Written by hand because ``torch.avg_pool2d`` on the CPU is several times slower than a depthwise
    convolution of the same window (forward + backward, N=32, C=8, 32x32: 10.6 ms vs 1.8 ms with torch 2.13,
    measured in ``benchmarks/avg_pool.py``); the output equals ``nn.AvgPool2d``'s to float rounding (tested).
    ``padding`` is (h, w) on both sides, or (top, bottom, left, right); unequal sides (TF's SAME) zero-pad
    first, for the sums and for the count map alike, so padded cells are not counted either way.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int] | tuple[int, int, int, int], count_include_pad: bool) -> None:
        super().__init__()
        pads = tuple(padding) if len(padding) == 4 else (padding[0], padding[0], padding[1], padding[1])
        top, bottom, left, right = pads
        self.kernel, self.stride = kernel, stride
        self.symmetric = top == bottom and left == right
        self.padding = (top, left) if self.symmetric else (0, 0)
        self.pre_pad = (0, 0, 0, 0) if self.symmetric else (left, right, top, bottom)
        self.padded = any(pads)
        self.count_include_pad = count_include_pad

    def _window_sum(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            x = nn.functional.pad(x, self.pre_pad)
        weight = x.new_ones((x.shape[1], 1, *self.kernel))
        return nn.functional.conv2d(x, weight, stride=self.stride, padding=self.padding, groups=x.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self._window_sum(x)
        if self.count_include_pad or not self.padded:
            return total / (self.kernel[0] * self.kernel[1])
        with torch.no_grad():
            count = self._window_sum(x.new_ones((1, 1, *x.shape[2:])))
        return total / count


class PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` after an explicit (left, right, top, bottom) zero padding: TF's SAME on strided
    windows pads one more pixel at the end than at the start. Same parameters and names as ``nn.Conv2d``."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs) -> None:
        super().__init__(*args, padding=0, **kwargs)
        self.pads = tuple(int(v) for v in pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(nn.functional.pad(x, self.pads), self.weight, self.bias)


class PaddedMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` after an explicit (left, right, top, bottom) ``-inf`` padding (TF's SAME)."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int, int, int]) -> None:
        super().__init__(kernel, stride, 0)
        self.pads = tuple(int(v) for v in pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, self.pads, value=float("-inf")))


# Std of a unit normal truncated at +-2: TF's truncated variance scaling widens its normal by 1/this.
TRUNCATED_STD = 0.87962566103423978


def init_weights(module: nn.Conv2d | nn.Linear, init: str) -> nn.Module:
    """Redraw ``module``'s weight (and bias where the scheme says) as ``init`` names (``nas.ops.INITS``);
    ``default`` keeps torch's draw. Fans are torch's, (in/groups, out) times the kernel size, except for the
    TF-Slim scheme, whose fan-out is per group (out/groups times the kernel size)."""
    w = module.weight
    receptive = math.prod(w.shape[2:])
    fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
    groups = getattr(module, "groups", 1)
    zero_bias = False
    with torch.no_grad():
        if init == "kaiming_normal_fan_out":
            w.normal_(0.0, math.sqrt(2.0 / fan_out))
        elif init == "xavier_uniform_relu":
            bound = math.sqrt(2.0) * math.sqrt(6.0 / (fan_in + fan_out))
            w.uniform_(-bound, bound)
        elif init == "tf_variance_scaling":
            std = math.sqrt(1.0 / fan_in) / TRUNCATED_STD
            nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)
            zero_bias = True
        elif init == "normal_0.01":
            w.normal_(0.0, 0.01)
            zero_bias = True
        elif init == "tf_slim_fan_out":
            std = math.sqrt(1.3 * 2.0 / (fan_out // groups))
            nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)
            zero_bias = True
        elif init != "default":
            raise ValueError(f"unknown init {init!r}")
        if zero_bias and module.bias is not None:
            module.bias.zero_()
    return module


def _conv(ins, p, out):
    top, bottom, left, right = spatial_pads(ins[0], p)
    args = (ins[0][0], p["out_channels"], pair(p["kernel"]), pair(p["stride"]))
    if top == bottom and left == right:
        conv = nn.Conv2d(*args, (top, left), pair(p["dilation"]), p["groups"], bias=p["bias"])
    else:
        conv = PaddedConv2d(*args, dilation=pair(p["dilation"]), groups=p["groups"], bias=p["bias"],
                            pads=(left, right, top, bottom))
    return init_weights(conv, p["init"])


def _max_pool(ins, p, out):
    top, bottom, left, right = spatial_pads(ins[0], p)
    if top == bottom and left == right:
        return nn.MaxPool2d(pair(p["kernel"]), pair(p["stride"]), (top, left))
    return PaddedMaxPool2d(pair(p["kernel"]), pair(p["stride"]), (left, right, top, bottom))


def _bn(ins, p, out):
    cls = nn.BatchNorm2d if len(out) == 3 else nn.BatchNorm1d
    bn = cls(out[0], eps=p["eps"], momentum=p["momentum"], affine=p["affine"])
    if p["zero_init"] and p["affine"]:  # a residual branch that starts as the identity (ResNet-RS)
        nn.init.zeros_(bn.weight)
    return bn


def _dropout(ins, p, out):
    """Element-wise dropout, or ``Dropout2d`` (whole channels) when ``channelwise`` on a (C, H, W) map."""
    return nn.Dropout2d(p["rate"]) if p["channelwise"] and len(out) == 3 else nn.Dropout(p["rate"])


TORCH_OPS: dict[str, Callable[..., nn.Module]] = {
    "conv2d": _conv,
    "batchnorm": _bn,
    "act": lambda ins, p, out: ACT[p["fn"]](),
    "identity": lambda ins, p, out: nn.Identity(),
    "dropout": _dropout,
    "avg_pool": lambda ins, p, out: AvgPool(pair(p["kernel"]), pair(p["stride"]), spatial_pads(ins[0], p),
                                             p["count_include_pad"]),
    "max_pool": _max_pool,
    "zero": lambda ins, p, out: Zero(out),
    "global_avg_pool": lambda ins, p, out: GlobalPool("avg", p["keepdims"]),
    "global_max_pool": lambda ins, p, out: GlobalPool("max", p["keepdims"]),
    "mul": lambda ins, p, out: Mul(),
    "drop_path": lambda ins, p, out: DropPath(p["rate"], p["scheduled"]),
    "pad": lambda ins, p, out: Pad(p["pads"]),
    "upsample": lambda ins, p, out: Upsample(p["scale"]),
    "linear": lambda ins, p, out: init_weights(nn.Linear(ins[0][0], p["out_features"], bias=p["bias"]), p["init"]),
    "add": lambda ins, p, out: Add(),
    "concat": lambda ins, p, out: Concat(),
    "channel_slice": lambda ins, p, out: ChannelSlice(int(p["start"]), int(p["stop"])),
    "mhsa": lambda ins, p, out: MHSA(p["heads"], p["dim_head"]),
}
