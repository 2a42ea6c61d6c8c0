"""One pretraining step, as a plain function (read top to bottom, MAE `engine_pretrain` style)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weedseg.errors import WeedsegError
from weedseg.masking import (
    PatchGrid,
    RandomMasker,
    apply_mask,
    mixed_masks,
    patch_difficulty,
)
from weedseg.precision import TrainFormat
from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.losses import masked_loss, paper_loss
from weedseg.pretrain.sparse import SparseEncoder


class NonFiniteLoss(WeedsegError):
    """Training diverged: stop instead of training on garbage."""


@dataclass
class Reconstructor:
    """Runs the model on masked images, telling the SparK hooks (if any) what is visible."""

    model: nn.Module
    sparse: SparseEncoder | None = None
    device: torch.device = torch.device("cpu")
    fmt: TrainFormat = TrainFormat("fp32", "contiguous")

    def __call__(self, masked: torch.Tensor, pixel_masks: torch.Tensor) -> torch.Tensor:
        # masked: [N, 3, H, W] normalised, masked pixels = 0 (mean colour); pixel_masks: [N, H, W]
        if self.sparse is not None:
            self.sparse.set_visible(~pixel_masks)
        with self.fmt.autocast(self.device):
            reconstruction = self.model(self.fmt.batch(masked))
        return reconstruction.float()  # losses and difficulty in float32


def choose_masks(
    cfg: PretrainConfig,
    grid: PatchGrid,
    images: torch.Tensor,
    difficulty_pixels: torch.Tensor | None,
    share: float,
    scorer: Reconstructor,
    mean: torch.Tensor,
    std: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Patch masks [N, rows, cols] for a batch, and the patch difficulty used (None if random).

    The difficulty comes from the cached per-image maps cropped with the images
    (`difficulty_pixels` [N, 1, H, W]), or is computed now with the current weights (online),
    under random masks of the run's own `mask_ratio`, as in `selection.score_images`.
    """
    if share <= 0.0:
        return RandomMasker(cfg.mask_ratio)(grid, images.shape[0], generator, images.device), None
    if difficulty_pixels is not None:
        difficulty = grid.pool(difficulty_pixels.float())[:, 0]
    else:
        was_training = scorer.model.training
        scorer.model.eval()
        difficulty = patch_difficulty(
            scorer, images, grid, mean, std, cfg.score_masks, cfg.mask_ratio, generator
        )
        scorer.model.train(was_training)
    return mixed_masks(difficulty, cfg.mask_ratio, share, generator), difficulty


def train_step(
    model: nn.Module,
    images: torch.Tensor,
    patch_masks: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: PretrainConfig,
    grid: PatchGrid,
    std: torch.Tensor,
    reconstructor: Reconstructor,
) -> tuple[dict[str, float], torch.Tensor]:
    """Mask, reconstruct, compute the loss, update; return the losses and the reconstruction."""
    # images: [N, 3, H, W] normalised; patch_masks: [N, rows, cols] bool (True = masked)
    pixel_masks = grid.to_pixels(patch_masks)  # [N, H, W]
    masked = apply_mask(images, pixel_masks, torch.zeros(images.shape[1]))
    reconstruction = reconstructor(masked, pixel_masks)  # [N, 3, H, W]
    if cfg.loss == "paper":
        losses = paper_loss(reconstruction, images, std)
    else:
        losses = masked_loss(reconstruction, images, pixel_masks, grid, cfg.norm_target)
    loss = losses["loss"]
    if not torch.isfinite(loss):
        raise NonFiniteLoss(
            f"loss is {loss.item()} at lr {optimizer.param_groups[0]['lr']:.3g}; stopping "
            "(lower --lr or check the images)"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    scalars = {f"pretrain/{k}": float(v.detach()) for k, v in losses.items()}
    scalars["pretrain/lr"] = optimizer.param_groups[0]["lr"]
    return scalars, reconstruction.detach()
