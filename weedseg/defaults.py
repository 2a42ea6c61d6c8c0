"""Torch-free defaults that configs and the CLI name: the default network, training choices.

The network and the scale it works at are picked on CWFID validation folds at equal training
time (benchmarks/RESULTS.md, "Fine-tuning recipe ablation", "The default model"): the fastest
candidate within 1 mIoU point of the most accurate one, at most about 8 GFLOP per 512x512 of
photo. unet-mobilenetv3 on half-size photos (24.6 GFLOP at 512x512 of model input, so about 6.2
per 512x512 of photo) beat fpn-mobilenetv3 on full-size ones (6.4) by 1.7 points.
"""

DEFAULT_ARCH = "unet-mobilenetv3"
# the factor by which `weedseg finetune` resizes photos for the model unless told otherwise
DEFAULT_INPUT_SCALE = 0.5

# training precision and memory format choices (weedseg.precision resolves "auto")
PRECISIONS = ("auto", "fp32", "bf16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")

# test-time augmentation (weedseg.tiling.with_tta): "flip" averages each tile's probabilities
# with those of its left-right and upside-down mirrors (nadir field photos have no "up")
TTA_MODES = ("none", "flip")

# fine-tuning losses (weedseg.finetune.losses builds them)
LOSSES = ("ce+dice", "jaccard", "lovasz")
# class weights of the cross-entropy term: auto (inverse sqrt pixel frequency) | none
CLASS_WEIGHTS = ("auto", "none")
