"""What exporting smp FPN's merge as chained Adds saves (`onnx_export.with_sum_merges`).

Exports each model twice, with smp's own merge (`torch.stack(maps).sum(0)`: Unsqueeze + Concat
+ ReduceSum) and with the Adds the bundle now has, checks both graphs give the same outputs, and
times them interleaved in ONNX Runtime (CPU EP, FP32, uint8 NHWC input, random weights: speed
does not depend on them).

    .venv/bin/python benchmarks/fpn_merge.py --models fpn-mobilenetv3,fpn-mobilenetv3-lite
"""

from __future__ import annotations

import argparse
import copy
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

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class StackMergeDeploy(DeployModel):
    """The bundle's computation with smp's merge left as it is (the graph before the change)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(torch.nn.Identity(), MEAN, STD, "NHWC")
        self.model = model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fpn-mobilenetv3,fpn-mobilenetv3-lite")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(0)
    x = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
    sessions: dict[tuple[str, str], ort.InferenceSession] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = build_model(name, out_channels=3).eval()
            variants = {
                "stack + ReduceSum": StackMergeDeploy(copy.deepcopy(model)),
                "chained Adds": DeployModel(model, MEAN, STD, "NHWC"),  # with_sum_merges
            }
            for variant, deploy in variants.items():
                path = Path(tmp) / f"{name}-{len(sessions)}.onnx"
                export_onnx(deploy, path, OnnxOptions(args.size, args.size))
                # the sessions take turns: threads sleep when idle
                sessions[name, variant] = cpu_session(path, args.threads, spinning=False)
    outputs = {key: s.run(None, {"images": x}) for key, s in sessions.items()}  # warm-up too
    times: dict[tuple[str, str], list[float]] = {key: [] for key in sessions}
    for _ in range(args.runs):
        for key, s in sessions.items():
            start = time.perf_counter()
            s.run(None, {"images": x})
            times[key].append((time.perf_counter() - start) * 1000)

    print(f"{args.size}x{args.size}, batch 1, {args.threads} thread(s), {args.runs} runs\n")
    print("| model | merge | median ms | best ms | labels equal | max abs prob diff |")
    print("|---|---|---|---|---|---|")
    for (name, variant), ms in times.items():
        labels, probs = outputs[name, variant]
        ref_labels, ref_probs = outputs[name, "stack + ReduceSum"]
        print(
            f"| {name} | {variant} | {statistics.median(ms):.1f} | {min(ms):.1f} | "
            f"{(labels == ref_labels).mean():.4%} | {np.abs(probs - ref_probs).max():.2e} |"
        )


if __name__ == "__main__":
    main()
