"""A recipe's batch augmentation as kornia ops, run on the training device.

Geometric and colour operations run on images mapped to [0, 1] with the training split's per-channel
range (the data is stored normalised), so zero padding is black and jitter has its usual meaning; cutout
and random erasing run after mapping back, filling with 0 = the channel mean, as DeVries & Taylor's code does.
Cutout is kornia's ``RandomErasing`` of a fixed square (always inside the image; the original's may cross
the border). Random numbers come from torch's global generator, which the training loop seeds and checkpoints.
"""

from __future__ import annotations

import kornia.augmentation as K
import numpy as np
import torch
from kornia.augmentation.auto import RandAugment
from torch import nn

from nas.backends.training import Augment


class BatchAugment(nn.Module):
    """``forward(x)`` augments a normalised NCHW batch according to ``augment``."""

    def __init__(self, augment: Augment, train_x: np.ndarray) -> None:
        super().__init__()
        _, channels, height, width = train_x.shape
        low = train_x.min(axis=(0, 2, 3)).reshape(1, channels, 1, 1)
        high = train_x.max(axis=(0, 2, 3)).reshape(1, channels, 1, 1)
        self.register_buffer("low", torch.from_numpy(low.astype(np.float32)))
        self.register_buffer("span", torch.from_numpy(np.maximum(high - low, 1e-6).astype(np.float32)))
        pixel = []
        if augment.crop_padding:
            pixel.append(K.RandomCrop((height, width), padding=augment.crop_padding))
        if augment.flip:
            pixel.append(K.RandomHorizontalFlip())
        if augment.randaugment_layers:
            pixel.append(RandAugment(n=augment.randaugment_layers, m=augment.randaugment_magnitude))
        if augment.color_jitter:
            s = augment.color_jitter
            pixel.append(K.ColorJitter(brightness=s, contrast=s, saturation=s if channels == 3 else 0.0, p=0.8))
        masks = []
        if augment.cutout:
            side = min(augment.cutout, height, width)
            area = side * side / (height * width)
            masks.append(K.RandomErasing(scale=(area, area), ratio=(1.0, 1.0), value=0.0, p=1.0))
        if augment.erasing:
            masks.append(K.RandomErasing(p=augment.erasing, value=0.0))
        self.pixel = nn.Sequential(*pixel)
        self.masks = nn.Sequential(*masks)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.pixel):
            x = self.pixel((x - self.low) / self.span).clamp(0, 1) * self.span + self.low
        if len(self.masks):
            x = self.masks(x)
        return x
