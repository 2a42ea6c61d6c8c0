"""The one config object of `weedseg retrain`, saved as the run's retrain.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from weedseg.errors import WeedsegError
from weedseg.tiling import SIZE_MULTIPLE


@dataclass(frozen=True)
class Budget:
    """Optimizer steps of the two training stages."""

    pretrain_steps: int
    finetune_steps: int


# named budgets; `tiny` is for smoke tests, `small` fits a CPU lunch break, the rest want a GPU
BUDGETS: dict[str, Budget] = {
    "tiny": Budget(pretrain_steps=4, finetune_steps=20),
    "small": Budget(pretrain_steps=200, finetune_steps=400),
    "medium": Budget(pretrain_steps=1000, finetune_steps=2000),
    "large": Budget(pretrain_steps=4000, finetune_steps=8000),
}


@dataclass
class RetrainConfig:
    """Everything that defines a retraining run (CLI flags map one to one)."""

    images: str  # the farm's unlabeled photos (searched recursively)
    labels: str  # the farm's labels: a weedseg dataset, or an export `weedseg.labels` reads
    base: str  # registry version, bundle (with its checkpoint), run folder or checkpoint
    out: str  # run folder
    budget: str = "small"  # a BUDGETS name; the two step counts below override it
    pretrain_steps: int | None = None  # 0 skips continued pretraining
    finetune_steps: int | None = None
    # wall-clock budget in seconds for the two training stages (`--time 1h`), split in the
    # ratio of the budget's step counts; evaluation and export come on top. 0 = steps
    time: float = 0.0
    base_data: str = ""  # the base model's labeled dataset, mixed into fine-tuning when set
    base_mix: float = 1.0  # base train images per farm train image when base_data is set
    label_map: list[str] = field(default_factory=list)  # LABEL=CLASS renames for the import
    labels_format: str = "auto"
    val_split: str = "val"  # the farm's validation split (held out from train when missing)
    val_share: float = 0.2
    size: int = 256  # training crop, multiple of 32
    crop_scale: tuple[float, float] | None = None  # area share per crop; None: native scale
    batch: int = 8
    pretrain_lr: float = 1e-3  # lower than a fresh run: the base is already trained
    finetune_lr: float = 5e-4
    mask_ratio: float = 0.5
    patch: int = 32
    tile: int = 512  # evaluation window, as `weedseg evaluate`
    overlap: int = 64
    export_size: int = 512  # bundle tile / optimisation profile size
    overlays: int = 4  # validation images drawn base vs new in the report
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    precision: str = "auto"  # training precision and memory format (weedseg.precision)
    memory_format: str = "auto"
    cache_gb: float = 8.0  # decoded-photo cache limit in GiB (0: none)
    cache_dir: str = ""  # "" = OUT/cache/photos, shared by the two training stages
    resume: bool = False

    def __post_init__(self) -> None:
        if self.crop_scale is not None:  # YAML gives a list
            self.crop_scale = tuple(float(v) for v in self.crop_scale)
        if self.budget not in BUDGETS:
            raise WeedsegError(f"--budget must be one of {', '.join(BUDGETS)}, got {self.budget!r}")
        for name in ("size", "tile", "export_size"):
            if getattr(self, name) % SIZE_MULTIPLE:
                raise WeedsegError(f"--{name.replace('_', '-')} must be a multiple of 32")
        if self.pretrain_steps is not None and self.pretrain_steps < 0:
            raise WeedsegError("--pretrain-steps must be 0 or more")
        if self.finetune_steps is not None and self.finetune_steps < 1:
            raise WeedsegError("--finetune-steps must be at least 1")
        if self.base_mix < 0:
            raise WeedsegError("--base-mix must be 0 or more")
        if self.time < 0:
            raise WeedsegError("--time must be positive")

    @property
    def steps(self) -> Budget:
        """The budget with explicit step counts applied."""
        preset = BUDGETS[self.budget]
        return Budget(
            pretrain_steps=preset.pretrain_steps
            if self.pretrain_steps is None
            else self.pretrain_steps,
            finetune_steps=preset.finetune_steps
            if self.finetune_steps is None
            else self.finetune_steps,
        )

    def stage_seconds(self) -> tuple[float, float]:
        """(pretraining, fine-tuning) seconds of `time`, in the ratio of the step counts."""
        steps = self.steps
        share = steps.pretrain_steps / (steps.pretrain_steps + steps.finetune_steps)
        return self.time * share, self.time * (1.0 - share)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeedsegError(f"unknown retrain config keys: {', '.join(unknown)}")
        return cls(**data)
