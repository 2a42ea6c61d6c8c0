"""GeoTIFF orthomosaics: windowed class map, weed polygons and prescription grid that add up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundles import build_colour_bundle, field_image

from weedseg.predict import PredictConfig, geo, run_predict

rasterio = pytest.importorskip("rasterio")
shapely_geometry = pytest.importorskip("shapely.geometry")

PIXEL_M = 0.01  # 1 cm per pixel
CRS = "EPSG:32633"


def _orthomosaic(path: Path, height: int = 600, width: int = 760) -> None:
    from rasterio.transform import from_origin

    image = field_image(height, width, seed=11)
    image[:60, :80] = 0  # no-data corner
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 3,
        "dtype": "uint8",
        "crs": CRS,
        "transform": from_origin(500000.0, 5000000.0, PIXEL_M, PIXEL_M),
        "nodata": 0,
        "tiled": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))


def _features(path: Path) -> list:
    collection = json.loads(path.read_text())
    assert collection["crs"]["properties"]["name"] == CRS
    return collection["features"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_colour_bundle(tmp_path_factory.mktemp("bundle"))


def _run(tmp_path: Path, bundle: Path, name: str) -> Path:
    out = tmp_path / name
    config = PredictConfig(
        source=str(tmp_path / "ortho.tif"),
        model=str(bundle),
        out=str(out),
        save=("mask", "csv", "geojson", "geotiff"),
        grid_m=0.5,
        spray_threshold=5.0,
        min_polygon_m2=0.0,
    )
    assert run_predict(config) == 0
    return out


def test_orthomosaic_outputs_add_up(tmp_path, bundle, monkeypatch) -> None:
    _orthomosaic(tmp_path / "ortho.tif")
    monkeypatch.setattr(geo, "BLOCK", 256)  # many windows: pieces must be merged across them
    out = _run(tmp_path, bundle, "small-windows")

    with (
        rasterio.open(tmp_path / "ortho.tif") as src,
        rasterio.open(out / "ortho.classes.tif") as m,
    ):
        assert m.crs == src.crs and m.transform == src.transform
        assert (m.width, m.height) == (src.width, src.height)
        assert m.profile["tiled"] and m.profile["compress"] == "deflate"
        classes = m.read(1)
    assert (classes[:60, :80] == geo.NODATA).all()
    weed_m2 = float((classes == 2).sum()) * PIXEL_M**2
    assert weed_m2 > 0

    polygons = _features(out / "ortho.weeds.geojson")
    shapes = [shapely_geometry.shape(f["geometry"]) for f in polygons]
    assert all(s.is_valid and s.geom_type == "Polygon" for s in shapes)
    assert sum(f["properties"]["area_m2"] for f in polygons) == pytest.approx(weed_m2, rel=1e-6)
    assert sum(s.area for s in shapes) == pytest.approx(weed_m2, rel=0.02)

    cells = _features(out / "ortho.grid.geojson")
    grid = [shapely_geometry.shape(f["geometry"]) for f in cells]
    assert all(g.is_valid for g in grid)
    assert max(g.area for g in grid) == pytest.approx(0.25)
    assert sum(f["properties"]["weed_area_m2"] for f in cells) == pytest.approx(weed_m2, rel=1e-6)
    for cell in cells:
        props = cell["properties"]
        assert props["spray"] == (props["weed_cover_pct"] > 5.0)
    assert any(c["properties"]["spray"] for c in cells)
    assert not all(c["properties"]["spray"] for c in cells)

    (row,) = list(_summary(out))
    assert int(row["weed_patches"]) == len(polygons)
    assert 44 < float(row["lat"]) < 46

    monkeypatch.setattr(geo, "BLOCK", 4096)  # one window: same map, same patches
    whole = _run(tmp_path, bundle, "one-window")
    with rasterio.open(whole / "ortho.classes.tif") as m:
        assert (m.read(1) == classes).mean() > 0.999
    assert len(_features(whole / "ortho.weeds.geojson")) == len(polygons)


def _summary(out: Path):
    import csv

    return csv.DictReader((out / "summary.csv").open(encoding="utf-8"))


def test_geographic_crs_is_refused(tmp_path, bundle) -> None:
    from rasterio.transform import from_origin

    path = tmp_path / "latlon.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=64,
        width=64,
        count=3,
        dtype="uint8",
        crs="EPSG:4326",
        transform=from_origin(15.0, 45.0, 1e-7, 1e-7),
    ) as dst:
        dst.write(np.moveaxis(field_image(64, 64), -1, 0))
    out = tmp_path / "out"
    config = PredictConfig(source=str(path), model=str(bundle), out=str(out))
    assert run_predict(config) == 1
    assert "projected CRS" in (out / "errors.csv").read_text()
