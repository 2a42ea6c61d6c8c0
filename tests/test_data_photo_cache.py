"""The decoded-photo cache: decoded pixels, re-decoded on change, bounded, no corrupt entries."""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest
from labeled_datasets import write_colour_dataset

from weedseg.data.format import DatasetInfo
from weedseg.data.loaders import LabeledDataset
from weedseg.data.photo_cache import PhotoCache
from weedseg.imageio import ImageReadError, read_image, read_image_scaled, write_image
from weedseg.tiling import resize_by


def photo(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_cached_photo_equals_the_decoded_one_and_is_memory_mapped(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, photo(0))
    cache = PhotoCache(tmp_path / "cache", max_bytes=10**6)
    first = cache.image(path)  # decoded, then stored
    again = cache.image(path)  # from the cache
    assert isinstance(again, np.memmap) and again.flags.writeable
    np.testing.assert_array_equal(first, read_image(path))
    np.testing.assert_array_equal(again, first)


def test_a_changed_photo_is_decoded_again(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, photo(0))
    cache = PhotoCache(tmp_path / "cache", max_bytes=10**6)
    cache.image(path)
    write_image(path, photo(1, 40, 40))
    os.utime(path, ns=(1, 1))  # a new mtime even on coarse file systems
    np.testing.assert_array_equal(cache.image(path), photo(1, 40, 40))


def test_cache_stays_under_its_limit_and_still_serves_every_photo(tmp_path):
    paths = []
    for seed in range(5):
        paths.append(tmp_path / f"{seed}.png")
        write_image(paths[-1], photo(seed))
    limit = 2 * photo(0).nbytes + 400  # room for two entries
    cache = PhotoCache(tmp_path / "cache", max_bytes=limit)
    for _ in range(2):
        for seed, path in enumerate(paths):
            np.testing.assert_array_equal(cache.image(path), photo(seed))
    assert cache.size_bytes() <= limit
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_corrupt_photo_is_reported_skipped_and_never_cached(tmp_path):
    info = write_colour_dataset(tmp_path / "data", {"train": [(64, 80)] * 3})
    broken = info.image_path(info.split("train")[1])
    broken.write_bytes(broken.read_bytes()[:60])  # truncated PNG
    cache = PhotoCache(tmp_path / "cache", max_bytes=10**7)
    with pytest.raises(ImageReadError):
        cache.image(broken)
    dataset = LabeledDataset(DatasetInfo.load(info.root), "train", size=32, train=True, cache=cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stems = {dataset[i]["stem"] for i in range(3)}
    assert broken.stem not in stems and any(broken.name in str(w.message) for w in caught)
    entries = len(list((tmp_path / "cache").glob("*.npy")))
    assert entries == 4  # two good photos and their masks; nothing for the corrupt one


def test_scaled_cache_matches_inference_shrinking_and_reduced_jpeg_decoding(tmp_path):
    image = cv2.GaussianBlur(photo(3, 480, 640), (0, 0), 3)  # smooth, like a photo
    jpeg = tmp_path / "big.jpg"
    write_image(jpeg, image, quality=95)
    full = read_image(jpeg)
    for scale in (0.5, 0.25, 0.3):
        reduced = read_image_scaled(jpeg, scale)
        expected = resize_by(full, scale)
        assert reduced.shape == expected.shape
        assert np.abs(reduced.astype(int) - expected).mean() < 2.0, scale
    cache = PhotoCache(tmp_path / "cache", max_bytes=10**7, scale=0.5)
    assert cache.image(jpeg).shape == (240, 320, 3)
