"""Export a CWFID-trained run and measure what the acceptance list asks: FP32 ONNX agreement
with PyTorch on the test images, INT8 mIoU on the test split vs FP32, and the CPU speed-up.

    .venv/bin/python benchmarks/export_int8.py --run runs/cwfid --data /work/data/cwfid \
        --calib /work/data/cwfid /work/data/peanut --out /tmp/cwfid-bundle

CWFID has 39 training images, below the 50 the INT8 calibration requires, so calibration
also draws on another field dataset (peanut, train split); each source gives half the tiles.
Prints a markdown table for benchmarks/RESULTS.md; every figure is also in the bundle's
weedseg.json.
"""

from __future__ import annotations

import argparse
import time

from weedseg.export.bundle_export import export_bundle
from weedseg.export.config import ExportConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="segmentation run or checkpoint")
    parser.add_argument("--data", required=True, help="labeled dataset (its test split)")
    parser.add_argument("--calib", nargs="+", required=True, help="calibration folders/datasets")
    parser.add_argument("--calib-n", type=int, default=300)
    parser.add_argument("--out", required=True, help="bundle folder (replaced)")
    parser.add_argument("--imgsz", type=int, default=512)
    parser.add_argument("--target", choices=["cpu", "tensorrt"], default="cpu")
    args = parser.parse_args()

    config = ExportConfig(
        source=args.run,
        out=args.out,
        imgsz=args.imgsz,
        verify=args.data,
        verify_n=1000,  # every test image
        int8=True,
        calib=args.calib,
        calib_n=args.calib_n,
        int8_target=args.target,
        int8_eval=args.data,
        int8_eval_n=1000,
        check=True,
        force=True,
    )
    start = time.perf_counter()
    manifest = export_bundle(config)
    minutes = (time.perf_counter() - start) / 60
    check, int8 = manifest.verification, manifest.int8
    print(f"\nexport took {minutes:.1f} min; model {manifest.model_name} {manifest.arch}")
    print("| figure | value |")
    print("|---|---|")
    print(
        f"| FP32 ONNX vs PyTorch agreement | {check['agreement']:.4%} of {check['pixels']} px "
        f"({check['images']} images: {check['source']}, {args.imgsz} px centre crops) |"
    )
    print(f"| FP32 max abs prob diff | {check['max_prob_diff']:.2e} |")
    print(f"| INT8 calibration | {int8['calibration']['images']} images, {int8['target']} |")
    print(f"| INT8 vs FP32 class agreement | {int8['agreement']:.2%} |")
    print(
        f"| mIoU FP32 / INT8 ({int8['miou_images']} images, {int8['miou_dataset']}, tiled) "
        f"| {int8['miou_fp32']:.4f} / {int8['miou_int8']:.4f} "
        f"({int8['miou_delta_points']:+.2f} points) |"
    )
    print(
        f"| CPU latency FP32 / INT8, {int8['cpu_input_shape']} | {int8['cpu_ms_fp32']:.1f} / "
        f"{int8['cpu_ms_int8']:.1f} ms ({int8['cpu_speedup']:.2f}x) |"
    )


if __name__ == "__main__":
    main()
