"""The pretraining loop: steps through the phases, one masked batch at a time.

Each step: enter the step's phase (a fresh Adam and LR cycle at its start, difficulty maps scored
when the schedule says, the phase refitted to a `--time` budget), draw a batch and its masks,
reconstruct and update (`engine.train_step`), then log, draw a strip and save on their own
cadences. Every random draw is a function of (seed, step, rank) or (seed, epoch, position).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from weedseg.budget import TimeBudget
from weedseg.checkpoint import CheckpointMeta
from weedseg.distributed import DistInfo, shared_flag
from weedseg.masking import PatchGrid, apply_mask
from weedseg.models import ModelSpec
from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.data import phase_batches
from weedseg.pretrain.engine import Reconstructor, choose_masks, train_step
from weedseg.pretrain.schedule import Phase, make_optimizer, phase_at, resize_phase, selected_share
from weedseg.pretrain.selection import refresh_step, selection_maps
from weedseg.pretrain.strip import reconstruction_strip
from weedseg.progress import Progress
from weedseg.run_dir import RunDir, TrainState
from weedseg.seeding import sample_seed

if TYPE_CHECKING:
    from weedseg.data.photo_cache import PhotoCache


@dataclass
class Session:
    """Everything the loop needs, set up once by `trainer.pretrain`."""

    cfg: PretrainConfig
    dist: DistInfo
    device: torch.device
    run: RunDir
    paths: list[Path]
    spec: ModelSpec
    meta: CheckpointMeta  # saved with every checkpoint (with the phase)
    model: nn.Module  # DDP-wrapped when distributed
    reconstructor: Reconstructor  # trains `model`
    scorer: Reconstructor  # scores difficulty with the plain model
    mean: torch.Tensor  # [3] dataset normalisation
    std: torch.Tensor  # [3]
    grid: PatchGrid  # the mask patches of a training crop
    cache: PhotoCache | None  # decoded photos (--cache-gb)
    phases: list[Phase]  # resized in place under --time (the LR schedules read it)
    budget: TimeBudget | None
    resume: TrainState | None  # the optimizer and scheduler a resumed run continues


@dataclass
class LoopState:
    """What one step hands the next: the phase's optimizer, data and difficulty maps."""

    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]] | None = None
    maps: tuple[dict[int, np.ndarray], int] | None = None  # (maps, the step that scored them)
    save_seconds: float = 0.0  # the slowest checkpoint save so far, with a margin (--time)


@dataclass
class MaskedBatch:
    """A training batch and the masks chosen for it."""

    images: torch.Tensor  # [N, 3, S, S] normalised
    patch_masks: torch.Tensor  # [N, rows, cols] bool, True = masked
    difficulty: torch.Tensor | None  # [N, rows, cols] the difficulty that chose them (or None)
    share: float  # the share of masked patches chosen by difficulty


def train_phases(s: Session) -> tuple[int, float | None, float]:
    """Train from the resumed step to the end of the last phase; (steps, last loss, images/s)."""
    step = s.resume.step if s.resume else 0
    total = None if s.budget else s.phases[-1].end
    bar = s.run.progress(total=total, initial=step, desc="pretrain")
    loop = LoopState()
    scalars: dict[str, float] = {}
    while step < s.phases[-1].end:
        phase = _enter_step(s, loop, step)
        batch = _masked_batch(s, loop, phase, step)
        scalars, reconstruction = train_step(
            s.model, batch.images, batch.patch_masks, loop.optimizer, loop.scheduler, s.cfg,
            s.grid, s.std, s.reconstructor,
        )  # fmt: skip
        step += 1
        if s.budget is not None:
            s.budget.end_step()
        bar.advance(images=s.cfg.batch * s.dist.world_size, loss=scalars["pretrain/loss"])
        last = step == s.phases[-1].end
        if step % s.cfg.log_every == 0 or last:
            _log(s, step, phase, scalars, batch.share, bar)
        if s.cfg.image_every and (step % s.cfg.image_every == 0 or last):
            _write_strip(s, step, batch, reconstruction)
        if step % s.cfg.checkpoint_every == 0 or last or step == phase.end:
            _save(s, loop, step, phase)
    bar.close()
    return step, scalars.get("pretrain/loss"), bar.images_per_second


def _enter_step(s: Session, loop: LoopState, step: int) -> Phase:
    """The phase of `step`, with its optimizer, difficulty maps, time budget and data ready."""
    phase = phase_at(s.phases, step)
    local = step - phase.start
    if loop.optimizer is None or local == 0:  # a fresh Adam and LR cycle per phase

        def phase_steps(phases: list[Phase] = s.phases, index: int = phase.index) -> int:
            return phases[index].steps  # read at each LR step: refitted under --time

        loop.optimizer, loop.scheduler = make_optimizer(s.model, s.cfg, phase_steps)
        if s.resume is not None and phase.start < s.resume.step:  # resuming inside this phase
            loop.optimizer.load_state_dict(s.resume.optimizer)
            loop.scheduler.load_state_dict(s.resume.scheduler)
        s.resume, loop.batches = None, None
    refresh = refresh_step(s.cfg, phase, step)
    if refresh is not None and (loop.maps is None or loop.maps[1] != refresh):
        folder = s.run.root / "selection"
        scored = selection_maps(
            s.cfg, folder, s.dist, s.paths, phase, refresh, s.scorer, s.mean, s.std
        )
        loop.maps, loop.batches = (scored, refresh), None
    if s.budget is not None:
        phase = _fit_phase(s, phase, local, loop.save_seconds)
    if loop.batches is None:
        maps = loop.maps[0] if refresh is not None else None
        loop.batches = phase_batches(s.cfg, s.paths, phase, local, maps, s.dist, s.cache)
    return phase


def _fit_phase(s: Session, phase: Phase, local: int, save_seconds: float) -> Phase:
    """--time: the phase ends when its share of the budget is spent; its length (and with it
    its LR schedule) is refitted to the measured step times. Starts timing the step."""
    deadline = s.cfg.time * (phase.index + 1) / len(s.phases)
    last = shared_flag(s.budget.is_last(save_seconds, deadline), s.dist)
    fitted = s.budget.fit(local + 1, phase.steps, save_seconds, deadline)
    s.phases[:] = resize_phase(s.phases, phase.index, local + 1 if last else fitted)
    phase = s.phases[phase.index]
    s.budget.begin_step()
    return phase


def _masked_batch(s: Session, loop: LoopState, phase: Phase, step: int) -> MaskedBatch:
    """The next batch on the device, normalised, with its masks (random, or by difficulty)."""
    images, aux_crops = next(loop.batches)  # [N, 3, S, S] 0..1, [N, 1, S, S] difficulty | None
    images = normalise(images.to(s.device, non_blocking=True), s.mean, s.std)
    if aux_crops is not None:
        aux_crops = aux_crops.to(s.device)
    generator = torch.Generator().manual_seed(sample_seed(s.cfg.seed, 1, step, s.dist.rank))
    share = selected_share(s.cfg, step, phase)
    patch_masks, difficulty = choose_masks(
        s.cfg, s.grid, images, aux_crops, share, s.scorer, s.mean, s.std, generator
    )
    return MaskedBatch(images, patch_masks, difficulty, share)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """0..1 images [N, 3, H, W] -> (x - mean) / std."""
    return (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _log(
    s: Session, step: int, phase: Phase, scalars: dict[str, float], share: float, bar: Progress
) -> None:
    """The step's losses and LR, the share chosen by difficulty, speed and images seen."""
    seen = step * s.cfg.batch * s.dist.world_size
    extra = {"pretrain/share": share, "pretrain/images_per_s": bar.images_per_second}
    extra |= {"pretrain/phase": phase.index, "pretrain/images_seen": seen}
    if s.budget is not None:
        extra["pretrain/time_s"] = s.budget.elapsed()
    s.run.log(step, scalars | extra, images_seen=seen)


def _write_strip(s: Session, step: int, batch: MaskedBatch, reconstruction: torch.Tensor) -> None:
    """images/step_N.png: the first crop, masked, reconstructed (and its difficulty)."""
    masks = batch.patch_masks[:1]
    masked = apply_mask(batch.images[:1], s.grid.to_pixels(masks), torch.zeros(3))
    difficulty = None if batch.difficulty is None else batch.difficulty[0]
    strip = reconstruction_strip(
        batch.images[0], masked[0], reconstruction[0], masks[0], difficulty, s.grid, s.mean, s.std
    )
    s.run.write_image(f"step_{step:06d}.png", strip)


def _save(s: Session, loop: LoopState, step: int, phase: Phase) -> None:
    """checkpoints/last and the resume state (with the time spent and phase lengths under
    --time); times the save, so the budget keeps room for the last one."""
    began = time.perf_counter()
    extra = None
    if s.budget is not None:
        extra = {"elapsed": s.budget.elapsed(), "phase_steps": [p.steps for p in s.phases]}
    s.run.save(
        step, s.model, loop.optimizer, loop.scheduler, spec=s.spec, task="reconstruction",
        meta=replace(s.meta, phase=phase.index), every=s.cfg.checkpoint_every, extra=extra,
    )  # fmt: skip
    loop.save_seconds = max(loop.save_seconds, 1.2 * (time.perf_counter() - began))
