"""ONNX Runtime sessions: which execution providers work here, and the session options.

Everything that opens an ONNX Runtime session (the Predictor, export's checks, `weedseg bench`,
the benchmarks) takes its providers and options from here, so a session timed against another
sleeps when idle (`NO_SPINNING`) the same way everywhere. onnxruntime is imported inside the
functions, so importing this module (for `NO_SPINNING`) stays cheap.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from weedseg.bundle import Manifest
from weedseg.errors import WeedsegError

if TYPE_CHECKING:
    import onnxruntime as ort

# ONNX Runtime session config that makes idle intra-op threads sleep instead of busy-waiting.
# Needed wherever two sessions alternate on one machine (timings, pipelines): a spinning idle
# pool keeps a core busy while the other session runs (2 threads on 2 cores: 79-83 ms instead
# of 44 ms for the default model, benchmarks/ort_spinning.py).
NO_SPINNING = ("session.intra_op.allow_spinning", "0")
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# GPU execution providers are separate libraries that need CUDA/TensorRT on the machine.
_PROVIDER_LIBRARIES = {
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
}


@functools.cache
def provider_loads(provider: str) -> bool:
    """Whether ONNX Runtime can actually load `provider` here (its libraries are installed)."""
    import onnxruntime as ort

    library = _PROVIDER_LIBRARIES.get(provider)
    if library is None:
        return True
    path = Path(ort.__file__).parent / "capi" / library
    if not path.is_file():
        return provider in ort.get_available_providers()
    try:
        ctypes.CDLL(str(path))
    except OSError:
        return False
    return True


def resolve_providers(providers: str | Sequence[str] = "auto") -> list[str]:
    """ONNX Runtime providers to use: "auto" = TensorRT > CUDA > CPU, whichever work here.

    Also accepts a comma-separated string or list of names ("cuda,cpu" or full provider names).
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if isinstance(providers, str):
        if providers == "auto":
            return [p for p in PREFERRED_PROVIDERS if p in available and provider_loads(p)]
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    chosen = [PROVIDER_ALIASES.get(p.lower(), p) for p in providers]
    for name in chosen:
        if name not in available or not provider_loads(name):
            raise WeedsegError(
                f"execution provider {name} is not usable here (available: "
                f"{', '.join(p for p in available if provider_loads(p))})"
            )
    return chosen


def session_options(threads: int | None = None, spinning: bool = True) -> ort.SessionOptions:
    """Options with every graph optimisation; `threads` caps the intra-op CPU threads (None or
    0: ONNX Runtime's default), `spinning=False` lets them sleep between operators
    (`NO_SPINNING`), for sessions timed against each other or beside decode and write threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry(*NO_SPINNING)
    return options


def cpu_session(
    model: str | Path | bytes, threads: int = 0, spinning: bool = True
) -> ort.InferenceSession:
    """An ONNX Runtime CPU session on a model file (or its bytes); options as `session_options`."""
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else str(model)
    options = session_options(threads, spinning)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def tensorrt_options(
    manifest: Manifest, tile: int, batch_size: int, cache_dir: Path
) -> dict[str, str]:
    """ONNX Runtime TensorRT EP options: engine + timing cache, and for dynamic bundles an
    optimisation profile covering every shape the Predictor sends (1..batch, up to tile x tile)."""
    options = {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache_dir),
    }
    spec = manifest.input
    if spec.dynamic:

        def dims(batch: int, side: int) -> str:
            shape = (
                (batch, side, side, 3) if spec.layout.upper() == "NHWC" else (batch, 3, side, side)
            )
            return f"{spec.name}:{'x'.join(map(str, shape))}"

        options["trt_profile_min_shapes"] = dims(1, spec.min_size)
        options["trt_profile_opt_shapes"] = dims(batch_size, tile)
        options["trt_profile_max_shapes"] = dims(batch_size, tile)
    return options


def bundle_providers(
    providers: list[str], manifest: Manifest, tile: int, batch_size: int
) -> list[str | tuple[str, dict]]:
    """Providers with their options; TensorRT engines are cached per model checksum."""
    cache_root = Path(os.environ.get("WEEDSEG_TRT_CACHE", Path.home() / ".cache/weedseg/tensorrt"))
    cache_dir = cache_root / manifest.files["model.onnx"][:16]
    return [
        (p, tensorrt_options(manifest, tile, batch_size, cache_dir))
        if p == "TensorrtExecutionProvider"
        else p
        for p in providers
    ]
