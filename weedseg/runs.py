"""Run folders and the training plumbing shared by `weedseg pretrain` and `weedseg finetune`.

A run folder holds everything needed to understand and reproduce a run:

    RUN/config.yaml          the resolved config (one dataclass, saved once)
    RUN/metrics.jsonl        one JSON object per logged step
    RUN/tb/                  TensorBoard scalars (same numbers)
    RUN/images/              PNGs a person can look at
    RUN/checkpoints/last.*   latest weights
    RUN/checkpoints/resume/  the last two committed resume states (weights, optimizer, scheduler,
                             step, RNG; see weedseg.resume_state)
    RUN/checkpoints/step_000500.*, best.*

Usage (the same under `torchrun`; only rank 0 writes):

    with distributed(cfg.device) as dist:            # joins torchrun's group if launched by it
        log = main_rank_log(print, dist)
        device = resolve_device(cfg.device, dist)
        run = RunDir(cfg.out, resume=cfg.resume, is_main=dist.is_main)
        run.start(cfg)                               # config.yaml (refuses a used folder)
        fmt = resolve_train_format(cfg, model, device, dist, input_shape, log)
        model = prepare_model(model, device, dist, fmt)  # memory format, DDP if distributed
        state = run.load_state(model, optimizer, scheduler) if cfg.resume else None
        step = state.step if state else 0
        sampler = EpochSampler(len(ds), seed=cfg.seed, rank=dist.rank, world_size=dist.world_size)
        sampler.set_position(*divmod(step * cfg.batch, sampler.epoch_size))  # same data order
        loader = DataLoader(SeededSamples(ds), batch_size=cfg.batch, sampler=sampler)
        bar = run.progress(total=cfg.steps, initial=step)
        for batch in loader:                         # endless: stop at the budget
            with fmt.autocast(device):               # bf16 where measured faster
                ...
            step += 1
            bar.advance(images=cfg.batch * dist.world_size, loss=loss)
            run.log(step, {"train/loss": loss, "train/lr": lr})
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

import contextlib
import dataclasses
import json
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from weedseg.atomic import write_atomic
from weedseg.checkpoint import read_sidecar, save_checkpoint
from weedseg.errors import WeedsegError
from weedseg.imageio import write_image
from weedseg.models import ModelSpec
from weedseg.precision import TrainFormat, choose_format
from weedseg.resume_state import load_resume_state, publish_checkpoint, save_resume_point


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) torchrun job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if launched by torchrun (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    import torch.distributed as dist

    info = DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def close_distributed() -> None:
    """Leave the process group (no-op outside torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistInfo]:
    """`init_distributed` for the block, `close_distributed` after it, even on errors."""
    info = init_distributed(device)
    try:
        yield info
    finally:
        close_distributed()


def main_rank_log(log: Callable[[str], None], dist: DistInfo) -> Callable[[str], None]:
    """`log` on rank 0, a silent sink elsewhere (one copy of every message)."""
    return log if dist.is_main else _silent


def _silent(message: str) -> None:
    """Log sink for ranks other than 0."""


def barrier() -> None:
    """Wait for every rank (no-op outside torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shared_flag(flag: bool, dist: DistInfo) -> bool:
    """Rank 0's decision, on every rank (e.g. whether to stop: ranks must stop together)."""
    if not dist.distributed:
        return flag
    shared = torch.tensor([int(flag)])
    torch.distributed.broadcast(shared, src=0)
    return bool(shared.item())


def resolve_device(name: str = "auto", dist: DistInfo | None = None) -> torch.device:
    """`auto` -> CUDA when present else CPU; `cuda` fails clearly without a GPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise WeedsegError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise WeedsegError("--device cuda requested but no CUDA GPU is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    index = dist.local_rank if dist else 0
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def prepare_model(
    model: nn.Module, device: torch.device, dist: DistInfo, fmt: TrainFormat
) -> nn.Module:
    """Move to device in the run's memory format and wrap in DDP when distributed."""
    model = fmt.apply(model.to(device))
    if dist.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    return model


def resolve_train_format(
    config: Any,
    model: nn.Module,
    device: torch.device,
    dist: DistInfo,
    input_shape: tuple[int, int, int, int],
    log: Callable[[str], None],
) -> TrainFormat:
    """The run's precision and memory format: the saved choice of a resumed run (set in its
    config's `train_format`), else `config.precision` / `config.memory_format` resolved by
    `choose_format` on rank 0 and shared with every rank. Stored back into `config`."""
    if config.train_format:
        fmt = TrainFormat.from_dict(config.train_format)
    else:
        fmt = None
        if dist.is_main:
            fmt = choose_format(
                config.precision, config.memory_format, model, device, input_shape, log
            )
        if dist.distributed:
            shared = [fmt]
            torch.distributed.broadcast_object_list(shared, src=0)
            fmt = shared[0]
    config.train_format = fmt.to_dict()
    log(f"training in {fmt}")
    return fmt


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in a form `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def sample_seed(seed: int, *keys: int) -> int:
    """A reproducible 63-bit seed derived from a run seed and integer keys (epoch, step, ...)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0] >> 1)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled indices per epoch, sharded by rank, resumable at any position, never ending.

    Yields `(index, sample_seed)`: wrap the dataset in `SeededSamples` so each sample's random
    augmentation depends only on (run seed, epoch, position), whatever the worker count and
    however often the run was resumed. Every rank sees a disjoint `epoch_size` share per epoch.
    """

    def __init__(self, length: int, *, seed: int, rank: int = 0, world_size: int = 1):
        if length < 1:
            raise WeedsegError("no samples to train on")
        self.length, self.seed, self.rank, self.world_size = length, seed, rank, world_size
        self.epoch_size = -(-length // world_size)  # per rank; the last ranks wrap around
        self.epoch, self.position = 0, 0

    def set_position(self, epoch: int, position: int) -> None:
        """Start at sample `position` (per rank) of `epoch`."""
        self.epoch, self.position = epoch, position

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's indices for one epoch."""
        g = torch.Generator().manual_seed(sample_seed(self.seed, epoch))
        order = torch.randperm(self.length, generator=g).tolist()
        order += order[: self.epoch_size * self.world_size - self.length]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        while True:
            order = self.epoch_order(self.epoch)
            for position in range(self.position, len(order)):
                yield order[position], sample_seed(self.seed, self.epoch, position, self.rank)
            self.epoch, self.position = self.epoch + 1, 0

    def __len__(self) -> int:
        return self.epoch_size


class SeededSamples(torch.utils.data.Dataset):
    """Dataset view seeding python/numpy/torch before each `dataset[index]` (see EpochSampler)."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return self.dataset[index]


@dataclass
class TrainState:
    """What `RunDir.load_state` restored besides the weights.

    The optimizer/scheduler state dicts are kept for callers that build their optimizer later
    (e.g. one per phase of a schedule).
    """

    step: int
    extra: dict[str, Any]
    meta: dict[str, Any]
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None


class Progress:
    """A tqdm bar showing loss, images/s and ETA (silent on ranks other than 0)."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step")
        self.start = time.perf_counter()
        self.images = 0

    def advance(self, images: int, **values: float) -> None:
        """One optimizer step done on `images` images (all ranks)."""
        self.images += images
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        postfix = {k: f"{v:.4g}" for k, v in values.items()}
        postfix["img/s"] = f"{self.images / elapsed:.1f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    @property
    def images_per_second(self) -> float:
        return self.images / max(time.perf_counter() - self.start, 1e-9)

    def close(self) -> None:
        self.bar.close()


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
            self.best_score = read_sidecar(best.with_suffix("")).get("meta", {}).get("score")

    def saved_config(self) -> dict[str, Any]:
        """The config.yaml of this run, as a dict."""
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Append one metrics line and the same scalars to TensorBoard."""
        if not self.is_main:
            return
        line = {"step": step, "time": round(time.time(), 3)} | {
            k: float(v) for k, v in metrics.items()
        }
        with open(self.root / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        writer = self.tensorboard()
        for name, value in metrics.items():
            writer.add_scalar(name, float(value), step)

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
        meta: dict[str, Any],
        every: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Commit the resume state of `step` in one go, then point checkpoints/last at it (and,
        every `every` steps, keep a copy as checkpoints/step_N)."""
        if not self.is_main:
            return
        meta = meta | {"step": step}
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
        meta: dict[str, Any],
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
                meta = meta | {"score": float(score)}
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
        from weedseg.checkpoint import unwrap

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
