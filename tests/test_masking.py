"""Patch grid, random/selective/mixed maskers and the reconstruction-difficulty signal."""

from __future__ import annotations

import pytest
import torch

from weedseg.masking import (
    PatchGrid,
    RandomMasker,
    SelectiveMasker,
    apply_mask,
    easy_to_hard_share,
    mixed_masks,
    patch_difficulty,
)


@pytest.mark.parametrize(("height", "width", "patch"), [(67, 45, 12), (31, 97, 7), (5, 5, 12)])
def test_random_masks_have_exact_ratio_on_odd_sizes(height, width, patch):
    grid = PatchGrid(height, width, patch)
    masks = RandomMasker(0.5)(grid, batch=4, generator=torch.Generator().manual_seed(0))
    expected = min(max(1, round(0.5 * grid.num_patches)), grid.num_patches - 1)
    assert masks.shape == (4, grid.rows, grid.cols)
    assert masks.flatten(1).sum(1).tolist() == [expected] * 4
    pixels = grid.to_pixels(masks)
    assert pixels.shape == (4, height, width)
    # every pixel belongs to exactly one patch: pooling the pixel mask gives the patch mask back
    assert torch.equal(grid.pool(pixels[:, None].float())[:, 0], masks.float())


def test_last_row_and_column_absorb_the_remainder():
    grid = PatchGrid(67, 45, 12)
    assert (grid.rows, grid.cols) == (5, 3)
    assert grid.row_sizes() == [12, 12, 12, 12, 19] and grid.col_sizes() == [12, 12, 21]
    x = torch.arange(67 * 45, dtype=torch.float32).view(1, 1, 67, 45)
    assert grid.pool(x)[0, 0, 4, 2] == pytest.approx(x[0, 0, 48:, 24:].mean().item())


def test_selective_masker_picks_exactly_the_planted_patches():
    difficulty = torch.rand(2, 4, 6) * 0.1
    planted = torch.zeros(2, 4, 6, dtype=torch.bool)
    planted[0, 1, 2:5] = planted[0, 3, 0] = True
    planted[1, 0, :4] = True
    difficulty[planted] += 1.0
    masks = SelectiveMasker(4 / 24)(difficulty)
    assert torch.equal(masks, planted)


def test_mixed_masks_keep_the_share_of_hardest_patches():
    difficulty = torch.arange(100.0).view(1, 10, 10)
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(mixed_masks(difficulty, 0.5, 1.0, gen), SelectiveMasker(0.5)(difficulty))
    half = mixed_masks(difficulty, 0.5, 0.5, gen).flatten()
    assert half.sum() == 50 and half[-25:].all()  # the 25 hardest, plus 25 random others
    assert easy_to_hard_share(0, 11, 0.5) == 0.0 and easy_to_hard_share(10, 11, 0.5) == 0.5


def test_model_failing_on_one_region_gets_that_region_selected():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 48, 72) * 2 - 1  # normalised
    region = (slice(12, 24), slice(36, 60))  # patches rows 1, cols 3..4 on the 12 px grid

    def reconstruct(masked: torch.Tensor, pixel_masks: torch.Tensor) -> torch.Tensor:
        out = images.clone()  # perfect everywhere ...
        out[..., region[0], region[1]] = 0.0  # ... except the planted region
        return out

    grid = PatchGrid(48, 72, 12)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    difficulty = patch_difficulty(reconstruct, images, grid, mean, std, num_masks=2)
    masks = SelectiveMasker(2 / grid.num_patches)(difficulty)
    expected = torch.zeros(2, 4, 6, dtype=torch.bool)
    expected[:, 1, 3:5] = True
    assert torch.equal(masks, expected)


def test_apply_mask_fills_masked_pixels_only():
    images = torch.ones(1, 3, 4, 4)
    pixel_masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    pixel_masks[0, :2] = True
    out = apply_mask(images, pixel_masks, torch.tensor([0.0, 0.5, 1.0]))
    assert out[0, 1, :2].eq(0.5).all() and out[0, :, 2:].eq(1.0).all()
