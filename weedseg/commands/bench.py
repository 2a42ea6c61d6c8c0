"""`weedseg bench`: latency, throughput and memory of a model on each runtime, vs the CPU's peak."""

from __future__ import annotations

import argparse

HELP = "benchmark a model on torch / ONNX Runtime (FP32, INT8) / CUDA / TensorRT"


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from exc


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="bundle folder, run folder, checkpoint, or preset:NAME for an untrained model "
        "(repeat for several)",
    )
    parser.add_argument("--sizes", type=_ints, default=[512], help="square input sides (x32)")
    parser.add_argument("--batch", type=_ints, default=[1, 4], help="batch sizes, e.g. 1,4")
    parser.add_argument(
        "--backends",
        type=_names,
        default=["torch", "ort", "ort-int8", "cuda", "torch-cuda", "tensorrt"],
        help="torch, ort, ort-int8, cuda, torch-cuda, tensorrt (unavailable ones are skipped)",
    )
    parser.add_argument(
        "--peer",
        default="lraspp",
        help="peer rows: lraspp (torchvision LRASPP), yolo11n-seg (needs ultralytics), "
        "both comma-separated, or none",
    )
    parser.add_argument("--runs", type=int, default=20, help="timed runs per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per row")
    parser.add_argument("--threads", type=int, help="CPU threads for every backend (default: all)")
    parser.add_argument("--channels-last", action="store_true", help="torch: channels_last")
    parser.add_argument(
        "--calib-n", type=int, default=8, help="synthetic images for an on-the-fly INT8 graph"
    )
    parser.add_argument(
        "--gemm-size", type=int, default=2048, help="side of the GEMM measuring the FP32 peak"
    )
    parser.add_argument(
        "--interleave-models",
        action="store_true",
        help="load every model at once and time them in shared rounds (fairer on a busy machine)",
    )
    parser.add_argument("--out", default="runs/bench", help="folder for bench.json and bench.md")


def run(args: argparse.Namespace) -> int:
    from weedseg.bench import BenchConfig, markdown_table, run_bench, write_results

    config = BenchConfig(
        models=args.model,
        sizes=args.sizes,
        batches=args.batch,
        backends=args.backends,
        peer=None if args.peer in ("", "none") else args.peer,
        runs=args.runs,
        warmup=args.warmup,
        channels_last=args.channels_last,
        calib_n=args.calib_n,
        gemm_size=args.gemm_size,
        interleave_models=args.interleave_models,
        out=args.out,
    )
    if args.threads:
        config.threads = args.threads
    print("bench:", ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    results = run_bench(config)
    json_path, md_path = write_results(results, config.out)
    print(markdown_table(results))
    print(f"Results: {md_path} and {json_path}")
    return 0
