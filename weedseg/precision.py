"""How a training run computes: float32 or bfloat16 autocast, contiguous or channels_last.

Which is faster depends on the CPU and the model, so `auto` measures it (a few training steps of
a copy of the model on random data) instead of guessing. Measured on a 2-core AMD EPYC with
AVX512-BF16 and no AMX (benchmarks/RESULTS.md, "Training speed"): the default FPN MobileNetV3
trains 1.39x faster in channels_last and gains nothing more from bf16 (depthwise convolutions),
while unet-resnet18 trains 2.2x faster in bf16 + channels_last. On a CPU without native bf16
(no AMX, no AVX512-BF16) bf16 is emulated and never chosen by `auto`.

Weights, optimizer state and checkpoints stay float32 under autocast; callers cast outputs to
float32 before losses, and normalisation layers keep float32 parameters and statistics.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from weedseg.defaults import MEMORY_FORMATS, PRECISIONS
from weedseg.distributed import DistInfo, shared_object
from weedseg.errors import WeedsegError

# auto picks bf16 only when it is this much faster than float32: a smaller gain is within the
# step-time noise of a 2-core VM and not worth the rounding
BF16_MIN_GAIN = 1.10
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class TrainFormat:
    """The precision and memory format a run trains in, and why (logged, saved in config)."""

    precision: str  # fp32 | bf16
    memory_format: str  # channels_last | contiguous
    reason: str = ""

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "channels_last"

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bf16 autocast on the run's device, or nothing for float32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def apply(self, model: nn.Module) -> nn.Module:
        """The model in the run's memory format (weights stay float32)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """A [N, C, H, W] batch in the run's memory format."""
        if not self.channels_last:
            return images
        return images.contiguous(memory_format=torch.channels_last)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainFormat:
        return cls(data["precision"], data["memory_format"], data.get("reason", ""))

    def __str__(self) -> str:
        text = f"{self.precision}, {self.memory_format}"
        return f"{text} ({self.reason})" if self.reason else text


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is missing."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16(device: torch.device, flags: set[str] | None = None) -> bool:
    """Whether bf16 matmuls run in hardware: AMX or AVX512-BF16 on CPU, bf16 support on CUDA."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def check_choice(precision: str, memory_format: str) -> None:
    """Refuse unknown --precision / --memory-format values."""
    if precision not in PRECISIONS:
        raise WeedsegError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if memory_format not in MEMORY_FORMATS:
        raise WeedsegError(
            f"--memory-format must be one of {', '.join(MEMORY_FORMATS)}, got {memory_format!r}"
        )


def choose_format(
    precision: str,
    memory_format: str,
    model: nn.Module,
    device: torch.device,
    input_shape: tuple[int, int, int, int],
    log: Callable[[str], None] = print,
) -> TrainFormat:
    """Resolve `auto` settings by timing training steps of a copy of `model` on `input_shape`.

    On CUDA, auto is bf16 (where supported) in channels_last, as before. On CPU every candidate
    is timed; bf16 is a candidate for `auto` only with native bf16, and must beat float32 by
    BF16_MIN_GAIN.
    """
    check_choice(precision, memory_format)
    bf16_ok = native_bf16(device)
    if precision == "bf16" and not bf16_ok:
        log(f"warning: --precision bf16 on a {device.type} without native bf16: expect it slower")
    if device.type == "cuda":
        chosen = precision if precision != "auto" else "bf16" if bf16_ok else "fp32"
        layout = memory_format if memory_format != "auto" else "channels_last"
        return TrainFormat(chosen, layout, "CUDA: bf16 where supported, channels_last")
    if precision != "auto" and memory_format != "auto":
        return TrainFormat(precision, memory_format, "as asked")
    precisions = [precision] if precision != "auto" else ["fp32", "bf16"] if bf16_ok else ["fp32"]
    layouts = [memory_format] if memory_format != "auto" else ["contiguous", "channels_last"]
    speeds = {
        (p, f): images_per_second(model, TrainFormat(p, f), device, input_shape)
        for p in precisions
        for f in layouts
    }
    table = ", ".join(f"{p}/{f} {v:.1f}" for (p, f), v in speeds.items())
    log(f"training speed, img/s at {input_shape[0]}x{input_shape[2]}x{input_shape[3]}: {table}")
    fastest = {p: max((speeds[p, f], f) for f in layouts) for p in precisions}  # p: (img/s, f)
    chosen = precisions[0]
    reason = "measured"
    if len(fastest) == 2:
        gain = fastest["bf16"][0] / fastest["fp32"][0]
        chosen = "bf16" if gain >= BF16_MIN_GAIN else "fp32"
        reason = f"measured: bf16 at {gain:.2f}x float32, needs {BF16_MIN_GAIN}x"
    elif precision == "auto":
        reason = "measured; float32: no native bf16 on this CPU"
    speed, layout = fastest[chosen]
    return TrainFormat(chosen, layout, f"{reason}; {speed:.1f} img/s")


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
        fmt = shared_object(fmt, dist)
    config.train_format = fmt.to_dict()
    log(f"training in {fmt}")
    return fmt


def images_per_second(
    model: nn.Module,
    fmt: TrainFormat,
    device: torch.device,
    input_shape: tuple[int, int, int, int],
    steps: int = 3,
) -> float:
    """Training images/s of a copy of `model` (forward, backward, SGD step) in `fmt`.

    The median of `steps` timed steps after one warm-up step; the caller's model is untouched.
    """
    trial = fmt.apply(copy.deepcopy(model).to(device).train())
    optimizer = torch.optim.SGD(trial.parameters(), lr=0.0)
    generator = torch.Generator().manual_seed(0)
    images = fmt.batch(torch.randn(input_shape, generator=generator).to(device))  # [N, 3, S, S]
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with fmt.autocast(device):
            output = trial(images)  # [N, K, S, S]
        loss = output.float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return input_shape[0] / statistics.median(times[1:])
