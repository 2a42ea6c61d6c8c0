"""TensorRT engine bookkeeping at export that runs without TensorRT: names and profiles."""

from __future__ import annotations

from weedseg.export.tensorrt import engine_file_name
from weedseg.export.trt_compat import profile_for

from weedseg.bundle import InputSpec


def test_engine_name_carries_precision_version_and_gpu() -> None:
    name = engine_file_name("fp16", "10.3.0", "NVIDIA Jetson Orin Nano Developer Kit")
    assert name == "model.fp16.trt10.3.0.nvidia-jetson-orin-nano-developer-kit.engine"


def test_profile_spans_the_bundle_sizes() -> None:
    spec = InputSpec(layout="NHWC", dtype="uint8", height=512, width=512, dynamic=True,
                     min_size=64, max_size=1024, max_batch=8)  # fmt: skip
    profile = profile_for(spec)
    assert (profile.min, profile.opt, profile.max) == (
        (1, 64, 64, 3),
        (4, 512, 512, 3),
        (8, 1024, 1024, 3),
    )
    static = profile_for(spec.model_copy(update={"dynamic": False, "layout": "NCHW"}))
    assert static.min == static.opt == static.max == (1, 3, 512, 512)
