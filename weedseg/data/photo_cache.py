"""Decode once: training photos and masks kept decoded, at the training input scale, on disk.

A training crop then costs a slice of a memory-mapped uint8 array and a resize instead of a JPEG
decode of the whole photo (an 8-Mpx JPEG takes ~100 ms to decode on one core). Entries are
`<key>.npy` files, the key a hash of the file's resolved path, size, mtime, the scale and the
kind (image or mask), so a changed photo is decoded again. Files are written atomically, so
DataLoader workers, several runs and a resumed run share one folder safely.

The folder stays under `max_bytes`: a photo that would not fit is decoded every time instead of
being cached. With random sampling that keeps the hit rate at the cached share, where evicting
older entries would only trade one miss for another. A corrupt photo raises (the loaders skip
and report it) and is never cached.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from weedseg.atomic import atomic_path
from weedseg.imageio import read_image_scaled, read_mask

GIB = 1 << 30


class PhotoCache:
    """Decoded photos and masks at `scale` x their size, memory-mapped from `folder`."""

    def __init__(self, folder: str | Path, max_bytes: int, scale: float = 1.0):
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.scale = float(scale)
        self.folder.mkdir(parents=True, exist_ok=True)

    def image(self, path: str | Path) -> np.ndarray:
        """HxWx3 uint8 RGB of `path` at the cache's scale (area-averaged, as inference shrinks)."""
        return self._get(Path(path), "image", lambda p: read_image_scaled(p, self.scale))

    def mask(self, path: str | Path) -> np.ndarray:
        """HxW uint8 class ids of `path` at the cache's scale (nearest neighbour)."""
        return self._get(Path(path), "mask", self._decode_mask)

    def _decode_mask(self, path: Path) -> np.ndarray:
        mask = read_mask(path)
        if self.scale == 1.0:
            return mask
        height, width = mask.shape
        size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)

    def entry(self, path: Path, kind: str) -> Path:
        """The cache file of `path` as it is now (changes when the file changes)."""
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.scale!r}|{kind}"
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npy"

    def _get(self, path: Path, kind: str, decode: Callable[[Path], np.ndarray]) -> np.ndarray:
        if not path.is_file():
            return decode(path)  # the reader raises its "no such file" error
        entry = self.entry(path, kind)
        if entry.is_file():
            try:
                # copy-on-write map: torch accepts it as writable, nothing is read until sliced
                return np.load(entry, mmap_mode="c")
            except (OSError, ValueError):
                entry.unlink(missing_ok=True)  # a damaged entry: decode again
        array = np.ascontiguousarray(decode(path))  # raises on a corrupt photo: never cached
        self._store(entry, array)
        return array

    def _store(self, entry: Path, array: np.ndarray) -> None:
        """Write `array` as `entry` if the folder stays under its limit (checked under a lock
        shared by every process using the folder)."""
        with open(self.folder / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if entry.is_file():
                return
            needed = array.nbytes + 128  # .npy header
            if self.size_bytes() + needed > self.max_bytes:
                return
            with atomic_path(entry) as tmp:
                np.save(tmp, array)

    def size_bytes(self) -> int:
        """Bytes held by the cache's entries."""
        total = 0
        with os.scandir(self.folder) as entries:
            for item in entries:
                if item.name.endswith(".npy") and item.is_file():
                    total += item.stat().st_size
        return total


def cache_folder(run: str | Path, cache_dir: str | None) -> Path:
    """`--cache-dir`, or the run folder's cache/ (a resumed run finds its photos there)."""
    return Path(cache_dir) if cache_dir else Path(run) / "cache" / "photos"
