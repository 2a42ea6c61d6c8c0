"""The run folder: everything needed to understand and reproduce one training run.

    RUN/config.yaml          the resolved config (one dataclass, saved once)
    RUN/metrics.jsonl        one JSON object per logged step (with step and images_seen)
    RUN/tb/                  TensorBoard scalars (same numbers, against steps and images seen)
    RUN/images/              PNGs a person can look at
    RUN/checkpoints/last.*   latest weights
    RUN/checkpoints/resume/  the last two committed resume states (weights, optimizer, scheduler,
                             step, RNG; see weedseg.resume_state)
    RUN/checkpoints/step_000500.*, best.*

Usage (the same under `torchrun`, see weedseg.distributed; only rank 0 writes):

    run = RunDir(cfg.out, resume=cfg.resume, is_main=dist.is_main)
    run.start(cfg)                               # config.yaml (refuses a used folder)
    state = run.load_state(model, optimizer, scheduler) if cfg.resume else None
    step = state.step if state else 0
    bar = run.progress(total=cfg.steps, initial=step)
    for batch in loader:                         # endless: stop at the budget
        ...
        step += 1
        bar.advance(images=cfg.batch * dist.world_size, loss=loss)
        seen = step * cfg.batch * dist.world_size  # the x-axis that survives a batch change
        run.log(step, {"train/loss": loss, "train/lr": lr}, images_seen=seen)
        if step % cfg.val_every == 0 or step == cfg.steps:  # last (+ step_N every N)
            run.save(step, model, optimizer, scheduler, spec=spec, task="segmentation",
                     meta=meta, every=cfg.checkpoint_every)
            run.save_best(model, spec=spec, task="segmentation", meta=meta, score=miou)
        if step == cfg.steps:
            break
    bar.close()
    run.close()
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from weedseg.atomic import write_atomic
from weedseg.checkpoint import CheckpointMeta, read_meta, save_checkpoint, unwrap
from weedseg.distributed import barrier
from weedseg.errors import WeedsegError
from weedseg.imageio import write_image
from weedseg.models import ModelSpec
from weedseg.progress import Progress
from weedseg.resume_state import load_resume_state, publish_checkpoint, save_resume_point
from weedseg.seeding import rng_state, set_rng_state


@dataclass
class TrainState:
    """What `RunDir.load_state` restored besides the weights.

    The optimizer/scheduler state dicts are kept for callers that build their optimizer later
    (e.g. one per phase of a schedule).
    """

    step: int
    extra: dict[str, Any]
    meta: CheckpointMeta
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None


class RunDir:
    """One run's folder: config, metrics, TensorBoard, images, checkpoints, resume state."""

    def __init__(self, root: str | Path, *, resume: bool = False, is_main: bool = True):
        self.root = Path(root)
        self.resume = resume
        self.is_main = is_main
        self.checkpoints = self.root / "checkpoints"
        self.images = self.root / "images"
        self._tb = None
        self.best_score: float | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    def check_start(self) -> None:
        """Refuse a fresh run in a folder that holds one, and a resume with nothing to resume."""
        has_run = self.config_path.is_file()
        if self.resume and not has_run:
            raise WeedsegError(f"{self.root}: nothing to resume (no config.yaml)")
        if not self.resume and has_run:
            raise WeedsegError(f"{self.root} already holds a run: use --resume or another --out")

    def start(self, config: Any) -> None:
        """Create the folder and save the config (a dataclass or dict).

        A fresh run refuses a folder that already holds a run; `resume` requires one.
        """
        self.check_start()
        barrier()  # every rank has checked before rank 0 writes
        if self.is_main:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            self.images.mkdir(parents=True, exist_ok=True)
            text = yaml.safe_dump(to_plain(config), sort_keys=False)
            if self.resume:
                write_atomic(self.root / "config.resumed.yaml", text)
            else:
                write_atomic(self.config_path, text)
        barrier()
        best = self.checkpoints / "best.json"
        if self.resume and best.is_file():
            self.best_score = read_meta(best.with_suffix("")).score

    def saved_config(self) -> dict[str, Any]:
        """The config.yaml of this run, as a dict."""
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}

    def log(self, step: int, metrics: dict[str, float], *, images_seen: int) -> None:
        """Append one metrics line and the same scalars to TensorBoard, against optimizer steps
        and, as `by_images/<name>`, against training images seen (all ranks): curves of runs
        with different batch sizes or GPU counts line up on the second."""
        if not self.is_main:
            return
        line = {"step": step, "images_seen": images_seen, "time": round(time.time(), 3)}
        line |= {k: float(v) for k, v in metrics.items()}
        with open(self.root / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        writer = self.tensorboard()
        for name, value in metrics.items():
            writer.add_scalar(name, float(value), step)
            writer.add_scalar(f"by_images/{name}", float(value), images_seen)

    def tensorboard(self):
        """The run's SummaryWriter (rank 0 only)."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.root / "tb"))
        return self._tb

    def write_image(self, name: str, image: np.ndarray) -> Path:
        """Save an HxWx3 uint8 image under images/ (name without folders)."""
        path = self.images / Path(name).name
        if self.is_main:
            write_image(path, image)
        return path

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        *,
        spec: ModelSpec,
        task: str,
        meta: CheckpointMeta,
        every: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Commit the resume state of `step` in one go, then point checkpoints/last at it (and,
        every `every` steps, keep a copy as checkpoints/step_N)."""
        if not self.is_main:
            return
        meta = dataclasses.replace(meta, step=step)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict() if optimizer else None,
            "scheduler": scheduler.state_dict() if scheduler else None,
            "rng": rng_state(),
            "extra": extra or {},
        }
        point = save_resume_point(
            self.checkpoints, step, model, state, spec=spec, task=task, meta=meta
        )
        publish_checkpoint(point, self.checkpoints / "last")
        if every and step % every == 0:
            publish_checkpoint(point, self.checkpoints / f"step_{step:06d}")

    def save_best(
        self,
        model: nn.Module,
        *,
        spec: ModelSpec,
        task: str,
        meta: CheckpointMeta,
        score: float,
        higher_is_better: bool = True,
    ) -> bool:
        """Keep checkpoints/best when `score` beats the best so far; return whether it did."""
        better = self.best_score is None or (
            score > self.best_score if higher_is_better else score < self.best_score
        )
        if better:
            self.best_score = float(score)
            if self.is_main:
                meta = dataclasses.replace(meta, score=float(score))
                save_checkpoint(self.checkpoints / "best", model, spec=spec, task=task, meta=meta)
        return better

    def load_state(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
    ) -> TrainState:
        """Restore weights, optimizer, scheduler and RNG from the newest complete resume state
        (every rank); a damaged newest one is passed over with a warning naming both steps."""
        loaded = load_resume_state(self.checkpoints, is_main=self.is_main)
        meta, state = loaded.meta, loaded.state
        unwrap(model).load_state_dict(loaded.tensors, strict=True)
        if optimizer is not None and state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self._forget_metrics_after(int(state["step"]))
        return TrainState(
            step=int(state["step"]),
            extra=state["extra"],
            meta=meta,
            optimizer=state["optimizer"],
            scheduler=state["scheduler"],
        )

    def _forget_metrics_after(self, step: int) -> None:
        """Drop metrics lines the killed run logged after its last checkpoint (they will recur),
        and, with a warning, a line cut off by a kill or a full disk."""
        path = self.root / "metrics.jsonl"
        if not self.is_main or not path.is_file():
            return
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        kept, cut = [], 0
        for line in filter(str.strip, lines):
            try:
                logged = int(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError):
                cut += 1
                continue
            if logged <= step:
                kept.append(line)
        if cut:
            warnings.warn(
                f"{path}: dropped {cut} cut-off line(s) (written when the run was killed or the "
                "disk was full)",
                RuntimeWarning,
                stacklevel=3,
            )
        if len(kept) != len(lines):
            write_atomic(path, "".join(f"{line}\n" for line in kept))

    def progress(self, total: int, initial: int = 0, desc: str = "train") -> Progress:
        """A progress bar (rank 0 only)."""
        return Progress(total=total, initial=initial, enabled=self.is_main, desc=desc)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def to_plain(config: Any) -> Any:
    """Dataclasses, tuples and paths as YAML-safe builtins."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return to_plain(dataclasses.asdict(config))
    if isinstance(config, dict):
        return {str(k): to_plain(v) for k, v in config.items()}
    if isinstance(config, list | tuple):
        return [to_plain(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    return config
