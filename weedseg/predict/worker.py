"""What every predicting worker shares, in the local run and on a Ray actor alike.

The Predictor as `weedseg predict` opens it (`make_predictor`), how many images are in the model
at once (`stream_count`), the one line errors.csv gets for a failure, and the speed totals behind
the closing `Speed:` line.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from weedseg.errors import WeedsegError
from weedseg.infer.onnx_session import resolve_providers
from weedseg.infer.predictor import Predictor
from weedseg.predict.config import PredictConfig


@dataclass
class Speed:
    """Per-image milliseconds summed over the images this run processed."""

    images: int = 0
    totals: dict[str, float] = field(
        default_factory=lambda: {"pre": 0.0, "inference": 0.0, "post": 0.0}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, timings_ms: dict[str, float]) -> None:
        with self.lock:
            self.images += 1
            for key in self.totals:
                self.totals[key] += timings_ms.get(key, 0.0)

    def line(self) -> str:
        n = max(self.images, 1)
        pre, inference, post = (self.totals[k] / n for k in ("pre", "inference", "post"))
        return (
            f"Speed: {pre:.1f}ms pre-process, {inference:.1f}ms inference, "
            f"{post:.1f}ms post-process per image"
        )


def failure_reason(exc: BaseException) -> str:
    """One line for errors.csv: the user-facing message, or the exception type and text."""
    if isinstance(exc, WeedsegError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def stream_count(config: PredictConfig) -> int:
    """`--streams`, or by default 2 on a CPU-only machine with 2-4 cores, else 1.

    On 2 cores, 2 streams of one thread each reach 0.90-0.93 of the bare model's throughput
    where one stream on both cores reaches 0.84: a decode or write preempts only its own stream,
    not a run whose threads wait for each other (RESULTS.md). On GPUs and larger CPUs, where
    decoding takes a smaller share, one stream stays the default (not measured here).
    """
    if config.streams is not None:
        return config.streams
    cores = os.cpu_count() or 1
    cpu_only = resolve_providers(config.providers) == ["CPUExecutionProvider"]
    return 2 if cpu_only and 2 <= cores <= 4 else 1


def make_predictor(config: PredictConfig) -> Predictor:
    threads, streams = config.threads, stream_count(config)
    if threads is None and streams > 1:  # the cores shared out between the streams
        threads = max(1, (os.cpu_count() or 1) // streams)
    return Predictor.from_bundle(
        config.model,
        providers=config.providers,
        precision="int8" if config.int8 else "fp32",
        tile=config.tile,
        overlap=config.overlap,
        batch_size=config.batch,
        threads=threads,
        input_scale=config.input_scale,
        plant_vote=config.plant_vote,
        tta=config.tta,
        # ONNX Runtime's threads sleep between operators instead of spinning, leaving CPU to
        # the decode and write threads: pipeline/bare 0.81 -> 0.86 on 2 cores (RESULTS.md)
        spinning=False,
    )
