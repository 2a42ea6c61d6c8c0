"""Compact encoder-decoder segmenters (segmentation-models-pytorch, no downloaded weights).

Networks are smp models or torchvision's LR-ASPP (`lraspp-mobilenetv3`), all random init.
One network serves both tasks: pretraining builds it with 3 output channels (the reconstructed
RGB image), segmentation swaps only the head for K class logits (`replace_head`), so every other
weight carries over.

    spec = spec_from_name("unet-mobilenetv3-lite")
    model = build_model(spec, out_channels=3)          # x: [N, 3, H, W] -> [N, 3, H, W]
    replace_head(model, out_channels=K)                # head swapped: K class logits
    count_gflops(model, size=512)                      # forward cost at 512x512
"""

from weedseg.models.flops import count_gflops
from weedseg.models.spec import (
    PRESETS,
    SIZE_MULTIPLE,
    ModelSpec,
    build_model,
    check_input_size,
    class_head_prefixes,
    head_classes,
    replace_head,
    spec_from_name,
)

__all__ = [
    "PRESETS",
    "SIZE_MULTIPLE",
    "ModelSpec",
    "build_model",
    "check_input_size",
    "class_head_prefixes",
    "count_gflops",
    "head_classes",
    "replace_head",
    "spec_from_name",
]
