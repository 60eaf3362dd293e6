"""The shared loader steps: stratified subsets, validation split, resizing, normalisation statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.core.errors import UserError
from nas.data._prep import assemble, channel_stats, check_int, resize, rng_for, stratified_pick


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=200), st.floats(0, 1), st.integers(0, 2**31))
def test_stratified_pick_is_exact_and_seeded(labels: list[int], fraction: float, seed: int) -> None:
    y = np.array(labels)
    count = round(fraction * len(y))
    picked = stratified_pick(y, count, rng_for(seed, 1))
    assert len(picked) == count and len(np.unique(picked)) == count and np.all(np.diff(picked) > 0)
    for c in np.unique(y):
        share = np.sum(y == c) * count / len(y)
        assert abs(np.sum(y[picked] == c) - share) < 1
    np.testing.assert_array_equal(picked, stratified_pick(y, count, rng_for(seed, 1)))


def test_assemble_split_sizes_and_disjointness() -> None:
    y = np.repeat(np.arange(4), 25)
    x = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1) * np.ones((1, 2, 3, 3), np.float32)
    ds = assemble("toy", x.copy(), y, x[:8].copy(), y[:8], num_classes=4, valid_fraction=0.2, seed=5,
                  resolution=None)
    assert ds.train_x.shape == (80, 2, 3, 3) and ds.valid_x.shape == (20, 2, 3, 3)
    assert np.bincount(ds.valid_y).tolist() == [5] * 4
    # the images are their own ids (affine-normalised): the two splits must not share any
    train_ids, valid_ids = set(ds.train_x[:, 0, 0, 0].round(4)), set(ds.valid_x[:, 0, 0, 0].round(4))
    assert len(train_ids) == 80 and len(valid_ids) == 20 and not train_ids & valid_ids
    np.testing.assert_allclose(ds.train_x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(ds.train_x.std(axis=(0, 2, 3)), 1, atol=1e-5)


def test_channel_stats_matches_numpy_and_guards_constant_channels() -> None:
    x = np.random.default_rng(0).normal(3, 2, (5000, 2, 4, 4)).astype(np.float32)
    x[:, 1] = 7.0
    mean, std = channel_stats(x, chunk=333)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3), dtype=np.float64), rtol=1e-6)
    assert abs(std[0] - x[:, 0].std(dtype=np.float64)) < 1e-5 and std[1] == 1.0


def test_resize_keeps_constant_images_and_shapes() -> None:
    x = np.full((3, 2, 8, 8), 0.25, dtype=np.float32)
    up, down = resize(x, 32), resize(x, 4)
    assert up.shape == (3, 2, 32, 32) and down.shape == (3, 2, 4, 4) and up.dtype == np.float32
    np.testing.assert_allclose(up, 0.25, atol=1e-6)
    np.testing.assert_allclose(down, 0.25, atol=1e-6)
    assert resize(x, 8) is x


@pytest.mark.parametrize("value", [0, -3, 2.5, "7", True])
def test_check_int_rejects(value: object) -> None:
    with pytest.raises(UserError, match="limit_train"):
        check_int("toy", "limit_train", value, 1)


def test_validation_split_of_class_sorted_files_is_shuffled() -> None:
    """Files stored class by class (a JPEG tree) must not give a validation split in class order: BossNAS rates
    on the first validation images, and its two halves must hold the same classes."""
    y = np.repeat(np.arange(10), 100)
    x = np.zeros((1000, 1, 2, 2), np.float32)
    ds = assemble("sorted", x.copy(), y, x[:10].copy(), y[:10], num_classes=10, valid_fraction=0.2, seed=0,
                  resolution=None)
    halves = ds.valid_y[:100], ds.valid_y[100:]
    assert all(len(np.unique(h)) == 10 for h in halves)
    assert len(np.unique(ds.train_y[:50])) >= 8
    again = assemble("sorted", x.copy(), y, x[:10].copy(), y[:10], num_classes=10, valid_fraction=0.2, seed=0,
                     resolution=None)
    np.testing.assert_array_equal(ds.valid_y, again.valid_y)
