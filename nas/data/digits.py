"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset (needs no file).

1,797 grey images of the digits 0-9 (UCI "Optical Recognition of Handwritten Digits", test
part), shipped inside scikit-learn, so ``load_digits`` reads them from the installed package
and never touches the network.

Splits: a fixed stratified 20% test split (the same whatever ``seed``, so test scores of
different seeds are comparable), then ``valid_fraction`` of the remaining pool as a seeded
stratified validation split: with the default 0.2 that is 64% train / 16% valid / 20% test.
"""

from __future__ import annotations

import numpy as np

from nas.data._prep import (
    TEST_SALT,
    TEST_SEED,
    assemble,
    check_fraction,
    check_int,
    check_seed,
    rng_for,
    stratified_pick,
)
from nas.data.base import DATASETS, ArrayDataset

TEST_FRACTION = 0.2
NUM_CLASSES = 10
MAX_PIXEL = 16.0  # the digits are 4-bit counts: 0..16


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as float32 (N, 1, 8, 8) in [0, 1] and int64 labels, in file order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32).reshape(-1, 1, 8, 8) / MAX_PIXEL
    return images, np.asarray(bunch.target, dtype=np.int64)


def fixed_test_indices(labels: np.ndarray) -> np.ndarray:
    """Sorted indices of the fixed stratified test split (independent of any user seed)."""
    count = round(TEST_FRACTION * len(labels))
    return stratified_pick(labels, count, rng_for(TEST_SEED, TEST_SALT))


@DATASETS.register("digits")
def digits(root: object = None, resolution: int | None = None, valid_fraction: float = 0.2, seed: int = 0,
           **_: object) -> ArrayDataset:
    """The digits dataset, 1 channel, pixels / 16 then normalised by the train mean/std.

    ``root`` is accepted for a uniform loader interface and ignored; other options
    (``limit_train`` ...) are ignored as well, the whole set is tiny. ``resolution`` (e.g. 32)
    upsamples all splits bilinearly with ``torch.nn.functional.interpolate`` before
    normalisation.
    """
    resolution = check_int("digits", "resolution", resolution, 1)
    seed = check_seed("digits", seed)
    valid_fraction = check_fraction("digits", valid_fraction)
    images, labels = digits_arrays()
    test_idx = fixed_test_indices(labels)
    pool = np.ones(len(labels), dtype=bool)
    pool[test_idx] = False
    return assemble("digits", images[pool], labels[pool], images[test_idx], labels[test_idx],
                    num_classes=NUM_CLASSES, valid_fraction=valid_fraction, seed=seed, resolution=resolution)
