"""The bundle manifest, assembled from a checkpoint's metadata and what the export measured."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from weedseg.export.onnx_export import OnnxOptions

from weedseg import __version__
from weedseg.bundle import ClassEntry, InputSpec, Manifest, TileSpec
from weedseg.checkpoint import CheckpointMeta
from weedseg.errors import WeedsegError

TILE_OVERLAP_FRACTION = 8  # default overlap = tile size / 8 (64 px at 512)


def input_spec(options: OnnxOptions) -> InputSpec:
    """What the ONNX input accepts; a static graph takes exactly [1, H, W] (one image tile)."""
    if options.dynamic:
        sizes = {"min_size": options.min_size, "max_size": options.max_size}
        max_batch = options.max_batch
    else:
        sizes = {"min_size": min(options.height, options.width)}
        sizes["max_size"] = max(options.height, options.width)
        max_batch = 1
    return InputSpec(
        layout=options.layout,
        dtype=options.dtype,
        height=options.height,
        width=options.width,
        dynamic=options.dynamic,
        max_batch=max_batch,
        **sizes,
    )


def producer_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {
        "weedseg": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "exporter": "torch.onnx (TorchScript, dynamo=False) + onnxscript optimizer",
    }


def checkpoint_classes(meta: CheckpointMeta, num_outputs: int, path: Path) -> list[ClassEntry]:
    """The checkpoint's classes, which must match the model's number of outputs."""
    if not meta.classes:
        raise WeedsegError(f"{path}: checkpoint metadata has no classes; export a fine-tuned model")
    entries = [ClassEntry(name=c.name, color=tuple(c.color)) for c in meta.classes]
    if len(entries) != num_outputs:
        raise WeedsegError(
            f"{path}: metadata lists {len(entries)} classes but the model has {num_outputs} outputs"
        )
    return entries


def build_manifest(
    *,
    model_name: str,
    arch: dict[str, Any],
    classes: list[ClassEntry],
    meta: CheckpointMeta,
    options: OnnxOptions,
    provenance: dict[str, Any],
    verification: dict[str, Any],
    tile_merge: str = "blend",
    plant_vote: bool = False,
) -> Manifest:
    """The manifest before file hashes (`weedseg.bundle.write_manifest` adds those)."""
    tile = max(options.height, options.width)
    return Manifest(
        model_name=model_name,
        arch=arch,
        classes=classes,
        mean=tuple(meta.mean),
        std=tuple(meta.std),
        input=input_spec(options),
        outputs=["labels", "probs"],
        tile=TileSpec(size=tile, overlap=tile // TILE_OVERLAP_FRACTION, merge=tile_merge),
        input_scale=float(meta.input_scale),
        plant_vote=plant_vote,
        opset=options.opset,
        producer=producer_versions(),
        provenance=provenance,
        metrics=dict(meta.metrics or {}),
        verification=verification,
    )
