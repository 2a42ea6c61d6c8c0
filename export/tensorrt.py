"""TensorRT engines for a bundle, built with the TensorRT Python API on the target GPU itself.

An engine only runs on the TensorRT version and GPU that built it, so both are in its file name
(`model.fp16.trt10.3.0.orin.engine`) and in the manifest's `tensorrt` entry; the runtime
(`weedseg.infer.tensorrt_engine`) refuses a mismatch with the command that rebuilds it. Imports
no torch; `tensorrt` only when called.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weedseg.atomic import write_atomic
from weedseg.errors import WeedsegError
from weedseg.infer.tensorrt_engine import gpu_name, import_tensorrt

if TYPE_CHECKING:  # trt_compat needs onnx, which a Jetson runtime may not have
    from weedseg.export.trt_compat import ProfileShapes

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MB = 2048


def slug(text: str) -> str:
    """A file-name-safe short form: 'NVIDIA Jetson Orin Nano' -> 'nvidia-jetson-orin-nano'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def engine_file_name(precision: str, trt_version: str, gpu: str) -> str:
    return f"model.{precision}.trt{trt_version}.{slug(gpu)}.engine"


@dataclass(frozen=True)
class EngineRequest:
    """What to build: from which ONNX, at which precision, for which input shapes."""

    onnx_path: Path
    precision: str
    profile: ProfileShapes
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None  # read if present, written back after the build


def build_engine(request: EngineRequest, out_dir: Path) -> dict[str, Any]:
    """Build and save an engine; returns the manifest `tensorrt` entry for it."""
    trt = import_tensorrt()
    if request.precision not in PRECISIONS:
        raise WeedsegError(
            f"TensorRT precision must be one of {PRECISIONS}, got {request.precision}"
        )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, request.precision))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(request.onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise WeedsegError(f"TensorRT cannot parse {request.onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace_mb << 20)
    profile = builder.create_optimization_profile()
    shapes = request.profile
    profile.set_shape(shapes.name, shapes.min, shapes.opt, shapes.max)
    config.add_optimization_profile(profile)
    for flag in _precision_flags(trt, request.precision):
        config.set_flag(flag)
    cache_bytes = b""
    if request.timing_cache and request.timing_cache.is_file():
        cache_bytes = request.timing_cache.read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise WeedsegError(f"TensorRT failed to build a {request.precision} engine (see log above)")
    version, gpu = trt.__version__, gpu_name()
    name = engine_file_name(request.precision, version, gpu)
    (out_dir / name).write_bytes(bytes(serialized))
    if request.timing_cache:
        request.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(request.timing_cache, bytes(config.get_timing_cache().serialize()))
    return {
        "file": name,
        "precision": request.precision,
        "tensorrt_version": version,
        "gpu": gpu,
        "onnx": request.onnx_path.name,
        "profile": shapes.to_dict(),
        "workspace_mb": request.workspace_mb,
    }


def _network_flags(trt: Any, precision: str) -> int:
    """Explicit batch (the only mode in TensorRT 10; a flag that must be set in 8.x). INT8 from
    the QDQ model: a strongly typed network, as TensorRT's explicit-quantisation guide advises
    (the Q/DQ nodes fix the int8 layers, the rest keeps the ONNX model's float types)."""
    flags = trt.NetworkDefinitionCreationFlag
    bits = 0
    if hasattr(flags, "EXPLICIT_BATCH"):
        bits |= 1 << int(flags.EXPLICIT_BATCH)
    if precision == "int8" and hasattr(flags, "STRONGLY_TYPED"):
        bits |= 1 << int(flags.STRONGLY_TYPED)
    return bits


def _precision_flags(trt: Any, precision: str) -> list[Any]:
    """Builder flags for weakly typed builds: FP16 lets fp32 layers run in fp16; TensorRT 8.x
    (no strong typing) also needs INT8 (plus FP16 for the layers without Q/DQ) for QDQ models."""
    builder_flags = trt.BuilderFlag
    if precision == "fp16":
        if not hasattr(builder_flags, "FP16"):
            raise WeedsegError(
                f"TensorRT {trt.__version__} has no FP16 builder flag (networks are strongly "
                "typed): build fp32 or int8 engines with it"
            )
        return [builder_flags.FP16]
    if precision == "int8" and not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        return [builder_flags.INT8, builder_flags.FP16]
    return []
