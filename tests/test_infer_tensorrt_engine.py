"""The runtime's checks on a bundle's TensorRT engines that run without TensorRT."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from weedseg.errors import WeedsegError
from weedseg.infer.tensorrt_engine import TensorRTUnavailable, check_engine_entry, load_engine

ENTRY = {
    "file": "model.fp16.trt10.3.0.nvidia-jetson-orin-nano.engine",
    "precision": "fp16",
    "tensorrt_version": "10.3.0",
    "gpu": "NVIDIA Jetson Orin Nano",
}


def test_engine_from_another_tensorrt_or_gpu_is_refused_with_a_rebuild_hint() -> None:
    root = Path("bundles/cwfid")
    check_engine_entry(ENTRY, root, "10.3.0", "NVIDIA Jetson Orin Nano")  # same: accepted
    with pytest.raises(WeedsegError, match="built by TensorRT 10.3.0.*rebuild it on this machine"):
        check_engine_entry(ENTRY, root, "10.7.0", "NVIDIA Jetson Orin Nano")
    with pytest.raises(WeedsegError, match="build_engine.sh bundles/cwfid fp16"):
        check_engine_entry(ENTRY, root, "10.3.0", "NVIDIA GeForce RTX 4090")


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_loading_an_engine_without_tensorrt_says_where_tensorrt_comes_from(tmp_path) -> None:
    with pytest.raises(TensorRTUnavailable, match="NVIDIA's own package index"):
        load_engine(tmp_path, [ENTRY], "fp16")
