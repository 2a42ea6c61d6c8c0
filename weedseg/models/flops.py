"""Forward cost of a model in GFLOP (1 multiply-add = 2 FLOP), as issue tables report it."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_gflops(model: nn.Module, size: int | tuple[int, int] = 512, channels: int = 3) -> float:
    """GFLOP of one forward pass on a single [1, channels, H, W] image."""
    height, width = (size, size) if isinstance(size, int) else size
    param = next(model.parameters())
    x = torch.zeros(1, channels, height, width, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9
