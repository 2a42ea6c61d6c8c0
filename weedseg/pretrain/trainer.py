"""`pretrain(cfg)`: the whole run (data, model, schedule, loop, checkpoints), resumable.

The loop is a sequence of phases (`schedule.plan_phases`): one for random/online masking, one
per partition for the paper schedule, each with a fresh Adam and warm-up + cosine LR. Before a
phase (paper) or every `online_refresh` steps (online), whole-image difficulty maps are computed
with the current weights and cached under `RUN/selection/`; they travel with the image through
crop and flip. Every random draw is a function of (seed, step, rank) or (seed, epoch, position),
so a killed run resumed from its last checkpoint ends with the same weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
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
from weedseg.distributed import (
    DistInfo,
    distributed,
    main_rank_log,
    prepare_model,
    resolve_device,
    shared_flag,
)
from weedseg.errors import WeedsegError
from weedseg.masking import PatchGrid, apply_mask
from weedseg.models import ModelSpec, build_model, spec_from_name
from weedseg.precision import resolve_train_format
from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.engine import Reconstructor, choose_masks, train_step
from weedseg.pretrain.schedule import (
    Phase,
    make_optimizer,
    phase_at,
    plan_phases,
    resize_phase,
    selected_share,
)
from weedseg.pretrain.selection import load_maps, save_maps, score_images
from weedseg.pretrain.sparse import SparseEncoder
from weedseg.pretrain.strip import reconstruction_strip
from weedseg.run_dir import RunDir
from weedseg.seeding import EpochSampler, SeededSamples, sample_seed, seed_everything


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
        config=asdict(cfg),
    )  # fmt: skip
    state = run.load_state(model) if resuming else None
    step = state.step if state else 0
    phases = plan_phases(cfg, len(paths), dist.world_size)
    if budget is not None and state is not None:  # the killed run's time and phase lengths
        budget.spent_before = float(state.extra.get("elapsed", 0.0))
        for index, steps in enumerate(state.extra.get("phase_steps", []) if state else []):
            phases[:] = resize_phase(phases, index, steps)
    log(
        f"pretraining {cfg.arch or spec} on {len(paths)} images: {cfg.masking} masking"
        f"{f' ({cfg.schedule} schedule)' if cfg.masking == 'selective' else ''}, "
        f"{len(phases)} phase(s), "
        + (f"{cfg.time:.0f} s" if budget else f"{phases[-1].end} steps")
        + f" of {cfg.batch} x {dist.world_size} crops on {device} in {fmt}"
        f"{f', resumed at step {step}' if state else ''}"
    )
    model = prepare_model(model, device, dist, fmt)
    plain = unwrap_model(model)
    sparse = SparseEncoder(plain) if cfg.sparse else None
    reconstructor = Reconstructor(model, sparse, device, fmt)
    scorer = Reconstructor(plain, sparse, device, fmt)  # no DDP sync while scoring
    mean_t, std_t = torch.tensor(mean, device=device), torch.tensor(std, device=device)
    grid = PatchGrid(cfg.size, cfg.size, cfg.patch)
    cache = _photo_cache(cfg)

    bar = run.progress(total=None if budget else phases[-1].end, initial=step, desc="pretrain")
    optimizer = scheduler = batches = maps = None
    scalars: dict[str, float] = {}
    save_seconds = 0.0
    while step < phases[-1].end:
        phase = phase_at(phases, step)
        local = step - phase.start
        if optimizer is None or local == 0:
            index = phase.index
            optimizer, scheduler = make_optimizer(model, cfg, lambda p=phases, i=index: p[i].steps)
            if state is not None and phase.start < state.step:  # resuming inside this phase
                optimizer.load_state_dict(state.optimizer)
                scheduler.load_state_dict(state.scheduler)
            state = None
            batches = None
        refresh = _refresh_step(cfg, phase, step)
        if refresh is not None and (maps is None or maps[1] != refresh):
            scored = _selection_maps(cfg, run, dist, paths, phase, refresh, scorer, mean_t, std_t)
            maps, batches = (scored, refresh), None
        if budget is not None:  # this phase ends when its share of the budget is spent
            deadline = cfg.time * (phase.index + 1) / len(phases)
            last = shared_flag(budget.is_last(save_seconds, deadline), dist)
            fitted = budget.fit(local + 1, phase.steps, save_seconds, deadline)
            phases[:] = resize_phase(phases, phase.index, local + 1 if last else fitted)
            phase = phases[phase.index]
            budget.begin_step()
        if batches is None:
            aux = maps[0] if refresh is not None else None
            batches = _batches(cfg, paths, phase, local, aux, dist, cache)
        images, aux_crops = next(batches)
        images = _normalise(images.to(device, non_blocking=True), mean_t, std_t)
        if aux_crops is not None:
            aux_crops = aux_crops.to(device)

        generator = torch.Generator().manual_seed(sample_seed(cfg.seed, 1, step, dist.rank))
        share = selected_share(cfg, step, phase)
        patch_masks, difficulty = choose_masks(
            cfg, grid, images, aux_crops, share, scorer, mean_t, std_t, generator
        )
        scalars, reconstruction = train_step(
            model, images, patch_masks, optimizer, scheduler, cfg, grid, std_t, reconstructor
        )
        step += 1
        if budget is not None:
            budget.end_step()
        bar.advance(images=cfg.batch * dist.world_size, loss=scalars["pretrain/loss"])
        total = phases[-1].end

        if step % cfg.log_every == 0 or step == total:
            extra = {"pretrain/share": share, "pretrain/images_per_s": bar.images_per_second}
            extra["pretrain/phase"] = phase.index
            extra["pretrain/images_seen"] = seen = step * cfg.batch * dist.world_size
            if budget is not None:
                extra["pretrain/time_s"] = budget.elapsed()
            run.log(step, scalars | extra, images_seen=seen)
        if cfg.image_every and (step % cfg.image_every == 0 or step == total):
            masked = apply_mask(images[:1], grid.to_pixels(patch_masks[:1]), torch.zeros(3))
            strip = reconstruction_strip(
                images[0],
                masked[0],
                reconstruction[0],
                patch_masks[0],
                None if difficulty is None else difficulty[0],
                grid,
                mean_t,
                std_t,
            )
            run.write_image(f"step_{step:06d}.png", strip)
        if step % cfg.checkpoint_every == 0 or step == total or step == phase.end:
            began = time.perf_counter()
            extra = None
            if budget is not None:
                extra = {"elapsed": budget.elapsed(), "phase_steps": [p.steps for p in phases]}
            run.save(
                step,
                model,
                optimizer,
                scheduler,
                spec=spec,
                task="reconstruction",
                meta=replace(meta, phase=phase.index),
                every=cfg.checkpoint_every,
                extra=extra,
            )
            save_seconds = max(save_seconds, 1.2 * (time.perf_counter() - began))
    bar.close()
    run.close()
    speed = bar.images_per_second
    log(f"done: {run.root} ({step} steps, {speed:.1f} images/s)")
    return PretrainResult(run.root, step, speed, scalars.get("pretrain/loss"))


def _photo_cache(cfg: PretrainConfig):
    """The decoded-photo cache the crops come from, or None (`--cache-gb 0`)."""
    if cfg.cache_gb <= 0:
        return None
    from weedseg.data.photo_cache import GIB, PhotoCache, cache_folder

    return PhotoCache(cache_folder(cfg.out, cfg.cache_dir), int(cfg.cache_gb * GIB))


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


def _normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """0..1 images [N, 3, H, W] -> (x - mean) / std."""
    return (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _refresh_step(cfg: PretrainConfig, phase: Phase, step: int) -> int | None:
    """The step whose weights scored the difficulty maps in use now (None: no cached maps)."""
    if cfg.masking != "selective":
        return None
    if cfg.partitioned:
        return phase.start if phase.index > 0 else None
    if cfg.online_refresh > 0:
        local = step - phase.start
        return phase.start + local // cfg.online_refresh * cfg.online_refresh
    return None


def _selection_maps(
    cfg: PretrainConfig,
    run: RunDir,
    dist: DistInfo,
    paths: list[Path],
    phase: Phase,
    refresh: int,
    scorer: Reconstructor,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> dict[int, np.ndarray]:
    """Difficulty maps of the phase's images scored with the weights at step `refresh`.

    Computed once by rank 0 and cached in `RUN/selection/step_<refresh>.npz` (a resumed run
    reads them back rather than rescoring with different weights); the paper schedule keeps one
    file per partition, the online schedule only the newest.
    """
    path = run.root / "selection" / f"step_{refresh:06d}.npz"
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


class PhaseMaps:
    """`UnlabeledImages` aux source: the cached map of a phase's i-th image (zeros if none)."""

    def __init__(self, maps: dict[int, np.ndarray], images: list[int]):
        self.maps, self.images = maps, images

    def __call__(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        found = self.maps.get(self.images[index])
        return np.zeros(shape, np.float32) if found is None else found.astype(np.float32)


def _batches(
    cfg: PretrainConfig,
    paths: list[Path],
    phase: Phase,
    local_step: int,
    maps: dict[int, np.ndarray] | None,
    dist: DistInfo,
    cache=None,
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
