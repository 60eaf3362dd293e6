"""The in-memory dataset every evaluator trains on, and the registry of dataset loaders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.core.registry import Registry

DATASETS: Registry = Registry("dataset", package="nas.data")


@dataclass(frozen=True)
class ArrayDataset:
    """Train/validation/test splits as arrays: images float32 NCHW (normalised), labels int64.

    Small enough for memory by design (the datasets we search on are proxies); loaders keep the
    raw files on disk and decode once.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    def __post_init__(self) -> None:
        for split in ("train", "valid", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.ndim != 4 or x.dtype != np.float32:
                raise ValueError(f"{self.name}: {split}_x must be float32 NCHW, got {x.dtype} {x.shape}")
            if y.shape != (x.shape[0],) or y.dtype != np.int64:
                raise ValueError(f"{self.name}: {split}_y must be int64 of length {x.shape[0]}")


def load_dataset(name: str, **options: object) -> ArrayDataset:
    """Build the dataset registered as ``name`` with its options (``root``, ``resolution`` ...)."""
    return DATASETS.get(name)(**options)
