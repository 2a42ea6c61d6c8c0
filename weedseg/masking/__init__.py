"""Patch masks for masked-image pretraining: grid, random and selective maskers, difficulty.

grid = PatchGrid(256, 256, patch=12)                 # 21 x 21 patches, last row/col larger
masks = RandomMasker(0.5)(grid, batch=8)             # [8, 21, 21] bool, exactly 220 masked each
difficulty = patch_difficulty(reconstruct, images, grid, mean, std)  # [8, 21, 21], 5 masks
masks = SelectiveMasker(0.5)(difficulty)             # the hardest half
masked = apply_mask(images, grid.to_pixels(masks), fill=torch.zeros(3))  # mean colour = 0
"""

from weedseg.masking.difficulty import (
    Reconstruct,
    difficulty_map,
    patch_difficulty,
    pixel_difficulty,
    ssim_map,
)
from weedseg.masking.grid import PatchGrid
from weedseg.masking.maskers import (
    RandomMasker,
    SelectiveMasker,
    apply_mask,
    easy_to_hard_share,
    mixed_masks,
)

__all__ = [
    "PatchGrid",
    "Reconstruct",
    "RandomMasker",
    "SelectiveMasker",
    "apply_mask",
    "difficulty_map",
    "easy_to_hard_share",
    "mixed_masks",
    "patch_difficulty",
    "pixel_difficulty",
    "ssim_map",
]
