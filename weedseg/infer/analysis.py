"""Figures from a class map: per-class pixel fractions and weed instances a sprayer can aim at."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from weedseg.classes import ClassInfo


def class_fractions(labels: np.ndarray, classes: Sequence[ClassInfo]) -> dict[str, float]:
    """Share of the pixels of `labels` [H, W] that belong to each class, by class name."""
    counts = np.bincount(labels.ravel(), minlength=len(classes))
    total = max(int(labels.size), 1)
    return {c.name: float(counts[i]) / total for i, c in enumerate(classes)}


def weed_instances(
    labels: np.ndarray,
    class_id: int,
    min_area_px: int = 1,
    gsd_cm: float | None = None,
    polygons: bool = False,
) -> list[dict]:
    """Connected regions of `class_id` in `labels` [H, W] of at least `min_area_px` pixels.

    Each: id (1-based), centroid (x, y), bbox (x, y, w, h), area_px, area_cm2 (with the ground
    sampling distance `gsd_cm` in cm/pixel, else None), and with `polygons` the outer contour as
    [[x, y], ...] in pixel coordinates. 8-connectivity, ordered largest first.
    """
    mask = (labels == class_id).astype(np.uint8)
    count, components, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    order = sorted(range(1, count), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))
    instances = []
    for i in order:
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area_px:
            continue
        x, y, w, h = (int(v) for v in stats[i, :4])
        instance = {
            "id": len(instances) + 1,
            "centroid": [round(float(centroids[i, 0]), 2), round(float(centroids[i, 1]), 2)],
            "bbox": [x, y, w, h],
            "area_px": area,
            "area_cm2": round(area * gsd_cm**2, 4) if gsd_cm else None,
        }
        if polygons:
            instance["polygon"] = _outer_contour(components[y : y + h, x : x + w] == i, x, y)
        instances.append(instance)
    return instances


def _outer_contour(region: np.ndarray, x0: int, y0: int) -> list[list[int]]:
    """The largest outer contour of a boolean region, shifted back to image coordinates."""
    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    contour = max(contours, key=cv2.contourArea)[:, 0, :]  # [P, 2] x, y
    return [[int(x) + x0, int(y) + y0] for x, y in contour]
