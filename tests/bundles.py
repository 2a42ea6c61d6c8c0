"""Tiny torch-free model bundles for tests: a colour rule written directly as an ONNX graph.

`build_colour_bundle(root)` writes `model.onnx` + `weedseg.json`: a 1x1 convolution turns the
normalised pixel into soil/crop/weed logits (green -> crop, red -> weed, anything else -> soil),
a depthwise box filter smooths them (so tiles see context and borders matter), then `probs`
(softmax) and `labels` (argmax, uint8). Fully convolutional: any batch and H/W when dynamic.
Reusable by the inference, predict and service tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from weedseg.bundle import InputSpec, Manifest, TileSpec, write_manifest
from weedseg.classes import DEFAULT_CLASSES

MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)
# Pure colours the rule classifies with a wide margin (RGB).
SOIL_RGB = (110, 90, 70)
CROP_RGB = (40, 170, 40)
WEED_RGB = (200, 40, 40)


def _colour_logit_nodes(
    source: str, smooth: int
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes from a normalised NCHW float input `source` to `probs` and `labels`."""
    # logits: soil = 2 (constant), crop = 3 * (g - r), weed = 3 * (r - g), on normalised values
    weight = np.array([[0, 0, 0], [-3, 3, 0], [3, -3, 0]], dtype=np.float32).reshape(3, 3, 1, 1)
    bias = np.array([2, 0, 0], dtype=np.float32)
    box = np.full((3, 1, smooth, smooth), 1.0 / smooth**2, dtype=np.float32)
    pad = smooth // 2
    initializers = [
        numpy_helper.from_array(weight, "colour_w"),
        numpy_helper.from_array(bias, "colour_b"),
        numpy_helper.from_array(box, "box_w"),
    ]
    nodes = [
        helper.make_node("Conv", [source, "colour_w", "colour_b"], ["logits"]),
        helper.make_node(
            "Conv", ["logits", "box_w"], ["smoothed"], group=3, pads=[pad, pad, pad, pad]
        ),
        helper.make_node("Softmax", ["smoothed"], ["probs"], axis=1),
        helper.make_node("ArgMax", ["smoothed"], ["labels_i64"], axis=1, keepdims=0),
        helper.make_node("Cast", ["labels_i64"], ["labels"], to=TensorProto.UINT8),
    ]
    return nodes, initializers


def colour_model(
    layout: str = "NCHW", dynamic: bool = True, size: int = 64, smooth: int = 5
) -> onnx.ModelProto:
    """The colour-rule segmenter as an ONNX model (float32 NCHW normalised, or uint8 NHWC)."""
    batch, height, width = ("batch", "height", "width") if dynamic else (1, size, size)
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    if layout == "NCHW":
        images = helper.make_tensor_value_info(
            "images", TensorProto.FLOAT, [batch, 3, height, width]
        )
        source = "images"
    else:
        images = helper.make_tensor_value_info(
            "images", TensorProto.UINT8, [batch, height, width, 3]
        )
        scale = (1.0 / (255.0 * np.array(STD))).astype(np.float32).reshape(1, 3, 1, 1)
        shift = (-np.array(MEAN) / np.array(STD)).astype(np.float32).reshape(1, 3, 1, 1)
        initializers += [
            numpy_helper.from_array(scale, "norm_scale"),
            numpy_helper.from_array(shift, "norm_shift"),
        ]
        nodes += [
            helper.make_node("Cast", ["images"], ["images_f"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["images_f"], ["images_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Mul", ["images_nchw", "norm_scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "norm_shift"], ["normalised"]),
        ]
        source = "normalised"
    head, head_inits = _colour_logit_nodes(source, smooth)
    outputs = [
        helper.make_tensor_value_info("labels", TensorProto.UINT8, [batch, height, width]),
        helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 3, height, width]),
    ]
    graph = helper.make_graph(
        nodes + head, "colour_rule", [images], outputs, initializers + head_inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def build_colour_bundle(
    root: str | Path,
    *,
    layout: str = "NCHW",
    dynamic: bool = True,
    size: int = 64,
    tile: int = 64,
    overlap: int = 16,
    smooth: int = 5,
    min_size: int = 32,
    max_size: int = 8192,
) -> Path:
    """Write a verified bundle folder (model.onnx + weedseg.json) for the colour rule."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    onnx.save(colour_model(layout, dynamic, size, smooth), root / "model.onnx")
    manifest = Manifest(
        model_name="colour-rule-test",
        arch={"arch": "colour-rule", "smooth": smooth},
        classes=[{"name": c.name, "color": c.color} for c in DEFAULT_CLASSES],
        mean=MEAN,
        std=STD,
        input=InputSpec(
            layout=layout,
            dtype="float32" if layout == "NCHW" else "uint8",
            height=size,
            width=size,
            dynamic=dynamic,
            min_size=min_size,
            max_size=max_size,
        ),
        outputs=["labels", "probs"],
        tile=TileSpec(size=tile, overlap=overlap),
        producer={"tests": "tests/bundles.py"},
    )
    write_manifest(root, manifest, ["model.onnx"])
    return root


def field_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8 RGB 'field': soil with green crop discs and red weed discs."""
    import cv2

    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = SOIL_RGB
    count = max(4, height * width // 4000)
    for _ in range(count):
        colour = CROP_RGB if rng.random() < 0.6 else WEED_RGB
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(3, max(4, min(height, width) // 12)))
        cv2.circle(image, centre, radius, colour, thickness=-1)
    return image
