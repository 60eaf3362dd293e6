"""Training-time schedules applied to a built torch network (NASNet's ScheduledDropPath)."""

from __future__ import annotations

from torch import nn

from nas.backends.torch.ops import DropPath


def set_drop_path_progress(module: nn.Module, progress: float) -> int:
    """Set ``progress`` (clipped to [0, 1]) on every scheduled drop-path module; returns how many were set.

    A ``drop_path`` node with ``scheduled=True`` drops with probability ``rate * progress``: its ArchSpec
    rate is the depth-dependent part of ScheduledDropPath and ``progress = min(1, step / total_steps)``
    the time-dependent part (``nas.spaces.nasnet.droppath.progress``). Constant drop-path (stochastic
    depth) is left alone. Call it before each step.
    """
    value = min(1.0, max(0.0, float(progress)))
    count = 0
    for sub in module.modules():
        if isinstance(sub, DropPath) and sub.scheduled:
            sub.progress = value
            count += 1
    return count


def drop_path_rates(module: nn.Module) -> list[float]:
    """The drop probabilities in effect (``rate * progress`` when scheduled, else ``rate``), in module order."""
    return [sub.drop_rate for sub in module.modules() if isinstance(sub, DropPath)]
