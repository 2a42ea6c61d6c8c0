"""Sliding-window prediction with overlap and smooth blending; torch-free.

The same tiling serves `weedseg evaluate` (a PyTorch model) and `weedseg.infer` (ONNX Runtime):
each passes a `run_batch` callable, so both see exactly the same windows and weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SIZE_MULTIPLE = 32  # encoders downsample by 32: model inputs must be multiples of it

# run_batch: tiles [N, h, w, C] (the caller's dtype) -> class probabilities [N, K, h, w] float32
RunBatch = Callable[[np.ndarray], np.ndarray]


def round_up(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    return -(-value // multiple) * multiple


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of size `tile` covering [0, length) with at least `overlap`."""
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = -(-(length - tile) // stride) + 1
    # Spread the windows evenly so the last one ends exactly at the border.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """[tile, tile] weights: 1 in the centre, ramping down across the overlap band.

    Weights never reach 0, so pixels covered by one window only still get a prediction.
    """
    ramp = np.ones(tile, dtype=np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.outer(ramp, ramp)


def pad_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad HxWxC at the bottom/right to (height, width) by reflection (edge for tiny images)."""
    pad_h, pad_w = height - image.shape[0], width - image.shape[1]
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < image.shape[0] and pad_w < image.shape[1] else "edge"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def predict_tiled(
    image: np.ndarray,
    run_batch: RunBatch,
    num_classes: int,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
) -> np.ndarray:
    """Class probabilities [K, H, W] for an HxWxC image of any size.

    Images that fit in one tile are padded to a multiple of 32 and run once; larger ones are cut
    into overlapping tile x tile windows, run `batch_size` at a time and blended.
    """
    if tile % SIZE_MULTIPLE:
        raise ValueError(f"tile size must be a multiple of {SIZE_MULTIPLE}, got {tile}")
    height, width = image.shape[:2]
    if height <= tile and width <= tile:
        padded = pad_image(image, round_up(height), round_up(width))
        return run_batch(padded[None])[0, :, :height, :width]

    padded = pad_image(image, max(height, tile), max(width, tile))
    full_h, full_w = padded.shape[:2]
    weights = blend_window(tile, overlap)
    probs = np.zeros((num_classes, full_h, full_w), dtype=np.float32)
    weight_sum = np.zeros((full_h, full_w), dtype=np.float32)
    windows = [
        (y, x)
        for y in tile_starts(full_h, tile, overlap)
        for x in tile_starts(full_w, tile, overlap)
    ]
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        tiles = np.stack([padded[y : y + tile, x : x + tile] for y, x in chunk])
        out = run_batch(tiles)  # [n, K, tile, tile]
        for (y, x), tile_probs in zip(chunk, out, strict=True):
            probs[:, y : y + tile, x : x + tile] += tile_probs * weights
            weight_sum[y : y + tile, x : x + tile] += weights
    probs /= weight_sum
    return probs[:, :height, :width]
