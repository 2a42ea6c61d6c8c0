"""Masked-image pretraining (Selective Masking, arXiv 2512.06981) of a segmentation network.

    from weedseg.pretrain import PretrainConfig, pretrain
    cfg = PretrainConfig(images="photos/", out="runs/pre", arch="unet-mobilenetv3-lite",
                         steps=2000, batch=8, patch=32, loss="masked", norm_target=True)
    result = pretrain(cfg)          # RUN/checkpoints/last.* is the pretrained model
    # later: weedseg.checkpoint.transfer_weights(segmenter, "runs/pre")

Modules: `config` (every knob), `schedule` (phases, LR, costs of each schedule), `engine` (one
training step), `losses`, `sparse` (SparK-style masked convolution), `selection` (cached
difficulty maps), `strip` (the PNG), `trainer` (the run).
"""

from weedseg.pretrain.config import PretrainConfig
from weedseg.pretrain.trainer import PretrainResult, pretrain

__all__ = ["PretrainConfig", "PretrainResult", "pretrain"]
