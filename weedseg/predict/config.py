"""The one configuration object of `weedseg predict`, printed and saved with every run."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields

from weedseg.bundle import check_input_scale
from weedseg.defaults import TTA_MODES
from weedseg.errors import WeedsegError

SAVE_CHOICES = ("mask", "overlay", "csv", "geojson", "geotiff")
# fields that choose what to read, where to write or how fast, never what an output holds; every
# other field is an output setting a resumed run must share with the records it skips
RUN_ONLY_FIELDS = (
    "source", "model", "out", "save", "batch", "workers", "resume", "force", "include",
    "exclude", "providers", "threads", "streams", "ray",
)  # fmt: skip


@dataclass(frozen=True)
class PredictConfig:
    source: str
    model: str
    out: str
    save: tuple[str, ...] = ("mask", "overlay", "csv")
    tile: int | None = None  # default: the bundle's tile size
    overlap: int | None = None
    batch: int = 4  # tiles (or small images) per model call
    workers: int = 2  # decode threads; as many writer threads
    resume: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    gsd: float | None = None  # cm per pixel, for plain images (GeoTIFFs carry their own)
    bands: tuple[int, int, int] | None = None  # 0-based RGB bands of multi-band inputs
    providers: str = "auto"
    int8: bool = False
    threads: int | None = None  # ONNX Runtime CPU threads per stream (default: cores / streams)
    input_scale: float | None = None  # resize photos by this for the model; None: the bundle's
    streams: int | None = None  # images in the model at once (default: see stream_count)
    plant_vote: bool | None = None  # one class per plant region; None: the bundle's default
    tta: str = "none"  # test-time augmentation (weedseg.defaults.TTA_MODES)
    min_patch_px: int = 16  # smallest weed patch counted in summary.csv / geojson (pixels)
    min_polygon_m2: float = 0.0025  # GeoTIFF: weed polygons smaller than this (25 cm2) dropped
    grid_m: float = 1.0  # GeoTIFF: prescription grid cell size in metres
    spray_threshold: float = 1.0  # GeoTIFF: weed cover % of a cell above which it is sprayed
    ray: str | None = None  # Ray address ("local" starts one here)
    force: bool = False  # --resume redoes images made with another model or output settings

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
