"""Compose one field photo: soil, plant shadows, crop rows and weeds, lighting, blur and noise."""

from __future__ import annotations

import cv2
import numpy as np

from weedseg.data.synth.config import SOIL_COLORS, SynthConfig
from weedseg.data.synth.noise import fractal_noise
from weedseg.data.synth.plants import (
    Leaf,
    broadleaf_weed,
    crop_plant,
    grass_weed,
    seedling_weed,
)
from weedseg.data.synth.soil import render_soil

SUBPIXEL = 4  # fixed-point bits for cv2 polygon drawing: smooth outlines, exact shared edges


def render_field(config: SynthConfig, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(image [S, S, 3] uint8 RGB, mask [S, S] uint8 in {0, 1, 2}) for sample `index`.

    Each sample has its own generator seeded by (seed, index), so one sample never depends on
    how many others were made.
    """
    rng = np.random.default_rng([config.seed, index])
    size = config.size
    sunny = config.lighting == "sun" or (config.lighting == "mixed" and rng.random() < 0.6)
    sun_angle = rng.uniform(0, 2 * np.pi)  # where the light comes from, in the image plane
    soil = render_soil(rng, size, SOIL_COLORS[config.soil], 1.0 if sunny else 0.35, sun_angle)

    plants = _crop_rows(rng, size, config.crop_density)
    low_weeds, tall_weeds = _weeds(rng, size, config.weed_density)
    leaves = low_weeds + plants + tall_weeds  # grass tufts may lie over crop leaves

    shadow_len = (0.035 if sunny else 0.012) * size
    image = _cast_shadows(soil, leaves, sun_angle, shadow_len, 0.55 if sunny else 0.25, size)
    mask = np.zeros((size, size), np.uint8)
    for leaf in leaves:
        _draw_leaf(image, mask, leaf, sun_angle)
    image = _plant_texture(rng, image, mask)
    image = _lighting(rng, image, sunny)
    sigma = config.blur * size / 256 * rng.uniform(0.7, 1.3)
    if sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0, 0.012, image.shape).astype(np.float32)  # sensor noise
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def _crop_rows(rng: np.random.Generator, size: int, density: float) -> list[Leaf]:
    """Crop plants on 1-3 parallel rows crossing the image, regularly spaced with gaps."""
    rows = int(rng.integers(1, 4))
    spacing = size / rows
    radius = size * rng.uniform(0.07, 0.11) * (1.3 if rows == 1 else 1.0)
    along = radius * rng.uniform(1.5, 2.4) / max(density, 1e-3) ** 0.5
    angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.12)
    direction = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-direction[1], direction[0]])
    center = np.array([size / 2, size / 2])
    offset = rng.uniform(-0.5, 0.5) * spacing
    leaves: list[Leaf] = []
    if density <= 0:
        return leaves
    for row in range(rows):
        row_center = center + across * ((row - (rows - 1) / 2) * spacing + offset)
        phase = rng.uniform(0, along)
        for s in np.arange(-size, size, along) + phase:
            position = row_center + direction * s + rng.normal(0, radius * 0.12, 2)
            if np.any(position < -radius) or np.any(position > size + radius) or rng.random() < 0.1:
                continue
            leaves += crop_plant(rng, position, radius * rng.uniform(0.85, 1.15))
    return leaves


def _weeds(rng: np.random.Generator, size: int, density: float) -> tuple[list[Leaf], list[Leaf]]:
    """Weeds scattered at random: (flat rosettes and seedlings, upright grass tufts)."""
    low: list[Leaf] = []
    tall: list[Leaf] = []
    for _ in range(int(rng.poisson(16 * density))):
        position = rng.uniform(-0.05, 1.05, 2) * size
        kind = rng.random()
        if kind < 0.35:
            tall += grass_weed(rng, position, size * rng.uniform(0.06, 0.16))
        elif kind < 0.65:
            low += broadleaf_weed(rng, position, size * rng.uniform(0.025, 0.06))
        else:
            low += seedling_weed(rng, position, size * rng.uniform(0.012, 0.025))
    return low, tall


def _points(polygon: np.ndarray) -> np.ndarray:
    return np.round(polygon * (1 << SUBPIXEL)).astype(np.int32)


def _cast_shadows(
    soil: np.ndarray, leaves: list[Leaf], angle: float, length: float, strength: float, size: int
) -> np.ndarray:
    """Darken the soil under the plants' silhouettes shifted away from the sun."""
    shadow = np.zeros((size, size), np.float32)
    shift = np.array([np.cos(angle), np.sin(angle)]) * -length
    for leaf in leaves:
        cv2.fillPoly(shadow, [_points(leaf.outline + shift)], 1.0, cv2.LINE_8, SUBPIXEL)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(0.8, length * 0.35))
    return soil * (1 - strength * shadow)[..., None]


def _draw_leaf(image: np.ndarray, mask: np.ndarray, leaf: Leaf, sun_angle: float) -> None:
    """Paint a leaf (shaded base, the half facing the sun lighter, a pale vein) and its label."""
    outline = [_points(leaf.outline)]
    cv2.fillPoly(image, outline, (leaf.color * 0.82).tolist(), cv2.LINE_8, SUBPIXEL)
    cv2.fillPoly(mask, outline, leaf.label, cv2.LINE_8, SUBPIXEL)
    sun = np.array([np.cos(sun_angle), np.sin(sun_angle)])
    lit = leaf.left_half if float(leaf.left_normal @ sun) > 0 else leaf.right_half
    cv2.fillPoly(image, [_points(lit)], (leaf.color * 1.08).tolist(), cv2.LINE_8, SUBPIXEL)
    if leaf.midrib is not None:
        vein = [_points(leaf.midrib)]
        cv2.polylines(
            image, vein, False, np.clip(leaf.color * 1.3, 0, 1).tolist(), 1, cv2.LINE_8, SUBPIXEL
        )
        cv2.polylines(mask, vein, False, leaf.label, 1, cv2.LINE_8, SUBPIXEL)


def _plant_texture(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fine brightness variation on leaves (veins, wax, dust)."""
    texture = 1.0 + 0.10 * fractal_noise(rng, image.shape[0], (16, 48, 96), falloff=0.3)
    return np.where((mask > 0)[..., None], image * texture[..., None], image)


def _lighting(rng: np.random.Generator, image: np.ndarray, sunny: bool) -> np.ndarray:
    """Exposure, colour temperature, uneven light across the frame and a soft vignette."""
    size = image.shape[0]
    gain = rng.uniform(0.95, 1.25) if sunny else rng.uniform(0.75, 1.0)
    tint = np.array([1.06, 1.0, 0.9] if sunny else [0.95, 1.0, 1.07], np.float32)
    tint *= rng.uniform(0.96, 1.04, 3).astype(np.float32)
    uneven = 1.0 + 0.08 * fractal_noise(rng, size, (2,), falloff=0.0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    vignette = 1.0 - 0.25 * (xx**2 + yy**2)
    contrast = 1.0 if sunny else 0.85
    mean = image.mean()
    image = (image - mean) * contrast + mean
    return image * (gain * uneven * vignette)[..., None] * tint
