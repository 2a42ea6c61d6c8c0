"""Plants as leaf polygons: one crop shape and three weed morphologies, drawn with exact masks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CROP, WEED = 1, 2

Profile = Callable[[np.ndarray], np.ndarray]  # t in 0..1 along the leaf -> relative half-width


@dataclass(frozen=True)
class Leaf:
    """One leaf in pixel coordinates: outline, its two halves (folded along the midrib, so one
    faces the sun more than the other), and a colour (RGB 0..1)."""

    outline: np.ndarray  # [P, 2] float (x, y)
    left_half: np.ndarray  # [Q, 2] float
    right_half: np.ndarray  # [Q, 2] float
    left_normal: np.ndarray  # [2] unit vector: the direction the left half faces
    midrib: np.ndarray | None  # [R, 2] float, drawn as a lighter vein on big leaves
    color: np.ndarray  # [3]
    label: int


def ovate_blade(t: np.ndarray) -> np.ndarray:
    """Petiole for the first fifth, then a broad egg-shaped blade (the crop's leaf)."""
    blade = np.clip((t - 0.2) / 0.8, 0, 1)
    return np.where(t < 0.2, 0.08, np.sin(np.pi * blade**0.75) ** 0.6 * 0.95 + 0.08 * (1 - blade))


def round_lobed(t: np.ndarray) -> np.ndarray:
    """Short stalk, then a roundish, slightly lobed blade (broadleaf weed rosettes)."""
    blade = np.clip((t - 0.12) / 0.88, 0, 1)
    lobes = 1.0 + 0.1 * np.sin(blade * np.pi * 7)
    return np.where(t < 0.12, 0.1, np.sqrt(np.sin(np.pi * blade)) * lobes)


def grass_blade(t: np.ndarray) -> np.ndarray:
    """Long, narrow and tapering to a point."""
    return (1 - t) ** 0.8 + 0.05


def cotyledon(t: np.ndarray) -> np.ndarray:
    """Small oval seed leaf."""
    return np.sin(np.pi * t) ** 0.8


def make_leaf(
    base: np.ndarray,
    angle: float,
    length: float,
    width: float,
    profile: Profile,
    bend: float,
    color: np.ndarray,
    label: int,
    points: int = 14,
) -> Leaf:
    """Sweep a half-width profile along an axis that curves by `bend` radians from base to tip."""
    t = np.linspace(0.0, 1.0, points)
    headings = angle + bend * t**1.5
    steps = np.stack([np.cos(headings), np.sin(headings)], 1) * (length / (points - 1))
    axis = base + np.concatenate([[[0.0, 0.0]], np.cumsum(steps[:-1], 0)])  # axis: [P, 2]
    normal = np.stack([-np.sin(headings), np.cos(headings)], 1)
    half_width = (width / 2) * profile(t)[:, None]
    left, right = axis + normal * half_width, axis - normal * half_width
    outline = np.concatenate([left, right[::-1]])
    left_half = np.concatenate([left, axis[::-1]])
    right_half = np.concatenate([axis, right[::-1]])
    left_normal = normal.mean(0) / (np.linalg.norm(normal.mean(0)) + 1e-9)
    midrib = axis[2:-3] if length > 14 else None
    return Leaf(outline, left_half, right_half, left_normal, midrib, color, label)


def crop_plant(rng: np.random.Generator, center: np.ndarray, radius: float) -> list[Leaf]:
    """A rosette of 5-8 broad, stalked leaves of one consistent shape; inner leaves are younger."""
    count = int(rng.integers(5, 9))
    start = rng.uniform(0, 2 * np.pi)
    hue = np.array([0.20, 0.42, 0.13]) * rng.uniform(0.85, 1.15)
    leaves = []
    for i in range(count):
        angle = start + 2 * np.pi * i / count + rng.normal(0, 0.25)
        length = radius * rng.uniform(0.75, 1.0)
        color = np.clip(hue * rng.uniform(0.9, 1.12, 3), 0, 1)
        leaves.append(
            make_leaf(
                center, angle, length, length * 0.62, ovate_blade, rng.normal(0, 0.3), color, CROP
            )
        )
    for _ in range(int(rng.integers(2, 4))):  # young heart leaves on top
        angle = start + rng.uniform(0, 2 * np.pi)
        length = radius * rng.uniform(0.3, 0.45)
        color = np.clip(hue * np.array([1.15, 1.2, 1.1]), 0, 1)
        leaves.append(make_leaf(center, angle, length, length * 0.6, ovate_blade, 0.0, color, CROP))
    return leaves


def grass_weed(rng: np.random.Generator, center: np.ndarray, length: float) -> list[Leaf]:
    """A tuft of 3-9 thin curved blades from one point (goose grass, nut grass)."""
    hue = np.array([0.36, 0.50, 0.18]) * rng.uniform(0.85, 1.15)
    width = max(1.8, length * rng.uniform(0.06, 0.1))
    main = rng.uniform(0, 2 * np.pi)
    leaves = []
    for _ in range(int(rng.integers(3, 10))):
        angle = main + rng.normal(0, 0.9)
        color = np.clip(hue * rng.uniform(0.85, 1.15, 3), 0, 1)
        size = length * rng.uniform(0.5, 1.0)
        bend = rng.choice([-1, 1]) * rng.uniform(0.3, 1.2)
        leaves.append(make_leaf(center, angle, size, width, grass_blade, bend, color, WEED, 18))
    return leaves


def broadleaf_weed(rng: np.random.Generator, center: np.ndarray, radius: float) -> list[Leaf]:
    """A flat rosette of 4-8 round, lobed leaves, lighter green than the crop."""
    hue = np.array([0.33, 0.52, 0.16]) * rng.uniform(0.85, 1.15)
    count = int(rng.integers(4, 9))
    start = rng.uniform(0, 2 * np.pi)
    leaves = []
    for i in range(count):
        angle = start + 2 * np.pi * i / count + rng.normal(0, 0.2)
        length = radius * rng.uniform(0.7, 1.0)
        color = np.clip(hue * rng.uniform(0.9, 1.1, 3), 0, 1)
        leaves.append(
            make_leaf(center, angle, length, length * 0.85, round_lobed, 0.0, color, WEED)
        )
    return leaves


def seedling_weed(rng: np.random.Generator, center: np.ndarray, length: float) -> list[Leaf]:
    """Two opposite cotyledons, sometimes with a first true leaf: a weed just emerging."""
    hue = np.array([0.42, 0.60, 0.22]) * rng.uniform(0.85, 1.15)
    angle = rng.uniform(0, 2 * np.pi)
    leaves = [
        make_leaf(
            center, angle + side * np.pi, length, length * 0.55, cotyledon, 0.0, hue, WEED, 10
        )
        for side in (0, 1)
    ]
    if rng.random() < 0.5:
        leaves.append(
            make_leaf(
                center,
                angle + np.pi / 2,
                length * 0.7,
                length * 0.5,
                round_lobed,
                0.0,
                hue * 0.9,
                WEED,
                10,
            )
        )
    return leaves
