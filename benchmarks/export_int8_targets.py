"""CPU latency of the two INT8 schemes against FP32: `--int8-target cpu` (uint8 asymmetric
activations) and `--int8-target tensorrt` (int8 symmetric activations, zero points 0).

Speed only (random weights, synthetic calibration): accuracy is measured on real data by
benchmarks/export_int8.py.

    .venv/bin/python benchmarks/export_int8_targets.py --model unet-resnet18 --size 512
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from weedseg.export.images import synthetic_images
from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx, model_input
from weedseg.export.quantize import INT8_TARGETS, cpu_speed, quantize_int8

from weedseg.models import build_model

MEAN, STD = (0.3, 0.3, 0.3), (0.1, 0.1, 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-resnet18")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--calib", type=int, default=20, help="synthetic calibration images")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model, out_channels=3).eval()
    images = np.stack(synthetic_images(args.calib, args.size, args.size))
    inputs = model_input(images, "NHWC", MEAN, STD)
    print(f"model {args.model}, input [1, {args.size}, {args.size}, 3] uint8, median ms:")
    print("| INT8 target | activations | FP32 ms | INT8 ms | speed-up |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export_onnx(DeployModel(model, MEAN, STD, "NHWC"), fp32, OnnxOptions(args.size, args.size))
        for target in INT8_TARGETS:
            int8 = Path(tmp) / f"model.{target}.onnx"
            quantize_int8(fp32, int8, inputs, target)
            speed = cpu_speed(fp32, int8, inputs[:1], runs=args.runs)
            scheme = "int8 symmetric" if target == "tensorrt" else "uint8 asymmetric"
            print(
                f"| {target} | {scheme} | {speed['cpu_ms_fp32']:.0f} | {speed['cpu_ms_int8']:.0f} "
                f"| {speed['cpu_speedup']:.2f}x |"
            )


if __name__ == "__main__":
    main()
