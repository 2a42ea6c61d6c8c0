"""Smooth random fields (value noise summed over octaves) for soil and leaf textures."""

from __future__ import annotations

import cv2
import numpy as np


def fractal_noise(
    rng: np.random.Generator, size: int, octaves: tuple[int, ...], falloff: float = 0.7
) -> np.ndarray:
    """[size, size] float32 noise, roughly zero-mean unit-std, detail from `octaves` grid sizes."""
    total = np.zeros((size, size), np.float32)
    for grid in octaves:
        coarse = rng.standard_normal((grid + 3, grid + 3)).astype(np.float32)
        big = cv2.resize(
            coarse,
            (size + 2 * size // grid, size + 2 * size // grid),
            interpolation=cv2.INTER_CUBIC,
        )
        offset = size // grid
        total += big[offset : offset + size, offset : offset + size] * (grid**-falloff)
    return (total - total.mean()) / (total.std() + 1e-6)
