"""The one configuration object of `weedseg export` (torch-free, so the CLI stays light)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMING_CACHE = Path.home() / ".cache" / "weedseg" / "tensorrt.timing.cache"


@dataclass
class ExportConfig:
    """Everything `weedseg export` needs; printed and stored in the bundle's manifest."""

    source: str  # a model path with a training checkpoint (weedseg.model_paths)
    out: str  # bundle folder
    imgsz: int = 512
    dynamic: bool = False
    min_size: int = 64
    max_size: int = 1024
    max_batch: int = 8
    opset: int = 17
    layout: str = "NHWC"
    name: str | None = None  # model name in the manifest (default: the run folder's name)
    which: str | None = None  # checkpoint of a run: best / last (default: best, else last)
    verify: str | None = None  # images for the ONNX check (default: --calib, else synthetic)
    verify_n: int = 8
    int8: bool = False
    calib: list[str] = field(default_factory=list)  # folders and/or weedseg datasets
    calib_n: int = 300
    int8_target: str | None = None  # cpu / tensorrt (default: tensorrt with --tensorrt int8)
    int8_eval: str | None = None  # labeled dataset for the mIoU delta (default: --calib's)
    int8_eval_n: int = 100  # labeled images for the INT8 mIoU delta
    tensorrt: list[str] = field(default_factory=list)  # precisions: fp32 / fp16 / int8
    workspace_mb: int = 2048
    timing_cache: str = str(DEFAULT_TIMING_CACHE)
    check: bool = False  # fail when TensorRT could not build the graph or profile
    tile_merge: str = "blend"  # the runtime's default merge of tiles: blend | stitch
    plant_vote: bool = False  # the runtime's default: one class per plant region
    force: bool = False

    @property
    def resolved_int8_target(self) -> str:
        if self.int8_target:
            return self.int8_target
        return "tensorrt" if "int8" in self.tensorrt else "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
