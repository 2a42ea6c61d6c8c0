"""TensorRT engines for a bundle, built with the TensorRT Python API on the target GPU itself.

An engine only runs on the TensorRT version and GPU that built it, so both are in its file name
(`model.fp16.trt10.3.0.orin.engine`) and in the manifest's `tensorrt` entry, and loading refuses
a mismatch with the command that rebuilds it. Imports no torch; `tensorrt` only when called.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weedseg.atomic import write_atomic
from weedseg.errors import WeedsegError

if TYPE_CHECKING:  # trt_compat needs onnx, which a Jetson runtime may not have
    from weedseg.export.trt_compat import ProfileShapes

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MB = 2048
TIMING_CACHE = "tensorrt.timing.cache"
UNAVAILABLE = (
    "TensorRT is not installed (the `tensorrt` Python package is not importable). Its wheels come "
    "from NVIDIA's own package index, not PyPI; install them on the target machine (a Jetson has "
    "them with JetPack) and run `weedseg export ... --tensorrt` there, or build the engine on the "
    "device with deploy/jetson/build_engine.sh. The bundle's ONNX models need no TensorRT."
)


class TensorRTUnavailable(WeedsegError):
    """`--tensorrt` asked for on a machine without TensorRT."""


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(UNAVAILABLE) from exc
    return tensorrt


def gpu_name() -> str:
    """The GPU this process would build for: nvidia-smi, else a Jetson's device-tree model."""
    if shutil.which("nvidia-smi"):
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "--id=0"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip().splitlines()[0]
    model = Path("/proc/device-tree/model")
    if model.is_file():
        return model.read_text(errors="replace").strip("\x00\n ")
    raise WeedsegError("cannot tell which GPU this is (no nvidia-smi, not a Jetson)")


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


def rebuild_hint(bundle_root: Path, precision: str) -> str:
    return (
        f"rebuild it on this machine: weedseg export <run> --out {bundle_root} --tensorrt "
        f"{precision} --force, or deploy/jetson/build_engine.sh {bundle_root} {precision}"
    )


def check_engine_entry(
    entry: dict[str, Any], bundle_root: Path, trt_version: str, gpu: str
) -> None:
    """Refuse an engine built by another TensorRT version or for another GPU."""
    built = (entry.get("tensorrt_version"), entry.get("gpu"))
    if built != (trt_version, gpu):
        raise WeedsegError(
            f"{bundle_root / entry['file']} was built by TensorRT {built[0]} for {built[1]}, "
            f"this machine has TensorRT {trt_version} and {gpu}: engines are not portable; "
            + rebuild_hint(bundle_root, entry.get("precision", "fp16"))
        )


def load_engine(bundle_root: str | Path, entries: list[dict[str, Any]], precision: str) -> Any:
    """Deserialise the bundle's `precision` engine for this TensorRT version and GPU."""
    trt = import_tensorrt()
    root = Path(bundle_root)
    version, gpu = trt.__version__, gpu_name()
    candidates = [e for e in entries if e.get("precision") == precision]
    if not candidates:
        raise WeedsegError(
            f"{root}: no {precision} TensorRT engine; " + rebuild_hint(root, precision)
        )
    matching = [
        e for e in candidates if (e.get("tensorrt_version"), e.get("gpu")) == (version, gpu)
    ]
    entry = matching[0] if matching else candidates[0]
    check_engine_entry(entry, root, version, gpu)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine((root / entry["file"]).read_bytes())
    if engine is None:
        raise WeedsegError(
            f"{root / entry['file']}: TensorRT could not load it; " + rebuild_hint(root, precision)
        )
    return engine
