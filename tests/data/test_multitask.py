"""Multitask canvases from real digits (exact labels) and pseudo-labelling an image folder with teachers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.core.errors import UserError
from nas.data.multitask import FOREGROUND, coco_json, load_multitask, make_canvases, pseudo_label
from nas.testing.skips import require_shared_data

SHARED_FASHION = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fashion_mnist"


@pytest.fixture(scope="module")
def canvases():
    return make_canvases("digits", n=60, size=48, items_per_canvas=3, seed=3, valid=20)


def test_shapes_dtypes_and_splits(canvases) -> None:
    assert canvases.name == "digits_canvases" and canvases.num_classes == 10
    assert canvases.input_shape == (1, 48, 48)
    train, valid = canvases.train, canvases.valid
    assert len(train) == 60 and len(valid) == 20
    assert train.images.dtype == np.float32 and train.masks.shape == (60, 48, 48)
    assert train.labels.dtype == np.int64 and train.masks.dtype == np.int64
    assert abs(float(train.images.mean())) < 1e-4 and abs(float(train.images.std()) - 1) < 1e-3
    counts = np.bincount(train.box_image, minlength=60)
    assert counts.min() >= 1 and counts.max() <= 3


def test_labels_are_exact(canvases) -> None:
    split = canvases.train
    for i in range(len(split)):
        boxes, classes = split.boxes_of(i)
        mask = split.masks[i]
        areas = []
        for box, cls in zip(boxes, classes):
            x1, y1, x2, y2 = box.astype(int)
            inside = mask[y1:y2, x1:x2] == cls + 1
            # the box is tight around pixels of its class, and every edge row/column holds one
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            areas.append(int((mask == cls + 1).sum()))
        # every labelled pixel is inside a box of its class; foreground pixels are bright
        for cls in np.unique(mask[mask > 0]):
            ys, xs = np.nonzero(mask == cls)
            own = boxes[classes == cls - 1]
            assert all(((own[:, 0] <= x) & (x < own[:, 2]) & (own[:, 1] <= y) & (y < own[:, 3])).any()
                       for x, y in zip(xs[:20], ys[:20]))
        # the image class is the class of the item with the most visible pixels
        assert split.labels[i] in classes
    raw = split.images * 1  # normalised; background is the minimum value
    assert (raw[:, 0][split.masks > 0] > raw.min() + FOREGROUND).all()


def test_deterministic_under_seed_and_disjoint_sources() -> None:
    a = make_canvases("digits", n=10, size=32, seed=1, valid=4)
    b = make_canvases("digits", n=10, size=32, seed=1, valid=4)
    c = make_canvases("digits", n=10, size=32, seed=2, valid=4)
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.train.boxes, b.train.boxes)
    assert not np.array_equal(a.train.images, c.train.images)


def test_bad_options_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown canvas source 'cifar'"):
        make_canvases("cifar", n=4)
    with pytest.raises(UserError, match="scale"):
        make_canvases("digits", n=4, scale=(0.6, 0.2))
    with pytest.raises(UserError, match="'size' must be an integer >= 8"):
        make_canvases("digits", n=4, size=4)


def test_fashion_mnist_canvases() -> None:
    data = make_canvases("fashion_mnist", n=8, size=56, seed=0, valid=4, root=require_shared_data(SHARED_FASHION))
    assert data.class_names[-1] == "ankle boot" and data.input_shape == (1, 56, 56)
    assert len(data.train.boxes) >= 8


def write_folder(root: Path, count: int = 6) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(count):
        folder = root / ("a" if k % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.zeros((16, 16), dtype=np.uint8)
        x = int(rng.integers(0, 8))
        pixels[4:12, x:x + 8] = 255
        Image.fromarray(pixels).save(folder / f"{k}.png")
    return root


def bright_square_teachers():
    """Teachers made of simple callables: class = column half of the bright square, mask = bright pixels,
    one box around the bright pixels."""

    def classify(batch):
        return np.array([int(np.nonzero(im[0].max(0) > 0.5)[0].mean() >= 8) for im in batch])

    def segment(batch):
        return (batch[:, 0] > 0.5).astype(np.int64) * 2  # class 1 everywhere it is bright

    def detect(batch):
        out = []
        for im in batch:
            ys, xs = np.nonzero(im[0] > 0.5)
            out.append([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 1]])
        return out

    return classify, segment, detect


def test_pseudo_label_round_trip(tmp_path) -> None:
    folder = write_folder(tmp_path / "images")
    out = pseudo_label(folder, *bright_square_teachers(), tmp_path / "out", class_names=["left", "right"])
    coco = json.loads((out / "annotations.json").read_text())
    assert len(coco["images"]) == 6 and len(coco["annotations"]) == 6
    assert coco["categories"] == [{"id": 1, "name": "left"}, {"id": 2, "name": "right"}]
    assert all(a["bbox"][2:] == [8.0, 8.0] and a["category_id"] == 2 for a in coco["annotations"])
    data = load_multitask(out, valid_fraction=0.5, seed=0)
    assert data.class_names == ("left", "right") and data.input_shape == (1, 16, 16)
    assert len(data.train) == 3 and len(data.valid) == 3
    for split in (data.train, data.valid):
        for i in range(len(split)):
            boxes, classes = split.boxes_of(i)
            x1, y1, x2, y2 = boxes[0].astype(int)
            assert (split.masks[i, y1:y2, x1:x2] == 2).all() and split.masks[i].sum() == 2 * 64
            assert classes.tolist() == [1]


def test_coco_json_of_canvases_matches_boxes(canvases) -> None:
    coco = coco_json(canvases.valid, canvases.class_names)
    assert len(coco["annotations"]) == len(canvases.valid.boxes)
    first = coco["annotations"][0]
    x1, y1, x2, y2 = canvases.valid.boxes[0]
    assert first["bbox"] == [x1, y1, x2 - x1, y2 - y1] and first["image_id"] == canvases.valid.box_image[0] + 1


def test_pseudo_label_rejects_bad_teachers(tmp_path) -> None:
    folder = write_folder(tmp_path / "images", 2)
    classify, segment, detect = bright_square_teachers()
    with pytest.raises(UserError, match="out of range"):
        pseudo_label(folder, lambda b: np.full(len(b), 7), segment, detect, tmp_path / "o", class_names=["x", "y"])
    with pytest.raises(UserError, match="one entry per image"):
        pseudo_label(folder, classify, segment, lambda b: [], tmp_path / "o", class_names=["x", "y"])
    with pytest.raises(UserError, match="does not exist"):
        pseudo_label(tmp_path / "nope", classify, segment, detect, tmp_path / "o", class_names=["x"])
