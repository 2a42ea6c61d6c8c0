"""Static INT8 quantisation (QDQ) with ONNX Runtime's tools, and what it costs in accuracy and
gains in CPU speed.

Per-channel symmetric int8 weights; activations depend on the target (benchmarks/
export_int8_targets.py, ResNet-18 U-Net at 512x512 on this project's CPU): for ONNX Runtime on
CPU, asymmetric uint8 activations (1.54x faster than FP32; symmetric int8 ones ran at 0.89x);
for TensorRT, symmetric int8 activations (TensorRT needs zero points of 0). The input
normalisation, the first and last Conv and the softmax/argmax head stay float (`float_nodes`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from weedseg.export.onnx_export import model_input
from weedseg.export.verify import batches

from weedseg.errors import WeedsegError
from weedseg.evaluate.metrics import ConfusionMatrix
from weedseg.infer.onnx_session import cpu_session
from weedseg.tiling import TilingOptions, pad_image, predict_scaled

MIN_CALIBRATION_IMAGES = 50
DEFAULT_CALIBRATION_IMAGES = 300
HEAD_OPS = {"Softmax", "ArgMax", "Cast"}
INT8_TARGETS = ("cpu", "tensorrt")


def require_calibration_count(found: int, source: str) -> None:
    """Refuse to calibrate on too few images: INT8 ranges from a handful of images clip badly."""
    if found < MIN_CALIBRATION_IMAGES:
        raise WeedsegError(
            f"INT8 calibration needs at least {MIN_CALIBRATION_IMAGES} real images, {source} has "
            f"{found} readable; add images (ideally ~{DEFAULT_CALIBRATION_IMAGES} from the field "
            "the model will see) or export without --int8"
        )


class ArrayReader(CalibrationDataReader):
    """Feeds calibration inputs [N, ...] one at a time to ONNX Runtime's calibrator."""

    def __init__(self, inputs: np.ndarray) -> None:
        self.inputs = inputs
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.inputs):
            return None
        self.index += 1
        return {"images": self.inputs[self.index - 1 : self.index]}

    def rewind(self) -> None:
        self.index = 0


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in float: the input cast and normalisation, the first Conv (the
    stem, on the normalised image), the last Conv (the class logits) and the softmax/argmax head.

    On CWFID (a unet-mobilenetv3-lite run, 120 calibration images, 21 test images) keeping the
    first and last Conv in float cut the INT8 mIoU loss from 1.16 to 0.87 points.
    """
    nodes = list(model.graph.node)
    conv_positions = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    if not conv_positions:
        return []
    first, last = conv_positions[0], conv_positions[-1]
    before = nodes[: first + 1]
    head = [nodes[last]] + [n for n in nodes[last + 1 :] if n.op_type in HEAD_OPS]
    return [n.name for n in before + head if n.name]


def quantize_int8(
    fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray, target: str = "cpu"
) -> None:
    """Write a static QDQ INT8 model calibrated (min/max) on `calibration` inputs [N, ...]."""
    if target not in INT8_TARGETS:
        raise WeedsegError(f"INT8 target must be one of {INT8_TARGETS}, got {target}")
    symmetric = target == "tensorrt"
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # auto_merge: dynamic graphs whose upsampling sizes are computed (FPN, YOLO heads)
        # otherwise stop symbolic shape inference with "Incomplete symbolic shape inference"
        quant_pre_process(str(fp32_path), str(prepared), auto_merge=True)
        model = onnx.load(str(prepared))
        quantize_static(
            str(prepared),
            str(int8_path),
            ArrayReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes(model),
            calibrate_method=CalibrationMethod.MinMax,
            # No "CalibMaxIntermediateOutputs": ONNX Runtime (1.31) then drops every full chunk
            # of collected ranges (microsoft/onnxruntime#18893) and calibrates on the remainder.
            # Each input adds only per-tensor min/max scalars, so memory stays small without it.
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )


def median_latency_ms(run: Callable[[], object], runs: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cpu_speed(
    fp32_path: str | Path, int8_path: str | Path, sample: np.ndarray, runs: int = 10
) -> dict[str, float]:
    """Median CPU latency of both models on one input, interleaved so load affects both alike
    (threads that sleep when idle, so neither session's pool spins while the other runs)."""
    sessions = {
        "fp32": cpu_session(fp32_path, spinning=False),
        "int8": cpu_session(int8_path, spinning=False),
    }
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(3):
        for name, session in sessions.items():
            run = lambda s=session: s.run(None, {"images": sample})  # noqa: E731
            times[name].append(median_latency_ms(run, max(1, runs // 3)))
    fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
    return {
        "cpu_ms_fp32": round(fp32_ms, 2),
        "cpu_ms_int8": round(int8_ms, 2),
        "cpu_speedup": round(fp32_ms / int8_ms, 3),
        "cpu_input_shape": list(sample.shape),
    }


def class_map_agreement(
    fp32_path: str | Path, int8_path: str | Path, inputs: np.ndarray, batch_size: int
) -> float:
    """Share of pixels where the INT8 model picks the FP32 model's class."""
    fp32, int8 = cpu_session(fp32_path), cpu_session(int8_path)
    agree = total = 0
    for batch in batches(inputs, batch_size):
        a = fp32.run(["labels"], {"images": batch})[0]
        b = int8.run(["labels"], {"images": batch})[0]
        agree += int((a == b).sum())
        total += a.size
    return agree / max(total, 1)


def tiled_miou(
    onnx_path: str | Path,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    *,
    num_classes: int,
    layout: str,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    tiling: TilingOptions,
    static_size: tuple[int, int] | None,
) -> float:
    """mIoU of a bundle model on full-resolution (image, mask) pairs, tiled (and resized by the
    model's input scale) as the runtime does; the windows' probabilities are blended."""
    session = cpu_session(onnx_path)

    def run_batch(tiles: np.ndarray) -> np.ndarray:
        # tiles: [n, h, w, 3] uint8 -> probs [n, K, h, w]
        if static_size is None:
            return session.run(["probs"], {"images": model_input(tiles, layout, mean, std)})[0]
        h, w = tiles.shape[1:3]
        out = []
        for one in tiles:  # a static graph takes [1, H, W]: pad each tile up to it
            padded = pad_image(one, *static_size)[None]
            probs = session.run(["probs"], {"images": model_input(padded, layout, mean, std)})[0]
            out.append(probs[0, :, :h, :w])
        return np.stack(out)

    matrix = ConfusionMatrix(num_classes)
    for image, mask in pairs:
        probs = predict_scaled(image, run_batch, num_classes, tiling)
        matrix.update(mask, probs.argmax(axis=0))
    return float(matrix.compute().miou)
