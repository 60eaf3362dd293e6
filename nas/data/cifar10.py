"""CIFAR-10 (python pickle batches, or a JPEG/PNG tree or tarballs) and a generic ``image_folder``.

``cifar10`` looks in ``root``, in this order:

1. the python batches ``data_batch_1..5`` and ``test_batch`` in ``root/cifar-10-batches-py/``
   or in ``root`` itself (the official lossless release);
2. only with ``download=True`` and no batches: the official tarball is fetched, md5-checked
   and unpacked into ``root``, then read as in 1. Nothing is downloaded by default;
3. an image tree ``root/train/<class>/*.jpg`` (and ``root/test/...``), or the tarballs
   ``cifar10_jpeg_q75_train.tar.gz`` / ``cifar10_jpeg_q75_test.tar.gz`` (as in the shared offline
   copy, JPEG quality 75, so lossy) read in memory and decoded with Pillow. Class folders must be
   the ten CIFAR-10 class names. If no test tree or tarball exists, the test split is read from
   ``cifar10_test_2k_decoded.npz`` (keys ``x`` uint8 NHWC, ``y``: 200 test images per class).

Decoding is the slow part (about 10 s for the 50,000 training JPEGs on one CPU core, after
about 3 s to read the tarball), so ``limit_train`` / ``limit_test`` pick a stratified subset
from the labels first and only that subset is decoded.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from nas.core.errors import UserError
from nas.data._images import Entry, decode, find_split
from nas.data._prep import (
    LIMIT_TRAIN_SALT,
    TEST_SALT,
    TEST_SEED,
    assemble,
    check_fraction,
    check_int,
    check_root,
    check_seed,
    download_file,
    limit_indices,
    rng_for,
    to_unit_float,
)
from nas.data.base import DATASETS, ArrayDataset

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
URL_DIR = "https://www.cs.toronto.edu/~kriz/"
TARBALL, TARBALL_MD5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"
JPEG_TARBALLS = {"train": "cifar10_jpeg_q75_train.tar.gz", "test": "cifar10_jpeg_q75_test.tar.gz"}
TEST_NPZ = "cifar10_test_2k_decoded.npz"
_PICKLE_GLOBALS = {("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
                   ("numpy._core.numeric", "_frombuffer"), ("numpy", "ndarray"), ("numpy", "dtype"),
                   ("_codecs", "encode")}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists and bytes only: a batch file cannot run arbitrary code."""

    def find_class(self, module: str, name: str) -> object:
        module = module.replace("numpy.core.", "numpy._core.")
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and int64 labels of one python batch file, checked."""
    try:
        with path.open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise UserError(f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise UserError(f"{path}: labels out of range 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _batch_folder(root: Path) -> Path | None:
    """``root/cifar-10-batches-py`` or ``root`` if it holds python batches, else ``None``."""
    for folder in (root / BATCH_DIR, root):
        if (folder / TRAIN_BATCHES[0]).is_file() or (folder / "test_batch").is_file():
            return folder
    return None


def _read_batches(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train images and labels (all five batches), then test images and labels."""
    for name in (*TRAIN_BATCHES, "test_batch"):
        if not (folder / name).is_file():
            raise UserError(f"cifar10: missing {name} in {folder}")
    parts = [read_cifar_batch(folder / name) for name in TRAIN_BATCHES]
    test_x, test_y = read_cifar_batch(folder / "test_batch")
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]), test_x, test_y


def _fetch(root: Path) -> Path:
    """Download and unpack the official python release into ``root`` (only on ``download=True``)."""
    archive = download_file(TARBALL, [URL_DIR], root, TARBALL_MD5)
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, **safe)
    return root / BATCH_DIR


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NCHW images and labels from an npz with ``x`` (N, H, W, C) uint8 and ``y`` (N,)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"].astype(np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: unreadable image npz ({exc})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or y.shape != (len(x),):
        raise UserError(f"{path}: expected x uint8 (N, H, W, C) and y (N,), got {x.shape} and {y.shape}")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y


def _labels(entries: list[Entry], classes: tuple[str, ...] | list[str], where: Path) -> np.ndarray:
    """Class index of each entry; a folder name outside ``classes`` is a ``UserError``."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({e.label for e in entries} - set(index))
    if unknown:
        raise UserError(f"{where}: unknown class folder {unknown[0]!r}; expected one of {', '.join(classes)}")
    return np.array([index[e.label] for e in entries], dtype=np.int64)


def _pick(entries: list[Entry], labels: np.ndarray, chosen: np.ndarray) -> tuple[list[Entry], np.ndarray]:
    """The ``chosen`` entries and their labels."""
    return [entries[i] for i in chosen], labels[chosen]


def _finish(name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
            num_classes: int, fraction: float, seed: int, size: int | None) -> ArrayDataset:
    """uint8 NCHW splits to the normalised ``ArrayDataset``."""
    return assemble(name, to_unit_float(train[0]), train[1], to_unit_float(test[0]), test[1],
                    num_classes=num_classes, valid_fraction=fraction, seed=seed, resolution=size)


@DATASETS.register("cifar10")
def cifar10(root: object = None, resolution: int | None = None, limit_train: int | None = None,
            limit_test: int | None = None, valid_fraction: float = 0.2, seed: int = 0, download: bool = False,
            **_: object) -> ArrayDataset:
    """CIFAR-10, 3x32x32 (or ``resolution``, bilinear), normalised by per-channel train mean/std.

    Sources as in the module docstring. ``limit_train`` keeps a seeded stratified subset of
    the 50,000 training images before the validation split (``valid_fraction`` of them) is
    carved; ``limit_test`` keeps a fixed (seed-independent) stratified subset of the test set.
    """
    folder = check_root("cifar10", root, may_create=bool(download))
    size = check_int("cifar10", "resolution", resolution, 1)
    n_train, n_test = (check_int("cifar10", k, v, 1) for k, v in (("limit_train", limit_train),
                                                                  ("limit_test", limit_test)))
    fraction, seed = check_fraction("cifar10", valid_fraction), check_seed("cifar10", seed)
    train_rng, test_rng = rng_for(seed, LIMIT_TRAIN_SALT), rng_for(TEST_SEED, TEST_SALT)
    batches = _batch_folder(folder) if folder.is_dir() else None
    if batches is None and download:
        batches = _fetch(folder)
    if batches is not None:
        train_x, train_y, test_x, test_y = _read_batches(batches)
        keep, keep_test = limit_indices(train_y, n_train, train_rng), limit_indices(test_y, n_test, test_rng)
        return _finish("cifar10", (train_x[keep], train_y[keep]), (test_x[keep_test], test_y[keep_test]),
                       len(CLASSES), fraction, seed, size)
    train_entries = find_split(folder, "train", [JPEG_TARBALLS["train"]])
    if train_entries is None:
        raise UserError(f"cifar10: no data in {folder}: expected {BATCH_DIR}/data_batch_1, train/<class>/ "
                        f"images or {JPEG_TARBALLS['train']} (or pass download=True)")
    train_y = _labels(train_entries, CLASSES, folder)
    entries, train_y = _pick(train_entries, train_y, limit_indices(train_y, n_train, train_rng))
    train = (decode(entries), train_y)
    test_entries = find_split(folder, "test", [JPEG_TARBALLS["test"]])
    if test_entries is not None:
        test_y = _labels(test_entries, CLASSES, folder)
        entries, test_y = _pick(test_entries, test_y, limit_indices(test_y, n_test, test_rng))
        test = (decode(entries), test_y)
    elif (folder / TEST_NPZ).is_file():
        test_x, test_y = read_npz(folder / TEST_NPZ)
        keep_test = limit_indices(test_y, n_test, test_rng)
        test = (test_x[keep_test], test_y[keep_test])
    else:
        raise UserError(f"cifar10: missing test/<class>/ images, {JPEG_TARBALLS['test']} or {TEST_NPZ} "
                        f"in {folder}")
    return _finish("cifar10", train, test, len(CLASSES), fraction, seed, size)


@DATASETS.register("image_folder")
def image_folder(root: object = None, resolution: int | None = None, limit_train: int | None = None,
                 limit_test: int | None = None, valid_fraction: float = 0.2, seed: int = 0,
                 **_: object) -> ArrayDataset:
    """Any ``root/{train,test}/<class>/<image>`` tree of JPEG/PNG/BMP files (or ``train.tar.gz``...).

    Classes are the sorted class folders of ``train``; ``test`` may not add new ones. Grey images
    give 1 channel, colour ones 3. With ``resolution`` every image is resized while decoding
    (Pillow, bilinear), so mixed sizes are fine; without it all must share one size. Validation
    is carved from train; limits and normalisation as in :func:`cifar10`.
    """
    folder = check_root("image_folder", root)
    size = check_int("image_folder", "resolution", resolution, 1)
    n_train = check_int("image_folder", "limit_train", limit_train, 1)
    n_test = check_int("image_folder", "limit_test", limit_test, 1)
    fraction, seed = check_fraction("image_folder", valid_fraction), check_seed("image_folder", seed)
    splits = {split: find_split(folder, split) for split in ("train", "test")}
    for split, entries in splits.items():
        if not entries:
            raise UserError(f"image_folder: no {split}/<class>/<image> files (or {split}.tar.gz) in {folder}")
    classes = sorted({e.label for e in splits["train"]})
    picked = []
    for split, limit, rng in (("train", n_train, rng_for(seed, LIMIT_TRAIN_SALT)),
                              ("test", n_test, rng_for(TEST_SEED, TEST_SALT))):
        labels = _labels(splits[split], classes, folder / split)
        entries, labels = _pick(splits[split], labels, limit_indices(labels, limit, rng))
        picked.append((decode(entries, size), labels))
    train, test = picked
    if train[0].shape[1:] != test[0].shape[1:]:
        raise UserError(f"image_folder: train images {train[0].shape[1:]} and test images "
                        f"{test[0].shape[1:]} differ in (channels, height, width)")
    return _finish("image_folder", train, test, len(classes), fraction, seed, None)
