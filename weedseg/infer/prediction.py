"""The result of predicting one image, and the class map from probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Prediction:
    """Class map at the input's resolution, optional probabilities, per-class pixel fractions."""

    labels: np.ndarray  # [H, W] uint8 class ids
    probs: np.ndarray | None  # [K, H, W] float32 softmax, when asked for
    fractions: dict[str, float]  # class name -> share of the image's pixels
    timings_ms: dict[str, float] = field(default_factory=dict)  # pre, inference, post

    @property
    def height(self) -> int:
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        return int(self.labels.shape[1])


def argmax_classes(probs: np.ndarray) -> np.ndarray:
    """probs [K, H, W] -> class ids [H, W] uint8; first class wins ties, like np.argmax.

    Whole-plane arithmetic, one pass per class: 3 ms instead of `argmax(axis=0)`'s 24 ms for
    3 x 966 x 1296 on this project's CPU (argmax strides across the planes for every pixel).
    """
    labels = np.zeros(probs.shape[1:], dtype=np.uint8)
    best = probs[0].copy()
    for k in range(1, probs.shape[0]):
        better = np.greater(probs[k], best).view(np.uint8)  # 0/1
        labels += better * (np.uint8(k) - labels)  # uint8 wraps: labels becomes k where better
        np.maximum(best, probs[k], out=best)
    return labels
