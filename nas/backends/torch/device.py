"""Torch device names from config (``cpu``, ``cuda``, ``cuda:N``, ``auto``), with one-line errors for bad ones."""

from __future__ import annotations

import torch

from nas.core.errors import UserError


def torch_device(name: str | None) -> torch.device:
    """``cpu`` (also for None), ``cuda``, ``cuda:N`` or ``auto`` (CUDA when torch sees one) as a torch device.

    Asking for CUDA where torch has none is a user error, not a traceback from deep inside a training loop.
    """
    text = (name or "cpu").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UserError(f"unknown device {name!r} (cpu, cuda, cuda:N or auto)") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported (cpu, cuda, cuda:N or auto)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} asked for, but torch sees no CUDA device here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return device
