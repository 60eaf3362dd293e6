"""Training-time schedules applied to a built torch network (NASNet's ScheduledDropPath)."""

from __future__ import annotations

from torch import nn

from nas.backends.torch.ops import DropPath


def set_drop_path_progress(module: nn.Module, progress: float) -> int:
    """Set ``progress`` (clipped to [0, 1]) on every drop-path module; returns how many were set.

    A ``drop_path`` node drops with probability ``rate * progress``: its ArchSpec rate is the
    depth-dependent part of ScheduledDropPath and ``progress = min(1, step / total_steps)`` the
    time-dependent part (``nas.spaces.nasnet.droppath.progress``). Call it before each step.
    """
    value = min(1.0, max(0.0, float(progress)))
    count = 0
    for sub in module.modules():
        if isinstance(sub, DropPath):
            sub.progress = value
            count += 1
    return count


def drop_path_rates(module: nn.Module) -> list[float]:
    """The effective drop probabilities (``rate * progress``) of the drop-path modules, in order."""
    return [sub.rate * sub.progress for sub in module.modules() if isinstance(sub, DropPath)]
