"""Pipeline overhead of `weedseg predict`: a folder of CWFID-size images vs the bare model.

1. Bare model: ONNX Runtime `session.run` on ready-made input tiles (tile x tile, batch B, the
   bundle's own input type), no decoding, no pre/post-processing: tiles/s, converted to images/s
   with the number of tiles one 1296x966 image needs.
2. Pipeline: `run_predict` on a folder of N images (CWFID photos cycled, or synthetic ones when
   the dataset is absent), writing masks, overlays and summary.csv: images/s.
Ratio = pipeline / bare (the issue asks >= 0.90). The model is the bundle given by --model, or
a randomly initialised preset exported on the spot (speed does not depend on the weights).

    .venv/bin/python benchmarks/predict_throughput.py --images 200 --preset unet-mobilenetv3-lite
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
CWFID = REPO_ROOT.parent / "shared" / "datasets" / "cwfid" / "images"
CWFID_SIZE = (966, 1296)  # height, width


def export_preset(preset: str, root: Path, layout: str, tile: int) -> Path:
    """A bundle with a randomly initialised preset model (uses torch; only for this benchmark)."""
    import torch
    from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx

    from weedseg.bundle import InputSpec, Manifest, TileSpec, write_manifest
    from weedseg.classes import DEFAULT_CLASSES
    from weedseg.models import build_model, spec_from_name

    torch.manual_seed(0)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model = build_model(spec_from_name(preset), len(DEFAULT_CLASSES))
    options = OnnxOptions(height=tile, width=tile, dynamic=True, max_size=2048, layout=layout)
    root.mkdir(parents=True, exist_ok=True)
    export_onnx(DeployModel(model, mean, std, layout), root / "model.onnx", options)
    manifest = Manifest(
        model_name=f"{preset}-random",
        classes=[{"name": c.name, "color": c.color} for c in DEFAULT_CLASSES],
        mean=mean,
        std=std,
        input=InputSpec(layout=layout, dtype=options.dtype, height=tile, width=tile, dynamic=True),
        outputs=["labels", "probs"],
        tile=TileSpec(size=tile, overlap=64),
    )
    write_manifest(root, manifest, ["model.onnx"])
    return root


def make_folder(root: Path, count: int, suffix: str | None = None) -> Path:
    """`count` CWFID-size photos: the real CWFID photos cycled (as they are, or re-encoded to
    `suffix`, e.g. ".jpg" as field cameras write them), else synthetic JPEG fields."""
    from weedseg.imageio import read_image, write_image

    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(CWFID.glob("*.png")) + sorted(CWFID.glob("*.jpg")) if CWFID.is_dir() else []
    if photos:
        for i in range(count):
            source = photos[i % len(photos)]
            if suffix and suffix != source.suffix:
                write_image(folder / f"{i:04d}{suffix}", read_image(source))
            else:
                shutil.copyfile(source, folder / f"{i:04d}{source.suffix}")
        return folder
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from bundles import field_image

    for i in range(count):
        write_image(folder / f"{i:04d}.jpg", field_image(*CWFID_SIZE, seed=i))
    return folder


def bare_images_per_second(predictor, seconds: float) -> tuple[float, float, int]:
    """(tiles/s, images/s, tiles per image) of session.run alone on pre-made input batches."""
    from weedseg.tiling import tile_starts

    tile, overlap, batch = (
        predictor.tiling.tile,
        predictor.tiling.overlap,
        predictor.tiling.batch_size,
    )
    height, width = CWFID_SIZE
    per_image = len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))
    tiles = np.random.default_rng(0).integers(0, 256, (batch, tile, tile, 3), dtype=np.uint8)
    feed = {predictor.session.get_inputs()[0].name: predictor.runner.preprocess(tiles)}
    output = ["labels"]  # what `weedseg predict` asks the model for
    predictor.session.run(output, feed)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.session.run(output, feed)
        done += batch
    tiles_per_s = done / (time.perf_counter() - started)
    return tiles_per_s, tiles_per_s / per_image, per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle (default: export --preset)")
    parser.add_argument("--preset", default="unet-mobilenetv3-lite")
    parser.add_argument("--layout", default="NHWC", choices=["NHWC", "NCHW"])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bare-seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, help="ONNX Runtime CPU threads (default: all)")
    parser.add_argument(
        "--streams", type=int, help="pipeline: images in the model at once (default: as shipped)"
    )
    parser.add_argument(
        "--format", choices=["png", "jpg"], help="re-encode the CWFID photos (default: as they are)"
    )
    args = parser.parse_args()

    from weedseg.infer import Predictor
    from weedseg.predict import PredictConfig, run_predict
    from weedseg.predict.worker import make_predictor

    with tempfile.TemporaryDirectory(prefix="weedseg-throughput-") as tmp:
        work = Path(tmp)
        bundle = args.model or export_preset(args.preset, work / "bundle", args.layout, args.tile)
        folder = make_folder(work, args.images, f".{args.format}" if args.format else None)
        # the bare model at its best (ONNX Runtime threads spinning), the pipeline as shipped
        predictor = Predictor.from_bundle(
            bundle, tile=args.tile, batch_size=args.batch, threads=args.threads
        )
        predictor.warmup()
        print(f"model: {predictor.describe()}")
        tiles_s, bare_img_s, per_image = bare_images_per_second(predictor, args.bare_seconds)
        print(f"bare model: {tiles_s:.2f} tiles/s = {bare_img_s:.3f} images/s ({per_image} tiles)")

        config = PredictConfig(
            source=str(folder),
            model=str(bundle),
            out=str(work / "out"),
            tile=args.tile,
            batch=args.batch,
            workers=args.workers,
            threads=args.threads,
            streams=args.streams,
        )
        started = time.perf_counter()
        code = run_predict(config, make_predictor(config))
        elapsed = time.perf_counter() - started
        pipeline_img_s = args.images / elapsed
        print(f"pipeline: {args.images} images in {elapsed:.1f}s = {pipeline_img_s:.3f} images/s")
        # measured again after the pipeline: on a shared machine the load drifts
        _, bare_after, _ = bare_images_per_second(predictor, args.bare_seconds)
        bare = (bare_img_s + bare_after) / 2
        print(
            f"bare model again: {bare_after:.3f} images/s; pipeline / bare (mean of both) = "
            f"{pipeline_img_s / bare:.3f} (exit {code})"
        )


if __name__ == "__main__":
    main()
