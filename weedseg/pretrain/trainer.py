"""`pretrain(cfg)`: the whole run (data, model, schedule, loop, checkpoints), resumable.

The loop (`loop.train_phases`) is a sequence of phases (`schedule.plan_phases`): one for
random/online masking, one per partition for the paper schedule, each with a fresh Adam and
warm-up + cosine LR. Before a phase (paper) or every `online_refresh` steps (online), whole-image
difficulty maps are computed with the current weights and cached under `RUN/selection/`
(`selection.selection_maps`); they travel with the image through crop and flip (`data`). Every
random draw is a function of (seed, step, rank) or (seed, epoch, position), so a killed run
resumed from its last checkpoint ends with the same weights. This module sets the run up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from weedseg.budget import TimeBudget
from weedseg.checkpoint import (
    CheckpointMeta,
    read_meta,
    read_sidecar,
    resolve_checkpoint,
    transfer_weights,
)
from weedseg.checkpoint import unwrap as unwrap_model
from weedseg.data.format import find_images
from weedseg.defaults import DEFAULT_ARCH
from weedseg.distributed import DistInfo, distributed, main_rank_log, prepare_model, resolve_device
from weedseg.errors import WeedsegError
from weedseg.masking import PatchGrid
from weedseg.models import ModelSpec, build_model, spec_from_name
from weedseg.precision import resolve_train_format
from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.engine import Reconstructor
from weedseg.pretrain.loop import Session, train_phases
from weedseg.pretrain.schedule import plan_phases, resize_phase
from weedseg.pretrain.sparse import SparseEncoder
from weedseg.run_dir import RunDir
from weedseg.seeding import seed_everything


@dataclass
class PretrainResult:
    run_dir: Path
    steps: int
    images_per_second: float
    final_loss: float | None


def pretrain(cfg: PretrainConfig, log: Callable[[str], None] = print) -> PretrainResult:
    """Run (or resume) a pretraining run into `cfg.out`; return where and how fast."""
    with distributed(cfg.device) as dist:
        return _pretrain(cfg, dist, main_rank_log(log, dist))


def _pretrain(cfg: PretrainConfig, dist: DistInfo, log: Callable[[str], None]) -> PretrainResult:
    session = _setup(cfg, dist, log)
    step, loss, speed = train_phases(session)
    session.run.close()
    log(f"done: {session.run.root} ({step} steps, {speed:.1f} images/s)")
    return PretrainResult(session.run.root, step, speed, loss)


def _setup(cfg: PretrainConfig, dist: DistInfo, log: Callable[[str], None]) -> Session:
    """The run folder, model, normalisation, phases and resume state the loop starts from."""
    budget = TimeBudget(cfg.time) if cfg.time else None  # counts from here
    device = resolve_device(cfg.device, dist)
    paths = find_images(cfg.images)
    if not paths:
        raise WeedsegError(f"{cfg.images}: no images found")
    run = RunDir(cfg.out, resume=cfg.resume, is_main=dist.is_main)
    run.check_start()
    resuming = cfg.resume and (run.checkpoints / "last.json").is_file()
    if cfg.resume and not resuming:
        log(f"{run.root}: killed before its first checkpoint, starting again from step 0")
    if cfg.resume:  # the precision and memory format the run chose at its start
        cfg.train_format = cfg.train_format or run.saved_config().get("train_format")
    seed_everything(cfg.seed)  # same initial weights on every rank
    spec = _model_spec(cfg, run, resuming)
    model = build_model(spec, out_channels=3)
    input_shape = (cfg.batch, 3, cfg.size, cfg.size)
    fmt = resolve_train_format(cfg, model.to(device), device, dist, input_shape, log)
    run.start(cfg)
    mean, std = _normalisation(cfg, run, model, paths, log, resuming)
    meta = CheckpointMeta(
        mean=mean, std=std, seed=cfg.seed, data=str(cfg.images), images=len(paths),
        input_scale=cfg.input_scale, config=asdict(cfg),
    )  # fmt: skip
    state = run.load_state(model) if resuming else None
    phases = plan_phases(cfg, len(paths), dist.world_size)
    if budget is not None and state is not None:  # the killed run's time and phase lengths
        budget.spent_before = float(state.extra.get("elapsed", 0.0))
        for index, steps in enumerate(state.extra.get("phase_steps", [])):
            phases[:] = resize_phase(phases, index, steps)
    log(
        f"pretraining {cfg.arch or spec} on {len(paths)} images: {cfg.masking} masking"
        f"{f' ({cfg.schedule} schedule)' if cfg.masking == 'selective' else ''}, "
        f"{len(phases)} phase(s), "
        + (f"{cfg.time:.0f} s" if budget else f"{phases[-1].end} steps")
        + f" of {cfg.batch} x {dist.world_size} crops on {device} in {fmt}"
        f"{f', resumed at step {state.step}' if state else ''}"
    )
    model = prepare_model(model, device, dist, fmt)
    plain = unwrap_model(model)
    sparse = SparseEncoder(plain) if cfg.sparse else None
    return Session(
        cfg=cfg, dist=dist, device=device, run=run, paths=paths, spec=spec, meta=meta,
        model=model,
        reconstructor=Reconstructor(model, sparse, device, fmt),
        scorer=Reconstructor(plain, sparse, device, fmt),  # no DDP sync while scoring
        mean=torch.tensor(mean, device=device), std=torch.tensor(std, device=device),
        grid=PatchGrid(cfg.size, cfg.size, cfg.patch), cache=_photo_cache(cfg),
        phases=phases, budget=budget, resume=state,
    )  # fmt: skip


def _photo_cache(cfg: PretrainConfig):
    """The decoded-photo cache the crops come from, or None (`--cache-gb 0`)."""
    if cfg.cache_gb <= 0:
        return None
    from weedseg.data.photo_cache import GIB, PhotoCache, cache_folder

    folder = cache_folder(cfg.out, cfg.cache_dir)
    return PhotoCache(folder, int(cfg.cache_gb * GIB), scale=cfg.input_scale)


def _model_spec(cfg: PretrainConfig, run: RunDir, resuming: bool) -> ModelSpec:
    """The run's own (resume), the --init checkpoint's unless --arch is given, or --arch."""
    if resuming:
        return ModelSpec.from_dict(read_sidecar(run.checkpoints / "last")["spec"])
    if cfg.init and not cfg.arch:
        return ModelSpec.from_dict(read_sidecar(resolve_checkpoint(cfg.init))["spec"])
    return spec_from_name(cfg.arch or DEFAULT_ARCH)


def _normalisation(
    cfg: PretrainConfig,
    run: RunDir,
    model: torch.nn.Module,
    paths: list[Path],
    log: Callable[[str], None],
    resuming: bool,
) -> tuple[list[float], list[float]]:
    """Dataset mean/std (0..1 RGB): from the resumed run, the --init checkpoint, or the images.

    `--init` also loads the checkpoint's weights (continued pretraining keeps its normalisation).
    """
    if resuming:
        meta = read_meta(run.checkpoints / "last")
        return list(meta.mean), list(meta.std)
    if cfg.init:
        source = resolve_checkpoint(cfg.init)
        report = transfer_weights(model, source)
        log(f"--init {source}: {report.summary()}")
        if not report.carried:
            raise WeedsegError(f"--init {source}: no tensor matches {cfg.arch or 'its arch'}")
        meta = read_meta(source)
        if meta.mean and meta.std:
            return list(meta.mean), list(meta.std)
    from weedseg.data.loaders import image_mean_std

    mean, std = image_mean_std(paths)
    mean, std = [float(m) for m in mean], [float(s) for s in std]
    log(f"normalisation from {len(paths)} images: mean {np.round(mean, 4)}, std {np.round(std, 4)}")
    return mean, std
