"""Stand-alone training of one single-task network of the multitask space (the FBNetV5 searcher's final
trainings, the found-vs-random and ranking benchmarks) and its validation metric in percent."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from nas.backends.torch import build
from nas.backends.torch.device import torch_device
from nas.backends.torch.optim import fused_adamw, set_lr, warmup_cosine
from nas.backends.torch.supernets.fbnetv5 import CHANNELS_LAST
from nas.backends.torch.train import calibrate_stale_bn
from nas.core.ir import ArchSpec
from nas.data.multitask import MultitaskData
from nas.evaluators.metrics import accuracy, coco_map, confusion_matrix, miou_from_confusion
from nas.evaluators.multitask import _tasks as T
from nas.evaluators.multitask._batches import Batches, det_outputs, task_loss


def _as_dict(arch: ArchSpec, out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return out if isinstance(out, dict) else {arch.outputs[0][0]: out}


def evaluate(model: torch.nn.Module, arch: ArchSpec, task: str, batches: Batches, levels: Sequence[T.Level],
             num_classes: int, batch_size: int = 128) -> dict[str, float]:
    """The task's validation metrics in percent: accuracy, mIoU (with background) or COCO mAP."""
    model.eval()
    split = batches.split
    predicted, confusion, found = [], np.zeros((num_classes + 1,) * 2, dtype=np.int64), []
    size = tuple(split.masks.shape[1:])
    with torch.no_grad():
        for start in range(0, len(batches), batch_size):
            batch = batches.take(np.arange(start, min(start + batch_size, len(batches))))
            out = _as_dict(arch, model(batch.images.contiguous(memory_format=CHANNELS_LAST)))
            out = {name: value.cpu() for name, value in out.items()}
            if task == "classification":
                predicted.append(out["logits"].argmax(1).numpy())
            elif task == "segmentation":
                pred = T.segmentation_predict(out["seg"], size).numpy()
                confusion += confusion_matrix(pred, batch.masks.cpu().numpy(), num_classes + 1)
            else:
                found.extend(T.decode_detections(det_outputs(out, levels), levels, size))
    if task == "classification":
        return {"valid_accuracy": 100.0 * accuracy(np.concatenate(predicted), split.labels)}
    if task == "segmentation":
        return {"valid_miou": 100.0 * miou_from_confusion(confusion)}
    truth = [split.boxes_of(i) for i in range(len(split))]
    scores = coco_map(found, truth, num_classes, size)
    return {"valid_map": 100.0 * scores["map"], "valid_map50": 100.0 * scores["map50"]}


def train_task(arch: ArchSpec, task: str, data: MultitaskData, steps: int, batch_size: int, lr: float,
               seed: int, device: str = "cpu") -> dict[str, float]:
    """Train ``arch`` from scratch on one task for ``steps`` (AdamW, cosine) on ``device``, then its validation
    metrics."""
    size = data.input_shape[1]
    levels = []
    if task == "detection":
        levels = sorted((T.Level(size // shape[1], shape[1], shape[2]) for head, shape in arch.output_shapes.items()
                         if head.endswith(".cls")), key=lambda lv: lv.stride)
    torch.manual_seed(seed)
    where = torch_device(device)
    model = build(arch, seed=seed).to(where, memory_format=CHANNELS_LAST)
    T.set_class_prior(model)
    optimizer = fused_adamw(model.parameters(), lr=lr, weight_decay=1e-4)
    train = Batches(data.train, levels, where)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        set_lr(optimizer, warmup_cosine(lr, step, steps))
        batch = train.take(rng.choice(len(train), batch_size, replace=False))
        loss = task_loss(task, _as_dict(arch, model(batch.images.contiguous(memory_format=CHANNELS_LAST))), batch,
                         levels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    # FBNet's BN momentum (0.003) leaves the running statistics near 0 / 1 after a short training
    calibrate_stale_bn(model, data.train.images, steps, batch_size, where)
    if where.type == "cuda":
        torch.cuda.synchronize(where)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, arch, task, Batches(data.valid, levels, where), levels, data.num_classes)
    metrics.update(train_seconds=seconds, train_loss=float(loss.detach()))
    return metrics
