"""One label per plant: each connected vegetation region takes its most probable class; torch-free.

Pixel-wise argmax cuts single plants into pieces of different classes (tile seams, flecks on
leaf edges). A spot sprayer decides per plant, so `plant_vote` gives every connected vegetation
region (any class but class 0, the background; 8-connected after closing 1-pixel gaps) the
vegetation class with the largest probability mass over its pixels. Regions larger than
`MAX_REGION_SHARE` of the frame stay pixel-wise: those are usually touching plants of different
species (in the CWFID and Peanut ground truth 2 of 239 and 12 of 732 plant regions of 2,000 px
up to 1% of the frame mix species, against 33 of 140 and 63 of 665 larger ones).
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND = 0  # class id that is not vegetation (soil)
MAX_REGION_SHARE = 0.01  # regions above this share of the frame's pixels keep pixel-wise labels
_CLOSING = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


def plant_vote(
    labels: np.ndarray, probs: np.ndarray, max_region_share: float = MAX_REGION_SHARE
) -> np.ndarray:
    """labels [H, W] uint8 and probs [K, H, W] float32 -> labels [H, W] uint8, one vegetation
    class per connected region of at most `max_region_share` of the pixels.

    Soil pixels never change; closing only joins regions, it adds no vegetation pixels. The
    work is one closing, one connected-components pass and one weighted bincount per vegetation
    class over the vegetation pixels (a few ms per megapixel).
    """
    num_classes = probs.shape[0]
    if num_classes < 3:  # one vegetation class: nothing to vote between
        return labels
    vegetation = (labels != BACKGROUND).view(np.uint8)  # [H, W] 0/1
    joined = cv2.morphologyEx(vegetation, cv2.MORPH_CLOSE, _CLOSING)
    count, regions = cv2.connectedComponents(joined, connectivity=8, ltype=cv2.CV_32S)
    pixels = np.flatnonzero(vegetation)  # flat indices of vegetation pixels [P]
    region_of = regions.ravel()[pixels]  # [P] region id of each vegetation pixel
    mass = np.stack(
        [
            np.bincount(region_of, weights=probs[k].ravel()[pixels], minlength=count)
            for k in range(1, num_classes)
        ]
    )  # [K-1, regions] probability mass of each vegetation class
    winner = (mass.argmax(axis=0) + 1).astype(np.uint8)  # [regions]
    area = np.bincount(region_of, minlength=count)  # [regions] vegetation pixels
    votes = area <= max_region_share * labels.size  # [regions] small enough to be one plant
    keep = votes[region_of]  # [P]
    out = labels.copy()
    out.ravel()[pixels[keep]] = winner[region_of[keep]]
    return out
