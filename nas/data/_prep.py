"""Steps shared by every loader: option checks, stratified subsets, the validation split,
resizing, per-channel normalisation and the opt-in download helper.

Private (leading underscore), so the registry's package discovery does not import it by itself.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas.core.errors import UserError
from nas.data.base import ArrayDataset

# Salts that keep the random streams of the different choices independent of each other.
LIMIT_TRAIN_SALT, VALID_SALT, TEST_SALT = 1, 2, 3
# Test-side choices (``limit_test``, the digits test split) use this fixed seed, not ``seed``,
# so test scores of runs with different seeds are measured on the same images.
TEST_SEED = 0


def check_root(dataset: str, root: object, may_create: bool = False) -> Path:
    """``root`` as an existing folder (any path if ``may_create``: downloads make it), or a ``UserError``."""
    if root is None or root == "":
        raise UserError(f"{dataset}: option 'root' is required (the folder that holds the data files)")
    path = Path(str(root)).expanduser()
    if not path.is_dir() and not may_create:
        raise UserError(f"{dataset}: root folder {path} does not exist")
    return path


def check_int(dataset: str, option: str, value: object, minimum: int) -> int | None:
    """``value`` as an int >= ``minimum`` (``None`` passes through), or a ``UserError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"{dataset}: option {option!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seed(dataset: str, value: object) -> int:
    """``seed`` as an int >= 0, or a ``UserError``."""
    seed = check_int(dataset, "seed", value, 0)
    if seed is None:
        raise UserError(f"{dataset}: option 'seed' must be an integer >= 0, got None")
    return seed


def check_fraction(dataset: str, value: object) -> float:
    """``valid_fraction`` as a float in [0, 1), or a ``UserError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"{dataset}: option 'valid_fraction' must be in [0, 1), got {value!r}")
    return float(value)


def rng_for(seed: int, salt: int) -> np.random.Generator:
    """A generator for one kind of choice (``salt``) under the user's ``seed``."""
    return np.random.default_rng([salt, seed])


def stratified_pick(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``count`` items whose class proportions follow ``labels``.

    Each class gets ``floor(share)`` items; the rest go to the classes with the largest
    fractional shares (ties: lower class first). Items inside a class are drawn by ``rng``.
    """
    n = len(labels)
    count = min(max(count, 0), n)
    classes, sizes = np.unique(labels, return_counts=True)
    if count == n or n == 0:
        return np.arange(n)
    share = sizes * count / n
    quota = np.floor(share).astype(np.int64)
    extra = np.argsort(-(share - quota), kind="stable")[: count - int(quota.sum())]
    quota[extra] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))


def limit_indices(labels: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """All indices, or a stratified subset of ``limit`` of them."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    return stratified_pick(labels, limit, rng)


def resize(x: np.ndarray, resolution: int) -> np.ndarray:
    """Bilinear resize of float32 NCHW images to ``resolution`` x ``resolution``.

    Uses ``torch.nn.functional.interpolate`` (``align_corners=False``, antialiased so that
    shrinking does not alias); done in chunks to bound the peak memory.
    """
    if x.shape[2:] == (resolution, resolution):
        return x
    import torch
    from torch.nn import functional

    out = np.empty((x.shape[0], x.shape[1], resolution, resolution), dtype=np.float32)
    for start in range(0, x.shape[0], 4096):
        chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + 4096]))
        scaled = functional.interpolate(chunk, size=(resolution, resolution), mode="bilinear",
                               align_corners=False, antialias=True)
        out[start : start + 4096] = scaled.numpy()
    return out


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images as a new float32 array in [0, 1] (one allocation, scaled in place)."""
    out = images.astype(np.float32)
    out /= 255.0
    return out


def channel_stats(x: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float32, std 1 where constant) of NCHW ``x``, in float64 chunks."""
    sums, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].astype(np.float64)
        sums += part.sum(axis=(0, 2, 3))
        squares += np.square(part).sum(axis=(0, 2, 3))
    count = max(x.shape[0] * x.shape[2] * x.shape[3], 1)
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def assemble(name: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
             *, num_classes: int, valid_fraction: float, seed: int, resolution: int | None) -> ArrayDataset:
    """Carve a stratified validation split from the training pool, resize, normalise, wrap.

    ``*_x`` are float32 NCHW in [0, 1] and are normalised in place (the caller hands over
    arrays it owns). The train and validation splits are shuffled (seeded): files stored class by class
    (a JPEG tree) would otherwise give a validation split in class order, and whoever takes its first images
    (BossNAS rates candidates on them) would see a few classes only. The test split keeps file order.
    The per-channel mean/std come from the train split only.
    """
    rng = rng_for(seed, VALID_SALT)
    valid_idx = stratified_pick(train_y, round(valid_fraction * len(train_y)), rng)
    keep = np.ones(len(train_y), dtype=bool)
    keep[valid_idx] = False
    train_idx = rng.permutation(np.flatnonzero(keep))
    valid_idx = rng.permutation(valid_idx)
    splits = [train_x[train_idx], train_x[valid_idx], test_x]
    if resolution is not None:
        splits = [resize(x, resolution) for x in splits]
    mean, std = channel_stats(splits[0])
    for x in splits:
        x -= mean.reshape(1, -1, 1, 1)
        x /= std.reshape(1, -1, 1, 1)
    labels = [train_y[train_idx], train_y[valid_idx], test_y]
    labels = [np.ascontiguousarray(y, dtype=np.int64) for y in labels]
    return ArrayDataset(name, splits[0], labels[0], splits[1], labels[1], splits[2], labels[2], num_classes)


def md5_of(path: Path) -> str:
    """Hex md5 of a file (integrity check only)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(file_name: str, mirrors: Sequence[str], folder: Path, md5: str) -> Path:
    """Fetch ``file_name`` from the first mirror that serves it with the right md5.

    Only called when the user passes ``download=True``. Writes ``folder/file_name`` atomically
    (through a ``.part`` file); raises a ``UserError`` listing every failed attempt.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name
    part = folder / (file_name + ".part")
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + file_name
        try:
            with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (OSError, urllib.error.URLError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        got = md5_of(part)
        if got != md5:
            part.unlink()
            failures.append(f"{url}: md5 {got}, expected {md5}")
            continue
        part.replace(target)
        return target
    part.unlink(missing_ok=True)
    raise UserError(f"could not download {file_name} into {folder}: " + "; ".join(failures))
