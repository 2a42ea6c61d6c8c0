"""Budgets, LR cycles and the masking schedules' phases.

Cost of each schedule, in forward passes on top of training (one training step on B crops is
about 3 forward passes of B crops: forward + backward):
- random: none.
- paper: once per partition step, `score_masks` (5) forward passes per image of the partition
  at the working size (~1.25 x the crop side, so ~1.6x the pixels of a crop): for a pool of N
  images over a run of S steps of B crops that is 5 x 1.6 x N / (3 x S x B) of the training
  cost, i.e. small whenever the run sees each image many times (the paper: 1000 epochs/step).
- online, per batch (`online_refresh` 0): `score_masks` forward passes of every batch, i.e.
  about +score_masks/3 of the training cost (5 masks: ~2.7x wall time; 1 mask: ~1.3x).
- online, refreshed every R steps: the paper's scoring pass over the whole pool every R steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from weedseg.masking import easy_to_hard_share
from weedseg.pretrain.config import PretrainConfig

# a time-budgeted phase's length until its step time is measured (then refitted every step)
UNFITTED_STEPS = 10**6


@dataclass(frozen=True)
class Phase:
    """A stretch of training with one optimizer/LR cycle over a set of images."""

    index: int
    images: list[int]  # indices into the run's image list
    start: int  # global step at which the phase starts
    steps: int

    @property
    def end(self) -> int:
        return self.start + self.steps


def interleaved_partitions(count: int, parts: int) -> list[list[int]]:
    """Split image indices 0..count-1 into `parts` interleaved, disjoint, covering partitions."""
    parts = max(1, min(parts, count))
    return [list(range(p, count, parts)) for p in range(parts)]


def plan_phases(cfg: PretrainConfig, num_images: int, world_size: int = 1) -> list[Phase]:
    """The phases of a run: one for random/online, one per partition for the paper schedule.

    `--steps` is the total over all phases (split evenly); `--epochs` counts passes over each
    phase's images.
    """
    groups = (
        interleaved_partitions(num_images, cfg.partitions)
        if cfg.partitioned
        else [list(range(num_images))]
    )
    crops_per_step = cfg.batch * world_size
    if cfg.time > 0:  # each phase ends when its share of the time is spent (refitted as it runs)
        counts = [UNFITTED_STEPS] * len(groups)
    elif cfg.steps > 0:
        base, extra = divmod(cfg.steps, len(groups))
        counts = [base + (1 if i < extra else 0) for i in range(len(groups))]
    else:
        counts = [math.ceil(cfg.epochs * len(g) / crops_per_step) for g in groups]
    phases, start = [], 0
    for index, (group, count) in enumerate(zip(groups, counts, strict=True)):
        phases.append(Phase(index=index, images=group, start=start, steps=max(1, count)))
        start += max(1, count)
    return phases


def phase_at(phases: list[Phase], step: int) -> Phase:
    """The phase that global step `step` belongs to (the last one past the end)."""
    for phase in phases:
        if step < phase.end:
            return phase
    return phases[-1]


def warmup_cosine(steps: int | Callable[[], int], warmup: float, min_ratio: float):
    """LR multiplier per step: linear warm-up over `warmup` of the steps, cosine to `min_ratio`.

    `steps` may be a callable, read at every step (a phase refitted to a time budget).
    """
    length = steps if callable(steps) else lambda: steps

    def factor(step: int) -> float:
        total = length()
        warm = max(1, round(warmup * total)) if warmup > 0 else 0
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig, steps: int | Callable[[], int]):
    """A fresh Adam and its per-step warm-up + cosine schedule for one phase of `steps`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    factor = warmup_cosine(steps, cfg.warmup, cfg.min_lr_ratio)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def resize_phase(phases: list[Phase], index: int, steps: int) -> list[Phase]:
    """`phases` with phase `index` lasting `steps` and the later phases moved to follow it."""
    resized, start = [], 0
    for phase in phases:
        count = max(1, steps) if phase.index == index else phase.steps
        resized.append(replace(phase, start=start, steps=count))
        start += count
    return resized


def selected_share(cfg: PretrainConfig, step: int, phase: Phase) -> float:
    """Share of masked patches picked by difficulty at this step (0 = random masking)."""
    if cfg.masking == "random" or (cfg.partitioned and phase.index == 0):
        return 0.0  # the paper's first step trains with random masks
    if not cfg.ramp:
        return cfg.selected_share
    return easy_to_hard_share(step - phase.start, phase.steps, cfg.selected_share)
