"""`weedseg predict`: batch segmentation of image folders and orthomosaics with a model bundle.

Outputs under OUT mirror the input tree (`field/day2/img.jpg` -> `OUT/day2/img.*`):
- `<name>.mask.png`: class-index PNG (0 soil, 1 crop, 2 weed for the default classes);
- `<name>.overlay.jpg`: class colours over the photo;
- `<name>.weeds.geojson` (`--save geojson`): weed patches as polygons in pixel coordinates,
  with `area_cm2` when `--gsd` is given;
- for GeoTIFF orthomosaics: `<name>.classes.tif`, `<name>.weeds.geojson` (map coordinates,
  `area_m2`) and `<name>.grid.geojson` (the prescription grid), see `weedseg.predict.geo`;
- `summary.csv` (one row per image: size, class %, weed patches, EXIF GPS, ms), `errors.csv`
  (path, reason), `predict.yaml` (every run's configuration and model, oldest first) and
  `.weedseg/records/` (what `--resume` reads: an input is skipped when its outputs exist, the
  file is unchanged and the same model made them with the same output settings; failed inputs
  are retried; another model or settings is refused unless `--force`, which redoes them).
Images under OUT are never read as inputs, so OUT may sit inside the source folder.
"""

from typing import Any

from weedseg.predict.config import PredictConfig

__all__ = ["PredictConfig", "run_predict"]


def __getattr__(name: str) -> Any:
    """`run_predict` loads the runners (ONNX Runtime, OpenCV) on first use, so the CLI reads
    PredictConfig's flags quickly."""
    if name == "run_predict":
        from weedseg.predict.run import run_predict

        return run_predict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
