"""Dataset statistics: image mean/std for normalisation, class pixel counts for loss weights."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, read_mask


def image_mean_std(
    files: Sequence[str | Path], max_images: int = 64, max_side: int = 512
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and std of RGB in 0..1 over up to `max_images` evenly spaced files.

    Images are shrunk to `max_side` first, so this stays cheap on large photos; unreadable
    files are skipped with a warning.
    """
    if not files:
        raise WeedsegError("image_mean_std: no images given")
    picks = np.unique(np.linspace(0, len(files) - 1, min(max_images, len(files))).round())
    total = np.zeros(3)
    total_sq = np.zeros(3)
    pixels = 0
    for i in picks.astype(int).tolist():
        try:
            image = read_image(files[i])
        except WeedsegError as exc:
            warnings.warn(f"skipping unreadable image: {exc}", RuntimeWarning, stacklevel=2)
            continue
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        values = image.reshape(-1, 3).astype(np.float64) / 255.0  # values: [P, 3]
        total += values.sum(0)
        total_sq += (values**2).sum(0)
        pixels += len(values)
    if pixels == 0:
        raise WeedsegError(f"image_mean_std: none of the {len(picks)} sampled images is readable")
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def class_pixel_counts(info: DatasetInfo, stems: Sequence[str]) -> np.ndarray:
    """[num_classes] pixel counts over the masks of `stems` (ignore pixels excluded)."""
    counts = np.zeros(256, np.int64)
    for stem in stems:
        counts += np.bincount(read_mask(info.mask_path(stem)).ravel(), minlength=256)
    return counts[: len(info.classes)]
