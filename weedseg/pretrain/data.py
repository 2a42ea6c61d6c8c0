"""Pretraining data: endless crops of a phase's photos, with their difficulty maps alongside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from weedseg.distributed import DistInfo
from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.schedule import Phase
from weedseg.seeding import EpochSampler, SeededSamples, sample_seed

if TYPE_CHECKING:
    from weedseg.data.photo_cache import PhotoCache


class PhaseMaps:
    """`UnlabeledImages` aux source: the cached map of a phase's i-th image (zeros if none)."""

    def __init__(self, maps: dict[int, np.ndarray], images: list[int]):
        self.maps, self.images = maps, images

    def __call__(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        found = self.maps.get(self.images[index])
        return np.zeros(shape, np.float32) if found is None else found.astype(np.float32)


def phase_batches(
    cfg: PretrainConfig,
    paths: list[Path],
    phase: Phase,
    local_step: int,
    maps: dict[int, np.ndarray] | None,
    dist: DistInfo,
    cache: PhotoCache | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Endless (images [B, 3, S, S] 0..1, difficulty crops [B, 1, S, S] | None) for a phase.

    The difficulty maps go through the same crop and flip as their images. The data order
    continues exactly where `local_step` left it.
    """
    from weedseg.data.loaders import UnlabeledImages

    dataset = UnlabeledImages(
        [paths[i] for i in phase.images],
        size=cfg.size,
        scale=cfg.crop_scale,
        color_jitter=cfg.color_jitter,
        aux=None if maps is None else PhaseMaps(maps, phase.images),
        seed=cfg.seed,
        cache=cache,
        input_scale=cfg.input_scale,
    )
    sampler = EpochSampler(
        len(dataset),
        seed=sample_seed(cfg.seed, 3, phase.index),
        rank=dist.rank,
        world_size=dist.world_size,
    )
    sampler.set_position(*divmod(local_step * cfg.batch, sampler.epoch_size))
    loader = torch.utils.data.DataLoader(
        SeededSamples(dataset),
        batch_size=cfg.batch,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(cfg.seed),
        drop_last=True,
    )
    for batch in loader:
        aux = batch.get("aux")
        yield batch["image"], None if aux is None else aux[:, None].float()
