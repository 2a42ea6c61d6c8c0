"""Repeated timed runs of one callable: warm-up first, then median and p90 in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timing:
    """Wall-clock milliseconds of every timed run of one benchmark case."""

    times_ms: list[float] = field(default_factory=list)

    def add(self, run: Callable[[], object], runs: int) -> None:
        """Time `runs` calls of `run` and keep each one."""
        for _ in range(runs):
            start = time.perf_counter()
            run()
            self.times_ms.append((time.perf_counter() - start) * 1000)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def best_ms(self) -> float:
        return float(min(self.times_ms))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.times_ms, 90))


def warm_up(run: Callable[[], object], runs: int) -> None:
    """Untimed calls: lazy allocation, kernel selection and caches happen here, not in the table."""
    for _ in range(runs):
        run()
