"""The one config object of `weedseg evaluate` (torch-free, so the CLI reads its flags quickly)."""

from __future__ import annotations

from dataclasses import dataclass, field

from weedseg.bundle import check_input_scale
from weedseg.config_flags import flag
from weedseg.defaults import TTA_MODES
from weedseg.errors import WeedsegError
from weedseg.tiling import SIZE_MULTIPLE


@dataclass
class EvaluateConfig:
    """Everything `weedseg evaluate` needs; saved in report.json (flags declared on the fields)."""

    # a model path with a training checkpoint (weedseg.model_paths): run, checkpoint, retrain
    # run, registry version, or a bundle whose checkpoint is still on disk
    model: str = field(
        metadata=flag(
            "--model",
            help="fine-tuning run folder or checkpoint; also a retrain run folder, a registry "
            "version or a bundle whose checkpoint is on this machine",
        )
    )
    # canonical labeled dataset root
    data: str = field(metadata=flag("--data", help="labeled dataset root (dataset.yaml)"))
    split: str = field(
        default="test", metadata=flag("--split", help="split to evaluate (default: test)")
    )
    out: str = field(
        default="runs/evaluate",
        metadata=flag("--out", required=True, help="report folder to write"),
    )
    # model input window; larger images are cut into overlapping tiles
    tile: int = field(default=512, metadata=flag("--tile", help="sliding-window size (x32)"))
    overlap: int = field(default=64, metadata=flag("--overlap", help="window overlap in pixels"))
    batch: int = field(default=4, metadata=flag("--batch", help="windows per forward pass"))
    # resize images (and masks, nearest) before evaluation; 1.0 = full res
    scale: float = field(
        default=1.0,
        metadata=flag("--scale", help="resize images first (1.0 = full resolution)"),
    )
    # the model's working scale; None: the checkpoint's own
    input_scale: float | None = field(
        default=None,
        metadata=flag(
            "--input-scale",
            help="resize images by this factor for the model, score at full resolution "
            "(default: the checkpoint's own, from weedseg finetune --input-scale)",
        ),
    )
    # one class per plant region, as `weedseg predict --plant-vote`
    plant_vote: bool = field(
        default=False,
        metadata=flag(
            "--plant-vote",
            action="store_true",
            help="score the class map after the plant vote (one class per plant region)",
        ),
    )
    # test-time augmentation (weedseg.defaults.TTA_MODES), as `predict --tta`
    tta: str = field(
        default="none",
        metadata=flag(
            "--tta",
            choices=TTA_MODES,
            help="test-time augmentation: flip averages each tile with its two mirror images "
            "(3x the model time), as weedseg predict --tta",
        ),
    )
    # how many worst images get an overlay
    worst: int = field(default=4, metadata=flag("--worst", help="overlays of the N worst images"))
    # checkpoint of a run folder: best | last (None: best if any)
    which: str | None = field(
        default=None,
        metadata=flag("--which", choices=["best", "last"], help="checkpoint of a run folder"),
    )
    device: str = field(default="auto", metadata=flag("--device", choices=["auto", "cpu", "cuda"]))
    # replace an existing report folder
    force: bool = field(
        default=False,
        metadata=flag("--force", action="store_true", help="replace an existing report folder"),
    )
    progress: bool = True  # progress bar over the images

    def __post_init__(self) -> None:
        """Refuse tiling settings that cannot work, before loading anything."""
        if self.tile % SIZE_MULTIPLE or self.tile < SIZE_MULTIPLE:
            raise WeedsegError(f"--tile must be a positive multiple of {SIZE_MULTIPLE}")
        if not 0 <= self.overlap < self.tile:
            raise WeedsegError("--overlap must be at least 0 and smaller than --tile")
        if self.batch < 1 or self.scale <= 0 or self.worst < 0:
            raise WeedsegError("--batch must be at least 1, --scale positive, --worst not negative")
        if self.input_scale is not None:
            check_input_scale(self.input_scale)
        if self.tta not in TTA_MODES:
            raise WeedsegError(f"--tta must be one of {', '.join(TTA_MODES)}, got {self.tta!r}")
