"""Task metrics with the field's standard definitions: top-1 accuracy, mean IoU and COCO box mAP.

All three return fractions in [0, 1]. mIoU comes from the class confusion matrix (the definition of
the semantic-segmentation benchmarks: per class TP / (TP + FP + FN), averaged over the classes that occur
in the predictions or the labels). mAP is computed by pycocotools' ``COCOeval`` (AP averaged over IoU
0.50:0.05:0.95 and over categories, 101-point interpolation, up to 100 detections per image), not by a
re-implementation.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core import extras


def accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Fraction of equal entries (top-1 accuracy when given predicted and true classes)."""
    predicted, target = np.asarray(predicted).reshape(-1), np.asarray(target).reshape(-1)
    if predicted.shape != target.shape:
        raise ValueError(f"accuracy: {predicted.shape[0]} predictions for {target.shape[0]} targets")
    return float((predicted == target).mean()) if len(target) else 0.0


def confusion_matrix(predicted: np.ndarray, target: np.ndarray, num_classes: int,
                     ignore_index: int | None = None) -> np.ndarray:
    """int64 (num_classes, num_classes) counts, rows = true class, columns = predicted class."""
    predicted, target = np.asarray(predicted).reshape(-1), np.asarray(target).reshape(-1)
    if predicted.shape != target.shape:
        raise ValueError(f"confusion_matrix: {predicted.shape[0]} predictions for {target.shape[0]} targets")
    keep = np.ones(len(target), dtype=bool) if ignore_index is None else target != ignore_index
    p, t = predicted[keep].astype(np.int64), target[keep].astype(np.int64)
    if len(t) and (min(p.min(), t.min()) < 0 or max(p.max(), t.max()) >= num_classes):
        raise ValueError(f"confusion_matrix: class index outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou(predicted: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean intersection over union of per-pixel classes (background counts as a class)."""
    return miou_from_confusion(confusion_matrix(predicted, target, num_classes, ignore_index))


def miou_from_confusion(confusion: np.ndarray) -> float:
    """Mean IoU of a confusion matrix over the classes with a non-empty union (0 when none)."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else 0.0


def coco_map(detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
             ground_truth: Sequence[tuple[np.ndarray, np.ndarray]], num_classes: int,
             image_size: tuple[int, int]) -> dict[str, float]:
    """COCO box AP of detections against ground truth, per image lists in the same order.

    ``detections[i]`` = (boxes (k, 4) xyxy, scores (k,), classes (k,)); ``ground_truth[i]`` = (boxes
    (m, 4) xyxy, classes (m,)); ``image_size`` = (height, width). Returns ``map`` (IoU .50:.95),
    ``map50`` and ``map75``; 0 when there are no detections. Categories without ground truth are left
    out of the mean (COCOeval's rule).
    """
    extras.check("detection", "COCO mAP")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(ground_truth):
        raise ValueError(f"coco_map: {len(detections)} detection lists for {len(ground_truth)} images")
    height, width = image_size
    gt: dict[str, Any] = {"images": [{"id": i + 1, "height": int(height), "width": int(width)}
                                     for i in range(len(ground_truth))],
                          "categories": [{"id": c + 1} for c in range(num_classes)], "annotations": []}
    for i, (boxes, classes) in enumerate(ground_truth):
        for box, cls in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(classes).reshape(-1)):
            x1, y1, x2, y2 = (float(v) for v in box)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "iscrowd": 0,
                                      "category_id": int(cls) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                      "area": (x2 - x1) * (y2 - y1)})
    found = []
    for i, (boxes, scores, classes) in enumerate(detections):
        for box, score, cls in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores).reshape(-1),
                                   np.asarray(classes).reshape(-1)):
            x1, y1, x2, y2 = (float(v) for v in box)
            found.append({"image_id": i + 1, "category_id": int(cls) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                          "score": float(score)})
    if not found or not gt["annotations"]:
        return {"map": 0.0, "map50": 0.0, "map75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = gt
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(found), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(float(v), 0.0) for v in evaluation.stats[:3]]
    return {"map": stats[0], "map50": stats[1], "map75": stats[2]}
