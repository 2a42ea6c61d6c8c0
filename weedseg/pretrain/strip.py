"""The PNG a person looks at: input | masked input | reconstruction | difficulty + selection."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from weedseg.masking import PatchGrid


def to_rgb8(image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Normalised [3, H, W] (any device) -> HxWx3 uint8."""
    rgb = image.float().cpu() * std.cpu().view(-1, 1, 1) + mean.cpu().view(-1, 1, 1)
    return (rgb.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).numpy()


def difficulty_panel(
    grid: PatchGrid, patch_masks: torch.Tensor, difficulty: torch.Tensor | None
) -> np.ndarray:
    """Heat map of per-patch difficulty (grey when random) with the masked patches outlined."""
    # patch_masks, difficulty: [rows, cols]
    if difficulty is None:
        heat = np.full((grid.height, grid.width, 3), 96, np.uint8)
    else:
        d = difficulty.float().cpu()
        d = (d - d.min()) / (d.max() - d.min()).clamp_min(1e-8)
        grey = (grid.to_pixels(d) * 255).byte().numpy()
        heat = cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO)[..., ::-1].copy()
    rows, cols = np.cumsum([0, *grid.row_sizes()]), np.cumsum([0, *grid.col_sizes()])
    for r, c in torch.nonzero(patch_masks.cpu()).tolist():
        top_left = (int(cols[c]), int(rows[r]))
        bottom_right = (int(cols[c + 1]) - 1, int(rows[r + 1]) - 1)
        cv2.rectangle(heat, top_left, bottom_right, (255, 255, 255), 1)
    return heat


def reconstruction_strip(
    image: torch.Tensor,
    masked: torch.Tensor,
    reconstruction: torch.Tensor,
    patch_masks: torch.Tensor,
    difficulty: torch.Tensor | None,
    grid: PatchGrid,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> np.ndarray:
    """One image's four panels side by side, HxW(4+gaps)x3 uint8."""
    panels = [
        to_rgb8(image, mean, std),
        to_rgb8(masked, mean, std),
        to_rgb8(reconstruction, mean, std),
        difficulty_panel(grid, patch_masks, difficulty),
    ]
    gap = np.full((grid.height, 4, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
