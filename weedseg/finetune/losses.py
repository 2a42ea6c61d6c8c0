"""Segmentation losses (smp.losses) and class weights from the training masks' pixel counts.

Class weights (`auto`) are the inverse square root of each class's pixel frequency in the train
masks, scaled so that the average pixel's weight is 1 (the loss keeps its scale): a class 100x
rarer than another weighs 10x more. This is gentler than median-frequency balancing, which on
CWFID (crop = 1.6% of pixels) would weigh crop about 30x soil and trade much soil precision for
crop recall. A class absent from the train masks gets the largest weight of the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from weedseg.classes import IGNORE_INDEX
from weedseg.defaults import LOSSES


def inverse_sqrt_weights(counts: np.ndarray) -> np.ndarray:
    """[K] weights proportional to 1/sqrt(frequency), averaging 1 over labelled pixels."""
    freq = counts / max(int(counts.sum()), 1)
    present = freq > 0
    if not present.any():
        return np.ones(len(counts))
    weights = np.zeros(len(counts))
    weights[present] = 1.0 / np.sqrt(freq[present])
    weights /= float((freq * weights).sum())
    weights[~present] = weights[present].max()
    return weights


class CrossEntropyDice(nn.Module):
    """Cross-entropy (optionally class-weighted) + multiclass soft Dice, both ignoring 255."""

    def __init__(self, class_weights: torch.Tensor | None = None):
        super().__init__()
        import segmentation_models_pytorch as smp

        self.ce = nn.CrossEntropyLoss(weight=class_weights, ignore_index=IGNORE_INDEX)
        self.dice = smp.losses.DiceLoss("multiclass", ignore_index=IGNORE_INDEX)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # logits: [N, K, H, W] float, target: [N, H, W] int64
        return self.ce(logits, target) + self.dice(logits, target)


def build_loss(name: str, class_weights: Sequence[float] | None = None) -> nn.Module:
    """`ce+dice` (weights apply to the cross-entropy), `jaccard` (weights per class term) or
    `lovasz` (Lovasz-softmax over the batch's pixels, a direct mIoU surrogate; unweighted)."""
    import segmentation_models_pytorch as smp

    if name == "ce+dice":
        weights = None if class_weights is None else torch.tensor(class_weights).float()
        return CrossEntropyDice(weights)
    if name == "jaccard":
        weights = None if class_weights is None else [float(w) for w in class_weights]
        return smp.losses.JaccardLoss(
            "multiclass", ignore_index=IGNORE_INDEX, class_weights=weights
        )
    if name == "lovasz":
        return smp.losses.LovaszLoss("multiclass", ignore_index=IGNORE_INDEX)
    raise ValueError(f"unknown loss {name!r} (have {', '.join(LOSSES)})")
