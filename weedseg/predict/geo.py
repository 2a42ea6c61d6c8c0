"""Georeferenced outputs for GeoTIFF orthomosaics of any size (rasterio + shapely, imported lazily).

The orthomosaic is read in windows (a core block plus a halo of context) and never held whole:
- `<name>.classes.tif`: the class map with the input's CRS and transform, tiled and
  deflate-compressed, 255 where the input has no data;
- `<name>.weeds.geojson`: weed regions as polygons (pixel-exact, merged across windows, then
  simplified by one pixel) with `area_m2`; polygons under `min_polygon_m2` (default 25 cm2) are
  dropped as specks;
- `<name>.grid.geojson`: the prescription grid: square cells of `grid_m` metres from the
  raster's top-left corner with `weed_cover_pct` (weed share of the cell's valid pixels),
  `weed_area_m2` and `spray` (cover above `spray_threshold` %), what a variable-rate sprayer or
  farm software imports.
GeoJSON coordinates are in the raster's (projected, metric) CRS, named in the `crs` member.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np

from weedseg.atomic import atomic_path, write_atomic
from weedseg.errors import WeedsegError
from weedseg.imageio import to_rgb8
from weedseg.infer.predictor import Predictor
from weedseg.predict.config import PredictConfig
from weedseg.predict.outputs import summary_row, weed_class_id
from weedseg.predict.sources import SourceItem, inside

NODATA = 255
BLOCK = 2048  # core window side in pixels; memory ~ BLOCK^2 * (classes * 8 + 16) bytes
GDAL_CACHE_MB = 256  # GDAL's block cache defaults to 5% of RAM; bound it, windows do the work
GEO_SUFFIXES = {
    "classes": ".classes.tif",
    "weeds": ".weeds.geojson",
    "grid": ".grid.geojson",
}


def is_georeferenced(path: Path) -> bool:
    """A TIFF that rasterio opens and that carries a CRS."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        import rasterio
    except ImportError:
        return False
    try:
        with rasterio.open(path) as dataset:
            return dataset.crs is not None
    except Exception:  # not readable by GDAL: the plain image path reports the problem
        return False


class _Grid:
    """Per-cell weed and valid pixel counts of the prescription grid."""

    def __init__(self, height: int, width: int, cell_px: tuple[float, float]) -> None:
        self.cell_px = cell_px  # (x, y) pixels per cell, may be fractional
        self.shape = (math.ceil(height / cell_px[1]), math.ceil(width / cell_px[0]))
        self.weed = np.zeros(self.shape, dtype=np.int64)
        self.valid = np.zeros(self.shape, dtype=np.int64)

    def add(self, row: int, col: int, weed: np.ndarray, valid: np.ndarray) -> None:
        """Count a window's pixels into cells, by each pixel's centre."""
        rows = ((np.arange(weed.shape[0]) + row + 0.5) // self.cell_px[1]).astype(np.int64)
        cols = ((np.arange(weed.shape[1]) + col + 0.5) // self.cell_px[0]).astype(np.int64)
        cells = (rows[:, None] * self.shape[1] + cols[None, :]).ravel()
        size = self.shape[0] * self.shape[1]
        self.weed += (
            np.bincount(cells, weights=weed.ravel(), minlength=size)
            .reshape(self.shape)
            .astype(np.int64)
        )
        self.valid += (
            np.bincount(cells, weights=valid.ravel(), minlength=size)
            .reshape(self.shape)
            .astype(np.int64)
        )


def _feature_collection(features: list[dict], crs) -> dict:
    name = crs.to_string() if crs is not None else None
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": name}},
        "features": features,
    }


def _grid_features(grid: _Grid, transform, pixel_area_m2: float, config: PredictConfig, size):
    """One GeoJSON polygon per grid cell that holds valid pixels."""
    from shapely.affinity import affine_transform
    from shapely.geometry import box, mapping

    height, width = size
    matrix = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
    features = []
    for i, j in zip(*np.nonzero(grid.valid), strict=True):
        x0, y0 = j * grid.cell_px[0], i * grid.cell_px[1]
        x1, y1 = min((j + 1) * grid.cell_px[0], width), min((i + 1) * grid.cell_px[1], height)
        cover = 100.0 * grid.weed[i, j] / grid.valid[i, j]
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(affine_transform(box(x0, y0, x1, y1), matrix)),
                "properties": {
                    "row": int(i),
                    "col": int(j),
                    "weed_cover_pct": round(float(cover), 3),
                    "weed_area_m2": round(float(grid.weed[i, j] * pixel_area_m2), 6),
                    "spray": bool(cover > config.spray_threshold),
                },
            }
        )
    return features


class _PolygonWriter:
    """Streams weed polygons (pixel coordinates in, map coordinates out) into a GeoJSON file as
    they are found, so memory does not grow with their number; counts them either way."""

    def __init__(self, file, crs, transform, pixel_area_m2: float, min_area_m2: float) -> None:
        self.file = file
        self.matrix = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
        self.pixel_area_m2 = pixel_area_m2
        self.min_area_m2 = min_area_m2
        self.count = 0
        if file is not None:
            header = json.dumps(_feature_collection([], crs))
            file.write(header[: header.rindex("[") + 1])

    def add(self, polygon) -> None:
        """Keep a polygon of at least the minimum area, simplified by one pixel."""
        from shapely.affinity import affine_transform
        from shapely.geometry import mapping

        area_m2 = polygon.area * self.pixel_area_m2  # pixel-space area: exact pixel counts
        if area_m2 < self.min_area_m2:
            return
        self.count += 1
        if self.file is None:
            return
        simplified = polygon.simplify(1.0, preserve_topology=True)
        feature = {
            "type": "Feature",
            "geometry": mapping(affine_transform(simplified, self.matrix)),
            "properties": {"id": self.count, "area_m2": round(area_m2, 6)},
        }
        self.file.write(("," if self.count > 1 else "") + json.dumps(feature))

    def merge_row(self, pending: list, pieces: list, bottom: int | None) -> list:
        """Merge pieces cut by window borders; write the regions that are complete and return
        those still reaching `bottom`, the edge to the next row of windows (None: last row)."""
        from shapely import unary_union

        if not pieces and not pending:
            return []
        union = unary_union(pending + pieces)
        still_open = []
        for polygon in getattr(union, "geoms", [union]):
            if bottom is not None and polygon.bounds[3] >= bottom:
                still_open.append(polygon)
            else:
                self.add(polygon)
        return still_open

    def close(self) -> None:
        if self.file is not None:
            self.file.write("]}")


def _read_rgb(src, window, bands: tuple[int, int, int] | None) -> np.ndarray:
    """A window of the orthomosaic as HxWx3 uint8 RGB."""
    indexes = [b + 1 for b in bands] if bands else list(range(1, min(src.count, 3) + 1))
    data = src.read(indexes, window=window)  # [C, h, w]
    return to_rgb8(np.moveaxis(data, 0, -1))


def _weed_pieces(weed: np.ndarray, row: int, col: int, size: tuple[int, int]):
    """Polygons of a window's weed pixels in global pixel coordinates, split into those inside
    the window and those touching a window edge shared with a neighbour (to be merged)."""
    from rasterio import Affine
    from rasterio.features import shapes
    from shapely.geometry import shape

    height, width = size
    h, w = weed.shape
    inner, edge = [], []
    offset = Affine.translation(col, row)
    for geometry, _ in shapes(weed.astype(np.uint8), mask=weed, transform=offset):
        polygon = shape(geometry)
        x0, y0, x1, y1 = polygon.bounds
        cut = (y0 == row > 0) or (x0 == col > 0) or (y1 == row + h < height)
        (edge if cut or (x1 == col + w < width) else inner).append(polygon)
    return inner, edge


def _predict_window(src, core, predictor: Predictor, config: PredictConfig, timings: dict):
    """Class map [h, w] of one core window (predicted with a halo of context around it) and its
    valid-pixel mask; no-data pixels get NODATA. Adds the prediction's timings to `timings`."""
    from rasterio.windows import Window

    halo = max(predictor.tiling.overlap, 32)
    top, left = max(core.row_off - halo, 0), max(core.col_off - halo, 0)
    bottom = min(core.row_off + core.height + halo, src.height)
    right = min(core.col_off + core.width + halo, src.width)
    window = Window(left, top, right - left, bottom - top)
    prediction = predictor.predict(_read_rgb(src, window, config.bands))
    for key in timings:
        timings[key] += prediction.timings_ms[key]
    y0, x0 = core.row_off - top, core.col_off - left
    labels = prediction.labels[y0 : y0 + core.height, x0 : x0 + core.width]
    valid = src.dataset_mask(window=core) > 0
    return np.where(valid, labels, NODATA).astype(np.uint8), valid


def predict_orthomosaic(
    item: SourceItem, predictor: Predictor, config: PredictConfig, out: Path
) -> tuple[dict, list[Path], dict[str, float]]:
    """Segment a GeoTIFF window by window; write the requested georeferenced outputs."""
    import rasterio
    from rasterio.warp import transform as warp_transform
    from rasterio.windows import Window

    timings = {"pre": 0.0, "inference": 0.0, "post": 0.0}
    weed_id = weed_class_id(predictor.classes)
    write_vectors = "geojson" in config.save
    paths = {k: inside(out, item.rel + suffix) for k, suffix in GEO_SUFFIXES.items()}
    written = []
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
        rasterio.open(item.path) as src,
        contextlib.ExitStack() as stack,
    ):
        if src.crs is None or src.crs.is_geographic:
            raise WeedsegError(
                f"{item.path}: needs a projected CRS in metres (e.g. UTM) to measure areas; "
                "reproject it first (gdalwarp -t_srs EPSG:326xx)"
            )
        unit = src.crs.linear_units_factor[1]
        res_x, res_y = abs(src.res[0]) * unit, abs(src.res[1]) * unit  # metres per pixel
        pixel_area_m2 = res_x * res_y
        height, width = src.height, src.width
        grid = _Grid(height, width, (config.grid_m / res_x, config.grid_m / res_y))
        counts = np.zeros(predictor.num_classes, dtype=np.int64)
        dst = None
        if "mask" in config.save or "geotiff" in config.save:
            tmp_map = stack.enter_context(atomic_path(paths["classes"]))
            dst = stack.enter_context(rasterio.open(tmp_map, "w", **_map_profile(src)))
            written.append(paths["classes"])
        weeds_file = None
        if write_vectors:
            weeds_file = stack.enter_context(
                stack.enter_context(atomic_path(paths["weeds"])).open("w", encoding="utf-8")
            )
            written.append(paths["weeds"])
        polygons = _PolygonWriter(
            weeds_file, src.crs, src.transform, pixel_area_m2, config.min_polygon_m2
        )
        pending: list = []  # weed regions that may continue into the next row of windows
        for row in range(0, height, BLOCK):
            h, row_pieces = min(BLOCK, height - row), []
            for col in range(0, width, BLOCK):
                core_window = Window(col, row, min(BLOCK, width - col), h)
                core, valid = _predict_window(src, core_window, predictor, config, timings)
                t0 = time.perf_counter()
                if dst is not None:
                    dst.write(core, 1, window=core_window)
                counts += np.bincount(core[valid], minlength=len(counts))[: len(counts)]
                if weed_id is not None:
                    weed = core == weed_id
                    grid.add(row, col, weed, valid)
                    if weed.any():
                        inner, edge = _weed_pieces(weed, row, col, (height, width))
                        for polygon in inner:
                            polygons.add(polygon)
                        row_pieces += edge
                timings["post"] += (time.perf_counter() - t0) * 1000
            last = row + h >= height
            pending = polygons.merge_row(pending, row_pieces, None if last else row + h)
        polygons.close()
        transform, crs = src.transform, src.crs
        centre = transform @ (width / 2, height / 2)
        lon, lat = warp_transform(crs, "EPSG:4326", [centre[0]], [centre[1]])
    t0 = time.perf_counter()
    if write_vectors:
        grid_features = _grid_features(grid, transform, pixel_area_m2, config, (height, width))
        write_atomic(paths["grid"], json.dumps(_feature_collection(grid_features, crs)))
        written.append(paths["grid"])
    timings["post"] += (time.perf_counter() - t0) * 1000
    total_valid = max(int(counts.sum()), 1)
    fractions = {
        c.name: int(n) / total_valid for c, n in zip(predictor.classes, counts, strict=True)
    }
    gps = {"lat": round(lat[0], 7), "lon": round(lon[0], 7)}
    row = summary_row(item, (height, width), fractions, polygons.count, gps, sum(timings.values()))
    return row, written, timings


def _map_profile(src) -> dict:
    """The class map GeoTIFF: same grid and CRS as the input, one tiled deflate uint8 band."""
    return {
        "driver": "GTiff",
        "height": src.height,
        "width": src.width,
        "count": 1,
        "dtype": "uint8",
        "crs": src.crs,
        "transform": src.transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
