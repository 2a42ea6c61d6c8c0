"""One fine-tuning step and one validation pass, as plain functions of their inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.evaluate.evaluator import SplitResult, evaluate_split
from weedseg.precision import TrainFormat
from weedseg.tiling import TilingOptions


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warmup over `warmup` steps, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_step(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    device: torch.device,
    step: int,
    fmt: TrainFormat,
) -> float:
    """Forward, loss, backward and update on one batch; returns the loss.

    A non-finite loss stops the run instead of training on garbage.
    """
    images = batch["image"].to(device, non_blocking=True)  # [N, 3, S, S] in 0..1
    masks = batch["mask"].to(device, non_blocking=True)  # [N, S, S] int64, 255 = ignore
    x = fmt.batch((images - mean) / std)
    with fmt.autocast(device):
        logits = model(x)  # [N, K, S, S]
    loss = loss_fn(logits.float(), masks)  # in float32, whatever the autocast
    value = loss.item()
    if not math.isfinite(value):
        raise WeedsegError(f"loss is {value} at step {step}: lower --lr or check the masks")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return value


def validate(
    model: nn.Module,
    info: DatasetInfo,
    stems: Sequence[str],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    tiling: TilingOptions,
    scale: float,
    device: torch.device,
    keep_worst: int = 0,
) -> SplitResult:
    """Tiled full-image prediction over `stems`, as `weedseg evaluate`; the model stays training."""
    try:
        return evaluate_split(
            model, info, stems, mean=mean, std=std, tiling=tiling, scale=scale, device=device,
            keep_worst=keep_worst,
        )  # fmt: skip
    finally:
        model.train()
