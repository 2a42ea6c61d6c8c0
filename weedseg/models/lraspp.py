"""torchvision's LR-ASPP MobileNetV3-Large (random init) in the shape the pipeline expects.

The same network `weedseg bench --peer lraspp` times, as a preset it can also train: an
`encoder` (MobileNetV3-Large, dilated last stage: features at 1/8 and 1/16) and a
`segmentation_head` whose direct Conv2d children are the class classifiers (`replace_head`
swaps both), returning logits at the input size like the smp models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = ("mobilenet_v3_large",)


class LRASPPSegmenter(nn.Module):
    """x [N, 3, H, W] normalised -> logits [N, out_channels, H, W]."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        model = lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=out_channels
        )
        # x -> {"low": [N, 40, H/8, W/8], "high": [N, 960, H/16, W/16]}
        self.encoder = model.backbone
        self.segmentation_head = model.classifier  # features -> [N, K, H/8, W/8]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.segmentation_head(self.encoder(x))  # [N, K, H/8, W/8]
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
