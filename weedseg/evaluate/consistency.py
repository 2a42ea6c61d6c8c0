"""What a person sees in an overlay and a sprayer acts on, beyond mIoU; torch-free.

- mixed regions: connected vegetation regions (every class but class 0, 8-connected) of at least
  `MIXED_MIN_AREA_PX` pixels in which two vegetation classes each hold more than `MIXED_MIN_SHARE`
  of the pixels. In ground truth those are touching plants of two species; a prediction with many
  more has plants cut into pieces (tile seams, flecks on leaf edges).
- border disagreement: the share of pixel pairs straddling a tile-core border (where stitched
  windows meet) whose classes differ, against the same share one pixel beside the border. A seam
  makes the first larger.
- crop plants kept: a ground-truth crop plant (a connected crop region of at least
  `PLANT_MIN_AREA_PX` pixels) is kept when more than `KEPT_SHARE` of its pixels are predicted crop.

Counts add up over a split (`ConsistencyCounts`), like the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from weedseg.classes import IGNORE_INDEX

MIXED_MIN_AREA_PX = 2000
MIXED_MIN_SHARE = 0.05
PLANT_MIN_AREA_PX = 100
KEPT_SHARE = 0.9


def mixed_regions(
    labels: np.ndarray,
    num_classes: int,
    min_area_px: int = MIXED_MIN_AREA_PX,
    min_share: float = MIXED_MIN_SHARE,
) -> tuple[int, int]:
    """(mixed regions, regions of at least `min_area_px`) of a class map [H, W] uint8; pixels of
    IGNORE_INDEX are not vegetation."""
    vegetation = ((labels != 0) & (labels != IGNORE_INDEX)).view(np.uint8)
    count, regions = cv2.connectedComponents(vegetation, connectivity=8, ltype=cv2.CV_32S)
    pixels = np.flatnonzero(vegetation)
    region_of = regions.ravel()[pixels]
    per_class = np.bincount(
        region_of * num_classes + labels.ravel()[pixels], minlength=count * num_classes
    ).reshape(count, num_classes)[1:]  # [regions, K] pixels of each class, background dropped
    area = per_class.sum(axis=1)
    large = area >= min_area_px
    classes_present = (per_class[large] > min_share * area[large, None]).sum(axis=1)
    return int((classes_present >= 2).sum()), int(large.sum())


def border_disagreement(
    labels: np.ndarray, rows: Sequence[int], cols: Sequence[int]
) -> tuple[int, int, int, int]:
    """(pairs across a core border that differ, such pairs, pairs one pixel beside a border that
    differ, such pairs) for the core borders at `rows` and `cols` of labels [H, W].

    A border at row b lies between rows b-1 and b; beside it are the pairs (b-2, b-1) and
    (b, b+1). Columns likewise.
    """
    across = across_pairs = beside = beside_pairs = 0
    for grid, borders in ((labels, rows), (labels.T, cols)):
        length = grid.shape[0]
        for b in borders:
            if not 2 <= b <= length - 2:
                continue
            across += int(np.count_nonzero(grid[b - 1] != grid[b]))
            across_pairs += grid.shape[1]
            beside += int(np.count_nonzero(grid[b - 2] != grid[b - 1]))
            beside += int(np.count_nonzero(grid[b] != grid[b + 1]))
            beside_pairs += 2 * grid.shape[1]
    return across, across_pairs, beside, beside_pairs


def crop_plants_kept(
    target: np.ndarray,
    pred: np.ndarray,
    crop_id: int,
    min_area_px: int = PLANT_MIN_AREA_PX,
    kept_share: float = KEPT_SHARE,
) -> tuple[int, int]:
    """(kept, all) ground-truth crop plants of target [H, W]: connected crop regions of at least
    `min_area_px`, kept when more than `kept_share` of their pixels are predicted crop."""
    crop = (target == crop_id).view(np.uint8)
    count, regions = cv2.connectedComponents(crop, connectivity=8, ltype=cv2.CV_32S)
    pixels = np.flatnonzero(crop)
    region_of = regions.ravel()[pixels]
    area = np.bincount(region_of, minlength=count)[1:]
    hits = np.bincount(region_of, weights=pred.ravel()[pixels] == crop_id, minlength=count)[1:]
    plants = area >= min_area_px
    return int((hits[plants] > kept_share * area[plants]).sum()), int(plants.sum())


@dataclass
class ConsistencyCounts:
    """Counts summed over the images of a split; `to_dict` gives the rates."""

    pred_mixed: int = 0
    pred_regions: int = 0
    true_mixed: int = 0
    true_regions: int = 0
    border_differ: int = 0
    border_pairs: int = 0
    beside_differ: int = 0
    beside_pairs: int = 0
    crop_kept: int = 0
    crop_plants: int = 0

    def update(
        self,
        target: np.ndarray,
        pred: np.ndarray,
        class_names: Sequence[str],
        border_rows: Sequence[int] = (),
        border_cols: Sequence[int] = (),
    ) -> None:
        """Add one image: ground truth and prediction [H, W], and its tile-core borders."""
        k = len(class_names)
        pred_mixed, pred_regions = mixed_regions(pred, k)
        true_mixed, true_regions = mixed_regions(target, k)
        border = border_disagreement(pred, border_rows, border_cols)
        kept = (0, 0)
        if "crop" in class_names:
            kept = crop_plants_kept(target, pred, list(class_names).index("crop"))
        for name, value in zip(
            [f.name for f in fields(self)],
            (pred_mixed, pred_regions, true_mixed, true_regions, *border, *kept),
            strict=True,
        ):
            setattr(self, name, getattr(self, name) + value)

    def add(self, other: ConsistencyCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict:
        """Rates (None where nothing was counted) and the counts behind them."""

        def rate(numerator: int, denominator: int) -> float | None:
            return round(numerator / denominator, 6) if denominator else None

        return {
            "mixed_region_rate": rate(self.pred_mixed, self.pred_regions),
            "mixed_region_rate_ground_truth": rate(self.true_mixed, self.true_regions),
            "border_disagreement": rate(self.border_differ, self.border_pairs),
            "beside_border_disagreement": rate(self.beside_differ, self.beside_pairs),
            "crop_plants_kept": rate(self.crop_kept, self.crop_plants),
            "counts": asdict(self),
        }
