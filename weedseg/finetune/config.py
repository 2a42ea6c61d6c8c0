"""The one config object of `weedseg finetune`, saved as the run's config.yaml."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FinetuneConfig:
    """Everything that defines a fine-tuning run (CLI flags map one to one)."""

    data: str  # canonical labeled dataset root (dataset.yaml)
    out: str  # run folder
    init: str = "none"  # pretraining run folder or checkpoint, or "none" (random init)
    arch: str | None = None  # preset or arch:encoder; None: the init's, else defaults.DEFAULT_ARCH
    steps: int = 1000  # optimizer steps (ignored when epochs or time is set)
    # wall-clock budget in seconds (`--time 45m`): train until it is spent, the LR schedule
    # fitted to the steps that fit, then validate and save; 0 = train for `steps`
    time: float = 0.0
    epochs: float | None = None  # passes over the train images, converted to steps
    batch: int = 8  # images per step (per process under torchrun)
    size: int = 256  # square training crop, multiple of 32
    # RandomResizedCrop's share of the photo's area per crop; None picks it per photo so plants
    # keep 0.5-1.4x their native pixel size (evaluation and inference run at full resolution;
    # CWFID 1296x966 at 192 px: 0.015-0.117). (0.25, 1.0) squeezes whole photos into the crop.
    crop_scale: tuple[float, float] | None = None
    # the model works on photos resized by this factor: native-scale crops keep plants at
    # input_scale x their size, and validation, evaluation and inference (the bundle) shrink
    # photos by it and resize the probabilities back (0.5: a quarter of the pixels to run)
    input_scale: float = 1.0
    # share of training crops centred on a pixel of a rare class (any but class 0, soil): the
    # class uniformly among those in the photo, then one of its pixels (weedseg.data.loaders)
    rare_share: float = 0.0
    # width/height range of a training crop's box before it is resized to a square (aspect
    # jitter; RandomResizedCrop's default, (1, 1) for none)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    color_jitter: bool = True  # brightness/contrast/saturation/hue jitter of training crops
    lr: float = 1e-3  # AdamW peak learning rate (linear warmup, cosine decay to 0)
    weight_decay: float = 1e-4
    warmup: int = 50  # warmup steps
    loss: str = "ce+dice"  # ce+dice | jaccard | lovasz (weedseg.finetune.losses)
    class_weights: str = "auto"  # auto (inverse sqrt pixel frequency) | none
    train_split: str = "train"
    val_split: str = "val"  # when missing or empty: a held-out share of the train split
    # share of train held out when there is no val split; 0: none, no validation, last step kept
    val_share: float = 0.2
    # train on the whole train split without validation (even with a val split) and keep the
    # last step as checkpoints/best: the final model once a recipe is chosen
    final: bool = False
    val_every: int = 200  # validate (and save last + resume state) every N steps
    val_tile: int = 512  # validation is full-resolution tiled prediction, as `weedseg evaluate`
    val_overlap: int = 64
    val_scale: float = 1.0  # <1 validates on downscaled images (faster on a CPU)
    log_every: int = 10  # train loss / lr logging period in steps
    checkpoint_every: int = 0  # keep checkpoints/step_N every N steps (0: only last and best)
    seed: int = 0
    workers: int = 2  # DataLoader worker processes
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (measured, weedseg.precision) | fp32 | bf16 autocast
    memory_format: str = "auto"  # auto (measured) | channels_last | contiguous
    # decoded photos and masks at the input scale, memory-mapped (weedseg.data.photo_cache)
    cache_gb: float = 8.0  # size limit in GiB; 0 decodes every crop's photo from its file
    cache_dir: str = ""  # "" = RUN/cache/photos
    # what precision and memory format resolved to, and why (set at the start, kept on resume)
    train_format: dict | None = None
    resume: bool = False  # continue the run in `out` from checkpoints/last

    def __post_init__(self) -> None:
        if self.crop_scale is not None:  # YAML gives a list
            self.crop_scale = tuple(float(v) for v in self.crop_scale)
        self.crop_ratio = tuple(float(v) for v in self.crop_ratio)
