"""Torch -> ONNX: the model wrapped so the graph returns the class map and softmax probabilities.

Exporter: the TorchScript one (`dynamo=False`), then onnxscript's optimizer (constant folding,
Identity removal). The torch.export-based ("dynamo") exporter gave a tidier graph for a ResNet-18
U-Net, but on a MobileNetV3 U-Net with dynamic H/W it took 113-330 s (symbolic shapes through
timm's TF-"same" padding) against 1.3 s, and could not convert down to opset 17 (it stayed at 18).
On the ResNet-18 U-Net both gave identical class maps in ONNX Runtime. Every operator of the
chosen graph is on TensorRT's supported list (`weedseg.export.trt_compat` checks it on each export).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxscript.optimizer
import torch
from torch import nn

from weedseg.atomic import atomic_path
from weedseg.errors import WeedsegError
from weedseg.tiling import SIZE_MULTIPLE

# Input layouts a bundle can have, and the dtype each one carries.
INPUT_DTYPES = {"NHWC": "uint8", "NCHW": "float32"}
INPUT_NAME = "images"
OUTPUT_NAMES = ("labels", "probs")
MAX_CLASSES = 255  # labels are uint8


@dataclass(frozen=True)
class OnnxOptions:
    """Shape and format of the exported graph."""

    height: int = 512
    width: int = 512
    dynamic: bool = False  # dynamic batch and H/W (multiples of 32) instead of [1, ..., H, W]
    min_size: int = 64
    max_size: int = 1024
    max_batch: int = 8
    opset: int = 17
    layout: str = "NHWC"  # NHWC uint8 (normalised in the graph) or NCHW float32 (normalised)

    def validate(self) -> None:
        if self.layout not in INPUT_DTYPES:
            raise WeedsegError(
                f"input layout must be one of {sorted(INPUT_DTYPES)}, got {self.layout}"
            )
        sizes = {"height": self.height, "width": self.width}
        if self.dynamic:
            sizes |= {"min size": self.min_size, "max size": self.max_size}
        for name, value in sizes.items():
            if value <= 0 or value % SIZE_MULTIPLE:
                raise WeedsegError(f"export {name} must be a positive multiple of 32, got {value}")
        if self.dynamic and not (
            self.min_size
            <= min(self.height, self.width)
            <= max(self.height, self.width)
            <= self.max_size
        ):
            raise WeedsegError(
                f"export size {self.height}x{self.width} must lie within "
                f"--min-size {self.min_size} .. --max-size {self.max_size}"
            )
        if self.dynamic and self.max_batch < 2:
            raise WeedsegError(f"dynamic export needs max batch >= 2, got {self.max_batch}")

    @property
    def dtype(self) -> str:
        return INPUT_DTYPES[self.layout]


class SumMerge(nn.Module):
    """smp FPN's "add" merge as chained Adds: the same sum of the pyramid's four [B, C, H/4, W/4]
    maps. smp writes it `torch.stack(x).sum(0)`, which exports as Unsqueeze + Concat + ReduceSum,
    copying all four maps into one tensor before summing them."""

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        total = maps[0]
        for feature_map in maps[1:]:
            total = total + feature_map
        return total


def with_sum_merges(model: nn.Module) -> nn.Module:
    """`model` with every smp FPN "add" MergeBlock replaced by `SumMerge`, in place.

    Same outputs, bit for bit (the blocks have no weights); ONNX Runtime FP32 on fpn-mobilenetv3
    at 512x512, batch 1, 1 thread: 80.9 -> 77.3 ms (benchmarks/fpn_merge.py, RESULTS.md).
    """
    from segmentation_models_pytorch.decoders.fpn.decoder import MergeBlock

    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, MergeBlock) and child.policy == "add":
                setattr(parent, name, SumMerge())
    return model


class DeployModel(nn.Module):
    """What a bundle's ONNX computes: (normalise) -> model -> (argmax labels, softmax probs)."""

    def __init__(
        self,
        model: nn.Module,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        layout: str,
    ) -> None:
        super().__init__()
        self.model = with_sum_merges(model)
        self.layout = layout
        # uint8 input is 0..255: fold the /255 into the mean and std.
        self.register_buffer("mean255", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std255", 1.0 / (torch.tensor(std).view(1, 3, 1, 1) * 255.0))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.layout == "NHWC":
            # images: [B, H, W, 3] uint8 RGB -> x: [B, 3, H, W] normalised. Cast first:
            # TensorRT takes uint8 only as a network input/output, straight into a Cast.
            x = (images.float().permute(0, 3, 1, 2) - self.mean255) * self.inv_std255
        else:
            x = images  # [B, 3, H, W] float32, already normalised
        logits = self.model(x)  # [B, K, H, W]
        # Softmax over the class axis written as max/exp/sum: ONNX Runtime's Softmax on axis 1
        # transposes the whole map and cost 5x these elementwise ops (weedseg bench profile).
        exp = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        probs = exp / exp.sum(dim=1, keepdim=True)  # [B, K, H, W]
        labels = torch.argmax(logits, dim=1).to(torch.uint8)  # [B, H, W]
        return labels, probs


def example_input(
    layout: str, batch: int, height: int, width: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random input of the bundle's layout and dtype (uint8 pixels or normalised floats)."""
    if layout == "NHWC":
        shape = (batch, height, width, 3)
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return torch.randn((batch, 3, height, width), generator=generator)


def model_input(
    tiles: np.ndarray,
    layout: str,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> np.ndarray:
    """uint8 RGB tiles [N, H, W, 3] -> what the bundle's `images` input takes."""
    if layout == "NHWC":
        return np.ascontiguousarray(tiles, dtype=np.uint8)
    x = (tiles.astype(np.float32) / 255.0 - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # [N, 3, H, W]


def _dynamic_axes(layout: str) -> dict[str, dict[int, str]]:
    """Named dynamic dims for the input and both outputs (unnamed outputs get wrong symbols)."""
    image_axes = (
        {0: "batch", 1: "height", 2: "width"}
        if layout == "NHWC"
        else {
            0: "batch",
            2: "height",
            3: "width",
        }
    )
    return {
        INPUT_NAME: image_axes,
        "labels": {0: "batch", 1: "height", 2: "width"},
        "probs": {0: "batch", 2: "height", 3: "width"},
    }


def export_onnx(deploy: DeployModel, path: str | Path, options: OnnxOptions) -> None:
    """Write `deploy` as ONNX to `path` (input `images`, outputs `labels`, `probs`)."""
    options.validate()
    deploy = deploy.eval()
    example = example_input(options.layout, 1, options.height, options.width)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice and tracer warnings
        torch.onnx.export(
            deploy,
            (example,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            opset_version=options.opset,
            dynamic_axes=_dynamic_axes(options.layout) if options.dynamic else None,
            do_constant_folding=True,
        )
        labels, probs = deploy(example)
    graph = onnxscript.optimizer.optimize(onnx.load_from_string(buffer.getvalue()))
    if not options.dynamic:
        _set_static_output_shapes(graph, {"labels": labels.shape, "probs": probs.shape})
    onnx.checker.check_model(graph, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save(graph, str(tmp))


def _set_static_output_shapes(graph: onnx.ModelProto, shapes: dict[str, torch.Size]) -> None:
    """Write the traced output shapes into a static graph (the tracer leaves padding-dependent
    encoders' outputs with made-up symbols such as one name for batch and height)."""
    for output in graph.graph.output:
        dims = output.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes[output.name], strict=True):
            dim.Clear()
            dim.dim_value = int(size)
