"""Per-image work of `weedseg predict`: decode an input, write its outputs, describe the result.

Shared by the local threaded pipeline and the Ray actors, so both write exactly the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weedseg.atomic import write_atomic
from weedseg.classes import ClassInfo
from weedseg.imageio import read_image, write_image
from weedseg.infer.analysis import weed_instances
from weedseg.infer.prediction import Prediction
from weedseg.infer.render import overlay
from weedseg.predict.config import PredictConfig
from weedseg.predict.sources import SourceItem, inside

WEED_CLASS = "weed"
OUTPUT_SUFFIXES = {
    "mask": ".mask.png",
    "overlay": ".overlay.jpg",
    "geojson": ".weeds.geojson",
}


@dataclass
class LoadedImage:
    item: SourceItem
    image: np.ndarray  # [H, W, 3] uint8 RGB
    gps: dict[str, float] = field(default_factory=dict)


def _to_degrees(value, ref: str | None) -> float:
    """EXIF (degrees, minutes, seconds) rationals -> signed decimal degrees."""
    degrees, minutes, seconds = (float(v) for v in value)
    sign = -1.0 if ref in ("S", "W") else 1.0
    return sign * (degrees + minutes / 60.0 + seconds / 3600.0)


def read_gps(path: Path) -> dict[str, float]:
    """Latitude/longitude (and altitude) from a photo's EXIF GPS block; empty when absent."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "PNG" and "exif" not in image.info:
                return {}  # a PNG's getexif() would decode the whole file to look further
            gps = image.getexif().get_ifd(0x8825)
        if 2 not in gps or 4 not in gps:
            return {}
        result = {"lat": _to_degrees(gps[2], gps.get(1)), "lon": _to_degrees(gps[4], gps.get(3))}
        if 6 in gps:
            result["alt"] = float(gps[6]) * (-1.0 if gps.get(5) in (1, b"\x01") else 1.0)
        return {k: round(v, 7) for k, v in result.items()}
    except Exception:  # noqa: BLE001 - GPS is optional metadata; a bad block means "no GPS"
        return {}


def load_input(item: SourceItem, bands: tuple[int, int, int] | None) -> LoadedImage:
    """Decode one input image (raises ImageReadError naming the file) and its GPS tags."""
    image = read_image(item.path, bands)
    return LoadedImage(item=item, image=image, gps=read_gps(item.path))


def output_path(out: Path, rel: str, kind: str) -> Path:
    """Where output `kind` of the input named `rel` goes; always inside `out`."""
    return inside(out, rel + OUTPUT_SUFFIXES[kind])


def weed_class_id(classes: tuple[ClassInfo, ...]) -> int | None:
    names = [c.name for c in classes]
    return names.index(WEED_CLASS) if WEED_CLASS in names else None


def summary_row(
    item: SourceItem,
    size: tuple[int, int],
    fractions: dict[str, float],
    weed_patches: int,
    gps: dict[str, float],
    ms: float,
) -> dict:
    """One line of summary.csv (class shares in percent)."""
    height, width = size
    row = {"path": str(item.path), "output": item.rel, "width": width, "height": height}
    row.update({f"{name}_pct": round(100.0 * share, 3) for name, share in fractions.items()})
    row.update(
        {
            "weed_patches": weed_patches,
            "lat": gps.get("lat", ""),
            "lon": gps.get("lon", ""),
            "alt": gps.get("alt", ""),
            "ms": round(ms, 1),
        }
    )
    return row


def _instances_geojson(instances: list[dict], gsd_cm: float | None) -> dict:
    """Weed patches as GeoJSON polygons in pixel coordinates (x right, y down)."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [inst["polygon"] + inst["polygon"][:1]]},
            "properties": {
                "id": inst["id"],
                "area_px": inst["area_px"],
                "area_cm2": inst["area_cm2"],
                "centroid": inst["centroid"],
            },
        }
        for inst in instances
        if len(inst["polygon"]) >= 3
    ]
    return {
        "type": "FeatureCollection",
        "properties": {"coordinates": "pixels", "gsd_cm": gsd_cm},
        "features": features,
    }


def write_outputs(
    loaded: LoadedImage,
    prediction: Prediction,
    classes: tuple[ClassInfo, ...],
    config: PredictConfig,
    out: Path,
) -> tuple[dict, list[Path]]:
    """Write the requested outputs of one image atomically; return its summary row and files."""
    rel, labels = loaded.item.rel, prediction.labels
    written = []
    if "mask" in config.save:
        written.append(output_path(out, rel, "mask"))
        write_image(written[-1], labels)
    if "overlay" in config.save:
        written.append(output_path(out, rel, "overlay"))
        write_image(written[-1], overlay(loaded.image, labels, classes))
    weed_id = weed_class_id(classes)
    instances = []
    if weed_id is not None:
        instances = weed_instances(
            labels, weed_id, config.min_patch_px, config.gsd, polygons="geojson" in config.save
        )
    if "geojson" in config.save:
        written.append(output_path(out, rel, "geojson"))
        write_atomic(written[-1], json.dumps(_instances_geojson(instances, config.gsd)))
    ms = sum(prediction.timings_ms.values())
    row = summary_row(
        loaded.item, labels.shape, prediction.fractions, len(instances), loaded.gps, ms
    )
    return row, written
