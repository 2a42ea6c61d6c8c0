"""`weedseg predict`: segment images, folders, globs, path lists or GeoTIFF orthomosaics."""

from __future__ import annotations

import argparse

from weedseg.defaults import TTA_MODES

HELP = "segment images, folders or orthomosaics with a model bundle (torch-free)"


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _bands(text: str) -> tuple[int, int, int]:
    bands = tuple(int(b) for b in _csv_list(text))
    if len(bands) != 3 or min(bands) < 0:
        raise argparse.ArgumentTypeError("give three 0-based band indices, e.g. 0,1,2 or 3,2,1")
    return bands  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="image file, folder (recursive), glob or text file of paths")
    parser.add_argument("--model", required=True, help="model bundle folder (weedseg export)")
    parser.add_argument("--out", required=True, help="output folder (mirrors the input tree)")
    parser.add_argument(
        "--save",
        type=_csv_list,
        default=("mask", "overlay", "csv"),
        help="outputs: mask,overlay,csv,geojson,geotiff (default mask,overlay,csv)",
    )
    parser.add_argument("--tile", type=int, help="tile size (default: the bundle's)")
    parser.add_argument("--overlap", type=int, help="tile overlap in pixels (default: bundle's)")
    parser.add_argument("--batch", type=int, default=4, help="tiles per model call (default 4)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="decode/write threads, or Ray actors with --ray (default 2)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip images already finished by the same model with the same output settings "
        "(failed ones are retried)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --resume, redo images made by another model or other output settings "
        "(else such a resume is refused)",
    )
    parser.add_argument("--include", action="append", default=[], help="keep matching globs")
    parser.add_argument("--exclude", action="append", default=[], help="drop matching globs")
    parser.add_argument("--gsd", type=float, help="ground sampling distance of plain images, cm/px")
    parser.add_argument(
        "--bands",
        type=_bands,
        help="0-based bands used as R,G,B for multi-band inputs (default: the first three)",
    )
    parser.add_argument(
        "--providers",
        default="auto",
        help="auto (bundle's TensorRT engine > TensorRT EP > CUDA EP > CPU), tensorrt-engine, "
        "or a list such as cuda,cpu",
    )
    parser.add_argument("--int8", action="store_true", help="run the bundle's INT8 model")
    parser.add_argument(
        "--input-scale",
        type=float,
        help="resize photos by this factor for the model (default: the bundle's; e.g. 2 for "
        "photos from twice the height the model was trained at)",
    )
    parser.add_argument(
        "--threads", type=int, help="ONNX Runtime CPU threads per stream (default: cores/streams)"
    )
    parser.add_argument(
        "--streams",
        type=int,
        help="images in the model at once, each its own ONNX Runtime run "
        "(default: 2 on a CPU-only machine with 2-4 cores, else 1)",
    )
    parser.add_argument(
        "--plant-vote",
        action=argparse.BooleanOptionalAction,
        help="one class per plant: each connected plant region (up to 1%% of the frame) takes "
        "its most probable class; weed patches and polygons follow (default: the bundle's)",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: flip averages each tile with its left-right and "
        "upside-down mirrors (3x the model time; default none)",
    )
    parser.add_argument(
        "--min-patch-px", type=int, default=16, help="smallest weed patch counted (pixels)"
    )
    parser.add_argument(
        "--min-polygon-m2",
        type=float,
        default=0.0025,
        help="GeoTIFF: drop weed polygons smaller than this (m2, default 0.0025 = 25 cm2)",
    )
    parser.add_argument(
        "--grid", type=float, default=1.0, help="GeoTIFF: prescription grid cell size in metres"
    )
    parser.add_argument(
        "--spray-threshold",
        type=float,
        default=1.0,
        help="GeoTIFF: spray a grid cell when its weed cover %% is above this (default 1.0)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray (an actor pool); no ADDRESS starts a local Ray instance "
        "(put SOURCE before --ray)",
    )


def run(args: argparse.Namespace) -> int:
    from weedseg.predict import PredictConfig, run_predict

    config = PredictConfig(
        source=args.source,
        model=args.model,
        out=args.out,
        save=args.save,
        tile=args.tile,
        overlap=args.overlap,
        batch=args.batch,
        workers=args.workers,
        resume=args.resume,
        force=args.force,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        gsd=args.gsd,
        bands=args.bands,
        providers=args.providers,
        int8=args.int8,
        threads=args.threads,
        streams=args.streams,
        input_scale=args.input_scale,
        plant_vote=args.plant_vote,
        tta=args.tta,
        min_patch_px=args.min_patch_px,
        min_polygon_m2=args.min_polygon_m2,
        grid_m=args.grid,
        spray_threshold=args.spray_threshold,
        ray=args.ray,
    )
    return run_predict(config)
