"""Peak memory of `weedseg predict` on a synthetic orthomosaic far larger than one window.

Writes a SIZE x SIZE 3-band GeoTIFF (tiled, deflate; default 20000 x 20000 = 1.2 GB of pixels),
runs `weedseg predict ortho.tif --save mask,csv,geojson` in a child process and reports its peak
resident memory (ru_maxrss), the run time, and that the class map has the input's CRS/transform.
The model is the tiny colour-rule bundle of the tests unless --model names a real bundle: this
measures the windowed pipeline, not the network.

    .venv/bin/python benchmarks/ortho_memory.py --size 20000 --work /tmp/ortho-bench
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))


def write_orthomosaic(path: Path, size: int, block: int = 2048) -> None:
    """A field-like GeoTIFF (soil, crop and weed discs) written window by window."""
    import rasterio
    from bundles import field_image
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5000000.0, 0.01, 0.01),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "BIGTIFF": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                image = field_image(h, w, seed=row * size + col)
                dst.write(np.moveaxis(image, -1, 0), window=Window(col, row, w, h))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/weedseg-ortho-bench"))
    parser.add_argument("--model", type=Path, help="bundle (default: the tests' colour rule)")
    parser.add_argument("--tile", type=int, default=512)
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    ortho = args.work / f"ortho{args.size}.tif"
    if not ortho.is_file():
        t0 = time.perf_counter()
        write_orthomosaic(ortho, args.size)
        seconds = time.perf_counter() - t0
        print(f"wrote {ortho} ({ortho.stat().st_size / 1e6:.0f} MB) in {seconds:.0f}s")
    model = args.model
    if model is None:
        from bundles import build_colour_bundle

        model = build_colour_bundle(args.work / "bundle", tile=args.tile, overlap=64)
    out = args.work / "out"
    command = [
        sys.executable,
        "-m",
        "weedseg",
        "predict",
        str(ortho),
        "--model",
        str(model),
        "--out",
        str(out),
        "--save",
        "mask,csv,geojson",
        "--tile",
        str(args.tile),
    ]
    t0 = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.stdout.strip())
    if result.returncode != 0:
        sys.exit(f"predict failed ({result.returncode}):\n{result.stderr[-2000:]}")

    import rasterio

    with rasterio.open(ortho) as src, rasterio.open(out / f"{ortho.stem}.classes.tif") as dst:
        same = src.crs == dst.crs and src.transform == dst.transform
    print(
        f"orthomosaic {args.size}x{args.size} ({args.size**2 * 3 / 1e9:.2f} GB of RGB): "
        f"peak RSS {peak_mb:.0f} MB, {elapsed:.0f}s, class map CRS/transform match: {same}"
    )


if __name__ == "__main__":
    main()
