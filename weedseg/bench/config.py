"""The one configuration object of `weedseg bench` (torch-free, so the CLI stays light)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from weedseg.errors import WeedsegError

ALL_BACKENDS = ("torch", "ort", "ort-int8", "cuda", "torch-cuda", "tensorrt")
CPU_BACKENDS = ("torch", "ort", "ort-int8")  # measured against the CPU's FP32 peak


@dataclass
class BenchConfig:
    """Everything `weedseg bench` needs; printed and stored with the results."""

    models: list[str]  # bundle / run / checkpoint paths or preset:NAME
    sizes: list[int] = field(default_factory=lambda: [512])
    batches: list[int] = field(default_factory=lambda: [1, 4])
    backends: list[str] = field(default_factory=lambda: list(ALL_BACKENDS))
    peer: str | None = "lraspp"  # comma-separated peers: lraspp, yolo11n-seg
    runs: int = 20  # timed runs per case
    warmup: int = 3  # untimed runs per case
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    channels_last: bool = False  # torch backends: channels_last memory format
    calib_n: int = 8  # synthetic images for an on-the-fly INT8 graph (speed only)
    gemm_size: int = 2048  # side of the square GEMM that measures the FP32 peak
    interleave_models: bool = False  # time every model's cases in shared rounds
    out: str = "runs/bench"

    def validate(self) -> None:
        """Refuse settings that cannot run, before any model is built."""
        if not self.models and not self.peer:
            raise WeedsegError("nothing to measure: give --model (or --peer)")
        bad_sizes = [s for s in self.sizes if s <= 0 or s % 32]
        if not self.sizes or bad_sizes:
            raise WeedsegError(f"--sizes must be positive multiples of 32, got {self.sizes}")
        if not self.batches or min(self.batches) < 1:
            raise WeedsegError(f"--batch must be positive integers, got {self.batches}")
        unknown = sorted(set(self.backends) - set(ALL_BACKENDS))
        if unknown or not self.backends:
            raise WeedsegError(
                f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(ALL_BACKENDS)}"
            )
        if min(self.runs, self.threads, self.calib_n, self.gemm_size) < 1 or self.warmup < 0:
            raise WeedsegError("--runs, --threads and --calib-n must be >= 1, --warmup >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
