"""The result of predicting one image."""

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
