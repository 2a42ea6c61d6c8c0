"""Images for export-time verification and INT8 calibration: real ones from folders or weedseg
datasets (whole-image centre crops, or the tiles the runtime would cut), or synthetic ones."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from weedseg.data.format import DATASET_FILE, DatasetInfo, find_images
from weedseg.errors import WeedsegError
from weedseg.imageio import ImageReadError, read_image, read_mask
from weedseg.tiling import resize_by, tile_starts


@dataclass(frozen=True)
class ImageSource:
    """Image files to draw from, with their masks when the source is a labeled dataset."""

    root: Path
    images: list[Path]
    masks: list[Path] | None  # aligned with `images`
    split: str | None = None  # the dataset split the images come from

    @property
    def labeled(self) -> bool:
        return self.masks is not None


def open_source(path: str | Path, splits: tuple[str, ...] = ("train",)) -> ImageSource:
    """A folder of images, or a weedseg dataset (its first split in `splits` that exists, else
    every image it lists, with masks)."""
    root = Path(path)
    if not root.exists():
        raise WeedsegError(f"{root}: no such image folder or dataset")
    if (root / DATASET_FILE).is_file():
        info = DatasetInfo.load(root)
        split = next((s for s in splits if info.splits.get(s)), None)
        stems = info.split(split) if split else sorted(info.images)
        return ImageSource(
            root, [info.image_path(s) for s in stems], [info.mask_path(s) for s in stems], split
        )
    return ImageSource(root, find_images(root), None)


def evenly_spaced(count: int, n: int) -> list[int]:
    """`n` indices spread over range(count) (all of them when n >= count): a fixed sample."""
    if n >= count:
        return list(range(count))
    return [int(i) for i in np.linspace(0, count - 1, n).round()]


def fit_to_size(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A centre height x width crop at full resolution (the scale the runtime's tiles have);
    an image smaller than that is first scaled up to cover it. HxWx3 uint8."""
    scale = max(height / image.shape[0], width / image.shape[1])
    if scale > 1:
        size = (
            max(width, round(image.shape[1] * scale)),
            max(height, round(image.shape[0] * scale)),
        )
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def read_fitted(paths: list[Path], height: int, width: int) -> tuple[list[np.ndarray], list[str]]:
    """Decode and fit every path; unreadable files are skipped and reported, never fatal."""
    images, skipped = [], []
    for path in paths:
        try:
            images.append(fit_to_size(read_image(path), height, width))
        except ImageReadError as exc:
            skipped.append(str(exc))
            print(f"skipped: {exc}", file=sys.stderr)
    return images, skipped


def runtime_tiles(image: np.ndarray, size: int, overlap: int) -> list[np.ndarray]:
    """The size x size windows the runtime cuts from this image, at full resolution (an image
    smaller than a tile gives one, scaled up to cover it)."""
    height, width = image.shape[:2]
    if height < size or width < size:
        return [fit_to_size(image, size, size)]
    return [
        image[y : y + size, x : x + size]
        for y in tile_starts(height, size, overlap)
        for x in tile_starts(width, size, overlap)
    ]


def calibration_tiles(
    sources: list[ImageSource], n: int, size: int, overlap: int, input_scale: float = 1.0
) -> tuple[list[np.ndarray], int]:
    """About `n` runtime tiles (of the photos resized by the model's input scale), an equal
    share from each source, spread over its images and over the windows of each image;
    returns (tiles, number of images they come from)."""
    share = -(-n // len(sources))
    tiles, used = [], 0
    for source in sources:
        picked = evenly_spaced(len(source.images), share)
        per_image = -(-share // max(len(picked), 1))
        taken = []
        for k, i in enumerate(picked):
            try:
                image = resize_by(read_image(source.images[i]), input_scale)
            except ImageReadError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                continue
            used += 1
            windows = runtime_tiles(image, size, overlap)
            windows = windows[k % len(windows) :] + windows[: k % len(windows)]  # vary the spot
            taken += [windows[j] for j in evenly_spaced(len(windows), per_image)]
        tiles += [taken[j] for j in evenly_spaced(len(taken), share)]
    return tiles, used


def read_labeled(source: ImageSource, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to `n` (image, mask) pairs of a labeled source at full resolution."""
    if source.masks is None:
        raise WeedsegError(f"{source.root}: not a labeled dataset")
    pairs = []
    for i in evenly_spaced(len(source.images), n):
        try:
            pairs.append((read_image(source.images[i]), read_mask(source.masks[i])))
        except ImageReadError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    return pairs


def synthetic_images(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour fields with blobs: a stand-in when no real images are given."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        coarse = rng.integers(
            0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8
        )
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        for _ in range(int(rng.integers(2, 8))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.circle(image, centre, int(rng.integers(3, max(4, height // 6))), colour, -1)
        images.append(image)
    return images
