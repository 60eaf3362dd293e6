"""The embedded digits dataset: shapes, dtypes, seeded determinism, stratification, disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest

from nas.core.errors import UserError
from nas.data import DATASETS, ArrayDataset, load_dataset
from nas.data.digits import digits, digits_arrays, fixed_test_indices

N_TOTAL, N_TEST, N_VALID, N_TRAIN = 1797, 359, 288, 1150


@pytest.fixture(scope="module")
def ds() -> ArrayDataset:
    return load_dataset("digits")


def test_registry_lists_every_loader() -> None:
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "image_folder"} <= set(DATASETS.names())
    assert DATASETS.get("digits") is digits


def test_shapes_and_dtypes(ds: ArrayDataset) -> None:
    assert ds.name == "digits" and ds.num_classes == 10 and ds.input_shape == (1, 8, 8)
    for split, n in (("train", N_TRAIN), ("valid", N_VALID), ("test", N_TEST)):
        x, y = getattr(ds, f"{split}_x"), getattr(ds, f"{split}_y")
        assert x.shape == (n, 1, 8, 8) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert set(np.unique(y)) == set(range(10))


def test_train_split_is_normalised(ds: ArrayDataset) -> None:
    assert abs(float(ds.train_x.mean())) < 1e-5
    assert abs(float(ds.train_x.std()) - 1.0) < 1e-4
    for x in (ds.valid_x, ds.test_x):  # same transform, so close but not exact
        assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1.0) < 0.1


def _raw_rows(ds: ArrayDataset) -> np.ndarray:
    """Undo the (single-channel, affine) normalisation: the extreme values are pixels 0 and 16."""
    xs = np.concatenate([ds.train_x, ds.valid_x, ds.test_x]).reshape(-1, 64).astype(np.float64)
    raw = np.rint((xs - xs.min()) / (xs.max() - xs.min()) * 16).astype(np.int64)
    ys = np.concatenate([ds.train_y, ds.valid_y, ds.test_y])
    return np.column_stack([raw, ys])


def test_splits_partition_the_dataset(ds: ArrayDataset) -> None:
    images, labels = digits_arrays()
    full = np.column_stack([np.rint(images.reshape(-1, 64) * 16).astype(np.int64), labels])
    got = _raw_rows(ds)
    assert len(got) == N_TOTAL
    # Same multiset of (image, label) rows: every image is in exactly one split.
    np.testing.assert_array_equal(got[np.lexsort(got.T)], full[np.lexsort(full.T)])
    test_idx = fixed_test_indices(labels)
    assert len(test_idx) == N_TEST and len(np.unique(test_idx)) == N_TEST


def test_splits_are_stratified(ds: ArrayDataset) -> None:
    _, labels = digits_arrays()
    per_class = np.bincount(labels, minlength=10)
    pool = per_class * (N_TOTAL - N_TEST) / N_TOTAL
    expected = {"test": per_class * N_TEST / N_TOTAL, "valid": pool * N_VALID / (N_TOTAL - N_TEST),
                "train": pool * N_TRAIN / (N_TOTAL - N_TEST)}
    for split, want in expected.items():
        got = np.bincount(getattr(ds, f"{split}_y"), minlength=10)
        assert np.all(np.abs(got - want) <= 1.5), (split, got, want)


def test_same_seed_same_data_other_seed_other_train_valid(ds: ArrayDataset) -> None:
    again = digits(seed=0)
    for field in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(ds, field), getattr(again, field))
    other = digits(seed=1)
    assert not np.array_equal(ds.valid_y, other.valid_y) or not np.array_equal(ds.valid_x, other.valid_x)
    assert not np.array_equal(ds.train_x, other.train_x)
    np.testing.assert_array_equal(ds.test_y, other.test_y)  # the test split does not depend on seed


def test_valid_fraction_and_extra_options() -> None:
    small = digits(valid_fraction=0.0, root="/ignored", limit_train=10)
    assert small.valid_x.shape == (0, 1, 8, 8) and len(small.train_y) == N_TOTAL - N_TEST


def test_resolution_upsamples_then_normalises() -> None:
    big = digits(resolution=32)
    assert big.input_shape == (1, 32, 32) and big.train_x.shape == (N_TRAIN, 1, 32, 32)
    assert abs(float(big.train_x.mean())) < 1e-5 and abs(float(big.train_x.std()) - 1.0) < 1e-4


@pytest.mark.parametrize("options", [{"valid_fraction": 1.0}, {"valid_fraction": -0.1}, {"seed": -1},
                                     {"seed": 1.5}, {"resolution": 0}, {"resolution": "big"}])
def test_bad_options_are_user_errors(options: dict[str, object]) -> None:
    with pytest.raises(UserError):
        digits(**options)
