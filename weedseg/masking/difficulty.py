"""How hard each patch is for a model to reconstruct (the selective-masking signal).

Difficulty of a pixel = L1 + (1 - SSIM with a 3 px window) between the image and the model's
reconstruction of a randomly masked copy, averaged over several random masks; a patch's
difficulty is the mean over its pixels. Both terms are computed on 0..1 RGB.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from weedseg.masking.grid import PatchGrid
from weedseg.masking.maskers import RandomMasker, apply_mask

C1, C2 = 0.01**2, 0.03**2


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 3) -> torch.Tensor:
    """Per-pixel SSIM [N, H, W] (channel mean) of 0..1 images [N, C, H, W], box window."""

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, window, stride=1, padding=window // 2, count_include_pad=False)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    ssim = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
    return ssim.mean(dim=1)


def difficulty_map(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Per-pixel L1 + (1 - SSIM) [N, H, W] between two 0..1 images [N, 3, H, W]."""
    l1 = (original - reconstruction).abs().mean(dim=1)
    return l1 + (1.0 - ssim_map(original, reconstruction))


# reconstruct(masked_images [N, 3, H, W], pixel_masks [N, H, W]) -> reconstruction [N, 3, H, W]
Reconstruct = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def pixel_difficulty(
    reconstruct: Reconstruct,
    images: torch.Tensor,
    grid: PatchGrid,
    mean: torch.Tensor,
    std: torch.Tensor,
    num_masks: int = 5,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-pixel difficulty [N, H, W] of normalised images [N, 3, H, W], mean over random masks.

    Masked patches are filled with 0, the dataset mean colour once normalised. The caller puts
    the model in eval mode.
    """
    mean = mean.to(images).view(1, -1, 1, 1)
    std = std.to(images).view(1, -1, 1, 1)
    original = (images * std + mean).clamp(0, 1)
    masker = RandomMasker(ratio)
    total = torch.zeros(images.shape[0], *images.shape[-2:], device=images.device)
    for _ in range(num_masks):
        pixel_masks = grid.to_pixels(masker(grid, images.shape[0], generator, images.device))
        masked = apply_mask(images, pixel_masks, torch.zeros(images.shape[1]))
        reconstruction = (reconstruct(masked, pixel_masks).float() * std + mean).clamp(0, 1)
        total += difficulty_map(original.float(), reconstruction)
    return total / num_masks


def patch_difficulty(
    reconstruct: Reconstruct,
    images: torch.Tensor,
    grid: PatchGrid,
    mean: torch.Tensor,
    std: torch.Tensor,
    num_masks: int = 5,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-patch difficulty [N, rows, cols] (see `pixel_difficulty`)."""
    pixels = pixel_difficulty(reconstruct, images, grid, mean, std, num_masks, ratio, generator)
    return grid.pool(pixels[:, None])[:, 0]
