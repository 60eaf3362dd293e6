"""The per-block necks of the self-supervised supernet training: projector and predictor (BYOL's heads)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Projector(nn.Module):
    """BossNAS's projector neck. ``resample`` (HyTra, released): a block output at any level is brought to the
    last level's width (depthwise conv k=s=2^dlevel, 1x1 conv, BN), then global average pool, FC (bias) ->
    BN1d -> ReLU -> FC (bias); no last BN. Without ``resample`` (spaces whose blocks each end at one level,
    NB201) each level has its own first FC on its pooled channels. ``last_bn`` appends a BN1d without affine
    parameters (SimSiam's projector ends in BN): every projection, online and target, is centred over the batch,
    so the common direction that ReLU features give every sample (and that averaging paths into the ensemble
    target concentrates) cannot be predicted without reading the input."""

    def __init__(self, channels: Sequence[int], hidden: int, out: int, resample: bool = True,
                 last_bn: bool = False) -> None:
        super().__init__()
        levels = len(channels)
        top = channels[levels - 1]
        self.resample = resample
        self.fix = nn.ModuleDict()
        self.inputs = nn.ModuleDict()
        if resample:
            for level in range(levels - 1):
                c, k = channels[level], 2 ** (levels - 1 - level)
                self.fix[str(level)] = nn.Sequential(nn.Conv2d(c, c, k, stride=k, groups=c, bias=False),
                                                     nn.Conv2d(c, top, 1, bias=False), nn.BatchNorm2d(top))
            self.inputs["all"] = nn.Linear(top, hidden)
        else:
            for level, c in enumerate(channels):
                self.inputs[str(level)] = nn.Linear(c, hidden)
        self.mlp = nn.Sequential(nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out),
                                 *([nn.BatchNorm1d(out, affine=False)] if last_bn else []))
        for m in [*self.inputs.values(), *self.mlp]:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, level: int) -> torch.Tensor:
        if not self.resample:
            return self.mlp(self.inputs[str(level)](x.mean((2, 3))))
        if str(level) in self.fix:
            x = self.fix[str(level)](x)
        return self.mlp(self.inputs["all"](x.mean((2, 3))))


class Predictor(nn.Module):
    """The online predictor: FC (bias) -> BN1d -> ReLU -> FC (bias), normal(0, 0.01) init."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, dim))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)

