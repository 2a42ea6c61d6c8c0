"""TensorRT engine bookkeeping that runs without TensorRT: names, profiles, refusing mismatches."""

from __future__ import annotations

from pathlib import Path

import pytest
from weedseg.export.tensorrt import check_engine_entry, engine_file_name
from weedseg.export.trt_compat import profile_for

from weedseg.bundle import InputSpec
from weedseg.errors import WeedsegError

ENTRY = {
    "file": "model.fp16.trt10.3.0.nvidia-jetson-orin-nano.engine",
    "precision": "fp16",
    "tensorrt_version": "10.3.0",
    "gpu": "NVIDIA Jetson Orin Nano",
}


def test_engine_name_carries_precision_version_and_gpu() -> None:
    name = engine_file_name("fp16", "10.3.0", "NVIDIA Jetson Orin Nano Developer Kit")
    assert name == "model.fp16.trt10.3.0.nvidia-jetson-orin-nano-developer-kit.engine"


def test_engine_from_another_tensorrt_or_gpu_is_refused_with_a_rebuild_hint() -> None:
    root = Path("bundles/cwfid")
    check_engine_entry(ENTRY, root, "10.3.0", "NVIDIA Jetson Orin Nano")  # same: accepted
    with pytest.raises(WeedsegError, match="built by TensorRT 10.3.0.*rebuild it on this machine"):
        check_engine_entry(ENTRY, root, "10.7.0", "NVIDIA Jetson Orin Nano")
    with pytest.raises(WeedsegError, match="build_engine.sh bundles/cwfid fp16"):
        check_engine_entry(ENTRY, root, "10.3.0", "NVIDIA GeForce RTX 4090")


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
