"""Where a training process runs: its place in a torchrun job, its device, its model wrapper.

The same code runs as one process or under `torchrun`; only rank 0 logs and writes:

    with distributed(cfg.device) as dist:            # joins torchrun's group if launched by it
        log = main_rank_log(print, dist)
        device = resolve_device(cfg.device, dist)     # this rank's GPU, or the CPU
        model = prepare_model(model, device, dist, fmt)  # memory format, DDP if distributed
        stop = shared_flag(budget_spent, dist)        # rank 0's decision, on every rank
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from weedseg.errors import WeedsegError

if TYPE_CHECKING:
    from weedseg.precision import TrainFormat


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


def shared_object(value: Any, dist: DistInfo) -> Any:
    """Rank 0's `value` (any picklable object), on every rank."""
    if not dist.distributed:
        return value
    shared = [value]
    torch.distributed.broadcast_object_list(shared, src=0)
    return shared[0]


def resolve_device(name: str = "auto", dist: DistInfo | None = None) -> torch.device:
    """`auto` -> CUDA when present else CPU; `cuda` fails clearly without a GPU. Under torchrun
    each rank takes the GPU of its local rank."""
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
