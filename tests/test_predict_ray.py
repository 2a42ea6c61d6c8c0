"""`weedseg predict --ray`: the actor-pool run writes the same outputs as the local run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from bundles import build_colour_bundle, field_image

from weedseg.imageio import write_image
from weedseg.predict import PredictConfig, run_predict

ray = pytest.importorskip("ray")


def _rows(out: Path) -> list[dict]:
    rows = list(csv.DictReader((out / "summary.csv").open(encoding="utf-8")))
    return [{k: v for k, v in r.items() if k != "ms"} for r in rows]


@pytest.mark.slow
def test_ray_output_equals_local_output(tmp_path) -> None:
    bundle = build_colour_bundle(tmp_path / "bundle")
    folder = tmp_path / "field"
    for i in range(4):
        write_image(folder / f"plot{i % 2}" / f"img{i}.jpg", field_image(90, 120, seed=i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    save = ("mask", "overlay", "csv", "geojson")
    local = tmp_path / "local"
    assert run_predict(PredictConfig(str(folder), str(bundle), str(local), save=save)) == 1
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = tmp_path / "ray"
        config = PredictConfig(str(folder), str(bundle), str(remote), save=save, ray="local")
        assert run_predict(config) == 1
    finally:
        ray.shutdown()
    assert _rows(remote) == _rows(local) and len(_rows(local)) == 4
    assert (remote / "errors.csv").read_text() == (local / "errors.csv").read_text()
    for path in local.rglob("*.*"):
        if path.suffix in (".png", ".geojson"):
            assert (remote / path.relative_to(local)).read_bytes() == path.read_bytes(), path
