"""The one config object of `weedseg retrain`, saved as the run's retrain.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from weedseg import training_flags as shared
from weedseg.config_flags import flag
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


LEAVE_ONE_OUT_MAX = 8  # up to this many labelled photos, each photo is its own fold
AUTO_FOLDS = 5  # folds for more labelled photos than that


def parse_folds(text: str) -> int:
    """`--folds`: a number of folds, or `auto` (0)."""
    return 0 if text.strip().lower() == "auto" else int(text)


@dataclass
class RetrainConfig:
    """Everything that defines a retraining run (its flags are declared on the fields)."""

    # the farm's unlabeled photos (searched recursively)
    images: str = field(metadata=flag("--images", help="the farm's unlabeled photos (a folder)"))
    # the farm's labels: a weedseg dataset, or an export `weedseg.labels` reads
    labels: str = field(
        metadata=flag("--labels", help="farm labels: weedseg dataset, COCO json or mask export")
    )
    # registry version, bundle (with its checkpoint), run folder or checkpoint
    base: str = field(
        metadata=flag("--base", help="registry version, bundle, run folder or checkpoint")
    )
    out: str = field(metadata=flag("--out", help="run folder (rerun with --resume)"))
    # a BUDGETS name; the two step counts below override it
    budget: str = field(
        default="small",
        metadata=flag(
            "--budget",
            choices=list(BUDGETS),
            help=", ".join(
                f"{k}: {b.pretrain_steps} SMS + {b.finetune_steps} fine-tuning steps"
                for k, b in BUDGETS.items()
            ),
        ),
    )
    # 0 skips continued pretraining
    pretrain_steps: int | None = field(
        default=None,
        metadata=flag("--pretrain-steps", help="override the budget (0: skip SMS)"),
    )
    finetune_steps: int | None = field(
        default=None, metadata=flag("--finetune-steps", help="override the budget")
    )
    # wall-clock budget in seconds for the training stages (`--time 1h`): SMS, the K fold
    # fine-tunes and the shipped model's fine-tune share it in the ratio of their step counts
    # (RetrainConfig.stage_seconds); scoring and export come on top. 0 = steps
    time: float = field(
        default=0.0,
        metadata=shared.time_flag(
            help="wall-clock budget for training (e.g. 45m, 2h; 0: use the steps), split "
            "between SMS, the K fold fine-tunes and the shipped model's fine-tune in the ratio "
            "of their steps; scoring and export come on top"
        ),
    )
    # the base model's labeled dataset, mixed into fine-tuning when set
    base_data: str = field(
        default="", metadata=flag("--base-data", help="the base's dataset, mixed into training")
    )
    # base train images per farm train image when base_data is set
    base_mix: float = field(
        default=1.0, metadata=flag("--base-mix", help="base images per farm image")
    )
    # LABEL=CLASS renames for the import
    label_map: list[str] = field(
        default_factory=list,
        metadata=flag("--map", action="append", help="label rename LABEL=CLASS"),
    )
    labels_format: str = field(default="auto", metadata=flag("--labels-format"))
    # cross-validation folds over the farm's labelled photos (every split); 0 = auto:
    # leave-one-out up to LEAVE_ONE_OUT_MAX photos, else AUTO_FOLDS folds
    folds: int = field(
        default=0,
        metadata=flag(
            "--folds",
            type=parse_folds,
            help=f"folds comparing base and new on the farm's labels (auto or 0: leave-one-out "
            f"up to {LEAVE_ONE_OUT_MAX} photos, else {AUTO_FOLDS}); each fold is one more "
            "fine-tune",
        ),
    )
    # training crop, multiple of 32
    size: int = field(default=256, metadata=flag("--size", help="training crop (x32)"))
    # area share per crop; None: native scale
    crop_scale: tuple[float, float] | None = field(default=None, metadata=shared.CROP_SCALE)
    batch: int = field(default=8, metadata=flag("--batch"))
    # lower than a fresh run: the base is already trained
    pretrain_lr: float = field(default=1e-3, metadata=flag("--pretrain-lr"))
    finetune_lr: float = field(default=5e-4, metadata=flag("--finetune-lr"))
    mask_ratio: float = 0.5
    patch: int = field(default=32, metadata=flag("--patch", help="SMS mask unit in pixels"))
    # evaluation window, as `weedseg evaluate`
    tile: int = field(default=512, metadata=flag("--tile", help="evaluation window (x32)"))
    overlap: int = field(default=64, metadata=flag("--overlap"))
    # bundle tile / optimisation profile size
    export_size: int = field(default=512, metadata=flag("--export-size"))
    # validation images drawn base vs new in the report
    overlays: int = field(default=4, metadata=flag("--overlays"))
    seed: int = field(default=0, metadata=flag("--seed"))
    workers: int = field(default=2, metadata=flag("--workers"))
    device: str = field(default="auto", metadata=shared.DEVICE)
    # training precision and memory format (weedseg.precision)
    precision: str = field(default="auto", metadata=shared.PRECISION)
    memory_format: str = field(default="auto", metadata=shared.MEMORY_FORMAT)
    # decoded-photo cache limit in GiB (0: none)
    cache_gb: float = field(default=8.0, metadata=shared.CACHE_GB)
    # "" = OUT/cache/photos, shared by the two training stages
    cache_dir: str = field(default="", metadata=shared.CACHE_DIR)
    resume: bool = field(default=False, metadata=shared.RESUME)

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
        if self.folds < 0 or self.folds == 1:
            raise WeedsegError("--folds must be auto (0) or at least 2")

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

    def fold_count(self, photos: int) -> int:
        """Folds over `photos` labelled photos: `folds` (at most one per photo), or auto."""
        if photos < 2:
            raise WeedsegError(
                f"{photos} labelled farm photo(s): cross-validation needs at least 2"
            )
        if self.folds:
            return min(self.folds, photos)
        return photos if photos <= LEAVE_ONE_OUT_MAX else AUTO_FOLDS

    def stage_seconds(self, finetunes: int) -> tuple[float, float]:
        """(SMS pretraining, each of `finetunes` fine-tunes) seconds of `time`: the fold models
        and the shipped model each get the same share, pretraining the ratio of its steps."""
        steps = self.steps
        total = steps.pretrain_steps + finetunes * steps.finetune_steps
        return self.time * steps.pretrain_steps / total, self.time * steps.finetune_steps / total

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeedsegError(f"unknown retrain config keys: {', '.join(unknown)}")
        return cls(**data)
