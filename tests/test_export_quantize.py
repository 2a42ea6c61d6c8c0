"""INT8 export: calibration on real images (at least 50), accuracy and speed in the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from bundles import build_colour_bundle, field_image
from labeled_datasets import write_colour_dataset
from onnx import TensorProto, helper, numpy_helper
from weedseg.export.bundle_export import int8_summary
from weedseg.export.quantize import quantize_int8, tiled_miou
from weedseg.export.trt_compat import check_model, profile_for

from weedseg.bundle import load_bundle
from weedseg.checkpoint import save_checkpoint
from weedseg.classes import DEFAULT_CLASSES
from weedseg.cli import main
from weedseg.evaluate.metrics import ConfusionMatrix
from weedseg.imageio import write_image
from weedseg.infer import Predictor
from weedseg.models import build_model, spec_from_name
from weedseg.tiling import TilingOptions


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    spec = spec_from_name("unet-tiny")
    meta = {
        "classes": [c.to_dict() for c in DEFAULT_CLASSES],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }
    stem = tmp_path_factory.mktemp("int8") / "run" / "checkpoints" / "best"
    return save_checkpoint(stem, build_model(spec, 3), spec=spec, task="segmentation", meta=meta)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colour")
    write_colour_dataset(root, {"train": [(64, 64)] * 50, "test": [(80, 96), (64, 128)]})
    return root


def export(checkpoint: Path, out: Path, *extra: str) -> int:
    args = [str(checkpoint), "--out", str(out), "--imgsz", "64", "--verify-n", "2"]
    return main(["export", *args, *extra])


def test_int8_on_50_images_records_accuracy_and_speed(checkpoint, dataset, tmp_path) -> None:
    out = tmp_path / "bundle"
    assert export(checkpoint, out, "--int8", "--calib", str(dataset)) == 0
    bundle = load_bundle(out)
    assert bundle.int8_path == out / "model.int8.onnx"
    int8 = bundle.manifest.int8
    assert int8["calibration"]["images"] == 50 and int8["target"] == "cpu"
    assert 0.0 <= int8["agreement"] <= 1.0
    assert int8["cpu_speedup"] > 0 and int8["cpu_ms_int8"] > 0
    assert int8["miou_images"] == 2
    assert int8["miou_delta_points"] == pytest.approx(
        (int8["miou_int8"] - int8["miou_fp32"]) * 100, abs=1e-2
    )
    # tuned for ONNX Runtime on CPU: uint8 zero points, which TensorRT refuses
    problems = check_model(out / "model.int8.onnx", profile_for(bundle.manifest.input))
    assert any("zero point must be 0" in p for p in problems)


def test_tensorrt_targeted_int8_passes_the_check(checkpoint, dataset, tmp_path) -> None:
    out = tmp_path / "trt-int8"
    args = ["--int8", "--calib", str(dataset), "--int8-target", "tensorrt", "--check"]
    assert export(checkpoint, out, *args) == 0
    bundle = load_bundle(out)
    assert bundle.manifest.tensorrt_compatibility["checked"] == ["model.onnx", "model.int8.onnx"]
    assert check_model(out / "model.int8.onnx", profile_for(bundle.manifest.input)) == []


def test_too_few_calibration_images_are_refused(checkpoint, tmp_path, capsys) -> None:
    folder = tmp_path / "few"
    for i in range(12):
        write_image(folder / f"{i}.png", torch.randint(0, 255, (32, 32, 3)).byte().numpy())
    out = tmp_path / "bundle"
    assert export(checkpoint, out, "--int8", "--calib", str(folder)) == 2
    assert "at least 50 real images" in capsys.readouterr().err
    assert not out.exists()


def _conv_relu_chain(path: Path) -> None:
    """A float graph images [1, 3, 8, 8] -> Conv -> Relu -> Conv -> Relu -> Conv (3 channels)."""
    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "images"
    for i in range(3):
        w = rng.normal(0, 0.3, (3, 3, 3, 3)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1] * 4)
        )
        x = f"c{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"], name=f"relu{i}"))
            x = f"r{i}"
    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, 8, 8])  # noqa: E731
    graph = helper.make_graph(nodes, "chain", [info("images")], [info(x)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what torch's exporter writes; ONNX Runtime reads up to 13
    onnx.save(model, path)


@pytest.mark.parametrize("count", [16, 20])
def test_calibration_ranges_cover_every_input(tmp_path, count) -> None:
    """The one large input comes first: a calibrator that drops early inputs misses its range
    (ONNX Runtime's chunked MinMax collection did, and failed outright on multiples of 16)."""
    _conv_relu_chain(tmp_path / "fp32.onnx")
    calibration = np.full((count, 3, 8, 8), 0.1, dtype=np.float32)
    calibration[0] *= 100
    quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", calibration)
    model = onnx.load(tmp_path / "int8.onnx")
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    quantized = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantized
    for node in quantized:  # the middle Conv's input and output: their ranges scale with input 0
        assert float(constants[node.input[1]]) > 0.01, node.input[0]


def test_summary_warns_when_int8_loses_accuracy_or_speed() -> None:
    entry = {"agreement": 0.97, "cpu_ms_fp32": 34.6, "cpu_ms_int8": 37.2, "cpu_speedup": 0.93}
    entry |= {"miou_fp32": 0.6712, "miou_int8": 0.6359, "miou_delta_points": -3.53}
    lines = int8_summary(entry | {"miou_images": 21}).splitlines()
    assert "-3.53 points on 21 images" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["int8 warning"] * 2
    assert "serve the FP32" in lines[1] and "not faster" in lines[2]
    good = entry | {"miou_delta_points": -0.4, "miou_images": 21, "cpu_speedup": 1.5}
    assert len(int8_summary(good).splitlines()) == 1


@pytest.mark.parametrize("input_scale", [1.0, 0.5])
def test_tiled_miou_scores_as_the_runtime_predicts(tmp_path, input_scale) -> None:
    """Export's INT8 accuracy check tiles (and rescales) photos as the Predictor does."""
    root = build_colour_bundle(tmp_path / "b")
    manifest = load_bundle(root).manifest
    images = [field_image(150, 170, seed) for seed in range(2)]
    predictor = Predictor.from_bundle(root, tile=64, overlap=16, input_scale=input_scale)
    masks = [predictor.predict(image).labels for image in images]
    masks[0][:10] = (masks[0][:10] + 1) % 3  # planted disagreement: the score must see it
    expected = ConfusionMatrix(3)
    for image, mask in zip(images, masks, strict=True):
        expected.update(mask, predictor.predict(image).labels)
    miou = tiled_miou(
        root / "model.onnx",
        list(zip(images, masks, strict=True)),
        num_classes=3,
        layout=manifest.input.layout,
        mean=manifest.mean,
        std=manifest.std,
        tiling=TilingOptions(64, 16, batch_size=1, input_scale=input_scale),
        static_size=None,
    )
    assert miou == pytest.approx(float(expected.compute().miou), abs=1e-6) and miou < 1.0
