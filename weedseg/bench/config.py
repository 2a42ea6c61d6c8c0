"""The one configuration object of `weedseg bench` (torch-free, so the CLI stays light)."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from weedseg.config_flags import flag
from weedseg.errors import WeedsegError

ALL_BACKENDS = ("torch", "ort", "ort-int8", "cuda", "torch-cuda", "tensorrt")
CPU_BACKENDS = ("torch", "ort", "ort-int8")  # measured against the CPU's FP32 peak


def int_list(text: str) -> list[int]:
    """`--sizes 256,512`: comma-separated integers."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from exc


def name_list(text: str) -> list[str]:
    """`--backends torch,ort`: comma-separated names."""
    return [v.strip() for v in text.split(",") if v.strip()]


def peer_names(text: str) -> str | None:
    """`--peer`: comma-separated peers, or none (also the empty string)."""
    return None if text in ("", "none") else text


@dataclass
class BenchConfig:
    """Everything `weedseg bench` needs; printed and stored with the results (flags declared on
    the fields)."""

    # bundle / run / checkpoint paths or preset:NAME
    models: list[str] = field(
        default_factory=list,
        metadata=flag(
            "--model",
            action="append",
            help="bundle folder, run folder, checkpoint, or preset:NAME for an untrained model "
            "(repeat for several)",
        ),
    )
    sizes: list[int] = field(
        default_factory=lambda: [512],
        metadata=flag("--sizes", type=int_list, help="square input sides (x32)"),
    )
    batches: list[int] = field(
        default_factory=lambda: [1, 4],
        metadata=flag("--batch", type=int_list, help="batch sizes, e.g. 1,4"),
    )
    backends: list[str] = field(
        default_factory=lambda: list(ALL_BACKENDS),
        metadata=flag(
            "--backends",
            type=name_list,
            help="torch, ort, ort-int8, cuda, torch-cuda, tensorrt (unavailable ones are skipped)",
        ),
    )
    # comma-separated peers: lraspp, yolo11n-seg
    peer: str | None = field(
        default="lraspp",
        metadata=flag(
            "--peer",
            type=peer_names,
            help="peer rows: lraspp (torchvision LRASPP), yolo11n-seg (needs ultralytics), "
            "both comma-separated, or none",
        ),
    )
    runs: int = field(default=20, metadata=flag("--runs", help="timed runs per row"))
    warmup: int = field(default=3, metadata=flag("--warmup", help="untimed runs per row"))
    # CPU threads of every backend; 0 = all cores
    threads: int = field(
        default_factory=lambda: os.cpu_count() or 1,
        metadata=flag("--threads", help="CPU threads for every backend (default: all)"),
    )
    # torch backends: channels_last memory format
    channels_last: bool = field(
        default=False,
        metadata=flag("--channels-last", action="store_true", help="torch: channels_last"),
    )
    # synthetic images for an on-the-fly INT8 graph (speed only)
    calib_n: int = field(
        default=8,
        metadata=flag("--calib-n", help="synthetic images for an on-the-fly INT8 graph"),
    )
    # side of the square GEMM that measures the FP32 peak
    gemm_size: int = field(
        default=2048,
        metadata=flag("--gemm-size", help="side of the GEMM measuring the FP32 peak"),
    )
    # time every model's cases in shared rounds
    interleave_models: bool = field(
        default=False,
        metadata=flag(
            "--interleave-models",
            action="store_true",
            help="load every model at once and time them in shared rounds (fairer on a busy "
            "machine)",
        ),
    )
    out: str = field(
        default="runs/bench", metadata=flag("--out", help="folder for bench.json and bench.md")
    )

    def __post_init__(self) -> None:
        """Refuse settings that cannot run, before any model is built."""
        if self.threads == 0:
            self.threads = os.cpu_count() or 1
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
