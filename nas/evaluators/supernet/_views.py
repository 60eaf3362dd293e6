"""The two BYOL-style augmentation families of BossNAS's training views, as batched torch tensor ops.

Both families: random resized crop (scale 0.08-1, aspect 3/4-4/3, bicubic; ``min_crop`` raises the lower
bound for images upscaled from a few pixels) with a horizontal flip (p=0.5), colour jitter (brightness 0.4,
contrast 0.4, saturation 0.2, hue 0.1; p=0.8; kornia's saturation and hue), grayscale (p=0.2) and Gaussian
blur (kornia; sigma 0.1-2.0 at 224 pixels, scaled to the image size). Family A blurs with p=0.1 and never
solarizes; family B always blurs and solarizes with p=0.2 (the released config's settings).
Saturation, hue and grayscale need three channels and are skipped on grey images.

Images arrive normalised as the dataset stores them; ``Views`` maps them to [0, 1] with the train
split's range, augments there and maps back, so intensity operations have their usual meaning.
"""

from __future__ import annotations

import math

import torch
from kornia.enhance import adjust_hue, adjust_saturation
from kornia.filters import gaussian_blur2d
from torch import nn

FAMILIES = {"A": {"blur": 0.1, "solarize": 0.0}, "B": {"blur": 1.0, "solarize": 0.2}}
JITTER = {"p": 0.8, "brightness": 0.4, "contrast": 0.4, "saturation": 0.2, "hue": 0.1}
GRAYSCALE_P = 0.2
BLUR_SIGMA_224 = (0.1, 2.0)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _coin(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def resized_crop_flip(x: torch.Tensor, gen: torch.Generator, min_crop: float = CROP_SCALE[0]) -> torch.Tensor:
    """Random resized crop (area ``min_crop``-1) back to the input size, then a random horizontal flip."""
    n = x.shape[0]
    area = _uniform(n, min_crop, CROP_SCALE[1], gen)
    log_ratio = _uniform(n, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), gen)
    ratio = torch.exp(log_ratio)
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - h)
    flip = torch.where(_coin(n, 0.5, gen), -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=False).clamp(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x.mean(1, keepdim=True)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.view(-1, 1, 1, 1)
    return (f * a + (1 - f) * b).clamp(0, 1)


def color_jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter applied to a random 80% of the images."""
    n = x.shape[0]
    apply = _coin(n, JITTER["p"], gen).view(-1, 1, 1, 1)
    b = _uniform(n, 1 - JITTER["brightness"], 1 + JITTER["brightness"], gen)
    c = _uniform(n, 1 - JITTER["contrast"], 1 + JITTER["contrast"], gen)
    s = _uniform(n, 1 - JITTER["saturation"], 1 + JITTER["saturation"], gen)
    hue = _uniform(n, -JITTER["hue"], JITTER["hue"], gen)
    y = (x * b.view(-1, 1, 1, 1)).clamp(0, 1)
    y = _blend(y, _gray(y).mean((1, 2, 3), keepdim=True).expand_as(y), c)
    if x.shape[1] == 3:  # kornia's HSV saturation and hue (hue factor in radians), factors drawn here
        y = adjust_saturation(y, s).clamp(0, 1)
        y = adjust_hue(y, 2 * math.pi * hue).clamp(0, 1)
    return torch.where(apply, y, x)


def grayscale(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Colour images to grey (kept three channels) with probability 0.2; grey images pass unchanged."""
    if x.shape[1] != 3:
        return x
    apply = _coin(x.shape[0], GRAYSCALE_P, gen).view(-1, 1, 1, 1)
    return torch.where(apply, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Blur a random fraction ``p`` of the images (kornia) with sigma drawn per image (kernel ~10% of the size)."""
    n, _, h, _ = x.shape
    if p <= 0:
        return x
    scale = h / 224
    sigma = _uniform(n, BLUR_SIGMA_224[0] * scale, BLUR_SIGMA_224[1] * scale, gen).clamp(min=1e-3)
    apply = _coin(n, p, gen).view(-1, 1, 1, 1)
    size = 2 * max(1, int(round(0.05 * h))) + 1
    blurred = gaussian_blur2d(x, (size, size), sigma.view(-1, 1).expand(n, 2).contiguous())
    return torch.where(apply, blurred, x)


def solarize(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Invert the pixels at or above 0.5 of a random fraction ``p`` of the images."""
    if p <= 0:
        return x
    apply = _coin(x.shape[0], p, gen).view(-1, 1, 1, 1)
    return torch.where(apply & (x >= 0.5), 1 - x, x)


def augment01(x: torch.Tensor, family: str, gen: torch.Generator, min_crop: float = CROP_SCALE[0]) -> torch.Tensor:
    """One view of family ``A`` or ``B`` of images in [0, 1]."""
    spec = FAMILIES[family]
    x = resized_crop_flip(x, gen, min_crop)
    x = color_jitter(x, gen)
    x = grayscale(x, gen)
    x = gaussian_blur(x, spec["blur"], gen)
    return solarize(x, spec["solarize"], gen)


class Views:
    """Augmented views of normalised images: ``pairs(x, k)`` gives k views of family A and k of family B."""

    def __init__(self, low: float, high: float, seed: int = 0, min_crop: float = CROP_SCALE[0]) -> None:
        if not high > low:
            raise ValueError(f"image range must be non-empty, got [{low}, {high}]")
        if not 0 < min_crop <= 1:
            raise ValueError(f"min_crop must be in (0, 1], got {min_crop}")
        self.low, self.span, self.min_crop = float(low), float(high - low), float(min_crop)
        self.gen = torch.Generator().manual_seed(int(seed))

    def view(self, x: torch.Tensor, family: str) -> torch.Tensor:
        """One augmented view (same normalisation as the input)."""
        x01 = ((x - self.low) / self.span).clamp(0, 1)
        return augment01(x01, family, self.gen, self.min_crop) * self.span + self.low

    def pairs(self, x: torch.Tensor, k: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``k`` views of family A and ``k`` of family B of the same images (one pair per sampled path)."""
        return [self.view(x, "A") for _ in range(k)], [self.view(x, "B") for _ in range(k)]
