"""Load, check and run a bundle's prebuilt TensorRT engine (`weedseg export --tensorrt`), no torch.

Needs the `tensorrt` Python package and NVIDIA's `cuda-python` (device memory and streams).
An engine only runs on the TensorRT version and GPU that built it: `load_engine` refuses one
built by another TensorRT version or for another GPU, with the command that rebuilds it (the
export side, `weedseg.export.tensorrt`, builds engines and names them with `gpu_name`).
`TensorRTSession` offers the part of `onnxruntime.InferenceSession` the Predictor uses, so
tiling and batching stay the same.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weedseg.bundle import Bundle
from weedseg.errors import WeedsegError

ENGINE_PROVIDER = "TensorRTEngine"
UNAVAILABLE = (
    "TensorRT is not installed (the `tensorrt` Python package is not importable). Its wheels come "
    "from NVIDIA's own package index, not PyPI; install them on the target machine (a Jetson has "
    "them with JetPack) and run `weedseg export ... --tensorrt` there, or build the engine on the "
    "device with deploy/jetson/build_engine.sh. The bundle's ONNX models need no TensorRT."
)


class TensorRTUnavailable(WeedsegError):
    """TensorRT asked for (an engine to build or to run) on a machine without it."""


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(UNAVAILABLE) from exc
    return tensorrt


def gpu_name() -> str:
    """The GPU this process runs on: nvidia-smi, else a Jetson's device-tree model."""
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


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


def engine_runtime_available() -> bool:
    """Whether TensorRT and cuda-python are importable."""
    try:
        return bool(importlib.util.find_spec("tensorrt") and importlib.util.find_spec("cuda"))
    except ImportError:
        return False


def engine_precision(bundle: Bundle, precision: str) -> str | None:
    """Which of the bundle's engines suits `precision` ("int8" -> int8; else fp16, then fp32)."""
    built = {entry.get("precision") for entry in bundle.manifest.tensorrt}
    wanted = ["int8"] if precision == "int8" else ["fp16", "fp32"]
    return next((p for p in wanted if p in built), None)


def _check(result):
    """cuda-python calls return (error, *values): raise on error, return the values."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        raise WeedsegError(f"CUDA call failed: {error}")
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class TensorInfo:
    """Name and shape of an engine input/output (dynamic dims as names, like ONNX Runtime)."""

    name: str
    shape: list


class TensorRTSession:
    """Executes a deserialised engine on numpy batches; one call at a time per session."""

    def __init__(self, engine, label: str) -> None:
        trt = import_tensorrt()
        self._cudart = _cudart()
        self.engine = engine
        self.label = label
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self._inputs = [n for n in names if is_input[n]]
        self._outputs = [n for n in names if not is_input[n]]
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._max_shape = tuple(engine.get_tensor_profile_shape(self._inputs[0], 0)[2])
        self._stream = _check(self._cudart.cudaStreamCreate())
        self._device: dict[str, tuple[int, int]] = {}  # name -> (pointer, bytes)
        self._lock = threading.Lock()

    def _info(self, name: str) -> TensorInfo:
        dims = list(self.engine.get_tensor_shape(name))
        return TensorInfo(name, [d if d >= 0 else f"dim{i}" for i, d in enumerate(dims)])

    def get_inputs(self) -> list[TensorInfo]:
        return [self._info(n) for n in self._inputs]

    def get_outputs(self) -> list[TensorInfo]:
        return [self._info(n) for n in self._outputs]

    def get_providers(self) -> list[str]:
        return [f"{ENGINE_PROVIDER} ({self.label})"]

    def _buffer(self, name: str, nbytes: int) -> int:
        pointer, size = self._device.get(name, (0, 0))
        if size < nbytes:
            if pointer:
                _check(self._cudart.cudaFree(pointer))
            pointer = _check(self._cudart.cudaMalloc(nbytes))
            self._device[name] = (pointer, nbytes)
        return pointer

    def _run_chunk(self, names: list[str], x: np.ndarray) -> list[np.ndarray]:
        cudart, name = self._cudart, self._inputs[0]
        self.context.set_input_shape(name, x.shape)
        pointer = self._buffer(name, x.nbytes)
        self.context.set_tensor_address(name, pointer)
        to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        _check(cudart.cudaMemcpyAsync(pointer, x.ctypes.data, x.nbytes, to_device, self._stream))
        hosts = {}
        for out in self._outputs:
            host = np.empty(tuple(self.context.get_tensor_shape(out)), dtype=self._dtypes[out])
            hosts[out] = host
            self.context.set_tensor_address(out, self._buffer(out, host.nbytes))
        if not self.context.execute_async_v3(self._stream):
            raise WeedsegError(f"TensorRT engine {self.label} failed on input {x.shape}")
        to_host = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for out in names:
            host = hosts[out]
            source = self._device[out][0]
            _check(
                cudart.cudaMemcpyAsync(host.ctypes.data, source, host.nbytes, to_host, self._stream)
            )
        _check(cudart.cudaStreamSynchronize(self._stream))
        return [hosts[n] for n in names]

    def close(self) -> None:
        """Free the device buffers and the stream, and drop the context and engine (whose
        device memory TensorRT frees with them). Idempotent; waits for a running call."""
        with self._lock:
            for pointer, _ in self._device.values():
                _check(self._cudart.cudaFree(pointer))
            self._device.clear()
            if self._stream is not None:
                _check(self._cudart.cudaStreamDestroy(self._stream))
                self._stream = None
            self.context = None
            self.engine = None

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Like InferenceSession.run: batches above the engine profile's maximum are split."""
        x = np.ascontiguousarray(feed[self._inputs[0]], dtype=self._dtypes[self._inputs[0]])
        if any(s > m for s, m in zip(x.shape[1:], self._max_shape[1:], strict=True)):
            raise WeedsegError(
                f"input {x.shape} exceeds the engine's profile {self._max_shape}: use a smaller "
                "--tile or rebuild the engine with a larger --max-size"
            )
        step = self._max_shape[0]
        with self._lock:
            if self.context is None:
                raise WeedsegError(f"TensorRT engine {self.label} was closed")
            chunks = [self._run_chunk(names, x[i : i + step]) for i in range(0, len(x), step)]
        return [np.concatenate([c[k] for c in chunks]) for k in range(len(names))]


def open_engine_session(bundle: Bundle, precision: str) -> TensorRTSession:
    """Load the bundle's engine for `precision` on this GPU (refused with a rebuild hint if it
    was built elsewhere)."""
    chosen = engine_precision(bundle, precision)
    if chosen is None:
        raise WeedsegError(f"{bundle.root}: no TensorRT engine for {precision} in this bundle")
    engine = load_engine(bundle.root, bundle.manifest.tensorrt, chosen)
    return TensorRTSession(engine, f"{chosen} engine")
