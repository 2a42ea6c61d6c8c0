"""SparK-style masked convolution for a dense CNN encoder, by forward hooks (no new modules).

While visibility is set, every encoder convolution's output is re-zeroed at masked positions and
every BatchNorm normalises with (and updates its running statistics from) visible positions only,
so the mean-filled holes neither leak through stacked convolutions nor skew BN statistics.
(SparK, Tian et al. 2023, `pretrain/encoder.py`.) The decoder stays dense and receives zeros at
masked positions of the skip features; it learns to fill them. The hooks change no weight name,
so the pretrained weights transfer to a plain model.

    sparse = SparseEncoder(model)
    sparse.set_visible(~pixel_masks)    # [N, H, W] bool, True = visible
    y = model(masked_images)
    sparse.set_visible(None)            # back to a plain dense model
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SparseEncoder:
    """Masked-convolution hooks on `model.encoder` (an smp model, possibly DDP-wrapped)."""

    def __init__(self, model: nn.Module):
        from weedseg.checkpoint import unwrap

        self.visible: torch.Tensor | None = None  # [N, 1, H, W] float, 1 = visible
        self._cache: dict[tuple[int, int], torch.Tensor] = {}
        self._momentum: dict[nn.Module, float | None] = {}
        self.handles = []
        for module in unwrap(model).encoder.modules():
            if isinstance(module, nn.Conv2d):
                self.handles.append(module.register_forward_hook(self._rezero))
            elif isinstance(module, nn.BatchNorm2d):
                self.handles.append(module.register_forward_pre_hook(self._freeze_stats))
                self.handles.append(module.register_forward_hook(self._visible_batch_norm))

    def set_visible(self, visible: torch.Tensor | None) -> None:
        """visible [N, H, W] bool (True = visible pixel), or None to run dense."""
        self.visible = None if visible is None else visible[:, None].float()
        self._cache.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def visible_at(self, height: int, width: int) -> torch.Tensor:
        """Visibility [N, 1, h, w] at a feature resolution: a cell is visible if mostly visible."""
        key = (height, width)
        if key not in self._cache:
            pooled = F.adaptive_avg_pool2d(self.visible, key)
            self._cache[key] = (pooled > 0.5).float()
        return self._cache[key]

    def _active(self, out: torch.Tensor) -> bool:
        return self.visible is not None and out.shape[-2] * out.shape[-1] > 1

    def _rezero(self, module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if not self._active(out):
            return None
        return out * self.visible_at(*out.shape[-2:]).to(out.dtype)

    def _freeze_stats(self, module: nn.BatchNorm2d, args: tuple) -> None:
        # the dense forward must not update the running stats: ours come from visible pixels
        if self._active(args[0]) and module.training and module.track_running_stats:
            self._momentum[module] = module.momentum
            module.momentum = 0.0

    def _visible_batch_norm(
        self, module: nn.BatchNorm2d, args: tuple, out: torch.Tensor
    ) -> torch.Tensor | None:
        if not self._active(args[0]):
            return None
        x = args[0].float()  # x: [N, C, h, w], statistics in float32 as BN does under autocast
        m = self.visible_at(*x.shape[-2:])  # m: [N, 1, h, w]
        if module.training or not module.track_running_stats:
            count = m.sum().clamp_min(2.0)
            mean = (x * m).sum(dim=(0, 2, 3)) / count
            var = (((x - mean[:, None, None]) * m) ** 2).sum(dim=(0, 2, 3)) / count
            if module.training and module.track_running_stats:
                momentum = self._momentum.pop(module)
                module.momentum = momentum
                if momentum is None:  # cumulative average
                    momentum = 1.0 / float(module.num_batches_tracked)
                with torch.no_grad():
                    unbiased = var * count / (count - 1)
                    module.running_mean.lerp_(mean.detach().to(module.running_mean), momentum)
                    module.running_var.lerp_(unbiased.detach().to(module.running_var), momentum)
        else:
            mean, var = module.running_mean.float(), module.running_var.float()
        y = (x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + module.eps)
        if module.affine:
            y = y * module.weight[:, None, None] + module.bias[:, None, None]
        # timm's BatchNormAct2d fuses dropout + activation after the normalisation
        if hasattr(module, "act"):
            y = module.act(module.drop(y))
        return y * m
