"""Which bundle input is faster on CPU: float32 NCHW normalised outside, or uint8 NHWC inside?

Times the whole path a runtime pays for one HxWx3 uint8 tile: pre-processing in numpy plus the
ONNX Runtime run, for the same model exported both ways.

    .venv/bin/python benchmarks/export_layout.py --model unet-mobilenetv3-lite --size 512
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx

from weedseg.infer.onnx_session import cpu_session
from weedseg.models import build_model

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def normalise_nchw(tile: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> [1, 3, H, W] float32 normalised: what an NCHW bundle needs first."""
    x = (tile.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def time_layout(
    session: ort.InferenceSession, layout: str, tile: np.ndarray, runs: int
) -> tuple[float, float]:
    """Median milliseconds of (pre-processing, inference) over `runs`."""
    pre_ms, infer_ms = [], []
    for _ in range(runs + 2):  # two warm-up runs
        t0 = time.perf_counter()
        x = tile[None] if layout == "NHWC" else normalise_nchw(tile)
        t1 = time.perf_counter()
        session.run(None, {"images": x})
        t2 = time.perf_counter()
        pre_ms.append((t1 - t0) * 1000)
        infer_ms.append((t2 - t1) * 1000)
    return statistics.median(pre_ms[2:]), statistics.median(infer_ms[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-mobilenetv3-lite")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model, out_channels=3).eval()
    tile = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("NCHW", "NHWC"):
            path = Path(tmp) / f"{layout}.onnx"
            deploy = DeployModel(model, tuple(MEAN), tuple(STD), layout)
            export_onnx(deploy, path, OnnxOptions(args.size, args.size, layout=layout))
            sessions[layout] = cpu_session(path, args.threads)
    # Interleave the two layouts so machine load affects both alike.
    results: dict[str, list[tuple[float, float]]] = {"NCHW": [], "NHWC": []}
    for _ in range(3):
        for layout, session in sessions.items():
            results[layout].append(time_layout(session, layout, tile, args.runs // 3))
    print(f"model {args.model}, {args.size}x{args.size}, batch 1, {args.threads} threads, ms:")
    print("| input | pre (numpy) | inference (ORT) | total |")
    print("|---|---|---|---|")
    for layout, rows in results.items():
        pre = statistics.median(r[0] for r in rows)
        infer = statistics.median(r[1] for r in rows)
        dtype = "uint8" if layout == "NHWC" else "float32"
        print(f"| {layout} {dtype} | {pre:.2f} | {infer:.1f} | {pre + infer:.1f} |")


if __name__ == "__main__":
    main()
