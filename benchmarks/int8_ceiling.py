"""How far INT8 could go on this CPU, and where our models' INT8 time goes instead.

Three measurements, ONNX Runtime CPU EP, one thread count:
1. the ceiling: a 2048^3 GEMM as float32 MatMul and as uint8 x int8 MatMulInteger (the kernel
   family QLinearConv's dense convolutions use), best of 5 runs each;
2. per model preset (random weights, 512x512, batch 1): FP32 and
   `weedseg.export.quantize.quantize_int8` INT8 (CPU target, synthetic calibration: speed
   only), interleaved medians and the ratio;
3. each graph's time by operator type (ONNX Runtime's profiler), the top `--top` types.

    .venv/bin/python benchmarks/int8_ceiling.py --threads 1
    .venv/bin/python benchmarks/int8_ceiling.py --models fpn-mobilenetv3,unet-resnet18 --threads 2

Prints Markdown for benchmarks/RESULTS.md. Run it on an idle machine: every figure is a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from weedseg.export.images import synthetic_images
from weedseg.export.onnx_export import OnnxOptions, export_onnx, model_input
from weedseg.export.quantize import quantize_int8

from weedseg.bench.subjects import PRESET_PREFIX, load_subject
from weedseg.infer.onnx_session import session_options
from weedseg.models import count_gflops

GEMM_SIDE = 2048


def session(
    model: str | bytes, threads: int, profile_in: Path | None = None
) -> ort.InferenceSession:
    """A CPU session; with `profile_in`, ONNX Runtime writes its profile file into that folder."""
    options = session_options(threads, spinning=False)  # the sessions take turns
    if profile_in is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_in / "profile")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def gemm_graph(int8: bool) -> bytes:
    """y = a @ w with a [N, N] input and a constant w, float32 or uint8 x int8 -> int32."""
    n = GEMM_SIDE
    rng = np.random.default_rng(0)
    if int8:
        a_type, y_type, op = TensorProto.UINT8, TensorProto.INT32, "MatMulInteger"
        w = rng.integers(-127, 128, (n, n)).astype(np.int8)
    else:
        a_type, y_type, op = TensorProto.FLOAT, TensorProto.FLOAT, "MatMul"
        w = rng.standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("a", a_type, [n, n])],
        [helper.make_tensor_value_info("y", y_type, [n, n])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def gemm_ceiling(threads: int) -> dict[str, float]:
    """Best-of-5 GOP/s of the float32 and the uint8 x int8 GEMM."""
    n = GEMM_SIDE
    rng = np.random.default_rng(1)
    inputs = {
        "fp32": rng.standard_normal((n, n)).astype(np.float32),
        "int8": rng.integers(0, 256, (n, n)).astype(np.uint8),
    }
    rates = {}
    for name, a in inputs.items():
        gemm = session(gemm_graph(name == "int8"), threads)
        gemm.run(None, {"a": a})
        best = min(_timed(lambda g=gemm, x=a: g.run(None, {"a": x})) for _ in range(5))
        rates[name] = 2 * n**3 / best / 1e9
    return rates


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def op_shares(profile_path: str, top: int) -> list[tuple[str, float]]:
    """Share of kernel time per operator type from an ONNX Runtime profile file."""
    events = json.loads(Path(profile_path).read_text(encoding="utf-8"))
    per_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values()) or 1
    return [(op, 100 * us / total) for op, us in per_op.most_common(top)]


def measure_model(preset: str, folder: Path, args: argparse.Namespace) -> dict:
    """FP32 and INT8 medians of one preset (interleaved), and both graphs' operator shares."""
    subject = load_subject(PRESET_PREFIX + preset)
    size = args.size
    paths = {"fp32": folder / f"{preset}.onnx", "int8": folder / f"{preset}.int8.onnx"}
    export_onnx(subject.deploy(), paths["fp32"], OnnxOptions(height=size, width=size))
    images = np.stack(synthetic_images(args.calib_n, size, size))  # [n, H, W, 3] uint8
    calibration = model_input(images, subject.layout, subject.mean, subject.std)
    quantize_int8(paths["fp32"], paths["int8"], calibration, target="cpu")
    sample = {"images": calibration[:1]}
    sessions = {name: session(str(path), args.threads) for name, path in paths.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for s in sessions.values():
        s.run(None, sample)  # warm-up
    for _ in range(args.runs):
        for name, s in sessions.items():
            times[name].append(1000 * _timed(lambda s=s: s.run(None, sample)))
    shares = {}
    for name, path in paths.items():
        profiled = session(str(path), args.threads, profile_in=folder)
        for _ in range(3):
            profiled.run(None, sample)
        shares[name] = op_shares(profiled.end_profiling(), args.top)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "model": preset,
        "gflop": count_gflops(subject.network, size),
        "fp32_ms": medians["fp32"],
        "int8_ms": medians["int8"],
        "shares": shares,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="fpn-mobilenetv3,lraspp-mobilenetv3,unet-resnet18,fpn:resnet18"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--calib-n", type=int, default=8, help="synthetic calibration images")
    parser.add_argument("--top", type=int, default=6, help="operator types listed per graph")
    args = parser.parse_args()

    rates = gemm_ceiling(args.threads)
    print(f"GEMM {GEMM_SIDE}^3, {args.threads} thread(s), ONNX Runtime {ort.__version__}:")
    print("\n| GEMM | GOP/s |\n|---|---|")
    print(f"| float32 MatMul | {rates['fp32']:.0f} |")
    print(f"| uint8 x int8 MatMulInteger | {rates['int8']:.0f} |")
    print(f"\nINT8 / FP32 ceiling: {rates['int8'] / rates['fp32']:.1f}x\n")

    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure_model(m, Path(tmp), args) for m in args.models.split(",")]
    print(f"{args.size}x{args.size}, batch 1, median of {args.runs} interleaved runs:\n")
    print("| model | GFLOP | FP32 ms | INT8 ms | INT8 / FP32 | FP32 GFLOP/s | % of GEMM |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        rate = row["gflop"] / row["fp32_ms"] * 1000
        print(
            f"| {row['model']} | {row['gflop']:.2f} | {row['fp32_ms']:.1f} | {row['int8_ms']:.1f} "
            f"| {row['fp32_ms'] / row['int8_ms']:.2f}x | {rate:.0f} "
            f"| {100 * rate / rates['fp32']:.0f} |"
        )
    print("\nTime by operator type (share of kernel time, ONNX Runtime profiler):\n")
    print("| model | graph | top operator types |\n|---|---|---|")
    for row in rows:
        for name, shares in row["shares"].items():
            listed = ", ".join(f"{op} {share:.1f}%" for op, share in shares)
            print(f"| {row['model']} | {name} | {listed} |")


if __name__ == "__main__":
    main()
