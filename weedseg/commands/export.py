"""`weedseg export`: a trained model as a self-describing bundle (ONNX, INT8, TensorRT)."""

from __future__ import annotations

import argparse

HELP = "export a segmentation run/checkpoint as a bundle (ONNX + manifest, INT8, TensorRT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="RUN_OR_CHECKPOINT",
        help="fine-tuning run folder or checkpoint (or, with --check alone, a bundle to check)",
    )
    parser.add_argument("--out", help="bundle folder to write")
    parser.add_argument("--imgsz", type=int, default=512, help="export size and tile size (x32)")
    parser.add_argument(
        "--dynamic", action="store_true", help="dynamic batch and H/W (x32) instead of [1,H,W]"
    )
    parser.add_argument("--min-size", type=int, default=64, help="smallest side with --dynamic")
    parser.add_argument("--max-size", type=int, default=1024, help="largest side with --dynamic")
    parser.add_argument("--max-batch", type=int, default=8, help="largest batch with --dynamic")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--layout",
        choices=["NHWC", "NCHW"],
        default="NHWC",
        help="input: NHWC uint8 normalised in the graph (default, measured faster) or NCHW "
        "float32 normalised by the caller",
    )
    parser.add_argument("--name", help="model name in the manifest (default: the run's name)")
    parser.add_argument("--which", choices=["best", "last"], help="checkpoint of a run folder")
    parser.add_argument(
        "--verify",
        help="images for the ONNX vs PyTorch check: a folder or a dataset's test split "
        "(default: the first --calib, else synthetic)",
    )
    parser.add_argument("--verify-n", type=int, default=8, help="images for that check")
    parser.add_argument("--int8", action="store_true", help="add a static QDQ INT8 model")
    parser.add_argument(
        "--calib",
        nargs="+",
        default=[],
        metavar="DIR_OR_DATASET",
        help="INT8 calibration images: folders and/or weedseg datasets (their train split)",
    )
    parser.add_argument("--calib-n", type=int, default=300, help="calibration images (min 50)")
    parser.add_argument(
        "--int8-target",
        choices=["cpu", "tensorrt"],
        help="tune INT8 for ONNX Runtime on CPU or for TensorRT (default: tensorrt with "
        "--tensorrt int8, else cpu)",
    )
    parser.add_argument(
        "--int8-eval",
        help="labeled dataset whose test (else val) split measures the INT8 mIoU delta "
        "(default: the first labeled --calib dataset)",
    )
    parser.add_argument(
        "--int8-eval-n", type=int, default=100, help="labeled images for the INT8 mIoU delta"
    )
    parser.add_argument(
        "--tensorrt",
        nargs="+",
        default=[],
        metavar="PRECISION",
        help="build TensorRT engines: fp32, fp16 and/or int8 (needs TensorRT on this machine)",
    )
    parser.add_argument("--workspace-mb", type=int, default=2048, help="TensorRT workspace limit")
    parser.add_argument("--timing-cache", help="TensorRT timing cache file (reused across builds)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail unless TensorRT can build the graph and its optimisation profile",
    )
    parser.add_argument(
        "--tile-merge",
        choices=["blend", "stitch"],
        default="blend",
        help="the bundle's default merge of overlapping tiles (stitch: faster, cuts plants at "
        "tile borders)",
    )
    parser.add_argument(
        "--plant-vote",
        action="store_true",
        help="the bundle's default: one class per plant region (callers can still ask either way)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing bundle")


def run(args: argparse.Namespace) -> int:
    from weedseg.errors import WeedsegError
    from weedseg.export.config import DEFAULT_TIMING_CACHE, ExportConfig
    from weedseg.model_paths import is_bundle

    if is_bundle(args.source) and args.out is None:
        if not args.check:
            raise WeedsegError(f"{args.source} is a bundle: add --check to check it")
        from weedseg.export.check import check_bundle

        return check_bundle(args.source)
    if args.out is None:
        raise WeedsegError("--out BUNDLE is required")
    config = ExportConfig(
        source=args.source,
        out=args.out,
        imgsz=args.imgsz,
        dynamic=args.dynamic,
        min_size=args.min_size,
        max_size=args.max_size,
        max_batch=args.max_batch,
        opset=args.opset,
        layout=args.layout,
        name=args.name,
        which=args.which,
        verify=args.verify,
        verify_n=args.verify_n,
        int8=args.int8,
        calib=list(args.calib),
        tile_merge=args.tile_merge,
        plant_vote=args.plant_vote,
        calib_n=args.calib_n,
        int8_target=args.int8_target,
        int8_eval=args.int8_eval,
        int8_eval_n=args.int8_eval_n,
        tensorrt=list(args.tensorrt),
        workspace_mb=args.workspace_mb,
        timing_cache=args.timing_cache or str(DEFAULT_TIMING_CACHE),
        check=args.check,
        force=args.force,
    )
    print("export:", ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    from weedseg.export.bundle_export import export_bundle

    export_bundle(config)
    return 0
