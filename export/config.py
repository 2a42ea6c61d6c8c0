"""The one configuration object of `weedseg export` (torch-free, so the CLI stays light)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from weedseg.config_flags import flag

DEFAULT_TIMING_CACHE = Path.home() / ".cache" / "weedseg" / "tensorrt.timing.cache"


@dataclass
class ExportConfig:
    """Everything `weedseg export` needs; printed and stored in the bundle's manifest (flags
    declared on the fields)."""

    # a model path with a training checkpoint (weedseg.model_paths)
    source: str = field(
        metadata=flag(
            "source",
            metavar="RUN_OR_CHECKPOINT",
            help="fine-tuning run folder or checkpoint (or, with --check alone, a bundle to check)",
        )
    )
    # bundle folder (the command refuses a missing --out unless it checks a bundle)
    out: str = field(metadata=flag("--out", required=False, help="bundle folder to write"))
    imgsz: int = field(
        default=512, metadata=flag("--imgsz", help="export size and tile size (x32)")
    )
    dynamic: bool = field(
        default=False,
        metadata=flag(
            "--dynamic",
            action="store_true",
            help="dynamic batch and H/W (x32) instead of [1,H,W]",
        ),
    )
    min_size: int = field(
        default=64, metadata=flag("--min-size", help="smallest side with --dynamic")
    )
    max_size: int = field(
        default=1024, metadata=flag("--max-size", help="largest side with --dynamic")
    )
    max_batch: int = field(
        default=8, metadata=flag("--max-batch", help="largest batch with --dynamic")
    )
    opset: int = field(default=17, metadata=flag("--opset", help="ONNX opset (default 17)"))
    layout: str = field(
        default="NHWC",
        metadata=flag(
            "--layout",
            choices=["NHWC", "NCHW"],
            help="input: NHWC uint8 normalised in the graph (default, measured faster) or NCHW "
            "float32 normalised by the caller",
        ),
    )
    # model name in the manifest (default: the run folder's name)
    name: str | None = field(
        default=None,
        metadata=flag("--name", help="model name in the manifest (default: the run's name)"),
    )
    # checkpoint of a run: best / last (default: best, else last)
    which: str | None = field(
        default=None,
        metadata=flag("--which", choices=["best", "last"], help="checkpoint of a run folder"),
    )
    # images for the ONNX check (default: --calib, else synthetic)
    verify: str | None = field(
        default=None,
        metadata=flag(
            "--verify",
            help="images for the ONNX vs PyTorch check: a folder or a dataset's test split "
            "(default: the first --calib, else synthetic)",
        ),
    )
    verify_n: int = field(default=8, metadata=flag("--verify-n", help="images for that check"))
    int8: bool = field(
        default=False,
        metadata=flag("--int8", action="store_true", help="add a static QDQ INT8 model"),
    )
    # folders and/or weedseg datasets
    calib: list[str] = field(
        default_factory=list,
        metadata=flag(
            "--calib",
            nargs="+",
            metavar="DIR_OR_DATASET",
            help="INT8 calibration images: folders and/or weedseg datasets (their train split)",
        ),
    )
    calib_n: int = field(
        default=300, metadata=flag("--calib-n", help="calibration images (min 50)")
    )
    # cpu / tensorrt (default: tensorrt with --tensorrt int8)
    int8_target: str | None = field(
        default=None,
        metadata=flag(
            "--int8-target",
            choices=["cpu", "tensorrt"],
            help="tune INT8 for ONNX Runtime on CPU or for TensorRT (default: tensorrt with "
            "--tensorrt int8, else cpu)",
        ),
    )
    # labeled dataset for the mIoU delta (default: --calib's)
    int8_eval: str | None = field(
        default=None,
        metadata=flag(
            "--int8-eval",
            help="labeled dataset whose test (else val) split measures the INT8 mIoU delta "
            "(default: the first labeled --calib dataset)",
        ),
    )
    # labeled images for the INT8 mIoU delta
    int8_eval_n: int = field(
        default=100,
        metadata=flag("--int8-eval-n", help="labeled images for the INT8 mIoU delta"),
    )
    # precisions: fp32 / fp16 / int8
    tensorrt: list[str] = field(
        default_factory=list,
        metadata=flag(
            "--tensorrt",
            nargs="+",
            metavar="PRECISION",
            help="build TensorRT engines: fp32, fp16 and/or int8 (needs TensorRT on this machine)",
        ),
    )
    workspace_mb: int = field(
        default=2048, metadata=flag("--workspace-mb", help="TensorRT workspace limit")
    )
    timing_cache: str = field(
        default=str(DEFAULT_TIMING_CACHE),
        metadata=flag("--timing-cache", help="TensorRT timing cache file (reused across builds)"),
    )
    # fail when TensorRT could not build the graph or profile
    check: bool = field(
        default=False,
        metadata=flag(
            "--check",
            action="store_true",
            help="fail unless TensorRT can build the graph and its optimisation profile",
        ),
    )
    # the runtime's default merge of tiles: blend | stitch
    tile_merge: str = field(
        default="blend",
        metadata=flag(
            "--tile-merge",
            choices=["blend", "stitch"],
            help="the bundle's default merge of overlapping tiles (stitch: faster, cuts plants "
            "at tile borders)",
        ),
    )
    # the runtime's default: one class per plant region
    plant_vote: bool = field(
        default=False,
        metadata=flag(
            "--plant-vote",
            action="store_true",
            help="the bundle's default: one class per plant region (callers can still ask "
            "either way)",
        ),
    )
    force: bool = field(
        default=False,
        metadata=flag("--force", action="store_true", help="replace an existing bundle"),
    )

    @property
    def resolved_int8_target(self) -> str:
        if self.int8_target:
            return self.int8_target
        return "tensorrt" if "int8" in self.tensorrt else "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
