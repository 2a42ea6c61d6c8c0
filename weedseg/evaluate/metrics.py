"""Dataset-level segmentation metrics from one confusion matrix accumulated over a whole split.

Rows are ground truth, columns are predictions (`matrix[true, pred]`), as in torchvision's
references/segmentation. Pixels labelled `IGNORE_INDEX` count nowhere. A class that appears neither
in the ground truth nor in the predictions has an undefined IoU (NaN) and is left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weedseg.classes import IGNORE_INDEX


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def json_number(value: float) -> float | None:
    """A score for JSON: rounded to 6 decimals, None when undefined (NaN)."""
    return None if np.isnan(value) else round(float(value), 6)


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


@dataclass(frozen=True)
class SegmentationMetrics:
    """Scores derived from a confusion matrix; per-class arrays are indexed by class id."""

    iou: np.ndarray  # [K] intersection over union, NaN when the class is absent everywhere
    accuracy: np.ndarray  # [K] recall: correct pixels / ground-truth pixels of the class
    precision: np.ndarray  # [K] correct pixels / pixels predicted as the class
    miou: float
    aacc: float  # all-pixel accuracy
    macc: float  # mean class accuracy
    pixels: np.ndarray  # [K] ground-truth pixel count per class

    def to_dict(self, class_names: Sequence[str]) -> dict:
        """JSON-ready scores; undefined values become None."""
        clean = json_number
        return {
            "mIoU": clean(self.miou),
            "aAcc": clean(self.aacc),
            "mAcc": clean(self.macc),
            "per_class": {
                name: {
                    "iou": clean(self.iou[k]),
                    "accuracy": clean(self.accuracy[k]),
                    "recall": clean(self.accuracy[k]),
                    "precision": clean(self.precision[k]),
                    "pixels": int(self.pixels[k]),
                }
                for k, name in enumerate(class_names)
            },
        }


def metrics_from_matrix(matrix: np.ndarray) -> SegmentationMetrics:
    """Every score from a [K, K] confusion matrix (rows = ground truth, columns = prediction)."""
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    true_total = matrix.sum(axis=1)
    pred_total = matrix.sum(axis=0)
    iou = _ratio(tp, true_total + pred_total - tp)
    accuracy = _ratio(tp, true_total)
    total = matrix.sum()
    return SegmentationMetrics(
        iou=iou,
        accuracy=accuracy,
        precision=_ratio(tp, pred_total),
        miou=_nanmean(iou),
        aacc=float(tp.sum() / total) if total > 0 else float("nan"),
        macc=_nanmean(accuracy),
        pixels=true_total.astype(np.int64),
    )


def confusion_matrix(
    target: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """[K, K] int64 pixel counts for one label map pair of equal shape."""
    if target.shape != pred.shape:
        raise ValueError(f"target {target.shape} and prediction {pred.shape} differ in shape")
    target = target.reshape(-1).astype(np.int64)
    pred = pred.reshape(-1).astype(np.int64)
    keep = target != ignore_index
    target, pred = target[keep], pred[keep]
    if target.size and (target.max() >= num_classes or target.min() < 0):
        bad = int(target[(target >= num_classes) | (target < 0)][0])
        allowed = f"0..{num_classes - 1} or {ignore_index}"
        raise ValueError(f"mask value {bad} is not a class id ({allowed})")
    if pred.size and (pred.max() >= num_classes or pred.min() < 0):
        raise ValueError(f"prediction holds values outside 0..{num_classes - 1}")
    counts = np.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


class ConfusionMatrix:
    """Accumulates pixel counts over a split; `compute()` gives dataset-level scores."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Add one ground-truth / prediction pair; returns that pair's own matrix."""
        counts = confusion_matrix(target, pred, self.num_classes, self.ignore_index)
        self.matrix += counts
        return counts

    def compute(self) -> SegmentationMetrics:
        return metrics_from_matrix(self.matrix)
