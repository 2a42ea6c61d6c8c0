"""`weedseg finetune`: train a segmenter from a pretrained (or random) encoder, keep the best.

    result = run_finetune(FinetuneConfig(data="data/cwfid", out="runs/ft", init="runs/pre"))
    result.best_miou, result.best_checkpoint      # checkpoints/best, chosen by val mIoU

The run folder follows `weedseg.run_dir.RunDir` (config.yaml, metrics.jsonl, tb/, checkpoints/);
`resume=True` continues from checkpoints/last with the same data order and RNG; under `torchrun`
every process trains on its share of each batch stream and rank 0 validates and writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from weedseg.budget import TimeBudget
from weedseg.checkpoint import (
    CheckpointMeta,
    load_tensors,
    read_sidecar,
    resolve_checkpoint,
    save_checkpoint,
    sidecar_meta,
    transfer_weights,
    unwrap,
)
from weedseg.data.format import DatasetInfo
from weedseg.data.stats import image_mean_std
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
from weedseg.evaluate.metrics import metrics_from_matrix
from weedseg.evaluate.report import side_by_side
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.data import DataPlan, class_weights, plan_data, train_loader
from weedseg.finetune.engine import train_step, validate
from weedseg.finetune.length import StepPlan, ValidationReserve
from weedseg.finetune.losses import build_loss
from weedseg.models import ModelSpec, build_model, class_head_prefixes, spec_from_name
from weedseg.precision import TrainFormat, resolve_train_format
from weedseg.run_dir import RunDir
from weedseg.seeding import seed_everything
from weedseg.tiling import TilingOptions


@dataclass
class FinetuneResult:
    """Where a finished run left its outputs and how well it did on validation."""

    run_dir: Path
    best_checkpoint: Path  # stem of checkpoints/best (load with weedseg.checkpoint)
    best_miou: float | None
    best_step: int | None
    steps: int
    history: list[dict] = field(default_factory=list)  # one entry per validation


def init_model(
    config: FinetuneConfig, num_classes: int, log: Callable[[str], None]
) -> tuple[torch.nn.Module, ModelSpec, dict[str, Any]]:
    """Build the segmenter and load the pretrained weights; returns (model, spec, init info).

    The init info holds the source checkpoint, the transfer counts and the source's mean/std.
    """
    if config.init == "none":
        spec = spec_from_name(config.arch or DEFAULT_ARCH)
        log(f"init: none (random weights), model {spec}")
        return build_model(spec, num_classes), spec, {"source": "none"}
    stem = resolve_checkpoint(config.init)
    sidecar = read_sidecar(stem)
    source_spec = ModelSpec.from_dict(sidecar["spec"])
    spec = spec_from_name(config.arch) if config.arch else source_spec
    if spec != source_spec:
        log(f"warning: --arch {spec} differs from the init checkpoint's {source_spec}")
    model = build_model(spec, num_classes)
    tensors = load_tensors(stem)
    log(f"init: {stem} ({sidecar.get('task')}), model {spec}")
    if sidecar.get("task") != "segmentation":
        # a reconstruction head predicts pixels, not classes: never carry it, even if shapes match
        head = class_head_prefixes(model)
        tensors = {k: v for k, v in tensors.items() if not k.startswith(head)}
        log(f"the source's reconstruction head ({', '.join(p + '*' for p in head)}) is not carried")
    if config.init_carry == "encoder":
        tensors = {k: v for k, v in tensors.items() if k.startswith("encoder.")}
        log("--init-carry encoder: the decoder and head start from random weights")
    report = transfer_weights(model, tensors)
    log("transfer: " + report.summary())
    if not report.carried:
        raise WeedsegError(f"{stem}: no tensor matches {spec}; check --arch")
    meta = sidecar_meta(sidecar)
    info = {
        "source": str(stem),
        "task": sidecar.get("task"),
        "carried": len(report.carried),
        "new": report.new,
        "skipped": report.skipped,
        "mean": meta.mean,
        "std": meta.std,
        "step": meta.step,
    }
    return model, spec, info


def run_finetune(config: FinetuneConfig, log: Callable[[str], None] = print) -> FinetuneResult:
    """Fine-tune per `config`; validates every `val_every` steps and at the end."""
    with distributed(config.device) as dist:
        return _run(config, dist, main_rank_log(log, dist))


@dataclass
class Session:
    """Everything set up for the training loop."""

    info: DatasetInfo
    plan: DataPlan
    model: torch.nn.Module
    spec: ModelSpec
    meta: CheckpointMeta  # saved with every checkpoint
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    length: StepPlan  # the step count the LR schedule aims at (refitted under --time)
    fmt: TrainFormat  # precision and memory format


def _run(config: FinetuneConfig, dist, log: Callable[[str], None]) -> FinetuneResult:
    device = resolve_device(config.device, dist)
    seed_everything(config.seed)
    budget = TimeBudget(config.time) if config.time else None  # counts from here
    run = RunDir(config.out, resume=config.resume, is_main=dist.is_main)
    if config.resume:  # the precision and memory format the run chose at its start
        config.train_format = config.train_format or run.saved_config().get("train_format")
    session = _prepare(config, dist, device, log, _resumed_sidecar(run) if config.resume else None)
    run.start(config)
    start = 0
    if config.resume:
        state = run.load_state(session.model, session.optimizer, session.scheduler)
        start, goal = state.step, session.length.total
        if budget is not None:  # the killed run's training time counts
            budget.spent_before = float(state.extra.get("elapsed", 0.0))
            goal = f"{budget.spent_before:.0f} s of {budget.seconds:.0f} s"
        log(f"resumed at step {start} of {goal} (best val mIoU {run.best_score})")
    history, best_step, steps = _train(session, run, config, dist, device, start, budget, log)
    run.close()
    return FinetuneResult(
        run_dir=run.root,
        best_checkpoint=run.checkpoints / "best",
        best_miou=run.best_score,
        best_step=best_step,
        steps=steps,
        history=history,
    )


def _resumed_sidecar(run: RunDir) -> dict[str, Any]:
    """The sidecar of the run's checkpoints/last, which a resumed run continues from."""
    stem = run.checkpoints / "last"
    if not stem.with_suffix(".json").is_file():
        raise WeedsegError(f"{run.root}: nothing to resume (no checkpoints/last)")
    return read_sidecar(stem)


def _prepare(
    config: FinetuneConfig, dist, device: torch.device, log, resumed: dict[str, Any] | None
) -> Session:
    """Data plan, model with pretrained weights, normalisation, loss, optimizer, schedule.

    A resumed run rebuilds the model, normalisation and class weights its last checkpoint
    recorded (its weights are loaded afterwards, with the optimizer state).
    """
    info = DatasetInfo.load(config.data)
    plan = plan_data(info, config)
    log(f"data: {info.root}: {len(plan.train)} train, {len(plan.val)} val ({plan.val_source})")
    if resumed:
        spec, saved = ModelSpec.from_dict(resumed["spec"]), sidecar_meta(resumed)
        model, init = build_model(spec, len(info.classes)), saved.init
        mean, std, weights = saved.mean, saved.std, saved.class_weights
    else:
        model, spec, init = init_model(config, len(info.classes), log)
        mean, std = init.get("mean"), init.get("std")
        weights = class_weights(info, plan, config, log)
    if not (mean and std):
        stats = image_mean_std([info.image_path(x) for x in plan.train])
        mean, std = ([round(v, 6) for v in values] for values in stats)
        log(f"normalisation from the train images: mean {mean}, std {std}")
    steps = config.steps
    if config.epochs is not None:
        per_step = config.batch * dist.world_size
        steps = max(1, math.ceil(config.epochs * len(plan.train) / per_step))
    length = StepPlan(steps, config.warmup, fitted=bool(config.time))
    input_shape = (config.batch, 3, config.size, config.size)
    fmt = resolve_train_format(config, model.to(device), device, dist, input_shape, log)
    model = prepare_model(model, device, dist, fmt)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, length.factor)
    meta = CheckpointMeta(
        classes=info.classes,
        mean=mean,
        std=std,
        input_scale=config.input_scale,
        seed=config.seed,
        data={
            "path": str(info.root),
            "train": len(plan.train),
            "val": len(plan.val),
            "val_source": plan.val_source,
        },
        init=init,
        loss=config.loss,
        class_weights=weights,
        config=asdict(config),
    )
    loss_fn = build_loss(config.loss, weights).to(device)
    return Session(info, plan, model, spec, meta, loss_fn, optimizer, scheduler, length, fmt)


def _train(
    s: Session,
    run: RunDir,
    config: FinetuneConfig,
    dist,
    device,
    start: int,
    budget: TimeBudget | None,
    log,
) -> tuple[list[dict], int | None, int]:
    """Steps start+1.. until `s.length.total` (or the time budget): validate, keep best and save
    last every `val_every` steps and at the end. Returns (history, best step, last step)."""
    mean = torch.tensor(s.meta.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(s.meta.std, device=device).view(1, 3, 1, 1)
    loader, sampler = train_loader(s.info, s.plan.train, config, dist.rank, dist.world_size)
    sampler.set_position(*divmod(start * config.batch, sampler.epoch_size))
    batches = iter(loader)
    history: list[dict] = []
    best_step = None
    reserve = ValidationReserve(s.info, s.plan.val, config) if budget else None
    s.model.train()
    bar = run.progress(total=None if budget else s.length.total, initial=start, desc="finetune")
    step = start
    finished = budget.remaining() <= 0 if budget else start >= s.length.total
    try:
        while not finished:
            step += 1
            last = step >= s.length.total
            if budget is not None:
                last = _fit_length(s, step, budget, reserve, dist)
            loss = train_step(
                s.model, next(batches), s.loss_fn, s.optimizer, mean=mean, std=std,
                device=device, step=step, fmt=s.fmt,
            )  # fmt: skip
            s.scheduler.step()
            if budget is not None:
                budget.end_step()
            bar.advance(images=config.batch * dist.world_size, loss=loss)
            if step % config.log_every == 0 or last:
                _log_train(s, run, step, loss, config.batch * dist.world_size, budget)
            if step % config.val_every == 0 or last:
                began = time.perf_counter()
                better = _checkpoint(s, run, config, dist, device, step, budget, history, log)
                best_step = better or best_step
                if reserve is not None:
                    reserve.observe(time.perf_counter() - began)
                finished = last
    finally:
        bar.close()
    return history, best_step, step


def _fit_length(
    s: Session, step: int, budget: TimeBudget, reserve: ValidationReserve, dist: DistInfo
) -> bool:
    """--time: whether `step` is the last; the schedule aims at the steps that still fit (room
    kept for the validations still due). Starts timing the step."""
    final, periodic = reserve.seconds(budget)
    last = shared_flag(budget.is_last(final, per_step_extra=periodic), dist)
    fitted = budget.fit(step, s.length.total, final, per_step_extra=periodic)
    s.length.total = step if last else fitted
    budget.begin_step()
    return last


def _log_train(
    s: Session, run: RunDir, step: int, loss: float, per_step: int, budget: TimeBudget | None
) -> None:
    """train/loss, train/lr and images seen (`per_step` images a step, all ranks)."""
    images = step * per_step
    lr = s.optimizer.param_groups[0]["lr"]
    scalars = {"train/loss": loss, "train/lr": lr, "train/images_seen": images}
    if budget is not None:
        scalars["train/time_s"] = budget.elapsed()
    run.log(step, scalars, images_seen=images)


def _checkpoint(
    s: Session, run: RunDir, config, dist, device, step: int, budget, history: list, log
) -> int | None:
    """Validate (rank 0), keep best, save last with its resume state; the step if it is best.

    Without validation images every checkpoint is the best: checkpoints/best is the last step.
    """
    meta = replace(s.meta, step=step)
    better = None
    if dist.is_main and not s.plan.val:
        best = run.checkpoints / "best"
        save_checkpoint(best, s.model, spec=s.spec, task="segmentation", meta=meta)
        better = step
        log(f"step {step}: no validation, checkpoints/best is this step")
    elif dist.is_main:
        scores = _validate(unwrap(s.model), s, run, config, device, step)
        run.log(step, _scalars(scores), images_seen=step * config.batch * dist.world_size)
        history.append({"step": step, **scores})
        meta = replace(meta, metrics={"val_mIoU": scores["mIoU"], "val": scores})
        score = -1.0 if scores["mIoU"] is None else scores["mIoU"]
        if run.save_best(s.model, spec=s.spec, task="segmentation", meta=meta, score=score):
            better = step
        log(f"step {step}: val mIoU {score:.4f} (best {run.best_score:.4f})")
    extra = {"elapsed": budget.elapsed()} if budget is not None else None
    run.save(
        step, s.model, s.optimizer, s.scheduler, spec=s.spec, task="segmentation",
        meta=meta, every=config.checkpoint_every, extra=extra,
    )  # fmt: skip
    if dist.distributed:
        torch.distributed.barrier()
    return better


def _validate(
    model: torch.nn.Module, s: Session, run: RunDir, config: FinetuneConfig, device, step: int
) -> dict:
    """Scores (SegmentationMetrics.to_dict) on the validation images.

    The worst image goes to images/val_<step>.jpg, for a person to follow the training.
    """
    tiling = TilingOptions(config.val_tile, config.val_overlap, input_scale=config.input_scale)
    result = validate(
        model, s.info, s.plan.val, mean=s.meta.mean, std=s.meta.std, tiling=tiling,
        scale=config.val_scale, device=device, keep_worst=1,
    )  # fmt: skip
    if result.worst:
        run.write_image(f"val_{step:06d}.jpg", side_by_side(result.worst[0], s.info.classes))
    return metrics_from_matrix(result.matrix).to_dict(s.info.class_names)


def _scalars(scores: dict) -> dict[str, float]:
    """val/mIoU, val/aAcc, val/mAcc and val/iou_<class> for metrics.jsonl and TensorBoard."""
    out = {f"val/{k}": v for k, v in scores.items() if k != "per_class" and v is not None}
    for name, c in scores["per_class"].items():
        if c["iou"] is not None:
            out[f"val/iou_{name}"] = c["iou"]
    return out
