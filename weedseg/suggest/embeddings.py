"""Cheap image descriptors for diversity: colour histogram + a tiny grey thumbnail."""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 8  # grey thumbnail side: coarse layout (rows, plant cover)
HUE_BINS, SAT_BINS, VAL_BINS = 8, 3, 3


def image_embedding(image: np.ndarray) -> np.ndarray:
    """[D] float32, unit length: HSV colour histogram and a normalised 8x8 grey thumbnail.

    Two shots of the same patch land close together; a new soil, light or crop stage does not.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist(
        [hsv], [0, 1, 2], None, [HUE_BINS, SAT_BINS, VAL_BINS], [0, 180, 0, 256, 0, 256]
    ).ravel()
    hist = np.sqrt(hist / max(float(hist.sum()), 1.0))  # Hellinger: unit length by itself
    grey = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (THUMB, THUMB), cv2.INTER_AREA)
    thumb = grey.astype(np.float32).ravel()
    thumb = (thumb - thumb.mean()) / (np.linalg.norm(thumb - thumb.mean()) + 1e-6)
    vector = np.concatenate([hist, 0.5 * thumb]).astype(np.float32)
    return vector / (np.linalg.norm(vector) + 1e-6)
