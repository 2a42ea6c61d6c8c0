"""Source masks -> index masks: colour maps (RGB label images) and value maps (index images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weedseg.classes import DEFAULT_CLASSES, IGNORE_INDEX, ClassInfo
from weedseg.errors import WeedsegError

IGNORE_NAME = "ignore"  # a class name in --map/--colors meaning "exclude these pixels" (255)

Color = tuple[int, int, int]


def class_index(name: str, classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES) -> int:
    """Index of a class name, or IGNORE_INDEX for `ignore`; unknown names are an error."""
    if name == IGNORE_NAME:
        return IGNORE_INDEX
    names = [c.name for c in classes]
    if name not in names:
        raise WeedsegError(f"unknown class {name!r} (classes: {', '.join(names)}, {IGNORE_NAME})")
    return names.index(name)


def default_color_map(classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES) -> dict[Color, int]:
    """Each class's display colour stands for that class (black soil, green crop, red weed)."""
    return {tuple(c.color): i for i, c in enumerate(classes)}


def parse_color_map(
    items: list[str], classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES
) -> dict[Color, int]:
    """`["soil=0,0,0", "crop=0,255,0", ...]` -> {(r, g, b): class index}."""
    mapping: dict[Color, int] = {}
    for item in items:
        name, sep, rgb = item.partition("=")
        parts = rgb.split(",")
        if not sep or len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise WeedsegError(f"bad colour {item!r}: expected NAME=R,G,B like crop=0,255,0")
        color = tuple(int(p) for p in parts)
        if max(color) > 255:
            raise WeedsegError(f"bad colour {item!r}: components must be 0..255")
        mapping[color] = class_index(name.strip(), classes)
    return mapping


def parse_value_map(text: str, classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES) -> dict[int, int]:
    """`"0=soil,1=weed,2=crop"` -> {source value: class index}."""
    mapping: dict[int, int] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        value, sep, name = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise WeedsegError(f"bad value map entry {item!r}: expected VALUE=CLASS like 1=weed")
        mapping[int(value)] = class_index(name.strip(), classes)
    return mapping


def colors_to_index(
    rgb: np.ndarray, color_map: dict[Color, int], path: Path, unknown_as_ignore: bool = False
) -> np.ndarray:
    """HxWx3 RGB label image -> HxW index mask; any colour outside the map is an error (or 255)."""
    # packed: [H, W] one integer per colour, so each comparison is a single pass
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2].astype(np.uint32)
    )
    mask = np.full(packed.shape, IGNORE_INDEX, dtype=np.uint8)
    known = np.zeros(packed.shape, dtype=bool)
    for (r, g, b), index in color_map.items():
        hit = packed == ((r << 16) | (g << 8) | b)
        mask[hit] = index
        known |= hit
    if not unknown_as_ignore and not known.all():
        colors, counts = np.unique(packed[~known], return_counts=True)
        order = np.argsort(-counts)[:5]
        listed = ", ".join(
            f"({c >> 16},{(c >> 8) & 255},{c & 255}) x{n}"
            for c, n in zip(colors[order].tolist(), counts[order].tolist(), strict=True)
        )
        raise WeedsegError(
            f"{path}: {int(counts.sum())} pixels have colours outside the colour map "
            f"({len(colors)} colour(s); most frequent: {listed})"
        )
    return mask


def remap_values(mask: np.ndarray, value_map: dict[int, int], path: Path) -> np.ndarray:
    """HxW source index mask -> HxW class indices by lookup; unmapped values are an error."""
    if mask.dtype != np.uint8:
        raise WeedsegError(f"{path}: index masks must be 8-bit, got {mask.dtype}")
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    unknown = [int(v) for v in present if int(v) not in value_map]
    if unknown:
        counts = np.bincount(mask.ravel(), minlength=256)
        listed = ", ".join(f"{v} x{int(counts[v])}" for v in unknown[:8])
        raise WeedsegError(
            f"{path}: {int(counts[unknown].sum())} pixels have values outside the value map "
            f"({listed})"
        )
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for value, index in value_map.items():
        table[value] = index
    return table[mask]
