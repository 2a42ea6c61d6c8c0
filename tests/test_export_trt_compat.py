"""The TensorRT compatibility check: passes on our models, catches what TensorRT would refuse."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx
from weedseg.export.trt_compat import check_model, load_ops_table, profile_for

from weedseg.bundle import InputSpec
from weedseg.defaults import DEFAULT_ARCH
from weedseg.models import build_model

DYNAMIC = InputSpec(layout="NHWC", dtype="uint8", height=64, width=64, dynamic=True,
                    min_size=64, max_size=128, max_batch=4)  # fmt: skip


def exported(tmp_path: Path, preset: str, dynamic: bool) -> Path:
    torch.manual_seed(0)
    model = build_model(preset, 3).eval()
    path = tmp_path / f"{preset}-{dynamic}.onnx"
    options = OnnxOptions(64, 64, dynamic=dynamic, min_size=64, max_size=128, max_batch=4)
    export_onnx(DeployModel(model, (0.5,) * 3, (0.25,) * 3, "NHWC"), path, options)
    return path


@pytest.fixture(scope="module")
def tiny_dynamic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported(tmp_path_factory.mktemp("trt"), "unet-tiny", dynamic=True)


def test_ops_list_names_its_source_and_version() -> None:
    table = load_ops_table()
    assert table.tensorrt_version.startswith("10.")
    assert "onnx-tensorrt" in table.source and "operators.md" in table.source
    assert {"Conv", "Resize", "Softmax", "ArgMax", "QuantizeLinear"} <= set(table.op_types)
    assert "Unique" not in table.op_types


def test_our_models_pass_with_their_profiles(tiny_dynamic: Path, tmp_path: Path) -> None:
    assert check_model(tiny_dynamic, profile_for(DYNAMIC)) == []
    default_model = exported(tmp_path, DEFAULT_ARCH, dynamic=False)
    static = DYNAMIC.model_copy(update={"dynamic": False})
    assert check_model(default_model, profile_for(static)) == []
    lraspp = exported(tmp_path, "lraspp-mobilenetv3", dynamic=True)
    assert check_model(lraspp, profile_for(DYNAMIC)) == []


def test_a_planted_unsupported_operator_fails(tiny_dynamic: Path) -> None:
    model = onnx.load(str(tiny_dynamic))
    model.graph.node.append(helper.make_node("Unique", ["probs"], ["unique_values"], name="plant"))
    model.graph.output.append(
        helper.make_tensor_value_info("unique_values", TensorProto.FLOAT, None)
    )
    problems = check_model(model, profile_for(DYNAMIC))
    assert problems == [
        "node plant (Unique): operator Unique is not supported by " + load_ops_table().label
    ]


def test_uint8_inside_the_graph_fails() -> None:
    # TensorRT takes UINT8 only at the network boundary, straight into a Cast.
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["images"], ["nchw"], perm=[0, 3, 1, 2], name="t"),
            helper.make_node("Cast", ["nchw"], ["out"], to=TensorProto.FLOAT, name="c"),
        ],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 8, 8, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    problems = check_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert any("nchw: UINT8 is supported only as a network input or output" in p for p in problems)
    assert any("node t (Transpose): takes UINT8" in p for p in problems)


def test_a_profile_the_graph_cannot_cover_fails(tmp_path: Path) -> None:
    static_graph = exported(tmp_path, "unet-tiny", dynamic=False)
    problems = check_model(static_graph, profile_for(DYNAMIC))
    assert any("fixed at 1 in the graph" in p and "--dynamic" in p for p in problems)
    assert any("fixed at 64 in the graph" in p for p in problems)


def test_an_opset_outside_the_range_fails(tiny_dynamic: Path) -> None:
    model = onnx.load(str(tiny_dynamic))
    model.opset_import[0].version = 8
    assert any("opset 8 is outside" in p for p in check_model(model))
