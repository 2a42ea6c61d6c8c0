"""`weedseg data show`: a picture of a dataset, images beside their colour-coded masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from weedseg.classes import IGNORE_INDEX, ClassInfo
from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, read_mask

IGNORE_COLOR = (200, 200, 200)
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def overlay_mask(
    image: np.ndarray, mask: np.ndarray, classes: tuple[ClassInfo, ...], alpha: float = 0.5
) -> np.ndarray:
    """Blend each class's colour over its pixels and outline the regions (HxWx3 uint8 RGB)."""
    colors = np.zeros((256, 3), np.uint8)
    for index, info in enumerate(classes):
        colors[index] = info.color
    colors[IGNORE_INDEX] = IGNORE_COLOR
    weight = np.full(256, alpha, np.float32)
    weight[[i for i, c in enumerate(classes) if tuple(c.color) == (0, 0, 0)]] = 0.0  # keep soil
    painted, w = colors[mask].astype(np.float32), weight[mask][..., None]
    blended = (image.astype(np.float32) * (1 - w) + painted * w).astype(np.uint8)
    for index in np.unique(mask).tolist():
        if index == 0:
            continue
        region = (mask == index).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(blended, contours, -1, colors[index].tolist(), 1)
    return blended


def pick_stems(info: DatasetInfo, split: str | None, n: int) -> list[str]:
    """`n` stems spread evenly over the split (or over all samples), always the same ones."""
    stems = info.split(split) if split else sorted(info.images)
    if not stems:
        raise WeedsegError(f"{info.root}: no samples in {split or 'the dataset'}")
    picks = np.linspace(0, len(stems) - 1, min(n, len(stems))).round().astype(int)
    return [stems[i] for i in dict.fromkeys(picks.tolist())]


def render_preview(
    info: DatasetInfo, split: str | None = None, n: int = 8, tile: int = 192, columns: int = 2
) -> np.ndarray:
    """Grid of (image, overlay) pairs with a title and a legend of class pixel shares."""
    stems = pick_stems(info, split, n)
    counts = np.zeros(256, np.int64)
    cells = []
    for stem in stems:
        image, mask = read_image(info.image_path(stem)), read_mask(info.mask_path(stem))
        if image.shape[:2] != mask.shape:
            raise WeedsegError(f"{info.mask_path(stem)}: size differs from its image")
        counts += np.bincount(mask.ravel(), minlength=256)
        height = max(1, round(tile * image.shape[0] / image.shape[1]))
        small = cv2.resize(image, (tile, height), interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask, (tile, height), interpolation=cv2.INTER_NEAREST)
        cell = np.concatenate(
            [
                small,
                np.full((height, 4, 3), BACKGROUND, np.uint8),
                overlay_mask(small, small_mask, info.classes),
            ],
            axis=1,
        )
        cv2.putText(cell, stem, (4, 14), FONT, 0.4, TEXT, 1, cv2.LINE_AA)
        cells.append(cell)
    rows = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    cell_h = max(c.shape[0] for c in cells)
    cell_w = cells[0].shape[1]
    gap = 8
    grid_w = columns * cell_w + (columns + 1) * gap
    grid = np.full((len(rows) * (cell_h + gap) + gap, grid_w, 3), BACKGROUND, np.uint8)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            y, x = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
            grid[y : y + cell.shape[0], x : x + cell.shape[1]] = cell
    title = f"{info.root.name}: {split or 'all'} split, {len(stems)} samples (image | mask overlay)"
    return np.concatenate([_banner(title, grid_w), grid, _legend(info.classes, counts, grid_w)])


def _banner(text: str, width: int) -> np.ndarray:
    banner = np.full((28, width, 3), BACKGROUND, np.uint8)
    cv2.putText(banner, text, (8, 19), FONT, 0.5, TEXT, 1, cv2.LINE_AA)
    return banner


def _legend(classes: tuple[ClassInfo, ...], counts: np.ndarray, width: int) -> np.ndarray:
    """Colour swatch, class name and pixel share (of the shown samples) per class."""
    legend = np.full((32, width, 3), BACKGROUND, np.uint8)
    total = max(1, int(counts.sum()))
    x = 8
    entries = [(c.name, c.color, counts[i]) for i, c in enumerate(classes)]
    if counts[IGNORE_INDEX]:
        entries.append(("ignore", IGNORE_COLOR, counts[IGNORE_INDEX]))
    for name, color, count in entries:
        cv2.rectangle(legend, (x, 8), (x + 16, 24), tuple(int(v) for v in color), -1)
        cv2.rectangle(legend, (x, 8), (x + 16, 24), TEXT, 1)
        label = f"{name} {100 * count / total:.1f}%"
        cv2.putText(legend, label, (x + 22, 21), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
        x += 30 + cv2.getTextSize(label, FONT, 0.45, 1)[0][0] + 16
    return legend


def write_preview(
    dataset: str | Path, out: str | Path, split: str | None = None, n: int = 8, tile: int = 192
) -> Path:
    """Render the preview of `dataset` to the PNG `out` (atomically)."""
    from weedseg.imageio import write_image

    picture = render_preview(DatasetInfo.load(dataset), split, n, tile)
    write_image(out, picture)
    return Path(out)
