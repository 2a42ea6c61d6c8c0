"""Masked-image pretraining (Selective Masking, arXiv 2512.06981) of a segmentation network.

    from weedseg.pretrain import PretrainConfig, pretrain
    cfg = PretrainConfig(images="photos/", out="runs/pre", arch="unet-mobilenetv3-lite",
                         steps=2000, batch=8, patch=32, loss="masked", norm_target=True)
    result = pretrain(cfg)          # RUN/checkpoints/last.* is the pretrained model
    # later: weedseg.checkpoint.transfer_weights(segmenter, "runs/pre")

Modules: `config` (every knob), `schedule` (phases, LR, costs of each schedule), `engine` (one
training step), `losses`, `sparse` (SparK-style masked convolution), `selection` (cached
difficulty maps), `data` (a phase's crops with their maps), `strip` (the PNG), `loop` (the
steps), `trainer` (the run's set-up).
"""

from typing import Any

from weedseg.pretrain.config import PretrainConfig

__all__ = ["PretrainConfig", "PretrainResult", "pretrain"]


def __getattr__(name: str) -> Any:
    """`pretrain` and `PretrainResult` load the trainer (torch) on first use, so the CLI reads
    PretrainConfig's flags where torch is not installed."""
    if name in ("PretrainResult", "pretrain"):
        from weedseg.pretrain import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
