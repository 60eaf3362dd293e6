"""A multitask split as device tensors (images with every task's labels and the FCOS targets computed once),
the detection levels of a network, and one task's loss of a network's head outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nas.data.multitask import MultitaskSplit
from nas.evaluators.multitask import _tasks as T
from nas.spaces.fbnet.plan import Plan

METRIC = {"classification": "valid_accuracy", "segmentation": "valid_miou", "detection": "valid_map"}
SHORT = {"classification": "cls", "segmentation": "seg", "detection": "det"}


def levels_of(plan: Plan, size: int) -> list[T.Level]:
    """Detection levels (stride, h, w) from the plan's ``det.l*.cls`` outputs, finest first."""
    levels = []
    for head, (unit, out) in plan.outputs.items():
        if head.startswith("det.") and head.endswith(".cls"):
            _, h, w = plan.unit(unit).kept.output_shapes[out]
            levels.append(T.Level(size // h, h, w))
    return sorted(levels, key=lambda lv: lv.stride)


def det_outputs(out: Mapping[str, torch.Tensor], levels: Sequence[T.Level]) -> list[tuple[torch.Tensor, ...]]:
    """The per-level (class, box, centerness) tensors of the detection head, finest level first."""
    names = sorted({h.rsplit(".", 1)[0] for h in out if h.startswith("det.")}, key=lambda n: int(n[5:]))
    if len(names) != len(levels):
        raise ValueError(f"detection head has levels {names}, expected {len(levels)}")
    return [(out[f"{n}.cls"], out[f"{n}.box"], out[f"{n}.ctr"]) for n in names]


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    targets: T.DetectionTargets | None  # None when no task detects


class Batches:
    """A split as tensors on ``device`` with its FCOS targets (for ``levels``, if any) computed once; ``take``
    gives a ``Batch`` (the whole split is moved once, so a step copies nothing from the host)."""

    def __init__(self, split: MultitaskSplit, levels: Sequence[T.Level], device: str | torch.device = "cpu") -> None:
        self.split = split
        self.device = torch.device(device)
        self.images = torch.from_numpy(split.images).to(self.device)
        self.labels = torch.from_numpy(split.labels).to(self.device)
        self.masks = torch.from_numpy(split.masks).to(self.device)
        per_image = [split.boxes_of(i) for i in range(len(split))] if levels else []
        targets = T.fcos_targets([b for b, _ in per_image], [c for _, c in per_image], levels) if levels else None
        self.targets = targets.to(self.device) if targets else None

    def __len__(self) -> int:
        return len(self.split)

    def take(self, index: np.ndarray) -> Batch:
        i = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        return Batch(self.images[i], self.labels[i], self.masks[i], self.targets.take(i) if self.targets else None)


def task_loss(task: str, out: Mapping[str, torch.Tensor], batch: Batch, levels: Sequence[T.Level]) -> torch.Tensor:
    """The loss of one task's head outputs on a batch."""
    if task == "classification":
        return T.classification_loss(out["logits"], batch.labels)
    if task == "segmentation":
        return T.segmentation_loss(out["seg"], batch.masks)
    return T.detection_loss(det_outputs(out, levels), [lv.stride for lv in levels], batch.targets)
