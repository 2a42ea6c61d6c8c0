"""Whole-image difficulty maps, computed with a given model and cached in the run folder.

The paper schedule scores each partition once, with the model of the previous step; the online
schedule with `online_refresh` N rescoring the pool every N steps. Maps are per pixel at the
working size (long side `cfg.working_size`), so the selection can follow any crop and flip of
the image: the data pipeline crops the map with the image, then it is pooled on the crop's
patch grid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from weedseg.atomic import atomic_path
from weedseg.distributed import DistInfo
from weedseg.imageio import ImageReadError, read_image
from weedseg.masking import PatchGrid, pixel_difficulty
from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.engine import Reconstructor
from weedseg.pretrain.schedule import Phase
from weedseg.seeding import sample_seed


def working_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w), multiples of 32, with the long side `long_side` and the aspect ratio kept."""
    scale = long_side / max(height, width)
    return max(32, round(height * scale / 32) * 32), max(32, round(width * scale / 32) * 32)


@torch.no_grad()
def score_images(
    paths: Sequence[Path],
    indices: Sequence[int],
    scorer: Reconstructor,
    cfg: PretrainConfig,
    mean: torch.Tensor,
    std: torch.Tensor,
    seed: int,
) -> dict[int, np.ndarray]:
    """Per-pixel difficulty map (float16, working size) of each image `paths[i]`, i in indices.

    Each image is visited exactly once; unreadable images get no map (random masks for them).
    An image is scored under `cfg.score_masks` random masks of the run's own `cfg.mask_ratio`:
    a patch is hard when the model fails to fill it at the ratio it trains at (the official
    code scores and trains at 50%, so both ratios being equal is what it does).
    """
    device = next(scorer.model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    was_training = scorer.model.training
    scorer.model.eval()
    maps: dict[int, np.ndarray] = {}
    try:
        for index in indices:
            try:
                image = read_image(paths[index])
            except ImageReadError:
                continue
            h, w = working_shape(*image.shape[:2], cfg.working_size)
            resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(resized).permute(2, 0, 1)[None].float().div(255).to(device)
            x = (x - mean.to(x).view(1, -1, 1, 1)) / std.to(x).view(1, -1, 1, 1)
            grid = PatchGrid(h, w, cfg.patch)
            pixels = pixel_difficulty(
                scorer, x, grid, mean, std, cfg.score_masks, cfg.mask_ratio, generator
            )
            maps[index] = pixels[0].cpu().numpy().astype(np.float16)
    finally:
        scorer.model.train(was_training)
    return maps


def save_maps(path: Path, maps: dict[int, np.ndarray], info: dict) -> None:
    """Write maps + provenance (`info`: step, phase, weights) atomically as one .npz."""
    arrays = {f"map_{i}": m for i, m in maps.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, info=np.array(json.dumps(info)), **arrays)


def load_maps(path: Path) -> tuple[dict[int, np.ndarray], dict]:
    """What `save_maps` wrote."""
    with np.load(path) as data:
        info = json.loads(str(data["info"]))
        maps = {int(k[4:]): data[k] for k in data.files if k.startswith("map_")}
    return maps, info


def refresh_step(cfg: PretrainConfig, phase: Phase, step: int) -> int | None:
    """The step whose weights scored the difficulty maps in use now (None: no cached maps)."""
    if cfg.masking != "selective":
        return None
    if cfg.partitioned:
        return phase.start if phase.index > 0 else None
    if cfg.online_refresh > 0:
        local = step - phase.start
        return phase.start + local // cfg.online_refresh * cfg.online_refresh
    return None


def selection_maps(
    cfg: PretrainConfig,
    folder: Path,
    dist: DistInfo,
    paths: list[Path],
    phase: Phase,
    refresh: int,
    scorer: Reconstructor,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> dict[int, np.ndarray]:
    """Difficulty maps of the phase's images scored with the weights at step `refresh`.

    Computed once by rank 0 and cached in `folder/step_<refresh>.npz` (RUN/selection; a resumed run
    reads them back rather than rescoring with different weights); the paper schedule keeps one
    file per partition, the online schedule only the newest.
    """
    path = folder / f"step_{refresh:06d}.npz"
    if dist.is_main and not path.is_file():
        seed = sample_seed(cfg.seed, 2, refresh)
        maps = score_images(paths, phase.images, scorer, cfg, mean, std, seed)
        info = {"step": refresh, "phase": phase.index, "images": len(phase.images), "seed": seed}
        save_maps(path, maps, info)
        if not cfg.partitioned:  # online refreshes: only the newest is ever needed again
            for old in path.parent.glob("step_*.npz"):
                if old != path:
                    old.unlink()
    if dist.distributed:
        torch.distributed.barrier()
    return load_maps(path)[0]
