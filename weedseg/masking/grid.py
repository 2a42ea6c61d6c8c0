"""The patch grid over an image of any size: the last row and column absorb the remainder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PatchGrid:
    """`rows x cols` patches of `patch` pixels over an `height x width` image."""

    height: int
    width: int
    patch: int

    @property
    def rows(self) -> int:
        return max(1, self.height // self.patch)

    @property
    def cols(self) -> int:
        return max(1, self.width // self.patch)

    @property
    def num_patches(self) -> int:
        return self.rows * self.cols

    def row_sizes(self) -> list[int]:
        return _sizes(self.height, self.rows, self.patch)

    def col_sizes(self) -> list[int]:
        return _sizes(self.width, self.cols, self.patch)

    def to_pixels(self, patches: torch.Tensor) -> torch.Tensor:
        """Per-patch values [..., rows, cols] -> per-pixel values [..., H, W]."""
        rows = torch.tensor(self.row_sizes(), device=patches.device)
        cols = torch.tensor(self.col_sizes(), device=patches.device)
        return patches.repeat_interleave(rows, dim=-2).repeat_interleave(cols, dim=-1)

    def pool(self, pixels: torch.Tensor) -> torch.Tensor:
        """Per-pixel values [N, C, H, W] -> per-patch means [N, C, rows, cols]."""
        n, c = pixels.shape[:2]
        r, q = self.patch * (self.rows - 1), self.patch * (self.cols - 1)
        # the regular part by pooling, the wider last row/col by explicit means
        out = pixels.new_empty(n, c, self.rows, self.cols)
        if self.rows > 1 and self.cols > 1:
            out[..., :-1, :-1] = F.avg_pool2d(pixels[..., :r, :q], self.patch)
        if self.rows > 1:
            last_col = pixels[..., :r, q:].unflatten(-2, (self.rows - 1, self.patch))
            out[..., :-1, -1] = last_col.mean(dim=(-1, -2))
        if self.cols > 1:
            last_row = pixels[..., r:, :q].unflatten(-1, (self.cols - 1, self.patch))
            out[..., -1, :-1] = last_row.mean(dim=(-1, -3))
        out[..., -1, -1] = pixels[..., r:, q:].mean(dim=(-1, -2))
        return out


def _sizes(length: int, count: int, patch: int) -> list[int]:
    return [patch] * (count - 1) + [length - patch * (count - 1)]
