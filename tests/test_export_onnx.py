"""The exported graph: argmax and softmax inside, static or dynamic shapes, both input layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx, model_input
from weedseg.export.verify import verify_onnx

from weedseg.errors import WeedsegError
from weedseg.infer.onnx_session import cpu_session
from weedseg.models import build_model

MEAN, STD = (0.45, 0.45, 0.4), (0.2, 0.2, 0.25)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("unet-tiny", 3).eval()


def dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def tiles(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)


def test_dynamic_export_runs_at_two_sizes_and_batch_sizes(model, tmp_path: Path) -> None:
    path = tmp_path / "dynamic.onnx"
    deploy = DeployModel(model, MEAN, STD, "NHWC")
    export_onnx(deploy, path, OnnxOptions(64, 64, dynamic=True, min_size=64, max_size=128))
    session = cpu_session(path)
    for batch, height, width in [(1, 64, 64), (3, 96, 128)]:
        x = tiles(batch, height, width)
        labels, probs = session.run(["labels", "probs"], {"images": x})
        assert labels.shape == (batch, height, width) and labels.dtype == np.uint8
        assert probs.shape == (batch, 3, height, width) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        with torch.no_grad():
            expected = model(torch.from_numpy(model_input(x, "NCHW", MEAN, STD))).argmax(1)
        assert (labels == expected.numpy()).mean() >= 0.999


def test_static_export_has_fixed_named_shapes(model, tmp_path: Path) -> None:
    path = tmp_path / "static.onnx"
    export_onnx(DeployModel(model, MEAN, STD, "NHWC"), path, OnnxOptions(64, 64))
    graph = onnx.load(str(path)).graph
    assert [(i.name, dims(i)) for i in graph.input] == [("images", [1, 64, 64, 3])]
    assert [(o.name, dims(o)) for o in graph.output] == [
        ("labels", [1, 64, 64]),
        ("probs", [1, 3, 64, 64]),
    ]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_nchw_float_and_nhwc_uint8_bundles_agree(model, tmp_path: Path) -> None:
    x = tiles(2, 64, 64, seed=3)
    labels = {}
    for layout in ("NHWC", "NCHW"):
        path = tmp_path / f"{layout}.onnx"
        export_onnx(DeployModel(model, MEAN, STD, layout), path, OnnxOptions(64, 64, layout=layout))
        session = cpu_session(path)
        labels[layout] = [
            session.run(["labels"], {"images": model_input(x[i : i + 1], layout, MEAN, STD)})[0]
            for i in range(2)
        ]
    assert np.mean(np.equal(labels["NHWC"], labels["NCHW"])) >= 0.999


def test_fp32_verification_reports_agreement(model, tmp_path: Path) -> None:
    path = tmp_path / "static.onnx"
    deploy = DeployModel(model, MEAN, STD, "NHWC")
    export_onnx(deploy, path, OnnxOptions(64, 64))
    result = verify_onnx(deploy, path, tiles(3, 64, 64))
    assert result.passed and result.agreement >= 0.999
    assert result.images == 3 and result.pixels == 3 * 64 * 64
    assert result.max_prob_diff < 1e-4


def test_sizes_that_are_not_multiples_of_32_are_refused() -> None:
    with pytest.raises(WeedsegError, match="multiple of 32"):
        OnnxOptions(100, 100).validate()
    with pytest.raises(WeedsegError, match="within"):
        OnnxOptions(512, 512, dynamic=True, min_size=64, max_size=256).validate()


def test_fpn_merge_exports_as_adds_with_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    fpn = build_model("fpn-mobilenetv3-lite", 3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        stacked = fpn(x)  # smp's own merge: stack + sum
        deploy = DeployModel(fpn, MEAN, STD, "NHWC")
        assert torch.equal(deploy.model(x), stacked)
    path = tmp_path / "fpn.onnx"
    export_onnx(deploy, path, OnnxOptions(64, 64))
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "Concat" not in ops
    assert ops.count("ReduceSum") == 1  # the softmax's, not the merge's
