"""Torch-free defaults that configs and the CLI name: the default network, training choices.

The network is picked by the default-model table in benchmarks/RESULTS.md: the fastest candidate
within 1 CWFID mIoU point of the most accurate one, at most about 8 GFLOP at 512x512.
"""

DEFAULT_ARCH = "fpn-mobilenetv3"

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
