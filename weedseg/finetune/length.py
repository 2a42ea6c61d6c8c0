"""How long a fine-tuning run trains: its LR schedule's length, and under `--time` the time set
aside for validations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from weedseg.budget import TimeBudget
from weedseg.data.format import DatasetInfo
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.engine import warmup_cosine


@dataclass
class StepPlan:
    """Total steps and warm-up of the LR schedule; under `--time` refitted as steps are timed."""

    total: int
    warmup: int
    fitted: bool = False  # True under --time

    def factor(self, step: int) -> float:
        """LR multiplier at `step` (warm-up then cosine to 0 at `total`)."""
        warmup = min(self.warmup, max(1, self.total // 10)) if self.fitted else self.warmup
        return warmup_cosine(step, self.total, warmup)


# the least a validation with its checkpoint writes is assumed to take before one is measured
MIN_VALIDATION_S = 0.5


class ValidationReserve:
    """Time to set aside under --time for validations (with their saves): the final one, and
    the periodic ones (every `val_every` steps) spread over the steps.

    Until one is measured, a validation is estimated from the training speed: the validation
    pixels at the training cost per pixel (a forward pass is about a third of a training step,
    tiles overlap by ~30%: the estimate carries a ~2x margin).
    """

    def __init__(self, info: DatasetInfo, val: Sequence[str], config: FinetuneConfig):
        from PIL import Image

        scale = (config.val_scale * config.input_scale) ** 2
        pixels = 0
        for stem in val:
            with Image.open(info.image_path(stem)) as image:
                pixels += image.size[0] * image.size[1] * scale
        self.pixels_per_step = config.batch * config.size**2
        self.val_pixels = pixels
        self.val_every = config.val_every
        self.measured: float | None = None

    def observe(self, seconds: float) -> None:
        self.measured = seconds  # the latest: the first carries one-off set-up costs

    def seconds(self, budget: TimeBudget) -> tuple[float, float]:
        """(seconds for the final validation, periodic validation seconds per step)."""
        per_step = budget.step_seconds or 0.0
        estimate = max(self.val_pixels / self.pixels_per_step * per_step, MIN_VALIDATION_S)
        one = self.measured or estimate
        return one, one / self.val_every
