"""CIFAR-10 (shared JPEG tarballs, synthetic python batches, trees, npz) and the generic image folder."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nas.data.cifar10 as cifar_module
from nas.core.errors import UserError
from nas.data import ArrayDataset, load_dataset
from nas.data._images import decode, scan_tar
from nas.data.cifar10 import CLASSES, cifar10, image_folder, read_cifar_batch
from nas.testing.skips import require_shared_data

SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10"
REAL_URLOPEN = urllib.request.urlopen


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def shared_cifar() -> ArrayDataset:
    require_shared_data(SHARED_CIFAR / "cifar10_jpeg_q75_train.tar.gz")
    return load_dataset("cifar10", root=str(SHARED_CIFAR), limit_train=1000, limit_test=500, seed=0)


def test_shared_tarballs_with_limits(shared_cifar: ArrayDataset) -> None:
    ds = shared_cifar
    assert ds.num_classes == 10 and ds.input_shape == (3, 32, 32)
    assert ds.train_x.shape == (800, 3, 32, 32) and ds.valid_x.shape == (200, 3, 32, 32)
    assert ds.test_x.shape == (500, 3, 32, 32) and ds.test_x.dtype == np.float32
    assert np.bincount(ds.train_y).tolist() == [80] * 10 and np.bincount(ds.valid_y).tolist() == [20] * 10
    assert np.bincount(ds.test_y).tolist() == [50] * 10
    np.testing.assert_allclose(ds.train_x.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(ds.train_x.std(axis=(0, 2, 3)), 1, atol=1e-3)
    np.testing.assert_allclose(ds.test_x.mean(axis=(0, 2, 3)), 0, atol=0.1)


def test_jpeg_decoding_matches_the_decoded_npz() -> None:
    require_shared_data(SHARED_CIFAR / "cifar10_test_2k_decoded.npz")
    require_shared_data(SHARED_CIFAR / "cifar10_jpeg_q75_test.tar.gz")
    entries = scan_tar(SHARED_CIFAR / "cifar10_jpeg_q75_test.tar.gz")
    assert len(entries) == 10000 and entries[0].label == "airplane" and entries[-1].label == "truck"
    firsts = [entries[1000 * c + i] for c in range(10) for i in range(3)]  # files 0000..0002 of each class
    with np.load(SHARED_CIFAR / "cifar10_test_2k_decoded.npz") as npz:
        rows = [200 * c + i for c in range(10) for i in range(3)]
        assert npz["file_index"][rows].tolist() == [0, 1, 2] * 10
        np.testing.assert_array_equal(decode(firsts), npz["x"][rows].transpose(0, 3, 1, 2))


def write_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    batch = {b"batch_label": b"synthetic", b"labels": labels, b"data": data,
             b"filenames": [b"x.png"] * len(labels)}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_python_batches(folder: Path, per_batch: int = 20) -> Path:
    """Image i of every batch: channel c is the constant 10 * c + label."""
    folder.mkdir(parents=True)
    labels = [i % 10 for i in range(per_batch)]
    data = np.concatenate([np.full((per_batch, 1024), 10 * c) + np.array(labels)[:, None] for c in range(3)],
                          axis=1).astype(np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_batch(folder / name, data, labels)
    return folder


@pytest.mark.parametrize("nested", [True, False])
def test_synthetic_python_batches(tmp_path: Path, nested: bool) -> None:
    write_python_batches(tmp_path / "cifar-10-batches-py" if nested else tmp_path / "flat")
    x, y = read_cifar_batch(next(tmp_path.rglob("data_batch_3")))
    assert x.shape == (20, 3, 32, 32) and y.tolist() == [i % 10 for i in range(20)]
    assert x[5, :, 7, 9].tolist() == [5, 15, 25]  # row layout: 1024 R, then 1024 G, then 1024 B
    ds = cifar10(root=tmp_path if nested else tmp_path / "flat", limit_train=50, resolution=16)
    assert ds.train_x.shape == (40, 3, 16, 16) and ds.valid_x.shape == (10, 3, 16, 16)
    assert ds.test_x.shape == (20, 3, 16, 16) and np.bincount(ds.train_y).tolist() == [4] * 10


def test_python_batch_errors(tmp_path: Path) -> None:
    folder = write_python_batches(tmp_path / "cifar-10-batches-py")
    (folder / "test_batch").unlink()
    with pytest.raises(UserError, match="missing test_batch in .*cifar-10-batches-py"):
        cifar10(root=tmp_path)
    write_batch(folder / "test_batch", np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(UserError, match=r"test_batch: expected data \(N, 3072\)"):
        cifar10(root=tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("executed",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UserError, match="test_batch: not a CIFAR-10 python batch .*not allowed"):
        cifar10(root=tmp_path)


def test_download_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    write_python_batches(tmp_path / "src" / "cifar-10-batches-py")
    mirror.mkdir()
    with tarfile.open(mirror / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(urllib.request, "urlopen", REAL_URLOPEN)  # file:// URLs only, no network
    monkeypatch.setattr(cifar_module, "URL_DIR", mirror.as_uri() + "/")
    digest = hashlib.md5((mirror / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setattr(cifar_module, "TARBALL_MD5", digest)
    with pytest.raises(UserError, match="does not exist"):
        cifar10(root=tmp_path / "fresh")
    ds = cifar10(root=tmp_path / "fresh", download=True)
    assert len(ds.test_y) == 20 and (tmp_path / "fresh" / "cifar-10-batches-py" / "data_batch_5").is_file()


def write_images(root: Path, classes: dict[str, int], size: int = 8, mode: str = "RGB",
                 ext: str = "png") -> None:
    """Random images ``root/<class>/NNN.<ext>``, ``count`` per class."""
    rng = np.random.default_rng(len(classes))
    shape = (size, size) if mode == "L" else (size, size, 3)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / name / f"{i:03d}.{ext}")


def test_image_folder_tree_and_tarball(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write_images(tree / "train", {"cat": 10, "ant": 10, "bee": 5})
    write_images(tree / "test", {"ant": 3, "cat": 2})
    (tree / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = image_folder(root=tree)
    assert ds.num_classes == 3 and ds.input_shape == (3, 8, 8)
    assert len(ds.train_y) + len(ds.valid_y) == 25 and ds.test_y.tolist() == [0, 0, 0, 2, 2]  # ant, bee, cat
    packed = tmp_path / "packed"
    packed.mkdir()
    for split in ("train", "test"):
        with tarfile.open(packed / f"{split}.tar.gz", "w:gz") as tar:
            tar.add(tree / split, arcname=split)
    again = image_folder(root=packed)
    np.testing.assert_array_equal(ds.train_x, again.train_x)
    np.testing.assert_array_equal(ds.test_y, again.test_y)
    small = image_folder(root=tree, resolution=4, limit_train=10, limit_test=2)
    assert small.train_x.shape == (8, 3, 4, 4) and small.test_x.shape == (2, 3, 4, 4)


def test_image_folder_grey_mixed_sizes_and_errors(tmp_path: Path) -> None:
    write_images(tmp_path / "train", {"0": 4, "1": 4}, mode="L")
    write_images(tmp_path / "test", {"1": 2}, mode="L")
    assert image_folder(root=tmp_path).input_shape == (1, 8, 8)
    write_images(tmp_path / "train", {"2": 1}, size=12, mode="L")
    with pytest.raises(UserError, match=r"000\.png: size 12x12 differs from 8x8"):
        image_folder(root=tmp_path)
    assert image_folder(root=tmp_path, resolution=10).input_shape == (1, 10, 10)
    write_images(tmp_path / "test", {"9": 1}, mode="L")
    with pytest.raises(UserError, match="unknown class folder '9'"):
        image_folder(root=tmp_path, resolution=10)
    (tmp_path / "train" / "0" / "000.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"000\.png: cannot decode image"):
        image_folder(root=tmp_path, resolution=10)
    with pytest.raises(UserError, match="no train/<class>/<image>"):
        image_folder(root=tmp_path / "train")


def test_cifar10_tree_with_npz_test_split(tmp_path: Path) -> None:
    write_images(tmp_path / "train", {name: 3 for name in CLASSES}, size=32, ext="jpg")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 2)
    np.savez(tmp_path / "cifar10_test_2k_decoded.npz", x=images, y=labels)
    ds = cifar10(root=tmp_path, valid_fraction=0, limit_test=10)
    assert ds.train_x.shape == (30, 3, 32, 32) and ds.test_y.tolist() == list(range(10))
    write_images(tmp_path / "test", {"kangaroo": 1}, size=32, ext="jpg")
    with pytest.raises(UserError, match="unknown class folder 'kangaroo'"):
        cifar10(root=tmp_path)


def test_cifar10_missing_root_or_data(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="'root' is required"):
        cifar10()
    with pytest.raises(UserError, match="does not exist"):
        cifar10(root=tmp_path / "absent")
    with pytest.raises(UserError, match="no data in .*data_batch_1.*cifar10_jpeg_q75_train.tar.gz"):
        cifar10(root=tmp_path)
    (tmp_path / "train.tar.gz").write_bytes(b"\x1f\x8bbroken")
    with pytest.raises(UserError, match=r"train\.tar\.gz: unreadable tarball"):
        cifar10(root=tmp_path)
