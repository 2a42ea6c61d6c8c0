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
        noise = torch.rand(batch, grid.rows, grid.cols, generator=generator)
        return _top(noise, num_masked(grid.num_patches, self.ratio)).to(device)


class SelectiveMasker:
    """The `ratio` of patches with the highest difficulty (ties broken by position)."""

    def __init__(self, ratio: float):
        self.ratio = ratio

    def __call__(self, difficulty: torch.Tensor) -> torch.Tensor:
        """difficulty [N, rows, cols] -> masks [N, rows, cols] bool."""
        k = num_masked(difficulty[0].numel(), self.ratio)
        return _top(difficulty.float(), k)


def mixed_masks(
    difficulty: torch.Tensor,
    ratio: float,
    selected_share: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mask `ratio` of the patches: `selected_share` of them the hardest, the rest at random.

    share 0 is random masking, share 1 pure selective masking (Hard Patches Mining mixes both).
    """
    k = num_masked(difficulty[0].numel(), ratio)
    hard = round(selected_share * k)
    # random scores in [0, 1); the `hard` hardest patches get 2 so they are always among the k
    score = torch.rand(difficulty.shape, generator=generator).to(difficulty.device)
    if hard:
        score = torch.where(_top(difficulty.float(), hard), 2.0, score)
    return _top(score, k)


def easy_to_hard_share(step: int, total_steps: int, max_share: float) -> float:
    """Linear ramp of the selected share from 0 at step 0 to `max_share` at the last step."""
    if total_steps <= 1:
        return max_share
    return max_share * min(1.0, step / (total_steps - 1))


def apply_mask(images: torch.Tensor, pixel_masks: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """images [N, C, H, W], pixel_masks [N, H, W] bool -> images with masked pixels = fill [C]."""
    fill = fill.to(images).view(1, -1, 1, 1)
    return torch.where(pixel_masks[:, None], fill, images)


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    """score [N, rows, cols] -> bool [N, rows, cols], True at each image's k highest scores."""
    flat = score.flatten(1)
    index = flat.topk(k, dim=1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, index, True).view_as(score)
