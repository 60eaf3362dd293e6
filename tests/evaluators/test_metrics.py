"""Task metrics: accuracy, mIoU from the confusion matrix, COCO mAP through pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from nas.evaluators.metrics import accuracy, coco_map, confusion_matrix, miou

GT = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], dtype=float), np.array([1, 2])),
      (np.array([[5, 5, 15, 25]], dtype=float), np.array([1]))]


def perfect() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [(boxes, np.ones(len(classes)), classes) for boxes, classes in GT]


def test_accuracy_counts_equal_entries() -> None:
    assert accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(ValueError, match="3 predictions for 4 targets"):
        accuracy(np.array([1, 2, 3]), np.array([1, 2, 3, 4]))


def test_confusion_matrix_rows_are_true_classes() -> None:
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert confusion_matrix(np.array([0, 1]), np.array([255, 1]), 3, ignore_index=255).sum() == 1


def test_miou_perfect_and_by_hand() -> None:
    target = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    assert miou(target, target, 3) == 1.0
    predicted = np.array([[0, 0, 1, 1], [0, 2, 1, 1]])
    # class 0: 3/3, class 1: 3/4 (one extra pixel), class 2: 1/2
    assert miou(predicted, target, 3) == pytest.approx((1 + 0.75 + 0.5) / 3)
    # a class absent from both prediction and labels does not count
    assert miou(target, target, 5) == 1.0


def test_map_perfect_detections_is_one() -> None:
    assert coco_map(perfect(), GT, 3, (64, 64)) == {"map": 1.0, "map50": 1.0, "map75": 1.0}


def test_shifted_boxes_lower_map_and_strict_thresholds_first() -> None:
    shifted = [(boxes + 2, scores, classes) for boxes, scores, classes in perfect()]
    got = coco_map(shifted, GT, 3, (64, 64))
    assert got["map"] < 1.0 and got["map75"] < got["map50"]
    far = [(boxes + 30, scores, classes) for boxes, scores, classes in perfect()]
    assert coco_map(far, GT, 3, (64, 64))["map50"] == 0.0


def test_wrong_class_and_no_detections_score_zero() -> None:
    wrong = [(boxes, scores, (classes + 1) % 3) for boxes, scores, classes in perfect()]
    assert coco_map(wrong, GT, 3, (64, 64))["map"] < 0.5
    empty = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int)) for _ in GT]
    assert coco_map(empty, GT, 3, (64, 64))["map"] == 0.0


def test_low_scored_false_positive_keeps_precision_ranking() -> None:
    extra = perfect()
    boxes, scores, classes = extra[0]
    extra[0] = (np.vstack([boxes, [[50, 50, 60, 60]]]), np.append(scores, 0.1), np.append(classes, 1))
    assert coco_map(extra, GT, 3, (64, 64))["map"] == pytest.approx(1.0)
    boxes, scores, classes = extra[0]
    extra[0] = (boxes, np.array([0.5, 0.5, 0.9]), classes)
    assert coco_map(extra, GT, 3, (64, 64))["map"] < 1.0
