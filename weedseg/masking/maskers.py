"""Which patches to hide: random, the hardest by a difficulty map, or a mix of both."""

from __future__ import annotations

import torch

from weedseg.masking.grid import PatchGrid


def num_masked(num_patches: int, ratio: float) -> int:
    """Exactly round(ratio * patches) masked patches, at least 1 and never all."""
    return min(max(1, round(ratio * num_patches)), num_patches - 1)


class RandomMasker:
    """A fresh uniformly random set of exactly `ratio` of the patches per image."""

    def __init__(self, ratio: float):
        self.ratio = ratio

    def __call__(
        self,
        grid: PatchGrid,
        batch: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        noise = torch.rand(batch, grid.num_patches, generator=generator)
        return _top(noise, num_masked(grid.num_patches, self.ratio), grid).to(device)


class SelectiveMasker:
    """The `ratio` of patches with the highest difficulty (ties broken by position)."""

    def __init__(self, ratio: float):
        self.ratio = ratio

    def __call__(self, difficulty: torch.Tensor) -> torch.Tensor:
        """difficulty [N, rows, cols] -> masks [N, rows, cols] bool."""
        n, rows, cols = difficulty.shape
        grid_size = rows * cols
        k = num_masked(grid_size, self.ratio)
        flat = difficulty.reshape(n, grid_size).float()
        index = flat.topk(k, dim=1).indices
        masks = torch.zeros(n, grid_size, dtype=torch.bool, device=difficulty.device)
        return masks.scatter_(1, index, True).view(n, rows, cols)


def mixed_masks(
    difficulty: torch.Tensor,
    ratio: float,
    selected_share: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mask `ratio` of the patches: `selected_share` of them the hardest, the rest at random.

    share 0 is random masking, share 1 pure selective masking (Hard Patches Mining mixes both).
    """
    n, rows, cols = difficulty.shape
    grid_size = rows * cols
    k = num_masked(grid_size, ratio)
    hard = round(selected_share * k)
    flat = difficulty.reshape(n, grid_size).float()
    # rank hardest first; the `hard` best get +2 so they always win, the rest compete at random
    noise = torch.rand(n, grid_size, generator=generator).to(flat.device)
    score = noise
    if hard:
        top = flat.topk(hard, dim=1).indices
        score = score.scatter(1, top, 2.0)
    index = score.topk(k, dim=1).indices
    masks = torch.zeros(n, grid_size, dtype=torch.bool, device=flat.device)
    return masks.scatter_(1, index, True).view(n, rows, cols)


def easy_to_hard_share(step: int, total_steps: int, max_share: float) -> float:
    """Linear ramp of the selected share from 0 at step 0 to `max_share` at the last step."""
    if total_steps <= 1:
        return max_share
    return max_share * min(1.0, step / (total_steps - 1))


def apply_mask(images: torch.Tensor, pixel_masks: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """images [N, C, H, W], pixel_masks [N, H, W] bool -> images with masked pixels = fill [C]."""
    fill = fill.to(images).view(1, -1, 1, 1)
    return torch.where(pixel_masks[:, None], fill, images)


def _top(score: torch.Tensor, k: int, grid: PatchGrid) -> torch.Tensor:
    index = score.topk(k, dim=1).indices
    masks = torch.zeros_like(score, dtype=torch.bool).scatter_(1, index, True)
    return masks.view(-1, grid.rows, grid.cols)
