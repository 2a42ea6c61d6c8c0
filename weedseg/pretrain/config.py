"""Every knob of a pretraining run, in one dataclass saved as the run's config.yaml.

The defaults are the paper's recipe (arXiv 2512.06981): U-Net ResNet34, 256 px crops, 12 px
patches, 50% masked with the mean colour, whole-image L1 + (1 - MS-SSIM), selective masks from
the previous step's model over 10 partitions, Adam 3e-3 with warm-up and cosine decay to 1%.
The CNN-style alternatives (32 px stride-aligned patches, masked-only loss with per-patch
normalised targets, SparK masked convolution, no colour jitter, easy-to-hard mixing) are fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from weedseg.defaults import MEMORY_FORMATS, PRECISIONS
from weedseg.errors import WeedsegError

MASKINGS = ("random", "selective")
SCHEDULES = ("paper", "online")
LOSSES = ("paper", "masked")


@dataclass
class PretrainConfig:
    images: str = ""
    out: str = ""
    arch: str = ""  # preset or arch:encoder; "" = the --init checkpoint's, else DEFAULT_ARCH
    # masking
    masking: str = "selective"  # random | selective
    schedule: str = "paper"  # paper | online (selective masking only)
    mask_ratio: float = 0.5
    patch: int = 12  # mask unit in pixels at the training size (32 = encoder stride)
    # selective masking: the share of masked patches chosen by difficulty (rest random)
    selected_share: float = 1.0
    ramp: bool = False  # easy-to-hard: share grows linearly from 0 to selected_share
    partitions: int = 10  # paper schedule: interleaved partitions, one per step
    online_refresh: int = 0  # online: 0 = score each batch, N = rescore the whole pool every N
    score_masks: int = 5  # random 50% masks averaged per difficulty map
    score_size: int = 0  # long side at which whole images are scored; 0 = 1.25 x size
    # objective
    loss: str = "paper"  # paper: whole-image L1 + (1 - MS-SSIM) | masked: L1 on masked pixels
    norm_target: bool = False  # masked loss against per-patch normalised targets
    sparse: bool = False  # SparK-style masked convolution in the encoder
    # data
    size: int = 256
    crop_scale: tuple[float, float] | None = None  # area share per crop; None: native scale
    color_jitter: bool = True
    workers: int = 2
    # decoded photos, memory-mapped (weedseg.data.photo_cache); 0 GiB = decode every crop
    cache_gb: float = 8.0
    cache_dir: str = ""  # "" = RUN/cache/photos
    # optimisation
    steps: int = 0  # optimizer steps in total; 0 = from epochs or time
    epochs: float = 0.0  # passes over the pool (paper schedule: over each partition)
    # wall-clock budget in seconds (`--time 45m`), split evenly over the paper schedule's
    # partitions, each phase's LR cycle fitted to the steps that fit in its share; 0 = none
    time: float = 0.0
    batch: int = 8  # per process
    lr: float = 3e-3
    warmup: float = 0.05  # share of each LR cycle spent warming up
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.0
    # run
    device: str = "auto"
    precision: str = "auto"  # auto (measured, weedseg.precision) | fp32 | bf16 autocast
    memory_format: str = "auto"  # auto (measured) | channels_last | contiguous
    train_format: dict | None = None  # what those resolved to (set at the start, kept on resume)
    seed: int = 0
    init: str = ""  # continue pretraining from a weedseg checkpoint or run
    resume: bool = False
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.crop_scale is not None:
            self.crop_scale = tuple(float(s) for s in self.crop_scale)  # YAML gives a list
        for name, value, allowed in (
            ("masking", self.masking, MASKINGS),
            ("schedule", self.schedule, SCHEDULES),
            ("loss", self.loss, LOSSES),
            ("precision", self.precision, PRECISIONS),
            ("memory format", self.memory_format, MEMORY_FORMATS),
        ):
            if value not in allowed:
                raise WeedsegError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise WeedsegError(f"mask ratio must be in (0, 1), got {self.mask_ratio}")
        if not 0.0 <= self.selected_share <= 1.0:
            raise WeedsegError(f"selected share must be in [0, 1], got {self.selected_share}")
        if self.size % 32:
            raise WeedsegError(f"--size must be a multiple of 32, got {self.size}")
        if self.patch < 1 or self.patch > self.size:
            raise WeedsegError(f"--patch must be between 1 and --size, got {self.patch}")
        if self.norm_target and self.loss != "masked":
            raise WeedsegError("norm_target needs loss 'masked'")
        if self.steps <= 0 and self.epochs <= 0 and self.time <= 0:
            raise WeedsegError("give a budget: --steps N, --epochs E or --time DURATION")
        if self.time < 0 or (self.time > 0 and (self.steps > 0 or self.epochs > 0)):
            raise WeedsegError("--time is a budget of its own: give it without --steps/--epochs")
        if self.cache_gb < 0:
            raise WeedsegError("--cache-gb must be 0 (no cache) or more")

    @property
    def partitioned(self) -> bool:
        """True for the paper's iterative schedule (selective masking over partitions)."""
        return self.masking == "selective" and self.schedule == "paper"

    @property
    def working_size(self) -> int:
        """Long side (multiple of 32) at which whole images are scored for difficulty."""
        size = self.score_size or round(self.size * 1.25)
        return max(32, round(size / 32) * 32)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeedsegError(f"unknown pretraining config keys: {', '.join(unknown)}")
        return cls(**data)
