"""Wall-clock training budgets: `--time 45m` trains until the budget, its schedule fitted to it.

The number of steps that fit is estimated from measured step times after a short warm-up and
refitted at every step, so the learning-rate schedule ends at its final value on the last step.
Time spent outside steps (validation, checkpoints, difficulty scoring) is measured too and set
aside before the end. A resumed run continues the budget where the killed run's last checkpoint
left it (`TimeBudget(seconds, spent=...)`).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import deque

from weedseg.errors import WeedsegError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")


def parse_duration(text: str | float | int) -> float:
    """`45m`, `1.5h`, `90s`, `1h30m` or a plain number of seconds -> seconds (> 0)."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        compact = text.strip().lower().replace(" ", "")
        parts = _DURATION.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise WeedsegError(f"--time: expected a duration like 45m, 1.5h or 90s, got {text!r}")
        seconds = sum(float(number) * _UNITS[unit or "s"] for number, unit in parts)
    if not seconds > 0 or not math.isfinite(seconds):
        raise WeedsegError(f"--time must be a positive duration, got {text!r}")
    return seconds


class TimeBudget:
    """How many training steps fit in `seconds` of wall-clock time, refitted as steps are timed.

    Call `begin_step()` / `end_step(step)` around each training step (data loading included),
    `fit(step, ...)` before it to get the total step count the schedule should aim at, and
    `is_last` to know whether the step about to run is the final one.
    """

    def __init__(self, seconds: float, spent: float = 0.0, warmup_steps: int = 3, window: int = 50):
        self.seconds = float(seconds)
        self.spent_before = float(spent)  # training time of earlier (killed) processes
        self.clock_start = time.perf_counter()
        self.warmup_steps = warmup_steps
        self.recent: deque[float] = deque(maxlen=window)  # seconds per step, after warm-up
        self.seen = 0
        self._step_start: float | None = None

    def elapsed(self) -> float:
        """Training time spent so far, across resumes."""
        return self.spent_before + time.perf_counter() - self.clock_start

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def begin_step(self) -> None:
        self._step_start = time.perf_counter()

    def end_step(self) -> None:
        """Record the step just finished (the first `warmup_steps` are not representative)."""
        if self._step_start is None:
            return
        self.seen += 1
        if self.seen > self.warmup_steps:
            self.recent.append(time.perf_counter() - self._step_start)
        self._step_start = None

    @property
    def step_seconds(self) -> float | None:
        """Median seconds per step over the recent window, None until measured."""
        return statistics.median(self.recent) if self.recent else None

    def steps_left(
        self, reserve: float = 0.0, deadline: float | None = None, per_step_extra: float = 0.0
    ) -> int | None:
        """Whole steps that still fit before `deadline` (default: the budget) less `reserve`
        seconds, counting the step about to run; `per_step_extra` spreads periodic work (e.g. a
        validation every N steps) over the steps. None until a step time is measured."""
        per_step = self.step_seconds
        if per_step is None:
            return None
        end = self.seconds if deadline is None else deadline
        return max(0, math.floor((end - self.elapsed() - reserve) / (per_step + per_step_extra)))

    def is_last(
        self, reserve: float = 0.0, deadline: float | None = None, per_step_extra: float = 0.0
    ) -> bool:
        """Whether the step about to run must be the last: a second one would not fit."""
        left = self.steps_left(reserve, deadline, per_step_extra)
        if left is not None:
            return left <= 1
        end = self.seconds if deadline is None else deadline
        return self.elapsed() + reserve >= end  # no measurement yet: stop only when over

    def fit(
        self,
        step: int,
        provisional: int,
        reserve: float = 0.0,
        deadline: float | None = None,
        per_step_extra: float = 0.0,
    ) -> int:
        """The total step count to schedule for, given that `step` is about to run."""
        left = self.steps_left(reserve, deadline, per_step_extra)
        if left is None:
            return max(provisional, step)
        return step if left <= 1 else step + left - 1
