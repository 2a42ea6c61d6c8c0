"""The one config object of `weedseg finetune`, saved as the run's config.yaml."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from weedseg import training_flags as shared
from weedseg.bundle import check_input_scale
from weedseg.config_flags import flag
from weedseg.defaults import (
    CLASS_WEIGHTS,
    DEFAULT_ARCH,
    DEFAULT_INPUT_SCALE,
    LOSSES,
    MEMORY_FORMATS,
    PRECISIONS,
)
from weedseg.errors import WeedsegError
from weedseg.tiling import SIZE_MULTIPLE

INIT_CARRY = ("encoder+decoder", "encoder")  # what --init carries (FinetuneConfig.init_carry)


@dataclass
class FinetuneConfig:
    """Everything that defines a fine-tuning run (its flags are declared on the fields)."""

    # canonical labeled dataset root (dataset.yaml)
    data: str = field(metadata=flag("--data", help="labeled dataset root (dataset.yaml)"))
    out: str = field(metadata=flag("--out", help="run folder"))
    # pretraining run folder or checkpoint, or "none" (random init)
    init: str = field(
        default="none",
        metadata=flag("--init", help="pretraining run or checkpoint, or none (random init)"),
    )
    # what --init carries: every matching tensor but a reconstruction head (the official SMS
    # code's choice), or the encoder only (the decoder starts from random weights)
    init_carry: str = field(
        default="encoder+decoder",
        metadata=flag(
            "--init-carry",
            choices=INIT_CARRY,
            help="what --init carries into the segmenter (default encoder+decoder)",
        ),
    )
    # preset or arch:encoder; None: the init's, else defaults.DEFAULT_ARCH
    arch: str | None = field(
        default=None,
        metadata=flag(
            "--arch",
            help=f"model preset or arch:encoder (default: the init's, else {DEFAULT_ARCH})",
        ),
    )
    # optimizer steps (ignored when epochs or time is set)
    steps: int = field(
        default=1000, metadata=flag("--steps", exclusive="length", help="optimizer steps")
    )
    # wall-clock budget in seconds (`--time 45m`): train until it is spent, the LR schedule
    # fitted to the steps that fit, then validate and save; 0 = train for `steps`
    time: float = field(default=0.0, metadata=shared.time_flag(exclusive="length"))
    # passes over the train images, converted to steps
    epochs: float | None = field(
        default=None,
        metadata=flag(
            "--epochs", exclusive="length", help="passes over the train images (sets steps)"
        ),
    )
    # images per step (per process under torchrun)
    batch: int = field(default=8, metadata=flag("--batch", help="images per step per GPU"))
    # square training crop, multiple of 32
    size: int = field(default=256, metadata=flag("--size", help="training crop size (x32)"))
    # RandomResizedCrop's share of the photo's area per crop; None picks it per photo so plants
    # keep 0.5-1.4x their native pixel size (evaluation and inference run at full resolution;
    # CWFID 1296x966 at 192 px: 0.015-0.117). (0.25, 1.0) squeezes whole photos into the crop.
    crop_scale: tuple[float, float] | None = field(default=None, metadata=shared.CROP_SCALE)
    # the model works on photos resized by this factor: native-scale crops keep plants at
    # input_scale x their size, and validation, evaluation and inference (the bundle) shrink
    # photos by it and resize the probabilities back (0.5: a quarter of the pixels to run)
    input_scale: float = field(
        default=DEFAULT_INPUT_SCALE,
        metadata=flag(
            "--input-scale",
            help="the model works on photos resized by this factor (crops, validation, the "
            f"bundle; 0.5 = a quarter of the pixels; default {DEFAULT_INPUT_SCALE}, the default "
            "model's; 1 for photos whose plants are only a few pixels wide)",
        ),
    )
    # share of training crops centred on a pixel of a rare class (any but class 0, soil): the
    # class uniformly among those in the photo, then one of its pixels (weedseg.data.loaders)
    rare_share: float = field(
        default=0.0,
        metadata=flag(
            "--rare-share",
            help="share of training crops centred on a crop or weed pixel (a class present in "
            "the photo, chosen uniformly, then one of its pixels; default 0: all crops random)",
        ),
    )
    # The training crop sampler. Defaults from issue 17's 4-fold ablation on CWFID's train photos
    # (benchmarks/RESULTS.md, "Fine-tuning recipe ablation"): plain crops at the model's own
    # scale, square, flips only gave +3.9 validation mIoU points (crop IoU +8.2) over zoom
    # 0.5-1.4x, aspect 3/4-4/3 and colour jitter.
    # zoom of a native-scale crop (crop_scale None) relative to the photo at input_scale
    crop_zoom: tuple[float, float] = field(
        default=(1.0, 1.0),
        metadata=flag(
            "--crop-zoom",
            type=shared.ratio_range,
            help="MIN,MAX zoom of native-scale training crops (default 1,1: plants at the size "
            "the model sees them; 0.5,1.4: zoom jitter)",
        ),
    )
    # width/height range of a training crop's box before it is resized to a square (aspect
    # jitter: RandomResizedCrop's default is 3/4-4/3)
    crop_ratio: tuple[float, float] = field(
        default=(1.0, 1.0),
        metadata=flag(
            "--crop-ratio",
            type=shared.ratio_range,
            help="MIN,MAX width/height of a training crop's box before it is resized to a square "
            "(default 1,1: no aspect jitter; 0.75,1.333: RandomResizedCrop's)",
        ),
    )
    # CWFID photos have R == B; jitter moved colours away from what the camera gives
    color_jitter: bool = field(
        default=False,
        metadata=flag(
            "--color-jitter",
            action=argparse.BooleanOptionalAction,
            help="jitter brightness, contrast, saturation and hue of training crops (default off)",
        ),
    )
    # AdamW peak learning rate (linear warmup, cosine decay to 0)
    lr: float = field(default=1e-3, metadata=flag("--lr", help="AdamW peak learning rate"))
    weight_decay: float = field(default=1e-4, metadata=flag("--weight-decay"))
    warmup: int = field(default=50, metadata=flag("--warmup", help="warmup steps"))
    # ce+dice | jaccard | lovasz (weedseg.finetune.losses)
    loss: str = field(
        default="ce+dice",
        metadata=flag(
            "--loss",
            choices=LOSSES,
            help="ce+dice: class-weighted cross-entropy + Dice; jaccard: soft IoU (class-"
            "weighted); lovasz: Lovasz-softmax (unweighted)",
        ),
    )
    # auto (inverse sqrt pixel frequency) | none
    class_weights: str = field(
        default="auto",
        metadata=flag(
            "--class-weights",
            choices=CLASS_WEIGHTS,
            help="auto: 1/sqrt of each class's train pixel frequency (cross-entropy term)",
        ),
    )
    train_split: str = field(default="train", metadata=flag("--train-split"))
    # when missing or empty: a held-out share of the train split
    val_split: str = field(
        default="val",
        metadata=flag("--val-split", help="validation split; if missing, hold out train"),
    )
    # share of train held out when there is no val split; 0: none, no validation, last step kept
    val_share: float = field(
        default=0.2,
        metadata=flag(
            "--val-share",
            help="share of train held out when there is no val split (0: no validation, the "
            "last step is kept)",
        ),
    )
    # train on the whole train split without validation (even with a val split) and keep the
    # last step as checkpoints/best: the final model once a recipe is chosen
    final: bool = field(
        default=False,
        metadata=flag(
            "--final",
            action="store_true",
            help="train on every train image without validation (even with a val split) and "
            "keep the last step: the model to ship once the recipe is chosen",
        ),
    )
    # validate (and save last + resume state) every N steps
    val_every: int = field(default=200, metadata=flag("--val-every", help="validate every N"))
    # validation is full-resolution tiled prediction, as `weedseg evaluate`
    val_tile: int = field(default=512, metadata=flag("--val-tile"))
    val_overlap: int = field(default=64, metadata=flag("--val-overlap"))
    # <1 validates on downscaled images (faster on a CPU)
    val_scale: float = field(
        default=1.0, metadata=flag("--val-scale", help="<1 validates downscaled (faster)")
    )
    # train loss / lr logging period in steps
    log_every: int = field(default=10, metadata=flag("--log-every"))
    # keep checkpoints/step_N every N steps (0: only last and best)
    checkpoint_every: int = field(
        default=0, metadata=flag("--checkpoint-every", help="keep step_N copies")
    )
    seed: int = field(default=0, metadata=flag("--seed"))
    # DataLoader worker processes
    workers: int = field(default=2, metadata=flag("--workers", help="data loader workers"))
    device: str = field(default="auto", metadata=shared.DEVICE)  # auto | cpu | cuda
    # auto (measured, weedseg.precision) | fp32 | bf16 autocast
    precision: str = field(default="auto", metadata=shared.PRECISION)
    # auto (measured) | channels_last | contiguous
    memory_format: str = field(default="auto", metadata=shared.MEMORY_FORMAT)
    # decoded photos and masks at the input scale, memory-mapped (weedseg.data.photo_cache)
    # size limit in GiB; 0 decodes every crop's photo from its file
    cache_gb: float = field(default=8.0, metadata=shared.CACHE_GB)
    cache_dir: str = field(default="", metadata=shared.CACHE_DIR)  # "" = RUN/cache/photos
    # what precision and memory format resolved to, and why (set at the start, kept on resume)
    train_format: dict | None = None
    # continue the run in `out` from checkpoints/last
    resume: bool = field(default=False, metadata=shared.RESUME)

    def __post_init__(self) -> None:
        """Normalise YAML's lists and refuse settings that cannot work, before any data is read."""
        if self.crop_scale is not None:  # YAML gives a list
            self.crop_scale = tuple(float(v) for v in self.crop_scale)
        self.crop_ratio = tuple(float(v) for v in self.crop_ratio)
        self.crop_zoom = tuple(float(v) for v in self.crop_zoom)
        for name, allowed in (
            ("init_carry", INIT_CARRY),
            ("loss", LOSSES),
            ("class_weights", CLASS_WEIGHTS),
            ("precision", PRECISIONS),
            ("memory_format", MEMORY_FORMATS),
        ):
            if getattr(self, name) not in allowed:
                option, choices = f"--{name.replace('_', '-')}", ", ".join(allowed)
                raise WeedsegError(
                    f"{option} must be one of {choices}, got {getattr(self, name)!r}"
                )
        for name in ("size", "val_tile"):
            if getattr(self, name) % SIZE_MULTIPLE:
                raise WeedsegError(
                    f"--{name.replace('_', '-')} must be a multiple of {SIZE_MULTIPLE}"
                )
        for name in ("steps", "batch", "val_every", "log_every"):
            if getattr(self, name) < 1:
                raise WeedsegError(f"--{name.replace('_', '-')} must be at least 1")
        if self.epochs is not None and self.epochs <= 0:
            raise WeedsegError("--epochs must be positive")
        if self.time < 0 or (self.time and self.epochs is not None):
            raise WeedsegError("--time must be positive, and not combined with --epochs")
        for name in ("crop_ratio", "crop_zoom"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise WeedsegError(f"--{name.replace('_', '-')} needs 0 < MIN <= MAX")
        if not 0 <= self.rare_share <= 1:
            raise WeedsegError("--rare-share must be between 0 and 1")
        if self.cache_gb < 0:
            raise WeedsegError("--cache-gb must be 0 (no cache) or more")
        if not 0 <= self.val_share < 1:
            raise WeedsegError("--val-share must be at least 0 (no validation) and below 1")
        check_input_scale(self.input_scale)
