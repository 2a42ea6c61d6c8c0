"""Every knob of a pretraining run, in one dataclass saved as the run's config.yaml.

The defaults are the paper's recipe (arXiv 2512.06981) on the default model at its input scale:
256 px crops, 12 px patches, 50% masked with the mean colour, whole-image L1 + (1 - MS-SSIM),
selective masks from the previous step's model over 10 partitions, Adam 3e-3 with warm-up and
cosine decay to 1% (the paper's network is U-Net ResNet-34, `--arch unet-resnet34`).
The CNN-style alternatives (32 px stride-aligned patches, masked-only loss with per-patch
normalised targets, SparK masked convolution, no colour jitter, easy-to-hard mixing) are fields.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from weedseg import training_flags as shared
from weedseg.bundle import check_input_scale
from weedseg.config_flags import flag
from weedseg.defaults import DEFAULT_ARCH, DEFAULT_INPUT_SCALE, MEMORY_FORMATS, PRECISIONS
from weedseg.errors import WeedsegError

MASKINGS = ("random", "selective")
SCHEDULES = ("paper", "online")
LOSSES = ("paper", "masked")


KNOBS = "experiment knobs"  # the help section of the flags most runs leave alone
KNOBS_HELP = "more fields (score_size, crop_scale, warmup, ...) via --config"


def _knob(name: str, text: str | None = None, **options) -> dict:
    """A flag listed under the experiment knobs."""
    return flag(name, group=KNOBS, help=text, **options)


def _switch(name: str, text: str) -> dict:
    """An on/off experiment knob: --name / --no-name."""
    return _knob(name, text, action=argparse.BooleanOptionalAction)


@dataclass
class PretrainConfig:
    """Every knob of a pretraining run; the common ones and the experiment knobs have flags."""

    images: str = field(
        default="", metadata=flag("--images", help="folder of images (searched recursively)")
    )
    out: str = field(
        default="", metadata=flag("--out", required=True, help="run folder to create (or resume)")
    )
    # preset or arch:encoder; "" = the --init checkpoint's, else DEFAULT_ARCH
    arch: str = field(
        default="",
        metadata=flag(
            "--arch",
            help=f"model preset or arch:encoder (default: the --init's, else {DEFAULT_ARCH})",
        ),
    )
    # masking
    masking: str = field(default="selective", metadata=flag("--masking", choices=MASKINGS))
    # paper | online (selective masking only)
    schedule: str = field(default="paper", metadata=flag("--schedule", choices=SCHEDULES))
    mask_ratio: float = field(
        default=0.5, metadata=flag("--mask-ratio", help="share of patches masked (0.5)")
    )
    # mask unit in pixels at the training size (32 = encoder stride)
    patch: int = field(
        default=12, metadata=flag("--patch", help="mask unit in pixels (12; 32 = encoder stride)")
    )
    # selective masking: the share of masked patches chosen by difficulty (rest random)
    selected_share: float = field(
        default=1.0,
        metadata=_knob("--selected-share", "share of masked patches by difficulty"),
    )
    # easy-to-hard: share grows linearly from 0 to selected_share
    ramp: bool = field(
        default=False,
        metadata=_switch("--ramp", "easy-to-hard: the selected share grows from 0 (off)"),
    )
    # paper schedule: interleaved partitions, one per step
    partitions: int = field(
        default=10, metadata=_knob("--partitions", "paper schedule partitions (10)")
    )
    # online: 0 = score each batch, N = rescore the whole pool every N
    online_refresh: int = field(
        default=0, metadata=_knob("--online-refresh", "0: score each batch; N: pool every N")
    )
    # random masks at mask_ratio (the ratio the run trains at) averaged per difficulty map
    score_masks: int = field(
        default=5, metadata=_knob("--score-masks", "random masks per difficulty map (5)")
    )
    score_size: int = 0  # long side at which whole images are scored; 0 = 1.25 x size
    # objective
    # paper: whole-image L1 + (1 - MS-SSIM) | masked: L1 on masked pixels
    loss: str = field(
        default="paper",
        metadata=_knob("--loss", "paper: L1 + (1 - MS-SSIM)", choices=LOSSES),
    )
    # masked loss against per-patch normalised targets
    norm_target: bool = field(
        default=False,
        metadata=_switch("--norm-target", "masked loss against per-patch normalised targets (off)"),
    )
    # SparK-style masked convolution in the encoder
    sparse: bool = field(
        default=False,
        metadata=_switch("--sparse", "SparK-style masked convolution in the encoder (off)"),
    )
    # data
    size: int = field(
        default=256, metadata=flag("--size", help="crop side in pixels, multiple of 32 (256)")
    )
    crop_scale: tuple[float, float] | None = None  # area share per crop; None: native scale
    # the scale the fine-tuned model will see photos at (finetune --input-scale): native-scale
    # crops keep plants at input_scale x their size, and the photo cache holds them at it
    input_scale: float = field(
        default=DEFAULT_INPUT_SCALE,
        metadata=flag(
            "--input-scale",
            help="pretrain on photos resized by this factor: the --input-scale the model will be "
            f"fine-tuned at (default {DEFAULT_INPUT_SCALE}, the default model's)",
        ),
    )
    color_jitter: bool = field(
        default=True, metadata=_switch("--color-jitter", "colour jitter on the crops (on)")
    )
    workers: int = field(default=2, metadata=_knob("--workers", "data loading processes (2)"))
    # decoded photos, memory-mapped (weedseg.data.photo_cache); 0 GiB = decode every crop
    cache_gb: float = field(default=8.0, metadata=shared.CACHE_GB)
    cache_dir: str = field(default="", metadata=shared.CACHE_DIR)  # "" = RUN/cache/photos
    # optimisation
    # optimizer steps in total; 0 = from epochs or time
    steps: int = field(
        default=0, metadata=flag("--steps", exclusive="budget", help="optimizer steps in total")
    )
    # passes over the pool (paper schedule: over each partition)
    epochs: float = field(
        default=0.0,
        metadata=flag(
            "--epochs", exclusive="budget", help="passes over the images (per partition)"
        ),
    )
    # wall-clock budget in seconds (`--time 45m`), split evenly over the paper schedule's
    # partitions, each phase's LR cycle fitted to the steps that fit in its share; 0 = none
    time: float = field(default=0.0, metadata=shared.time_flag(exclusive="budget"))
    # per process
    batch: int = field(
        default=8, metadata=flag("--batch", help="crops per step per process (default 8)")
    )
    lr: float = field(default=3e-3, metadata=_knob("--lr"))
    warmup: float = 0.05  # share of each LR cycle spent warming up
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.0
    # run
    device: str = field(default="auto", metadata=shared.DEVICE)
    # auto (measured, weedseg.precision) | fp32 | bf16 autocast
    precision: str = field(default="auto", metadata=shared.PRECISION)
    # auto (measured) | channels_last | contiguous
    memory_format: str = field(default="auto", metadata=shared.MEMORY_FORMAT)
    train_format: dict | None = None  # what those resolved to (set at the start, kept on resume)
    seed: int = field(default=0, metadata=flag("--seed"))
    # continue pretraining from a weedseg checkpoint or run
    init: str = field(
        default="", metadata=flag("--init", help="start from this weedseg checkpoint or run folder")
    )
    resume: bool = field(default=False, metadata=shared.RESUME)
    log_every: int = field(default=10, metadata=_knob("--log-every"))
    image_every: int = field(
        default=200, metadata=_knob("--image-every", "write a reconstruction strip every N")
    )
    checkpoint_every: int = field(default=500, metadata=_knob("--checkpoint-every"))

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
        check_input_scale(self.input_scale)
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
        if not self.images:
            raise WeedsegError("--images is required")

    @property
    def partitioned(self) -> bool:
        """True for the paper's iterative schedule (selective masking over partitions)."""
        return self.masking == "selective" and self.schedule == "paper"

    @property
    def working_size(self) -> int:
        """Long side (multiple of 32) at which whole images are scored for difficulty."""
        size = self.score_size or round(self.size * 1.25)
        return max(32, round(size / 32) * 32)
