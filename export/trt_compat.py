"""Will TensorRT build this ONNX graph? A check that runs anywhere (no TensorRT needed).

Walks the graph against onnx-tensorrt's operator support matrix for the targeted TensorRT
version (`tensorrt_ops.json`, with its source and version), checks data types, the few
restrictions our models can hit, and whether the optimisation profile fits the graph's input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from weedseg.bundle import InputSpec

OPS_FILE = Path(__file__).with_name("tensorrt_ops.json")
DEFAULT_OPT_BATCH = 4  # the runtime's default tile batch

# ONNX element types under the names the support matrix uses.
DTYPE_NAMES = {
    TensorProto.FLOAT: "FP32",
    TensorProto.FLOAT16: "FP16",
    TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "DOUBLE",
    TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64",
    TensorProto.INT8: "INT8",
    TensorProto.UINT8: "UINT8",
    TensorProto.BOOL: "BOOL",
    TensorProto.FLOAT8E4M3FN: "FP8",
    TensorProto.INT4: "INT4",
    TensorProto.FLOAT4E2M1: "FP4",
}
RESIZE_ALLOWED = {
    "mode": {"nearest", "linear"},
    "coordinate_transformation_mode": {
        "half_pixel",
        "pytorch_half_pixel",
        "tf_half_pixel_for_nn",
        "asymmetric",
        "align_corners",
    },
    "nearest_mode": {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"},
}


@dataclass(frozen=True)
class OpsTable:
    """TensorRT's ONNX support matrix for one TensorRT version."""

    tensorrt_version: str
    source: str
    opset_min: int
    opset_max: int
    op_types: dict[str, frozenset[str]]  # supported op -> data types it takes

    @property
    def label(self) -> str:
        return f"TensorRT {self.tensorrt_version} (per {self.source})"


@lru_cache(maxsize=4)
def load_ops_table(path: str | Path = OPS_FILE) -> OpsTable:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return OpsTable(
        tensorrt_version=raw["tensorrt_version"],
        source=raw["source"],
        opset_min=int(raw["opset_min"]),
        opset_max=int(raw["opset_max"]),
        op_types={op: frozenset(entry["types"]) for op, entry in raw["supported"].items()},
    )


@dataclass(frozen=True)
class ProfileShapes:
    """min/opt/max shapes of the `images` input for a TensorRT optimisation profile."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_dict(self) -> dict:
        return {
            "input": self.name,
            "min": list(self.min),
            "opt": list(self.opt),
            "max": list(self.max),
        }


def _shape(layout: str, batch: int, height: int, width: int) -> tuple[int, ...]:
    return (batch, height, width, 3) if layout == "NHWC" else (batch, 3, height, width)


def profile_for(spec: InputSpec) -> ProfileShapes:
    """The profile a bundle's input spec asks for: its exact shape when static, else from the
    smallest square at batch 1, through the export size at the runtime's batch, to the largest."""
    if not spec.dynamic:
        shape = _shape(spec.layout, 1, spec.height, spec.width)
        return ProfileShapes(spec.name, shape, shape, shape)
    return ProfileShapes(
        spec.name,
        min=_shape(spec.layout, 1, spec.min_size, spec.min_size),
        opt=_shape(spec.layout, min(DEFAULT_OPT_BATCH, spec.max_batch), spec.height, spec.width),
        max=_shape(spec.layout, spec.max_batch, spec.max_size, spec.max_size),
    )


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    types = {init.name: init.data_type for init in graph.initializer}
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    return types


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _node_problems(
    node: onnx.NodeProto, types: dict[str, int], table: OpsTable, inits
) -> list[str]:
    where = f"node {node.name or '?'} ({node.op_type})"
    if node.domain not in ("", "ai.onnx"):
        return [f"{where}: custom domain {node.domain!r} is not parsed by TensorRT's ONNX parser"]
    if node.op_type not in table.op_types:
        return [f"{where}: operator {node.op_type} is not supported by {table.label}"]
    problems = []
    data_type = DTYPE_NAMES.get(types.get(node.input[0], 0)) if node.input else None
    allowed = table.op_types[node.op_type]
    if data_type and data_type not in allowed:
        problems.append(f"{where}: input type {data_type} not supported (takes {sorted(allowed)})")
    if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
        zero_point = inits.get(node.input[2])
        if zero_point is not None and np.any(numpy_helper.to_array(zero_point) != 0):
            problems.append(f"{where}: zero point must be 0 (symmetric quantisation)")
    if node.op_type == "Resize":
        for attr, allowed_values in RESIZE_ALLOWED.items():
            value = _attribute(node, attr, None)
            if value is not None and value not in allowed_values:
                problems.append(f"{where}: {attr}={value!r} not supported")
        if _attribute(node, "antialias", 0):
            problems.append(f"{where}: antialiasing is not supported")
    if node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
        problems.append(f"{where}: the Indices output is not supported")
    return problems


def _profile_problems(model: onnx.ModelProto, profile: ProfileShapes) -> list[str]:
    inputs = {i.name: i for i in model.graph.input}
    if profile.name not in inputs:
        return [f"profile input {profile.name!r} is not an input of the graph ({sorted(inputs)})"]
    dims = inputs[profile.name].type.tensor_type.shape.dim
    if len(dims) != len(profile.min):
        return [f"profile shapes have rank {len(profile.min)}, input has rank {len(dims)}"]
    problems = []
    for axis, dim in enumerate(dims):
        low, opt, high = profile.min[axis], profile.opt[axis], profile.max[axis]
        if not low <= opt <= high:
            problems.append(f"profile axis {axis}: need min <= opt <= max, got {low}/{opt}/{high}")
        if dim.HasField("dim_value") and {low, opt, high} != {dim.dim_value}:
            problems.append(
                f"input axis {axis} is fixed at {dim.dim_value} in the graph, but the profile "
                f"asks for {low}..{high} (export with --dynamic or change the profile)"
            )
    return problems


def check_model(
    model: str | Path | onnx.ModelProto,
    profile: ProfileShapes | None = None,
    table: OpsTable | None = None,
) -> list[str]:
    """Every reason TensorRT would refuse this graph or profile; an empty list means none found."""
    table = table or load_ops_table()
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    model = onnx.shape_inference.infer_shapes(model)
    problems = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and not table.opset_min <= opset <= table.opset_max:
        problems.append(
            f"opset {opset} is outside {table.opset_min}..{table.opset_max} for {table.label}"
        )
    types = _tensor_types(model)
    inits = {init.name: init for init in model.graph.initializer}
    io_names = {t.name for t in [*model.graph.input, *model.graph.output]}
    for name, elem_type in types.items():
        dtype = DTYPE_NAMES.get(elem_type)
        if dtype is None:
            problems.append(
                f"tensor {name}: data type {TensorProto.DataType.Name(elem_type)} unsupported"
            )
        elif dtype == "UINT8" and name not in io_names:
            problems.append(f"tensor {name}: UINT8 is supported only as a network input or output")
    for node in model.graph.node:
        problems += _node_problems(node, types, table, inits)
        if node.op_type not in ("Cast",) and any(
            types.get(name) == TensorProto.UINT8 for name in node.input if name
        ):
            problems.append(
                f"node {node.name or '?'} ({node.op_type}): takes UINT8; TensorRT only casts it"
            )
    if profile is not None:
        problems += _profile_problems(model, profile)
    return problems
