"""The one configuration object of `weedseg predict`, printed and saved with every run."""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, asdict, dataclass, field, fields

from weedseg.bundle import check_input_scale
from weedseg.config_flags import flag
from weedseg.defaults import TTA_MODES
from weedseg.errors import WeedsegError

SAVE_CHOICES = ("mask", "overlay", "csv", "geojson", "geotiff")
# fields that choose what to read, where to write or how fast, never what an output holds; every
# other field is an output setting a resumed run must share with the records it skips
RUN_ONLY_FIELDS = (
    "source", "model", "out", "save", "batch", "workers", "resume", "force", "include",
    "exclude", "providers", "threads", "streams", "ray",
)  # fmt: skip


def csv_list(text: str) -> tuple[str, ...]:
    """`--save mask,overlay`: the comma-separated names."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def band_indices(text: str) -> tuple[int, int, int]:
    """`--bands 3,2,1`: three 0-based band indices."""
    bands = tuple(int(b) for b in csv_list(text))
    if len(bands) != 3 or min(bands) < 0:
        raise argparse.ArgumentTypeError("give three 0-based band indices, e.g. 0,1,2 or 3,2,1")
    return bands  # type: ignore[return-value]


@dataclass(frozen=True)
class PredictConfig:
    """Everything `weedseg predict` needs (its flags are declared on the fields)."""

    source: str = field(
        metadata=flag("source", help="image file, folder (recursive), glob or text file of paths")
    )
    model: str = field(metadata=flag("--model", help="model bundle folder (weedseg export)"))
    out: str = field(metadata=flag("--out", help="output folder (mirrors the input tree)"))
    save: tuple[str, ...] = field(
        default=("mask", "overlay", "csv"),
        metadata=flag(
            "--save",
            type=csv_list,
            help="outputs: mask,overlay,csv,geojson,geotiff (default mask,overlay,csv)",
        ),
    )
    # default: the bundle's tile size
    tile: int | None = field(
        default=None, metadata=flag("--tile", help="tile size (default: the bundle's)")
    )
    overlap: int | None = field(
        default=None,
        metadata=flag("--overlap", help="tile overlap in pixels (default: bundle's)"),
    )
    # tiles (or small images) per model call
    batch: int = field(default=4, metadata=flag("--batch", help="tiles per model call (default 4)"))
    # decode threads; as many writer threads
    workers: int = field(
        default=2,
        metadata=flag(
            "--workers", help="decode/write threads, or Ray actors with --ray (default 2)"
        ),
    )
    resume: bool = field(
        default=False,
        metadata=flag(
            "--resume",
            action="store_true",
            help="skip images already finished by the same model with the same output "
            "settings (failed ones are retried)",
        ),
    )
    include: tuple[str, ...] = field(
        default=(), metadata=flag("--include", action="append", help="keep matching globs")
    )
    exclude: tuple[str, ...] = field(
        default=(), metadata=flag("--exclude", action="append", help="drop matching globs")
    )
    # cm per pixel, for plain images (GeoTIFFs carry their own)
    gsd: float | None = field(
        default=None,
        metadata=flag("--gsd", help="ground sampling distance of plain images, cm/px"),
    )
    # 0-based RGB bands of multi-band inputs
    bands: tuple[int, int, int] | None = field(
        default=None,
        metadata=flag(
            "--bands",
            type=band_indices,
            help="0-based bands used as R,G,B for multi-band inputs (default: the first three)",
        ),
    )
    providers: str = field(
        default="auto",
        metadata=flag(
            "--providers",
            help="auto (bundle's TensorRT engine > TensorRT EP > CUDA EP > CPU), "
            "tensorrt-engine, or a list such as cuda,cpu",
        ),
    )
    int8: bool = field(
        default=False,
        metadata=flag("--int8", action="store_true", help="run the bundle's INT8 model"),
    )
    # ONNX Runtime CPU threads per stream (default: cores / streams)
    threads: int | None = field(
        default=None,
        metadata=flag(
            "--threads", help="ONNX Runtime CPU threads per stream (default: cores/streams)"
        ),
    )
    # resize photos by this for the model; None: the bundle's
    input_scale: float | None = field(
        default=None,
        metadata=flag(
            "--input-scale",
            help="resize photos by this factor for the model (default: the bundle's; e.g. 2 "
            "for photos from twice the height the model was trained at)",
        ),
    )
    # images in the model at once (default: see stream_count)
    streams: int | None = field(
        default=None,
        metadata=flag(
            "--streams",
            help="images in the model at once, each its own ONNX Runtime run "
            "(default: 2 on a CPU-only machine with 2-4 cores, else 1)",
        ),
    )
    # one class per plant region; None: the bundle's default
    plant_vote: bool | None = field(
        default=None,
        metadata=flag(
            "--plant-vote",
            action=argparse.BooleanOptionalAction,
            help="one class per plant: each connected plant region (up to 1%% of the frame) "
            "takes its most probable class; weed patches and polygons follow (default: the "
            "bundle's)",
        ),
    )
    # test-time augmentation (weedseg.defaults.TTA_MODES)
    tta: str = field(
        default="none",
        metadata=flag(
            "--tta",
            choices=TTA_MODES,
            help="test-time augmentation: flip averages each tile with its left-right and "
            "upside-down mirrors (3x the model time; default none)",
        ),
    )
    # smallest weed patch counted in summary.csv / geojson (pixels)
    min_patch_px: int = field(
        default=16, metadata=flag("--min-patch-px", help="smallest weed patch counted (pixels)")
    )
    # GeoTIFF: weed polygons smaller than this (25 cm2) dropped
    min_polygon_m2: float = field(
        default=0.0025,
        metadata=flag(
            "--min-polygon-m2",
            help="GeoTIFF: drop weed polygons smaller than this (m2, default 0.0025 = 25 cm2)",
        ),
    )
    # GeoTIFF: prescription grid cell size in metres
    grid_m: float = field(
        default=1.0,
        metadata=flag("--grid", help="GeoTIFF: prescription grid cell size in metres"),
    )
    # GeoTIFF: weed cover % of a cell above which it is sprayed
    spray_threshold: float = field(
        default=1.0,
        metadata=flag(
            "--spray-threshold",
            help="GeoTIFF: spray a grid cell when its weed cover %% is above this (default 1.0)",
        ),
    )
    # Ray address ("local" starts one here)
    ray: str | None = field(
        default=None,
        metadata=flag(
            "--ray",
            nargs="?",
            const="local",
            metavar="ADDRESS",
            help="run on Ray (an actor pool); no ADDRESS starts a local Ray instance "
            "(put SOURCE before --ray)",
        ),
    )
    # --resume redoes images made with another model or output settings
    force: bool = field(
        default=False,
        metadata=flag(
            "--force",
            action="store_true",
            help="with --resume, redo images made by another model or other output settings "
            "(else such a resume is refused)",
        ),
    )

    def __post_init__(self) -> None:
        unknown = set(self.save) - set(SAVE_CHOICES)
        if unknown:
            choices = ", ".join(SAVE_CHOICES)
            raise WeedsegError(
                f"--save: unknown output(s) {sorted(unknown)}; choose from {choices}"
            )
        if self.batch < 1 or self.workers < 1 or (self.streams is not None and self.streams < 1):
            raise WeedsegError("--batch, --workers and --streams must be at least 1")
        if self.input_scale is not None:
            check_input_scale(self.input_scale)
        if self.gsd is not None and self.gsd <= 0:
            raise WeedsegError(f"--gsd must be positive (cm per pixel), got {self.gsd}")
        if self.tta not in TTA_MODES:
            raise WeedsegError(f"--tta must be one of {', '.join(TTA_MODES)}, got {self.tta!r}")
        if self.grid_m <= 0:
            raise WeedsegError(f"grid cell size must be positive, got {self.grid_m}")

    def to_dict(self) -> dict:
        return asdict(self)

    def output_settings(self) -> dict:
        """The settings that shape the outputs, as JSON values (what records are compared on)."""
        plain = json.loads(json.dumps(self.to_dict()))
        return {k: v for k, v in plain.items() if k not in RUN_ONLY_FIELDS}


def default_output_settings() -> dict:
    """Every output setting at its default, as JSON values: what a record written before a
    setting existed was made with (records are compared on `PredictConfig.output_settings`)."""
    defaults = {
        f.name: f.default
        for f in fields(PredictConfig)
        if f.name not in RUN_ONLY_FIELDS and f.default is not MISSING
    }
    return json.loads(json.dumps(defaults))
