"""Image trees and tarballs: list ``<split>/<class>/<image>`` entries, then decode a chosen subset.

Listing is cheap (names only, plus the raw bytes for tarball members); decoding is the slow
part, so loaders pick their ``limit_train`` / ``limit_test`` subset from the labels first and
decode only that. Tarballs are read in memory with ``tarfile``, never extracted to disk.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from nas.core.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass(frozen=True)
class Entry:
    """One image: its class folder name, a name for messages, and its file or bytes."""

    label: str
    name: str
    source: Path | bytes


def _is_image(name: str) -> bool:
    base = PurePosixPath(name).name
    return not base.startswith(".") and base.lower().endswith(IMAGE_SUFFIXES)


def scan_tree(folder: Path) -> list[Entry]:
    """Entries of ``folder/<class>/<image>``, sorted by class then file name."""
    entries = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(class_dir.iterdir()):
            if path.is_file() and _is_image(path.name):
                entries.append(Entry(class_dir.name, str(path), path))
    return entries


def scan_tar(path: Path) -> list[Entry]:
    """Entries of a (gzip) tarball whose members are ``[.../]<class>/<image>``, sorted like a tree."""
    data = path.read_bytes()
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        keyed = []
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) >= 2 and _is_image(member.name):
                    blob = data[member.offset_data : member.offset_data + member.size]
                    keyed.append(((parts[-2], parts[-1]), Entry(parts[-2], f"{path}:{member.name}", blob)))
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise UserError(f"{path}: unreadable tarball ({exc})") from None
    return [entry for _, entry in sorted(keyed, key=lambda pair: pair[0])]


def find_split(root: Path, split: str, tarball_names: Sequence[str] = ()) -> list[Entry] | None:
    """Entries of ``root/<split>/`` if it is a folder, else of the first tarball that exists.

    Tarballs tried: ``tarball_names``, then ``<split>.tar.gz``, ``<split>.tgz``, ``<split>.tar``.
    """
    if (root / split).is_dir():
        return scan_tree(root / split)
    for name in (*tarball_names, f"{split}.tar.gz", f"{split}.tgz", f"{split}.tar"):
        if (root / name).is_file():
            return scan_tar(root / name)
    return None


def _decode_one(entry: Entry, size: int | None) -> np.ndarray:
    from PIL import Image

    source = io.BytesIO(entry.source) if isinstance(entry.source, bytes) else entry.source
    try:
        with Image.open(source) as image:
            image = image.convert("L" if image.mode in GREY_MODES else "RGB")
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{entry.name}: cannot decode image ({exc})") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def decode(entries: Sequence[Entry], size: int | None = None) -> np.ndarray:
    """uint8 NCHW images of ``entries`` (Pillow), optionally resized to ``size`` x ``size``.

    Grey images give 1 channel; if grey and colour images are mixed, grey ones are repeated
    to 3 channels. Without ``size`` all images must share one size.
    """
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise UserError("decoding JPEG/PNG images needs Pillow: pip install pillow") from None
    images = [_decode_one(entry, size) for entry in entries]
    if not images:
        return np.zeros((0, 3, size or 1, size or 1), dtype=np.uint8)
    channels = max(image.shape[2] for image in images)
    first = images[0].shape[:2]
    for entry, image in zip(entries, images, strict=True):
        if image.shape[:2] != first:
            raise UserError(f"{entry.name}: size {image.shape[1]}x{image.shape[0]} differs from "
                            f"{first[1]}x{first[0]} of {entries[0].name}; pass resolution to resize")
    stacked = np.stack([np.repeat(im, channels, axis=2) if im.shape[2] < channels else im for im in images])
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))
