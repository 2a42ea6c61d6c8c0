"""Reconstruction losses: the paper's whole-image L1 + (1 - MS-SSIM), and masked-patch L1."""

from __future__ import annotations

import pytest
import torch

from weedseg.masking import PatchGrid
from weedseg.pretrain.losses import (
    MS_SSIM_BETAS,
    masked_loss,
    ms_ssim_betas,
    normalise_patches,
    paper_loss,
)

STD = torch.tensor([0.2, 0.2, 0.2])  # the dataset std: a normalised channel spans 1 / 0.2


def test_paper_loss_is_zero_for_a_perfect_reconstruction_and_grows_with_the_error():
    torch.manual_seed(0)
    target = torch.randn(2, 3, 64, 64)
    perfect = paper_loss(target.clone(), target, STD)
    assert perfect["l1"] == 0 and perfect["ms_ssim"] == pytest.approx(1.0, abs=1e-5)
    assert perfect["loss"] == pytest.approx(0.0, abs=1e-5)
    small = paper_loss(target + 0.1 * torch.randn_like(target), target, STD)
    large = paper_loss(target + 1.0 * torch.randn_like(target), target, STD)
    assert 0 < small["loss"] < large["loss"]
    assert float(large["loss"]) == pytest.approx(float(large["l1"] + 1 - large["ms_ssim"]))


def test_paper_loss_penalises_lost_structure_that_l1_barely_sees():
    """A blurred reconstruction (structure gone, mean kept) scores worse on MS-SSIM than one off
    by a constant of the same L1: the SSIM term is what rewards sharp edges."""
    target = torch.zeros(1, 3, 64, 64)
    target[..., ::4, :] = 1.0  # stripes
    blurred = torch.full_like(target, target.mean().item())
    shift = (blurred - target).abs().mean().item()
    shifted = target + shift
    blur, offset = paper_loss(blurred, target, STD), paper_loss(shifted, target, STD)
    assert float(blur["l1"]) == pytest.approx(float(offset["l1"]), rel=1e-4)
    assert blur["ms_ssim"] < offset["ms_ssim"] - 0.3


def test_paper_loss_gives_gradients_to_the_whole_image():
    target = torch.randn(1, 3, 64, 64)
    reconstruction = torch.zeros_like(target, requires_grad=True)
    paper_loss(reconstruction, target, STD)["loss"].backward()
    assert (reconstruction.grad.abs().sum(dim=1) > 0).float().mean() > 0.99


@pytest.mark.parametrize(("side", "scales"), [(256, 5), (176, 5), (160, 4), (96, 3), (24, 2)])
def test_ms_ssim_uses_fewer_scales_on_small_crops_with_weights_summing_to_one(side, scales):
    betas = ms_ssim_betas(side, side + 10)
    assert len(betas) == scales and sum(betas) == pytest.approx(1.0)
    assert betas == pytest.approx([b / sum(MS_SSIM_BETAS[:scales]) for b in MS_SSIM_BETAS[:scales]])
    paper_loss(torch.rand(1, 3, side, side + 10), torch.rand(1, 3, side, side + 10), STD)


def test_ms_ssim_refuses_an_image_smaller_than_its_window():
    with pytest.raises(ValueError, match="too small"):
        ms_ssim_betas(8, 64)


def test_masked_loss_counts_masked_pixels_only():
    target = torch.zeros(1, 3, 8, 8)
    reconstruction = torch.ones(1, 3, 8, 8)
    reconstruction[..., :4, :] = 3.0  # the top half is masked and off by 3, the rest by 1
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[:, :4, :] = True
    grid = PatchGrid(8, 8, 4)
    assert masked_loss(reconstruction, target, masks, grid)["loss"] == pytest.approx(3.0)
    masks[:] = False
    assert masked_loss(reconstruction, target, masks, grid)["loss"] == 0  # nothing masked


def test_masked_loss_against_normalised_patches_ignores_each_patch_s_brightness():
    torch.manual_seed(0)
    grid = PatchGrid(8, 8, 4)
    pattern = torch.randn(1, 3, 4, 4).repeat(1, 1, 2, 2)  # the same texture in every patch
    brightness = torch.tensor([0.0, 5.0]).repeat_interleave(4)[None, None, :, None]
    target = pattern + brightness  # top patches dark, bottom bright
    masks = torch.ones(1, 8, 8, dtype=torch.bool)
    normalised = normalise_patches(pattern, grid)
    loss = masked_loss(normalised, target, masks, grid, normalise_target=True)["loss"]
    assert loss == pytest.approx(0.0, abs=1e-4)
