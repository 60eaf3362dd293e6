"""Multitask data (classification, semantic segmentation, detection) disentangled from the tasks' own pipelines.

FBNetV5 searches on one proxy dataset where every image carries a label for every task (the paper builds
it from ImageNet, with model-made dense and box labels). Two ways to get one here:

- ``make_canvases``: the embedded default, no download. Real images (scikit-learn's bundled digits, or
  Fashion-MNIST items from the local IDX files) are pasted at random positions and scales on a black
  canvas, so every label is exact: the per-pixel mask and the tight box of each pasted item are known.
- ``pseudo_label``: run teacher callables (a classifier, a segmenter, a detector) over an image folder and
  write their answers as a multitask dataset (``multitask.npz`` + a COCO-style ``annotations.json``), the
  way the paper labels ImageNet; ``load_multitask`` reads it back.

Label conventions (both ways): masks are int64 per pixel, ``0`` = background and ``c + 1`` = class ``c``;
boxes are float32 ``x1, y1, x2, y2`` in pixels (exclusive right/bottom edges, so a box covering pixel
columns 3..6 is ``x1=3, x2=7``) with an int64 class; boxes of all images are stored flat with the index
of their image (``box_image``), so a split is a handful of plain arrays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import UserError
from nas.data._images import IMAGE_SUFFIXES, Entry, decode, scan_tree
from nas.data._prep import channel_stats, check_fraction, check_int, check_seed, rng_for

SOURCES = ("digits", "fashion_mnist")
FOREGROUND = 0.25  # an item's pixel belongs to it (mask and box) when its intensity is above this
MAX_OVERLAP = 0.3  # a new item may cover at most this fraction of the area of an item already pasted
NPZ_FILE, COCO_FILE = "multitask.npz", "annotations.json"
CANVAS_SALT, VALID_SALT = 11, 12
DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot")


@dataclass(frozen=True)
class MultitaskSplit:
    """One split: images float32 NCHW, a class per image, a mask per image and a flat list of boxes."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    box_classes: np.ndarray
    box_image: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.labels.shape != (n,) or self.masks.shape != (n, *self.images.shape[2:]):
            raise ValueError(f"multitask split: images {self.images.shape}, labels {self.labels.shape} and "
                             f"masks {self.masks.shape} do not agree")
        m = len(self.boxes)
        if self.boxes.shape != (m, 4) or self.box_classes.shape != (m,) or self.box_image.shape != (m,):
            raise ValueError(f"multitask split: boxes {self.boxes.shape}, box_classes {self.box_classes.shape} and "
                             f"box_image {self.box_image.shape} do not agree")

    def __len__(self) -> int:
        return len(self.images)

    def boxes_of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The boxes (k, 4) and classes (k,) of image ``index``."""
        pick = self.box_image == index
        return self.boxes[pick], self.box_classes[pick]

    def subset(self, indices: np.ndarray) -> MultitaskSplit:
        """The images at ``indices`` (in that order), with their boxes renumbered."""
        indices = np.asarray(indices, dtype=np.int64)
        position = np.full(len(self), -1, dtype=np.int64)
        position[indices] = np.arange(len(indices))
        keep = position[self.box_image] >= 0
        order = np.argsort(position[self.box_image[keep]], kind="stable")
        return MultitaskSplit(self.images[indices], self.labels[indices], self.masks[indices],
                              self.boxes[keep][order], self.box_classes[keep][order],
                              position[self.box_image[keep]][order])


@dataclass(frozen=True)
class MultitaskData:
    """Train and validation splits of a multitask dataset, with its class names."""

    name: str
    train: MultitaskSplit
    valid: MultitaskSplit
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)


# --- canvases from real images ----------------------------------------------------------------------


def _source_items(source: str, root: object) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
                                                      tuple[str, ...]]:
    """(train items, held-out items, class names): float32 (N, h, w) in [0, 1] and int64 labels."""
    if source == "digits":
        from nas.data.digits import digits_arrays, fixed_test_indices

        images, labels = digits_arrays()
        held = np.zeros(len(labels), dtype=bool)
        held[fixed_test_indices(labels)] = True
        images = images[:, 0]
        return (images[~held], labels[~held]), (images[held], labels[held]), DIGIT_NAMES
    if source == "fashion_mnist":
        from nas.data._prep import check_root
        from nas.data.idx import FILES, find_file, read_pair

        folder = check_root("fashion_mnist canvases", root)
        paths = {key: find_file(folder, stem) for key, stem in FILES.items()}
        missing = [FILES[k] for k, p in paths.items() if p is None]
        if missing:
            raise UserError(f"fashion_mnist canvases: missing {', '.join(missing)}[.gz] in {folder}")
        train = read_pair(paths["train_x"], paths["train_y"])
        test = read_pair(paths["test_x"], paths["test_y"])
        as_float = lambda pair: (pair[0].astype(np.float32) / 255.0, pair[1].astype(np.int64))
        return as_float(train), as_float(test), FASHION_NAMES
    raise UserError(f"unknown canvas source {source!r}; valid choices: {', '.join(SOURCES)}")


def _resize_item(item: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize of one float (h, w) item to (side, side) with Pillow (antialiased when shrinking)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(item, dtype=np.float32), mode="F")
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)


def _paste(items: np.ndarray, labels: np.ndarray, n: int, size: int, per_canvas: int, scale: tuple[float, float],
           main_scale: tuple[float, float], rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[np.ndarray, int, int]]]:
    """``n`` canvases: pixels (n, size, size), classes (n,), masks and boxes ``(xyxy, class, canvas)``."""
    canvases = np.zeros((n, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    classes = np.zeros(n, dtype=np.int64)
    boxes: list[tuple[np.ndarray, int, int]] = []
    sides = [(max(4, round(a * size)), max(4, round(b * size))) for a, b in (main_scale, scale)]
    for i in range(n):
        owner = np.full((size, size), -1, dtype=np.int64)
        pasted: list[int] = []
        for item in range(int(rng.integers(1, per_canvas + 1))):
            low, high = sides[min(item, 1)]
            for _attempt in range(20):
                side = int(rng.integers(low, high + 1))
                y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                k = int(rng.integers(len(items)))
                patch = _resize_item(items[k], side)
                fg = patch > FOREGROUND
                region = owner[y:y + side, x:x + side]
                if not fg.any() or any(np.count_nonzero(fg & (region == j)) > MAX_OVERLAP * np.count_nonzero(owner == j)
                                       for j in range(len(pasted))):
                    continue
                view = canvases[i, y:y + side, x:x + side]
                np.maximum(view, patch, out=view)
                region[fg] = len(pasted)
                pasted.append(int(labels[k]))
                break
        areas = np.zeros(len(pasted), dtype=np.int64)
        for j, label in enumerate(pasted):
            rows, cols = np.nonzero(owner == j)
            areas[j] = len(rows)
            if len(rows):
                masks[i][owner == j] = label + 1
                box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)
                boxes.append((box, label, i))
        if not areas.any():
            raise UserError("canvas generation placed no visible item; widen the scale range")
        classes[i] = pasted[int(np.argmax(areas))]
    return canvases, classes, masks, boxes


def _split(pixels: np.ndarray, classes: np.ndarray, masks: np.ndarray,
           boxes: list[tuple[np.ndarray, int, int]]) -> MultitaskSplit:
    flat = np.stack([b for b, _, _ in boxes]) if boxes else np.zeros((0, 4), dtype=np.float32)
    return MultitaskSplit(pixels, classes, masks, flat.astype(np.float32),
                          np.array([c for _, c, _ in boxes], dtype=np.int64),
                          np.array([i for _, _, i in boxes], dtype=np.int64))


def normalise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Float32 NCHW images scaled by the train split's per-channel mean/std (new arrays)."""
    mean, std = channel_stats(train)
    shift = lambda x: ((x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)).astype(np.float32)
    return [shift(x) for x in (train, *others)]


def make_canvases(source: str = "digits", n: int = 2000, size: int = 64, items_per_canvas: int = 3,
                  seed: int = 0, valid: int | None = None, scale: tuple[float, float] = (0.2, 0.35),
                  main_scale: tuple[float, float] = (0.4, 0.6), root: object = None) -> MultitaskData:
    """Canvases of real items with exact labels for classification, segmentation and detection.

    Each ``size`` x ``size`` canvas (1 channel) holds 1..``items_per_canvas`` items (uniform count) of
    ``source`` (``digits``: scikit-learn's bundled 8x8 digits; ``fashion_mnist``: the 28x28 IDX files
    under ``root``), each resized (Pillow's bilinear filter) to a random square side, pasted at a uniform
    position; overlapping pixels take the brighter value. The first item's side is drawn in ``main_scale``
    x ``size`` and the others' in ``scale`` x ``size`` (smaller distractors, so the canvas has an evident
    main object and the boxes span several sizes). An item is placed only if it covers at most 30% of
    the visible pixels of every item already there (up to 20 tries).

    Labels, all exact: an item's pixels are those above intensity 0.25 that no later item covers; the
    mask gives each such pixel its item's class + 1 (0 is background); the box is the tight box of those
    visible pixels; the canvas's class is the class of the item with the most visible pixels (the first
    pasted on a tie). Train canvases use only the source's training items and validation canvases only
    its held-out items (digits: the fixed test split of ``load_dataset("digits")``; Fashion-MNIST: the
    t10k files), so no item appears in both. ``valid`` canvases (default ``n // 4``). Images are
    normalised by the train split's mean/std. Deterministic under ``seed``.
    """
    n = check_int("canvases", "n", n, 1)
    size = check_int("canvases", "size", size, 8)
    per_canvas = check_int("canvases", "items_per_canvas", items_per_canvas, 1)
    seed = check_seed("canvases", seed)
    valid = check_int("canvases", "valid", n // 4 if valid is None else valid, 1)
    ranges = []
    for option, value in (("scale", scale), ("main_scale", main_scale)):
        low, high = (float(v) for v in value)
        if not 0 < low <= high <= 1:
            raise UserError(f"canvases: {option} must satisfy 0 < low <= high <= 1, got {tuple(value)}")
        ranges.append((low, high))
    (train_items, train_labels), (held_items, held_labels), names = _source_items(source, root)
    rng = rng_for(seed, CANVAS_SALT)
    train = _paste(train_items, train_labels, n, size, per_canvas, ranges[0], ranges[1], rng)
    held = _paste(held_items, held_labels, valid, size, per_canvas, ranges[0], ranges[1], rng)
    train_x, valid_x = normalise(train[0][:, None], held[0][:, None])
    return MultitaskData(f"{source}_canvases", _split(train_x, *train[1:]), _split(valid_x, *held[1:]), names)


# --- pseudo labels from teacher models ---------------------------------------------------------------

Classifier = Callable[[np.ndarray], Any]
Segmenter = Callable[[np.ndarray], Any]
Detector = Callable[[np.ndarray], Any]


def _folder_entries(folder: Path) -> list[Entry]:
    """Images of ``folder`` itself, or of its class sub-folders, sorted (class folder names are ignored)."""
    if not folder.is_dir():
        raise UserError(f"pseudo_label: image folder {folder} does not exist")
    flat = [Entry("", str(p), p) for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_SUFFIXES)]
    entries = flat + scan_tree(folder)
    if not entries:
        raise UserError(f"pseudo_label: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return entries


def _detections(out: Any, count: int, num_classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A detector's answer for a batch as (boxes (k, 4), classes (k,)) per image."""
    if not isinstance(out, Sequence) or len(out) != count:
        raise UserError(f"pseudo_label: the detector must return one entry per image ({count}), got {type(out)}")
    result = []
    for item in out:
        array = np.asarray(item, dtype=np.float64).reshape(-1, 5) if len(item) else np.zeros((0, 5))
        classes = array[:, 4].astype(np.int64)
        if len(classes) and (classes.min() < 0 or classes.max() >= num_classes):
            raise UserError(f"pseudo_label: detector class out of range 0..{num_classes - 1}")
        result.append((array[:, :4].astype(np.float32), classes))
    return result


def pseudo_label(image_folder: str | Path, classifier: Classifier, segmenter: Segmenter, detector: Detector,
                 out_dir: str | Path, class_names: Sequence[str], size: int | None = None,
                 batch_size: int = 64) -> Path:
    """Label every image of ``image_folder`` with the teachers and write a multitask dataset to ``out_dir``.

    Teachers are any callables over a batch of float32 NCHW images in [0, 1]: ``classifier`` returns a
    class per image (N,), ``segmenter`` a class-index mask per image (N, H, W) with 0 = background and
    ``c + 1`` = class ``c``, ``detector`` one sequence of ``(x1, y1, x2, y2, class)`` rows per image.
    Images are decoded with Pillow (resized to ``size`` x ``size`` when given; otherwise all must share
    one size). Writes ``multitask.npz`` (uint8 images, labels, masks, flat boxes) and a COCO-style
    ``annotations.json`` (images, categories, box annotations in xywh) and returns ``out_dir``.
    """
    entries = _folder_entries(Path(image_folder))
    size = check_int("pseudo_label", "size", size, 1)
    names = tuple(str(c) for c in class_names)
    if not names:
        raise UserError("pseudo_label: class_names must name at least one class")
    images, labels, masks = [], [], []
    boxes: list[tuple[np.ndarray, int, int]] = []
    for start in range(0, len(entries), batch_size):
        pixels = decode(entries[start:start + batch_size], size)
        batch = pixels.astype(np.float32) / 255.0
        got_labels = np.asarray(classifier(batch), dtype=np.int64).reshape(-1)
        got_masks = np.asarray(segmenter(batch), dtype=np.int64)
        if got_labels.shape != (len(batch),) or got_masks.shape != (len(batch), *batch.shape[2:]):
            raise UserError(f"pseudo_label: classifier gave {got_labels.shape} and segmenter {got_masks.shape} "
                            f"for a batch of {batch.shape}")
        if got_labels.min() < 0 or got_labels.max() >= len(names) or got_masks.min() < 0 \
                or got_masks.max() > len(names):
            raise UserError(f"pseudo_label: teacher class out of range for {len(names)} classes")
        for offset, (b, c) in enumerate(_detections(detector(batch), len(batch), len(names))):
            boxes.extend((box, int(cls), start + offset) for box, cls in zip(b, c))
        images.append(pixels)
        labels.append(got_labels)
        masks.append(got_masks)
    if len({im.shape[1:] for im in images}) > 1:
        raise UserError("pseudo_label: batches decoded to different shapes; pass size to resize")
    split = _split(np.concatenate(images), np.concatenate(labels), np.concatenate(masks), boxes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / NPZ_FILE, images=split.images, labels=split.labels, masks=split.masks,
                        boxes=split.boxes, box_classes=split.box_classes, box_image=split.box_image,
                        class_names=np.array(names))
    (out / COCO_FILE).write_text(json.dumps(coco_json(split, names, [e.name for e in entries])) + "\n")
    return out


def coco_json(split: MultitaskSplit, class_names: Sequence[str], file_names: Sequence[str] | None = None,
              ) -> dict[str, Any]:
    """The split's boxes as a COCO ground-truth dict (ids from 1; bbox is x, y, width, height)."""
    h, w = split.images.shape[2:]
    names = file_names or [f"{i}.png" for i in range(len(split))]
    annotations = []
    for k, (box, cls, img) in enumerate(zip(split.boxes, split.box_classes, split.box_image)):
        x1, y1, x2, y2 = (float(v) for v in box)
        annotations.append({"id": k + 1, "image_id": int(img) + 1, "category_id": int(cls) + 1,
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    return {"images": [{"id": i + 1, "file_name": str(names[i]), "height": int(h), "width": int(w)}
                       for i in range(len(split))],
            "annotations": annotations,
            "categories": [{"id": c + 1, "name": name} for c, name in enumerate(class_names)]}


def load_multitask(path: str | Path, valid_fraction: float = 0.2, seed: int = 0) -> MultitaskData:
    """A dataset written by ``pseudo_label``: a seeded random ``valid_fraction`` of the images is the
    validation split, the rest (shuffled) the train split; pixels / 255, normalised by the train mean/std."""
    folder = Path(path)
    file = folder / NPZ_FILE if folder.is_dir() else folder
    if not file.is_file():
        raise UserError(f"load_multitask: no {NPZ_FILE} at {path}")
    fraction, seed = check_fraction("load_multitask", valid_fraction), check_seed("load_multitask", seed)
    with np.load(file, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    missing = {"images", "labels", "masks", "boxes", "box_classes", "box_image", "class_names"} - set(arrays)
    if missing:
        raise UserError(f"load_multitask: {file} lacks {', '.join(sorted(missing))}")
    images = arrays["images"].astype(np.float32) / 255.0
    split = MultitaskSplit(images, arrays["labels"].astype(np.int64), arrays["masks"].astype(np.int64),
                           arrays["boxes"].astype(np.float32), arrays["box_classes"].astype(np.int64),
                           arrays["box_image"].astype(np.int64))
    order = rng_for(seed, VALID_SALT).permutation(len(split))
    n_valid = round(fraction * len(split))
    if len(split) - n_valid < 1:
        raise UserError(f"load_multitask: {len(split)} images leave no training image")
    train, valid = split.subset(order[n_valid:]), split.subset(np.sort(order[:n_valid]))
    train_x, valid_x = normalise(train.images, valid.images)
    train = MultitaskSplit(train_x, *(getattr(train, f) for f in ("labels", "masks", "boxes", "box_classes",
                                                                   "box_image")))
    valid = MultitaskSplit(valid_x, *(getattr(valid, f) for f in ("labels", "masks", "boxes", "box_classes",
                                                                   "box_image")))
    return MultitaskData(folder.name if folder.is_dir() else folder.stem, train, valid,
                         tuple(str(c) for c in arrays["class_names"]))
