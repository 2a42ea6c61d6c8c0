"""Reconstruction losses: the paper's whole-image L1 + (1 - MS-SSIM), or masked-patch L1.

Both compare tensors normalised with the dataset mean/std, as the paper does.
"""

from __future__ import annotations

import torch

from weedseg.masking import PatchGrid

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_KERNEL = 11


def ms_ssim_betas(height: int, width: int) -> tuple[float, ...]:
    """The standard 5 MS-SSIM scales, fewer (renormalised) when the image is too small for 5.

    torchmetrics needs side // (scales - 1)^2 > kernel - 1 and side >= 2^scales.
    """
    side = min(height, width)
    for scales in range(len(MS_SSIM_BETAS), 0, -1):
        if side // max(1, scales - 1) ** 2 > MS_SSIM_KERNEL - 1 and side >= 2**scales:
            betas = MS_SSIM_BETAS[:scales]
            return tuple(b / sum(betas) for b in betas)
    raise ValueError(f"image {height}x{width} too small for MS-SSIM")


def paper_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, std: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Whole-image L1 + (1 - MS-SSIM), equal weights; inputs [N, 3, H, W] normalised."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    reconstruction, target = reconstruction.float(), target.float()
    l1 = (reconstruction - target).abs().mean()
    ms_ssim = multiscale_structural_similarity_index_measure(
        reconstruction,
        target,
        data_range=float(1.0 / std.min()),  # the span of a normalised channel
        betas=ms_ssim_betas(*target.shape[-2:]),
        kernel_size=MS_SSIM_KERNEL,
        normalize="relu",
    )
    return {"loss": l1 + (1.0 - ms_ssim), "l1": l1, "ms_ssim": ms_ssim}


def normalise_patches(target: torch.Tensor, grid: PatchGrid, eps: float = 1e-6) -> torch.Tensor:
    """Each patch of target [N, C, H, W] scaled to zero mean, unit variance (MAE norm_pix)."""
    mean = grid.to_pixels(grid.pool(target))
    var = grid.to_pixels(grid.pool(target * target)) - mean * mean
    return (target - mean) / (var.clamp_min(0) + eps).sqrt()


def masked_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    pixel_masks: torch.Tensor,
    grid: PatchGrid,
    normalise_target: bool = False,
) -> dict[str, torch.Tensor]:
    """L1 over masked pixels only (SimMIM-style); optionally against per-patch normalised targets.

    reconstruction, target: [N, 3, H, W]; pixel_masks: [N, H, W] bool (True = masked).
    """
    reconstruction, target = reconstruction.float(), target.float()
    if normalise_target:
        target = normalise_patches(target, grid)
    weight = pixel_masks[:, None].float()
    error = (reconstruction - target).abs() * weight
    l1 = error.sum() / (weight.sum() * target.shape[1]).clamp_min(1.0)
    return {"loss": l1, "l1": l1}
