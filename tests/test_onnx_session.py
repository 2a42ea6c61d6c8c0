"""weedseg.infer.onnx_session: providers usable here, session options, TensorRT EP options."""

from __future__ import annotations

import pytest
from bundles import build_colour_bundle

from weedseg.bundle import load_bundle
from weedseg.errors import WeedsegError
from weedseg.infer.onnx_session import (
    NO_SPINNING,
    cpu_session,
    resolve_providers,
    session_options,
    tensorrt_options,
)


def test_providers_resolve_to_what_works_here() -> None:
    assert resolve_providers("auto")[-1] == "CPUExecutionProvider"
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(WeedsegError, match="not usable"):
        resolve_providers("NoSuchExecutionProvider")


def test_session_options_cap_threads_and_stop_spinning() -> None:
    key, off = NO_SPINNING
    quiet = session_options(threads=1, spinning=False)
    assert quiet.intra_op_num_threads == 1
    assert quiet.get_session_config_entry(key) == off
    default = session_options()
    assert default.intra_op_num_threads == 0  # ONNX Runtime's own choice
    with pytest.raises(RuntimeError, match="does not have"):  # spinning stays at its default
        default.get_session_config_entry(key)


def test_cpu_session_opens_a_file_or_its_bytes(tmp_path) -> None:
    model = build_colour_bundle(tmp_path / "b") / "model.onnx"
    from_file = cpu_session(model, threads=1, spinning=False)
    from_bytes = cpu_session(model.read_bytes())
    assert from_file.get_providers() == from_bytes.get_providers() == ["CPUExecutionProvider"]
    assert from_file.get_session_options().get_session_config_entry(NO_SPINNING[0]) == "0"


def test_tensorrt_profile_covers_the_shapes_sent(tmp_path) -> None:
    manifest = load_bundle(build_colour_bundle(tmp_path / "b", layout="NHWC")).manifest
    options = tensorrt_options(manifest, tile=512, batch_size=4, cache_dir=tmp_path / "cache")
    assert options["trt_profile_min_shapes"] == "images:1x32x32x3"
    assert options["trt_profile_max_shapes"] == "images:4x512x512x3"
    assert options["trt_engine_cache_enable"] == "True"
    static = load_bundle(build_colour_bundle(tmp_path / "s", dynamic=False)).manifest
    assert "trt_profile_min_shapes" not in tensorrt_options(static, 64, 1, tmp_path)
