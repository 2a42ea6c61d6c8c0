"""Textured bare soil: a shaded height field with clods, stones, moisture patches and grain."""

from __future__ import annotations

import cv2
import numpy as np

from weedseg.data.synth.noise import fractal_noise


def render_soil(
    rng: np.random.Generator,
    size: int,
    base_color: tuple[float, float, float],
    relief: float,
    sun_angle: float,
) -> np.ndarray:
    """[size, size, 3] float32 RGB in 0..1, lit from `sun_angle` (image plane, radians).

    `relief` scales the side-light shading (strong in sun, weak under cloud).
    """
    scale = size / 256
    height = fractal_noise(rng, size, (4, 8, 16, 32, 64, 128), falloff=0.55)
    clods = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(60, 140) * scale**2)):
        center = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(max(1, int(v * scale)) for v in rng.uniform(1.5, 7.0, 2))
        cv2.ellipse(
            clods,
            center,
            axes,
            float(rng.uniform(0, 180)),
            0,
            360,
            float(rng.uniform(0.6, 1.6)),
            -1,
        )
    clods = cv2.GaussianBlur(clods, (0, 0), 1.2 * scale + 0.4)
    height = height * 0.6 + clods * 1.6

    albedo = np.ones((size, size), np.float32)
    stones = np.zeros((size, size), np.float32)
    stone_tone = np.zeros((size, size, 3), np.float32)
    for _ in range(int(rng.integers(4, 30) * scale**2)):
        center = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(max(1, int(v * scale)) for v in rng.uniform(1.0, 4.5, 2))
        angle = float(rng.uniform(0, 180))
        grey = float(rng.uniform(0.45, 0.85))
        tint = np.array([grey * rng.uniform(0.95, 1.05), grey, grey * rng.uniform(0.85, 1.0)])
        cv2.ellipse(stones, center, axes, angle, 0, 360, 1.0, -1)
        cv2.ellipse(stone_tone, center, axes, angle, 0, 360, tint.tolist(), -1)
    stones = cv2.GaussianBlur(stones, (0, 0), 0.6 * scale + 0.3)
    height += stones * 2.5

    # side light: slopes facing the sun (height falling towards it) are brighter
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    facing = -(np.cos(sun_angle) * gx + np.sin(sun_angle) * gy)
    shade = 1.0 + relief * 0.09 * facing / (scale**0.5)
    shade = np.clip(shade, 0.45, 1.5)

    moisture = fractal_noise(rng, size, (2, 4, 8), falloff=1.0)
    wet = np.clip((moisture - rng.uniform(-0.2, 0.9)) * 1.5, 0.0, 1.0)  # wet: [H, W] 0..1
    albedo *= 1.0 - 0.35 * wet
    albedo *= 1.0 + 0.10 * fractal_noise(rng, size, (16, 32), falloff=0.5)
    grain = rng.standard_normal((size, size)).astype(np.float32)
    albedo *= 1.0 + 0.06 * grain

    color = np.asarray(base_color, np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    soil = albedo[..., None] * color[None, None, :]
    soil[..., 2] *= 1.0 + 0.08 * wet  # wet soil looks slightly cooler
    stone_alpha = np.clip(stones, 0, 1)[..., None]
    soil = soil * (1 - stone_alpha) + stone_tone * (0.9 + 0.1 * grain[..., None]) * stone_alpha
    soil = soil * shade[..., None]
    _scatter_residue(rng, soil, scale)
    return np.clip(soil, 0.0, 1.0)


def _scatter_residue(rng: np.random.Generator, soil: np.ndarray, scale: float) -> None:
    """Bits of straw and dry stalks from the last crop: pale, thin, never green (still soil)."""
    size = soil.shape[0]
    for _ in range(int(rng.integers(0, 25) * scale**2)):
        start = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(4, 16) * scale
        end = start + length * np.array([np.cos(angle), np.sin(angle)])
        tone = np.array([0.72, 0.62, 0.44]) * rng.uniform(0.6, 1.1)
        points = np.round(np.stack([start, end]) * 16).astype(np.int32)
        cv2.polylines(soil, [points], False, tone.tolist(), 1, cv2.LINE_AA, 4)
