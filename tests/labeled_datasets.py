"""Tiny labeled datasets in the canonical format and a colour-rule torch segmenter, for tests.

Images are soil-brown with green (crop) and red (weed) discs; their masks say exactly that. The
colour rule (`colour_rule_model`) segments them perfectly, so planted mask errors give a known
confusion matrix; a small network learns them within a few dozen steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from bundles import CROP_RGB, SOIL_RGB, WEED_RGB  # the ONNX colour rule's colours
from torch import nn

from weedseg.data.format import DatasetInfo
from weedseg.imageio import write_image


def colour_sample(
    height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 image, HxW uint8 mask) with a few crop and weed discs on soil."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = SOIL_RGB
    mask = np.zeros((height, width), dtype=np.uint8)
    for class_id, colour in ((1, CROP_RGB), (2, WEED_RGB), (1, CROP_RGB), (2, WEED_RGB)):
        radius = int(rng.integers(4, max(5, min(height, width) // 5)))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, radius, colour, -1)
        cv2.circle(mask, centre, radius, class_id, -1)
    return image, mask


def write_colour_dataset(
    root: Path,
    splits: dict[str, Sequence[tuple[int, int]]],
    seed: int = 0,
) -> DatasetInfo:
    """A dataset at `root` whose split `name` holds one image per (height, width) given."""
    rng = np.random.default_rng(seed)
    info = DatasetInfo(root=root, source="tests: colour discs")
    for split, sizes in splits.items():
        info.splits[split] = []
        for i, (height, width) in enumerate(sizes):
            stem = f"{split}_{i:02d}"
            image, mask = colour_sample(height, width, rng)
            write_image(root / "images" / f"{stem}.png", image)
            write_image(info.mask_path(stem), mask)
            info.images[stem] = f"{stem}.png"
            info.splits[split].append(stem)
    info.save()
    return info


def colour_rule_model() -> nn.Module:
    """1x1 convolution: normalised RGB -> soil/crop/weed logits (green crop, red weed)."""
    conv = nn.Conv2d(3, 3, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[0, 0, 0], [-3, 3, 0], [3, -3, 0]]).view(3, 3, 1, 1))
        conv.bias.copy_(torch.tensor([2.0, 0.0, 0.0]))
    return conv
