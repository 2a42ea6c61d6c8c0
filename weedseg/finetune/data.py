"""Which photos a fine-tuning run trains and validates on, its training crops, class weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from weedseg.data.format import DatasetInfo
from weedseg.data.stats import class_pixel_counts
from weedseg.errors import WeedsegError
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.losses import inverse_sqrt_weights
from weedseg.seeding import EpochSampler, SeededSamples

HOLDOUT_SEED = 0  # the held-out validation share is the same for every run seed and arm
NO_VALIDATION = "every train image trains, no validation, checkpoints/best is the last step"


@dataclass
class DataPlan:
    """Which images train and which validate, and why (logged and saved in the meta)."""

    train: list[str]
    val: list[str]
    val_source: str


def plan_data(info: DatasetInfo, config: FinetuneConfig) -> DataPlan:
    """Train on the train split; validate on the val split, or on a held-out share of train, or
    (`final`, or `val_share` 0 without a val split) on nothing."""
    train = info.splits.get(config.train_split) or []
    if not train:
        raise WeedsegError(f"{info.root}: split {config.train_split!r} is missing or empty")
    if config.final:
        return DataPlan(list(train), [], f"none (--final): {NO_VALIDATION}")
    val = info.splits.get(config.val_split) or []
    if val:
        return DataPlan(list(train), list(val), f"split {config.val_split!r}")
    if config.val_share == 0:
        return DataPlan(
            list(train), [], f"none (no {config.val_split!r} split, --val-share 0): {NO_VALIDATION}"
        )
    if len(train) < 2:
        raise WeedsegError(f"{info.root}: no {config.val_split!r} split and one train image only")
    count = min(len(train) - 1, max(1, round(config.val_share * len(train))))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(train))
    held = {train[i] for i in order[:count]}
    source = (
        f"no {config.val_split!r} split: {count} of {len(train)} train images held out "
        f"({config.val_share:.0%}, fixed seed {HOLDOUT_SEED})"
    )
    return DataPlan([s for s in train if s not in held], [s for s in train if s in held], source)


def train_loader(
    info: DatasetInfo, stems: Sequence[str], config: FinetuneConfig, rank: int, world_size: int
) -> tuple[torch.utils.data.DataLoader, EpochSampler]:
    """Endless shuffled batches of augmented crops; the sampler can be repositioned to resume."""
    from weedseg.data.loaders import LabeledDataset
    from weedseg.data.photo_cache import GIB, PhotoCache, cache_folder

    cache = None
    if config.cache_gb > 0:
        folder = cache_folder(config.out, config.cache_dir)
        cache = PhotoCache(folder, int(config.cache_gb * GIB), scale=config.input_scale)
    dataset = LabeledDataset(
        info,
        list(stems),
        size=config.size,
        train=True,
        scale=config.crop_scale,
        seed=config.seed,
        input_scale=config.input_scale,
        cache=cache,
        rare_share=config.rare_share,
        color_jitter=config.color_jitter,
        crop_ratio=config.crop_ratio,
        crop_zoom=config.crop_zoom,
    )
    sampler = EpochSampler(len(dataset), seed=config.seed, rank=rank, world_size=world_size)
    loader = torch.utils.data.DataLoader(
        SeededSamples(dataset),
        batch_size=config.batch,
        sampler=sampler,
        num_workers=config.workers,
        persistent_workers=config.workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
    )
    return loader, sampler


def class_weights(
    info: DatasetInfo, plan: DataPlan, config: FinetuneConfig, log
) -> list[float] | None:
    """Cross-entropy class weights from the train masks (`auto`), or None."""
    if config.class_weights == "none":
        return None
    counts = class_pixel_counts(info, plan.train)
    weights = [round(float(w), 4) for w in inverse_sqrt_weights(counts)]
    total = max(int(counts.sum()), 1)
    shares = [f"{name} {n / total:.2%}" for name, n in zip(info.class_names, counts, strict=True)]
    log(f"class weights (1/sqrt pixel frequency): {weights}; pixel shares {', '.join(shares)}")
    return weights
